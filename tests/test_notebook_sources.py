"""The committed notebooks are what their sources in tools/notebook_sources/ build, and back (jupytext's percent format).

An author edits the .py source (or the notebook in JupyterLab, then ``--to-sources``); both directions must
give the same cells, with the shared set-up cell written once in tools/build_notebooks.py.
"""

import importlib.util
from pathlib import Path

import jupytext
import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("build_notebooks", ROOT / "tools" / "build_notebooks.py")
build_notebooks = importlib.util.module_from_spec(spec)
spec.loader.exec_module(build_notebooks)
SOURCES = build_notebooks.notebook_sources()


def cells(nb):
    return [(c.cell_type, c.source) for c in nb.cells]


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_notebook_matches_its_source(name):
    built = build_notebooks.build(name, SOURCES[name])
    committed = nbformat.read(ROOT / "notebooks" / name, as_version=4)
    assert cells(committed) == cells(built), (
        f"notebooks/{name} differs from tools/notebook_sources/{name[:-6]}.py: run make notebooks")
    assert committed.metadata["kernelspec"] == build_notebooks.KERNEL  # the kernel make lab registers
    outputs = [o for c in committed.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert any("image/png" in o.get("data", {}) for o in outputs), f"notebooks/{name} was committed without its figures"
    # ...and the committed notebook, converted back, is its source (what --to-sources writes)
    assert build_notebooks.to_source(committed, name) == SOURCES[name], (
        f"tools/notebook_sources/{name[:-6]}.py is not in jupytext's canonical form: "
        f"run python tools/build_notebooks.py --to-sources {name[:2]}")


def test_every_notebook_has_a_source():
    assert {p.name for p in (ROOT / "notebooks").glob("*.ipynb")} <= set(SOURCES)


def test_sources_are_percent_format_that_jupytext_reads_alone():
    # Opened with jupytext itself (JupyterLab's "Open With > Notebook" does this), a source gives the same
    # cells as the build, except for the shared blocks, which stay one marker line each.
    name = "03_multiblock_masking.ipynb"
    plain = jupytext.reads(SOURCES[name], fmt="py:percent")
    built = build_notebooks.build(name, SOURCES[name])
    assert [c.cell_type for c in plain.cells] == [c.cell_type for c in built.cells]
    assert plain.cells[1].source == "# <<SETUP>>" and built.cells[1].source == build_notebooks.SETUP
    assert sum(a != b for a, b in zip(cells(plain), cells(built))) == 3  # set-up, style, exercise helper


def test_a_notebook_edited_in_jupyterlab_goes_back_to_its_source():
    name = "04_predictor.ipynb"
    nb = nbformat.read(ROOT / "notebooks" / name, as_version=4)
    nb.cells[0].source += "\n\nA sentence added in JupyterLab."
    nb.cells.insert(5, nbformat.v4.new_code_cell("x = 1  # a new cell\nprint(x)"))
    nb.cells[5].outputs = [nbformat.v4.new_output("stream", text="an output 7f3a\n")]
    source = build_notebooks.to_source(nb, name)
    assert "A sentence added in JupyterLab." in source and "x = 1  # a new cell" in source
    assert "<<SETUP>>" in source and "Set-up, run me first" not in source  # the shared cell stays shared
    assert "7f3a" not in source and not source.startswith("# ---")  # text only: no outputs, no metadata header
    assert cells(build_notebooks.build(name, source)) == cells(nb)


def test_an_edited_shared_cell_is_refused_with_where_to_edit_it():
    name = "04_predictor.ipynb"
    nb = nbformat.read(ROOT / "notebooks" / name, as_version=4)
    nb.cells[1].source = nb.cells[1].source.replace("sys.path.insert(0, str(ROOT))", "sys.path.append(str(ROOT))")
    with pytest.raises(ValueError, match="SETUP.*tools/build_notebooks.py|tools/build_notebooks.py.*SETUP"):
        build_notebooks.to_source(nb, name)


def test_to_sources_command_writes_the_source(tmp_path, monkeypatch, capsys):
    notebooks, sources = tmp_path / "notebooks", tmp_path / "sources"
    notebooks.mkdir(), sources.mkdir()
    name = "05_target_encoder_and_collapse.ipynb"
    nb = nbformat.read(ROOT / "notebooks" / name, as_version=4)
    nb.cells[0].source = "# 05 · edited title"
    nbformat.write(nb, notebooks / name)
    monkeypatch.setattr(build_notebooks, "NOTEBOOKS", notebooks)
    monkeypatch.setattr(build_notebooks, "SOURCES", sources)
    monkeypatch.setattr(build_notebooks, "ROOT", tmp_path)
    assert build_notebooks.main(["--to-sources", "05"]) == 0
    written = (sources / (name[:-6] + ".py")).read_text()
    assert written.startswith("# %% [markdown]\n# # 05 · edited title\n")
    assert "updated" in capsys.readouterr().out


def test_keep_outputs_is_for_markdown_edits_only():
    name = "04_predictor.ipynb"
    committed = nbformat.read(ROOT / "notebooks" / name, as_version=4)
    edited = SOURCES[name].replace("# %% [markdown]\n", "# %% [markdown]\n# A new first line.\n#\n", 1)
    kept = build_notebooks.keep_outputs(build_notebooks.build(name, edited), committed, name)
    assert kept.cells[0].source.startswith("A new first line.")
    assert [c.get("outputs") for c in kept.cells] == [c.get("outputs") for c in committed.cells]
    changed = SOURCES[name].replace("# %%\n", "# %%\nprint('new code')\n", 2)
    with pytest.raises(ValueError, match="code cell.*--execute 04"):
        build_notebooks.keep_outputs(build_notebooks.build(name, changed), committed, name)
