"""Write notebooks/*.ipynb from their sources in tools/notebook_sources/, and back (jupytext does the format).

Every notebook is one text file ``tools/notebook_sources/NN_name.py`` in jupytext's "percent" format (a line
``# %%`` starts a code cell, ``# %% [markdown]`` a markdown cell): diffs stay readable and the committed
.ipynb (with its outputs) is generated from it. Three blocks are shared by every notebook and written once,
here: a code line ``# <<SETUP>>``, ``# <<STYLE>>`` or ``# <<EXERCISES>>`` in a source stands for them.

    python tools/build_notebooks.py                 # sources -> notebooks, without outputs
    python tools/build_notebooks.py --execute       # sources -> notebooks, executed (with a cell timeout)
    python tools/build_notebooks.py --execute 03    # only notebooks whose name starts with 03
    python tools/build_notebooks.py --keep-outputs  # sources -> notebooks, keeping the committed outputs: for
                                                    # edits of markdown cells only (refused if code changed)
    python tools/build_notebooks.py --to-sources 03 # notebook -> source, after editing the .ipynb in JupyterLab

Both directions go through jupytext (``jupytext.reads`` / ``jupytext.writes``, format ``py:percent``), so a
source opened in JupyterLab with jupytext's integration ("Open With > Notebook") is the same notebook. The
workflow, for authors and for students, is in docs/notebooks.md.

Executed notebooks are cleaned before saving: no widget state (``metadata.widgets``), no execution
timestamps, the course's kernelspec (``KERNEL``), and a widget's output is replaced by a one-line note (its
live view needs a running kernel anyway).
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path

import jupytext
import nbformat

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"

# The kernel `make lab` registers for the project's virtual environment; every notebook names it, so a
# JupyterLab started from anywhere runs them with the course installed.
KERNEL = {"display_name": "Python (minijepa)", "language": "python", "name": "minijepa"}

SETUP = '''# Set-up, run me first. In a checkout of the course this only puts the repository root on sys.path, so that
# `import exercises` finds your exercise files (the package itself is installed in the project's .venv).
# On a hosted notebook service without the course, it installs the course once: from MINIJEPA_REPO (the
# course's git repository, a URL or a path), else from minijepa-course.tar.gz uploaded next to this notebook
# (`make dist` in a checkout of the course writes it).
import importlib.util, os, subprocess, sys, tarfile
from pathlib import Path

COURSE = Path.cwd() / "minijepa-course"  # where a hosted service keeps its copy of the course
PACKED = Path.cwd() / "minijepa-course.tar.gz"


def find_course_root():
    for folder in (Path.cwd(), *Path.cwd().parents, COURSE):
        if (folder / "minijepa" / "__init__.py").is_file() and (folder / "pyproject.toml").is_file():
            return folder
    return None


ROOT = find_course_root()
if ROOT is None and importlib.util.find_spec("minijepa") is None:  # hosted service, nothing installed yet
    if os.environ.get("MINIJEPA_REPO"):
        subprocess.run(["git", "clone", "--depth", "1", os.environ["MINIJEPA_REPO"], str(COURSE)], check=True)
    elif PACKED.is_file():
        with tarfile.open(PACKED) as packed:  # filter="data": no links or paths outside (Python >= 3.10.12)
            packed.extractall(Path.cwd(), filter="data")
    else:
        raise SystemExit(
            "This notebook needs the minijepa course, and it is not here. Either set MINIJEPA_REPO to the "
            "course's git repository (a cell `%env MINIJEPA_REPO=<URL or path>` above this one), or upload "
            "minijepa-course.tar.gz (written by `make dist` in a checkout of the course) next to this notebook; "
            "then run this cell again.")
    ROOT = COURSE
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "-e", f"{ROOT}[course]"], check=True)
if ROOT is not None and str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))'''

EXERCISE_HELPER = '''# The notebooks call your exercise functions through this helper: it prints whether yours works and
# otherwise hands back the package's version, so the notebook always runs to the end.
try:
    from exercises.check import student_or_reference
except ImportError:  # only the package is installed (no exercises/ folder next to it)
    def student_or_reference(module_name, function_name, reference, check=None):
        print(f"exercises/{module_name}.py is not available: using the reference {function_name}")
        return reference'''

PLOT_STYLE = '''plt.rcParams.update({"figure.dpi": 72, "savefig.dpi": 72, "font.size": 9, "axes.titlesize": 10})
# One thread: the models here are small, and a single thread stays fast when other jobs (tests run in
# parallel, say) share the CPU, where several threads per process would wait on each other.
torch.set_num_threads(1)
_ = torch.manual_seed(0)'''


SOURCES = Path(__file__).resolve().parent / "notebook_sources"

# A line of a source's code cell that stands for a shared block (the whole line, nothing else on it).
SHARED = {"# <<SETUP>>": SETUP, "# <<STYLE>>": PLOT_STYLE, "# <<EXERCISES>>": EXERCISE_HELPER}
FORMAT = "py:percent"
# No notebook or cell metadata in the sources: kernelspec and cell ids are set by build().
_NO_METADATA = {"notebook_metadata_filter": "-all", "cell_metadata_filter": "-all"}


def notebook_sources() -> dict[str, str]:
    """{notebook file name: percent-format source}, one source file per notebook in tools/notebook_sources/."""
    return {path.stem + ".ipynb": path.read_text() for path in sorted(SOURCES.glob("[0-9][0-9]_*.py"))}


# =====================================================================================================
# Sources <-> notebooks
# =====================================================================================================


def _expand(code: str) -> str:
    return "\n".join(SHARED.get(line, line) for line in code.split("\n"))


def _collapse(code: str, where: str) -> str:
    for marker, block in SHARED.items():
        code = code.replace(block, marker)
    if "# Set-up, run me first" in code or "def student_or_reference" in code:  # a shared block left after an edit
        raise ValueError(f"{where}: a shared cell was edited in the notebook; shared cells are written once, in "
                         "tools/build_notebooks.py (SETUP, PLOT_STYLE, EXERCISE_HELPER): edit them there")
    return code


def build(name: str, source: str) -> nbformat.NotebookNode:
    """A percent-format source -> the notebook (no outputs): shared blocks filled in, ids, the course's kernel."""
    nb = jupytext.reads(source, fmt=FORMAT)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            cell.source = _expand(cell.source)
        cell.id = f"{name[:2]}-{i:02d}"
        cell.metadata = {}
    nb.metadata = {"kernelspec": dict(KERNEL), "language_info": {"name": "python", "pygments_lexer": "ipython3"}}
    return nb


def to_source(nb: nbformat.NotebookNode, name: str = "notebook") -> str:
    """A notebook (edited in JupyterLab, say) -> its percent-format source; outputs and metadata are dropped."""
    nb = copy.deepcopy(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.source = _collapse(cell.source, name)
        cell.metadata = {}
    nb.metadata = {"jupytext": dict(_NO_METADATA)}
    return jupytext.writes(nb, fmt=FORMAT)


def keep_outputs(built: nbformat.NotebookNode, committed: nbformat.NotebookNode, name: str) -> nbformat.NotebookNode:
    """``built`` with the outputs of ``committed``, if only markdown changed between them (else ValueError)."""
    code = lambda nb: [c.source for c in nb.cells if c.cell_type == "code"]  # noqa: E731
    if code(built) != code(committed):
        changed = sum(a != b for a, b in zip(code(built), code(committed))) + abs(len(code(built)) - len(code(committed)))
        raise ValueError(f"{name}: {changed} code cell(s) changed since the notebook was executed: "
                         f"run python tools/build_notebooks.py --execute {name[:2]}")
    runs = iter(c for c in committed.cells if c.cell_type == "code")
    for cell in built.cells:
        if cell.cell_type == "code":
            old = next(runs)
            cell.outputs, cell.execution_count = old.outputs, old.execution_count
    built.metadata["language_info"] = committed.metadata.get("language_info", built.metadata["language_info"])
    return built


# =====================================================================================================
# Executing, cleaning
# =====================================================================================================


WIDGET_NOTE = "[interactive explorer: run this cell in Jupyter to get the sliders]"


def clean(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Drop widget state and timing metadata; replace widget views by a one-line note."""
    nb.metadata.pop("widgets", None)
    nb.metadata["kernelspec"] = dict(KERNEL)
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        cell.metadata.pop("ExecuteTime", None)
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if "application/vnd.jupyter.widget-view+json" in data:
                output["data"] = {"text/plain": WIDGET_NOTE}
    return nb


def execute(nb: nbformat.NotebookNode, timeout: int) -> float:
    from nbclient import NotebookClient

    # kernel "python3": the interpreter running this script (the project's venv), registered or not.
    start = time.time()
    NotebookClient(nb, timeout=timeout, kernel_name="python3", record_timing=True, shutdown_kernel="immediate",
                   resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
    return time.time() - start


def slowest_cells(nb: nbformat.NotebookNode, count: int = 3) -> str:
    """The cells that took longest (from nbclient's timing metadata), e.g. 'cell 12: 8.1 s'."""
    from datetime import datetime

    times = []
    for i, cell in enumerate(nb.cells):
        timing = cell.metadata.get("execution", {})
        if "iopub.execute_input" in timing and "shell.execute_reply" in timing:
            start, end = (datetime.fromisoformat(timing[k].replace("Z", "+00:00"))
                          for k in ("iopub.execute_input", "shell.execute_reply"))
            times.append(((end - start).total_seconds(), i))
    return ", ".join(f"cell {i}: {t:.1f} s" for t, i in sorted(times, reverse=True)[:count])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("only", nargs="*", help="only notebooks whose file name starts with one of these")
    parser.add_argument("--execute", action="store_true", help="execute and save outputs")
    parser.add_argument("--timeout", type=int, default=300, help="per-cell timeout in seconds")
    parser.add_argument("--keep-outputs", action="store_true",
                        help="keep the committed notebooks' outputs (only markdown cells changed)")
    parser.add_argument("--to-sources", action="store_true",
                        help="the other way: write tools/notebook_sources/ from the notebooks (after editing them)")
    args = parser.parse_args(argv)
    selected = lambda name: not args.only or any(name.startswith(prefix) for prefix in args.only)  # noqa: E731
    if args.to_sources:
        for path in sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")):
            if selected(path.name):
                target = SOURCES / (path.stem + ".py")
                text = to_source(nbformat.read(path, as_version=4), f"notebooks/{path.name}")
                changed = not target.exists() or target.read_text() != text
                target.write_text(text)
                print(f"{target.relative_to(ROOT)}: {'updated' if changed else 'unchanged'}"
                      + (" (run `python tools/build_notebooks.py --execute " + path.name[:2] + "` to refresh its outputs)"
                         if changed else ""))
        return 0
    NOTEBOOKS.mkdir(exist_ok=True)
    for name, source in notebook_sources().items():
        if not selected(name):
            continue
        nb = build(name, source)
        message = "written"
        if args.keep_outputs:
            nb = keep_outputs(nb, nbformat.read(NOTEBOOKS / name, as_version=4), name)
            message = "written with its committed outputs"
        elif args.execute:
            seconds = execute(nb, args.timeout)
            message = f"executed in {seconds:.0f} s (slowest: {slowest_cells(nb)})"
        path = NOTEBOOKS / name
        nbformat.write(clean(nb), path)
        print(f"{path.relative_to(ROOT)}: {message}, {path.stat().st_size / 1e6:.2f} MB", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
