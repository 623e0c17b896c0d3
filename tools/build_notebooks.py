"""Write notebooks/*.ipynb from their sources in tools/notebook_sources/ (and optionally execute them).

The notebooks are generated so that they stay editable as text: every notebook is one file
``tools/notebook_sources/NN_name.py`` in "percent" format (a line ``# %%`` starts a code cell, ``# %% [markdown]`` a markdown cell), and the first
cell of every notebook is the shared set-up cell ``SETUP``.

    python tools/build_notebooks.py                 # write the notebooks, without outputs
    python tools/build_notebooks.py --execute       # write, execute (with a cell timeout) and save outputs
    python tools/build_notebooks.py --execute 03    # only notebooks whose name starts with 03

Executed notebooks are cleaned before saving: no widget state (``metadata.widgets``), no execution
timestamps, kernelspec python3, and a widget's output is replaced by a one-line note (its live view needs a
running kernel anyway).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"

# The course repository, cloned by the set-up cell on a hosted notebook service only.
REPO_URL = "https://github.com/minijepa/minijepa.git"

SETUP = f'''# Set-up, run me first. In a checkout of the course this only puts the repository root on sys.path, so that
# `import exercises` finds your exercise files (the package itself is installed in the project's .venv).
# On a hosted notebook service without the course, it clones the repository and installs it, once.
import importlib.util, os, subprocess, sys
from pathlib import Path

REPO_URL = os.environ.get("MINIJEPA_REPO", "{REPO_URL}")


def find_course_root():
    for folder in (Path.cwd(), *Path.cwd().parents, Path.cwd() / "minijepa-course"):
        if (folder / "minijepa" / "__init__.py").is_file() and (folder / "pyproject.toml").is_file():
            return folder
    return None


ROOT = find_course_root()
if ROOT is None and importlib.util.find_spec("minijepa") is None:  # hosted service, nothing installed yet
    ROOT = Path.cwd() / "minijepa-course"
    subprocess.run(["git", "clone", "--depth", "1", REPO_URL, str(ROOT)], check=True)
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "-e", f"{{ROOT}}[course,test]"], check=True)
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


def notebook_sources() -> dict[str, str]:
    """{notebook file name: percent-format source}, one source file per notebook in tools/notebook_sources/."""
    return {path.stem + ".ipynb": path.read_text() for path in sorted(SOURCES.glob("[0-9][0-9]_*.py"))}


# =====================================================================================================
# Building, executing, cleaning
# =====================================================================================================


def parse(source: str) -> list:
    """Percent-format text -> nbformat cells. Placeholders: %%SETUP%%, %%STYLE%%, %%EXERCISES%%."""
    cells = []
    kind, lines = None, []

    def flush():
        if kind is None:
            return
        text = "\n".join(lines).strip("\n")
        if kind == "markdown":
            text = "\n".join(line[2:] if line.startswith("# ") else line.lstrip("#") for line in text.splitlines())
            cells.append(nbformat.v4.new_markdown_cell(text))
        else:
            text = text.replace("%%SETUP%%", SETUP).replace("%%STYLE%%", PLOT_STYLE)
            text = text.replace("%%EXERCISES%%", EXERCISE_HELPER)
            cells.append(nbformat.v4.new_code_cell(text))

    for line in source.strip("\n").splitlines():
        if line.startswith("# %%"):
            flush()
            kind, lines = ("markdown" if "[markdown]" in line else "code"), []
        else:
            lines.append(line)
    flush()
    return cells


def build(name: str, source: str) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.cells = parse(source)
    for i, cell in enumerate(nb.cells):
        cell.id = f"{name[:2]}-{i:02d}"
    nb.metadata = {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python", "pygments_lexer": "ipython3"},
    }
    return nb


WIDGET_NOTE = "[interactive explorer: run this cell in Jupyter to get the sliders]"


def clean(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Drop widget state and timing metadata; replace widget views by a one-line note."""
    nb.metadata.pop("widgets", None)
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
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
    parser.add_argument("only", nargs="*", help="build only notebooks whose file name starts with one of these")
    parser.add_argument("--execute", action="store_true", help="execute and save outputs")
    parser.add_argument("--timeout", type=int, default=300, help="per-cell timeout in seconds")
    args = parser.parse_args(argv)
    NOTEBOOKS.mkdir(exist_ok=True)
    for name, source in notebook_sources().items():
        if args.only and not any(name.startswith(prefix) for prefix in args.only):
            continue
        nb = build(name, source)
        message = "written"
        if args.execute:
            seconds = execute(nb, args.timeout)
            message = f"executed in {seconds:.0f} s (slowest: {slowest_cells(nb)})"
        path = NOTEBOOKS / name
        nbformat.write(clean(nb), path)
        print(f"{path.relative_to(ROOT)}: {message}, {path.stat().st_size / 1e6:.2f} MB", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
