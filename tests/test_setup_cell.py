"""The notebooks' set-up cell on a hosted service without the course: from MINIJEPA_REPO, from `make dist`'s
archive, or a clear message; and in a checkout it installs nothing.

The cell (tools/build_notebooks.py SETUP) runs here as a notebook would run it, in a fresh namespace and a
folder of its own, with two stand-ins for a bare hosted machine: ``minijepa`` is not importable
(``importlib.util.find_spec``), and ``pip`` is recorded rather than run (the real install needs the network).
git, tar and the files are real.
"""

import importlib.util
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("build_notebooks", ROOT / "tools" / "build_notebooks.py")
build_notebooks = importlib.util.module_from_spec(spec)
spec.loader.exec_module(build_notebooks)


@pytest.fixture
def hosted(tmp_path, monkeypatch):
    """A bare hosted service: empty working folder, no minijepa installed, pip calls recorded. Returns the log."""
    work = tmp_path / "content"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.delenv("MINIJEPA_REPO", raising=False)
    monkeypatch.setattr(sys, "path", list(sys.path))
    real_find_spec, real_run = importlib.util.find_spec, subprocess.run
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a, **k: None if name == "minijepa" else real_find_spec(name, *a, **k))
    pip_calls = []

    def run(command, *args, **kwargs):
        if command[:3] == [sys.executable, "-m", "pip"]:
            pip_calls.append(command)
            return subprocess.CompletedProcess(command, 0)
        return real_run(command, *args, **kwargs)

    monkeypatch.setattr(subprocess, "run", run)
    return work, pip_calls


def run_setup_cell() -> dict:
    namespace = {}
    exec(compile(build_notebooks.SETUP, "<set-up cell>", "exec"), namespace)
    return namespace


def small_course_repo(folder: Path) -> Path:
    """A git repository with the two files the cell looks for, committed."""
    (folder / "minijepa").mkdir(parents=True)
    (folder / "minijepa" / "__init__.py").write_text("")
    (folder / "pyproject.toml").write_text("[project]\nname = 'minijepa'\n")
    git = ["git", "-C", str(folder), "-c", "user.name=course", "-c", "user.email=course@example.org"]
    for command in (["init", "-q"], ["add", "."], ["commit", "-q", "-m", "course"]):
        subprocess.run(git + command, check=True, capture_output=True)
    return folder


def test_clones_minijepa_repo_and_installs_it(hosted, tmp_path, monkeypatch):
    work, pip_calls = hosted
    monkeypatch.setenv("MINIJEPA_REPO", str(small_course_repo(tmp_path / "upstream")))
    namespace = run_setup_cell()
    course = work / "minijepa-course"
    assert namespace["ROOT"] == course and (course / "minijepa" / "__init__.py").is_file()
    assert pip_calls == [[sys.executable, "-m", "pip", "install", "--quiet", "-e", f"{course}[course]"]]
    assert sys.path[0] == str(course)
    # Run again (a restarted kernel): the copy is found, nothing cloned or installed twice.
    pip_calls.clear()
    assert run_setup_cell()["ROOT"] == course and pip_calls == []


@pytest.mark.skipif(shutil.which("make") is None or not (ROOT / ".git").exists(),
                    reason="needs make and a git checkout of the course")
def test_installs_the_archive_make_dist_writes(hosted, tmp_path):
    work, pip_calls = hosted
    dist = tmp_path / "dist"
    subprocess.run(["make", "--no-print-directory", "-C", str(ROOT), "dist", f"DIST={dist}"], check=True,
                   capture_output=True)
    archive = dist / "minijepa-course.tar.gz"
    with tarfile.open(archive) as packed:
        names = set(packed.getnames())
    assert {"minijepa-course/pyproject.toml", "minijepa-course/minijepa/__init__.py",
            "minijepa-course/notebooks/00_big_picture.ipynb"} <= names
    shutil.copy(archive, work / "minijepa-course.tar.gz")  # "uploaded next to the notebook"
    namespace = run_setup_cell()
    course = work / "minijepa-course"
    assert namespace["ROOT"] == course and (course / "minijepa" / "train.py").is_file()
    assert pip_calls == [[sys.executable, "-m", "pip", "install", "--quiet", "-e", f"{course}[course]"]]


def test_without_a_source_it_says_what_to_do(hosted):
    work, pip_calls = hosted
    with pytest.raises(SystemExit) as stop:
        run_setup_cell()
    message = str(stop.value)
    assert "MINIJEPA_REPO" in message and "make dist" in message and "minijepa-course.tar.gz" in message
    assert "github.com" not in build_notebooks.SETUP  # never a guessed address
    assert pip_calls == [] and list(work.iterdir()) == []


def test_in_a_checkout_it_only_finds_the_root(monkeypatch):
    monkeypatch.chdir(ROOT / "notebooks")
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p != str(ROOT)])
    monkeypatch.setenv("MINIJEPA_REPO", "/nonexistent/never-cloned")
    calls = []
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: calls.append(a))
    assert run_setup_cell()["ROOT"] == ROOT and calls == [] and sys.path[0] == str(ROOT)  # nothing run
