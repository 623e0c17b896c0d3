# Two commands do everything on a fresh machine (each creates or updates .venv when needed):
#   make train   pretraining on the embedded default data (CPU, a few minutes)
#   make test    the whole test suite, notebooks included
# and one opens the course:
#   make lab     JupyterLab on notebooks/, with the project's kernel registered
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed
CONFIG ?= configs/cpu_default.yaml
SUBMISSIONS ?= submissions
GRADES      ?= grades
OUT    ?= runs/cpu_default

.PHONY: train test venv lab dist site bench clean notebooks grade explorers-html ceiling autograder

venv: $(STAMP)

# Re-install when the dependency list changes.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[course,test,site]"
	touch $(STAMP)

train: $(STAMP)
	$(BIN)/python -m minijepa.train --config $(CONFIG) --out $(OUT)

# The supervised ceiling for CONFIG (same encoder, labels, same budget; about 8 min for the default config):
# the report shows it beside the run when its config matches (run.ceiling names the file).
ceiling: $(STAMP)
	$(BIN)/python -m minijepa.supervised --config $(CONFIG)

# The browser tests (JupyterLab in headless Chromium) run last and alone: they are sensitive to load.
# Without /usr/bin/chromium they are skipped, unless MINIJEPA_REQUIRE_BROWSER=1 (as in .ci/run).
test: $(STAMP)
	$(BIN)/python -m pytest -n 2 -m "not browser" tests
	$(BIN)/python -m pytest --nbval-lax --nbval-current-env --nbval-cell-timeout=300 notebooks/
	$(BIN)/python -m pytest -p no:xdist -m browser tests/test_browser.py

# The course in JupyterLab: registers the kernel "minijepa" (this venv's python, for your user, so a JupyterLab
# started from anywhere finds it; the notebooks name it) and serves notebooks/. Open the URL it prints.
# No browser is opened without a display. Extra options: make lab LAB_ARGS="--port=8890".
KERNEL      = minijepa
HAS_DISPLAY = $(or $(DISPLAY),$(WAYLAND_DISPLAY),$(filter Darwin,$(shell uname -s)))
lab: $(STAMP)
	$(BIN)/python -m ipykernel install --user --name $(KERNEL) --display-name "Python (minijepa)"
	$(BIN)/python -m jupyterlab --notebook-dir=notebooks $(if $(HAS_DISPLAY),,--no-browser) \
		$(if $(filter 0,$(shell id -u)),--allow-root) $(LAB_ARGS)

# A packed copy of the course (the committed files of HEAD) to upload to a hosted notebook service, whose
# set-up cell installs it: $(DIST)/minijepa-course.tar.gz.
DIST ?= dist
dist:
	mkdir -p $(DIST)
	git archive --format=tar.gz --prefix=minijepa-course/ -o $(DIST)/minijepa-course.tar.gz HEAD
	@echo "$(DIST)/minijepa-course.tar.gz: upload it next to the notebook you open on the hosted service"

# The course website: the README's course map, every notebook with its committed outputs, the docs and the
# standalone explorer pages (cached in build/explorers/ until their inputs change): open site/index.html.
site: $(STAMP)
	$(BIN)/python tools/build_site.py --out site

# The explorers as standalone HTML pages (precomputed frames, no kernel needed): site/explorers/index.html
explorers-html: $(STAMP)
	$(BIN)/python -m minijepa.explorer_pages --out site/explorers

# Rebuild the course notebooks from tools/notebook_sources/ and execute them (outputs are committed).
notebooks: $(STAMP)
	$(BIN)/python tools/build_notebooks.py --execute

# Benchmarks (mask samplers, training step, MFU) against the official code when IJEPA_REPO points to a checkout
# of facebookresearch/ijepa; results and how to read them: benchmarks/README.md. make bench BENCH_ARGS=--quick
bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py $(BENCH_ARGS)

clean:
	rm -rf runs .pytest_cache

# Grade students' exercise files (a folder/zip per student, or a folder of them): make grade SUBMISSIONS=path
grade: $(STAMP)
	$(BIN)/python -m minijepa.grade $(SUBMISSIONS) --out $(GRADES)

# The Gradescope autograder (setup.sh, run_autograder and the grading files): dist/autograder.zip
autograder: $(STAMP)
	$(BIN)/python tools/build_autograder.py --out dist/autograder.zip
