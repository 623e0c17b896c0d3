"""The committed notebooks are what their sources in tools/notebook_sources/ build (edit the source, not the .ipynb)."""

import importlib.util
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("build_notebooks", ROOT / "tools" / "build_notebooks.py")
build_notebooks = importlib.util.module_from_spec(spec)
spec.loader.exec_module(build_notebooks)


@pytest.mark.parametrize("name", sorted(build_notebooks.notebook_sources()))
def test_notebook_matches_its_source(name):
    built = build_notebooks.build(name, build_notebooks.notebook_sources()[name])
    committed = nbformat.read(ROOT / "notebooks" / name, as_version=4)
    assert [(c.cell_type, c.source) for c in committed.cells] == [(c.cell_type, c.source) for c in built.cells], (
        f"notebooks/{name} differs from tools/notebook_sources/{name[:-6]}.py: run make notebooks")
    outputs = [o for c in committed.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert any("image/png" in o.get("data", {}) for o in outputs), f"notebooks/{name} was committed without its figures"


def test_every_notebook_has_a_source():
    sources = set(build_notebooks.notebook_sources())
    assert {p.name for p in (ROOT / "notebooks").glob("*.ipynb")} <= sources
