# Two commands do everything on a fresh machine (each creates or updates .venv when needed):
#   make train   pretraining on the embedded default data (CPU, a few minutes)
#   make test    the whole test suite, notebooks included
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed
CONFIG ?= configs/cpu_default.yaml
OUT    ?= runs/cpu_default

.PHONY: train test venv bench clean

venv: $(STAMP)

# Re-install when the dependency list changes.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[course,test]"
	touch $(STAMP)

train: $(STAMP)
	$(BIN)/python -m minijepa.train --config $(CONFIG) --out $(OUT)

test: $(STAMP)
	$(BIN)/python -m pytest -n 2 tests

bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf runs .pytest_cache
