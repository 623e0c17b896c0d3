"""The exercises' plumbing and the grader (``python -m minijepa.grade``).

* exercises/ and solutions/ expose the same API, exercises/ is what solutions/make_exercises.py generates,
  every stub raises NotImplementedError naming its exercise, and every exercise has graded tests;
* the static scan, the reading of submissions (folders, zips, classes) and the interpretation of a test run
  (fast, in this process);
* one run of the grader's command line on a class: the stubs (every graded test must FAIL: no test passes
  on nothing), the solutions (every graded test must PASS), a partly correct submission, a zip, a broken
  zip and the adversarial submissions of tests/grader_fixtures/ (see its README.md).

The graded tests themselves (tests/grading/) also run in a plain ``pytest tests``, against solutions/.
"""

from __future__ import annotations

import ast
import csv
import fcntl
import hashlib
import importlib.util
import inspect
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import pytest

from minijepa import grade

ROOT = Path(__file__).resolve().parents[1]
EXERCISES, SOLUTIONS = ROOT / "exercises", ROOT / "solutions"
GRADING, FIXTURES = ROOT / "tests" / "grading", ROOT / "tests" / "grader_fixtures"


def load_by_path(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def public_api(module) -> dict:
    return {
        name: obj
        for name, obj in vars(module).items()
        if not name.startswith("_") and (inspect.isfunction(obj) or inspect.isclass(obj)) and obj.__module__ == module.__name__
    }


def graded_exercises() -> set[tuple[str, str]]:
    """(module, function) of every @pytest.mark.exercise(...) in tests/grading, read statically."""
    found = set()
    for path in GRADING.glob("test_*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "exercise":
                found.add(tuple(arg.value for arg in node.args[:2]))
    return found


# --------------------------------------------------------------------------------------------------------
# Stubs and solutions in step
# --------------------------------------------------------------------------------------------------------


def test_stubs_and_solutions_have_the_same_api():
    exercises = set()
    for module in grade.EXERCISE_MODULES:
        stub = load_by_path(EXERCISES / f"{module}.py", f"_api_exercises_{module}")
        solution = load_by_path(SOLUTIONS / f"{module}.py", f"_api_solutions_{module}")
        stub_api, solution_api = public_api(stub), public_api(solution)
        assert stub_api.keys() == solution_api.keys(), f"{module}.py: {sorted(stub_api)} != {sorted(solution_api)}"
        for name in stub_api:
            assert inspect.signature(stub_api[name]) == inspect.signature(solution_api[name]), f"{module}.{name}"
            assert inspect.getdoc(stub_api[name]) == inspect.getdoc(solution_api[name]), f"{module}.{name} docstring"
            assert inspect.getdoc(stub_api[name]), f"{module}.{name} has no docstring"
            exercises.add((module, name))
    for helper in ("check.py", "__init__.py"):
        assert (EXERCISES / helper).read_bytes() == (SOLUTIONS / helper).read_bytes(), f"{helper} differs"
    assert len(exercises) >= 10
    assert graded_exercises() == exercises, "every exercise needs graded tests, and graded tests only exercises"


def test_exercises_are_generated_from_solutions():
    make = load_by_path(SOLUTIONS / "make_exercises.py", "_make_exercises")
    assert make.differences() == [], "run `python solutions/make_exercises.py`"


def test_every_stub_raises_not_implemented_naming_its_exercise():
    for module in grade.EXERCISE_MODULES:
        tree = ast.parse((EXERCISES / f"{module}.py").read_text())
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and not node.name.startswith("_"):
                first = node.body[0]
                docstring = isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
                body = node.body[1:] if docstring else node.body
                assert len(body) == 1 and isinstance(body[0], ast.Raise), f"{module}.{node.name} is not a stub"
                call = body[0].exc
                assert call.func.id == "NotImplementedError" and node.name in call.args[0].value, f"{module}.{node.name}"


def test_check_helper_falls_back_to_the_reference(tmp_path, monkeypatch, capsys):
    package = tmp_path / "course_exercises"  # a stand-in for exercises/, with the real check.py
    package.mkdir()
    shutil.copy(EXERCISES / "check.py", package / "check.py")
    (package / "__init__.py").write_text("")
    (package / "topic.py").write_text(
        "def works(x):\n    return x + 1\n\n"
        "def broken(x):\n    return x\n\n"
        "def stub(x):\n    \"\"\"A stub.\"\"\"\n    raise NotImplementedError(\"exercise 'stub' is not implemented yet\")\n"
    )
    (package / "crashes.py").write_text("raise RuntimeError('boom')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    check = importlib.import_module("course_exercises.check")

    def reference(x):
        return x + 1

    def quick(f):
        assert f(1) == 2, "f(1) should be 2"

    try:
        assert check.student_or_reference("topic", "stub", reference) is reference
        works = check.student_or_reference("topic", "works", reference, check=quick)
        assert works is not reference and works(1) == 2
        assert check.student_or_reference("topic", "broken", reference, check=quick) is reference
        assert check.student_or_reference("topic", "missing", reference) is reference
        assert check.student_or_reference("crashes", "f", reference) is reference
        assert check.student_or_reference("topic", "broken", reference) is not reference  # no check: trusted
    finally:
        for name in [m for m in sys.modules if m.startswith("course_exercises")]:
            del sys.modules[name]
    out = capsys.readouterr().out
    assert "stub is not implemented yet — using the reference from test_grader" in out
    assert "✓ your works works" in out
    assert "does not pass the quick check" in out and "f(1) should be 2" in out
    assert "has no function missing" in out and "could not import course_exercises/crashes.py: RuntimeError: boom" in out


# --------------------------------------------------------------------------------------------------------
# Static scan
# --------------------------------------------------------------------------------------------------------

SCANS = [
    ("import torch\nimport einops\nfrom math import sqrt\nimport numpy as np\n", None, None),
    ('"""Compare with minijepa.patches.patchify."""\nimport torch\n', None, None),  # docstrings may name it
    ("from .masks import gather_tokens\nfrom exercises.masks import gather_tokens\n", None, None),
    ("def f(x):\n    return x.eval()\n", None, None),  # .eval() of a module is fine, eval() is not
    ("import minijepa\n", "imports the reference", None),
    ("from minijepa.patches import patchify\n", "imports the reference", None),
    ("def f():\n    from solutions.masks import gather_tokens\n", "imports the reference", "f"),
    ("import os\n", "imports os", None),
    ("import importlib\n", "imports importlib", None),
    ("import torch.hub\n", "imports torch.hub", None),
    ("def f():\n    return __import__('x')\n", "uses __import__", "f"),
    ("def f():\n    open('x', 'w')\n", "uses open", "f"),
    ("import torch\ndef f():\n    return torch.sys\n", "uses .sys", "f"),
    ("import torch\ntorch.allclose = lambda *a: True\n", "monkeypatching", None),
    ("import torch\ndef f():\n    setattr(torch.testing, 'assert_close', None)\n", "monkeypatching", "f"),
    ("x = 'minijepa.losses'\n", "names the reference", None),
    ("def f(:\n", "syntax error", None),
    ("from .. import x\n", "relative imports", None),
]


@pytest.mark.parametrize("source, problem, function", SCANS)
def test_static_scan(source, problem, function):
    findings = grade.scan_source(source, "patches")
    if problem is None:
        assert findings == []
    else:
        assert findings and problem in findings[0].message, findings
        assert findings[0].function == function


def test_static_scan_accepts_the_solutions():
    for module in grade.EXERCISE_MODULES:
        assert grade.scan_source((SOLUTIONS / f"{module}.py").read_bytes(), module) == [], module


# --------------------------------------------------------------------------------------------------------
# Reading submissions
# --------------------------------------------------------------------------------------------------------


def test_find_submissions(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    klass = tmp_path / "class"
    (klass / "alice").mkdir(parents=True)
    (klass / "alice" / "patches.py").write_text("x = 1\n")
    (klass / "alice" / "notes.txt").write_text("ignored")
    (klass / "carol" / "repo" / "exercises").mkdir(parents=True)  # a whole repository copy
    (klass / "carol" / "repo" / "exercises" / "ema.py").write_text("y = 2\n")
    (klass / "dave").mkdir()  # nothing usable
    (klass / ".DS_Store").write_text("")
    with zipfile.ZipFile(klass / "bob.zip", "w") as zf:
        zf.writestr("bob/exercises/masks.py", "z = 3\n")
        zf.writestr("../evil.py", "print('escaped')\n")
        zf.writestr("__MACOSX/bob/masks.py", "junk")
    (klass / "eve.zip").write_text("not a zip")
    found = {s.name: s for s in grade.find_submissions([klass], work)}
    assert sorted(found) == ["alice", "bob", "carol", "dave", "eve"]
    assert found["alice"].files == {"patches": b"x = 1\n"}
    assert found["bob"].files == {"masks": b"z = 3\n"}
    assert any("unsafe path" in n for n in found["bob"].notes)
    assert not (tmp_path / "evil.py").exists() and not (work / "evil.py").exists()
    assert found["carol"].files == {"ema": b"y = 2\n"}
    assert found["dave"].files == {} and "no exercise files" in found["dave"].notes[0]
    assert any("not a readable zip" in n for n in found["eve"].notes)
    # one student given directly, as a folder holding exercises/, twice: names stay unique
    single = grade.find_submissions([klass / "carol" / "repo", klass / "carol" / "repo"], work)
    assert [s.name for s in single] == ["repo", "repo-2"] and single[0].files == {"ema": b"y = 2\n"}
    with pytest.raises(FileNotFoundError):
        grade.find_submissions([tmp_path / "missing"], work)


# --------------------------------------------------------------------------------------------------------
# Interpreting a run (synthetic records; the real thing is exercised below)
# --------------------------------------------------------------------------------------------------------


def _catalog():
    tests = lambda ex, module, n: [grade.TestInfo(f"t_{ex}{i}", ex, module, 1, "d") for i in range(n)]  # noqa: E731
    return grade.Catalog([
        grade.ExerciseInfo("a", "patches", tests("a", "patches", 2)),
        grade.ExerciseInfo("b", "patches", tests("b", "patches", 1)),
        grade.ExerciseInfo("c", "masks", tests("c", "masks", 1)),
    ])  # fmt: skip


def _result(test, exercise, module, outcome="passed", category="passed", message=""):
    return {"event": "result", "id": test, "exercise": exercise, "module": module, "outcome": outcome, "category": category, "message": message}


def _start(test, exercise, module):
    return {"event": "start", "id": test, "exercise": exercise, "module": module}


def test_interpret_a_clean_run():
    records = [_start("t_a0", "a", "patches"), _result("t_a0", "a", "patches"), _start("t_a1", "a", "patches"),
               _result("t_a1", "a", "patches", "failed", "failed", "wrong"), _start("t_b0", "b", "patches"),
               _result("t_b0", "b", "patches", "failed", "exit", "raised SystemExit"), _start("t_c0", "c", "masks"),
               _result("t_c0", "c", "masks"), {"event": "finish", "exitstatus": 1}]  # fmt: skip
    run = grade._Run([(i, r) for i, r in enumerate(records)], [], 1, None, None, "")
    decided, pending = grade._interpret(run, ["a", "b", "c"], _catalog(), grade.Settings())
    assert pending == []
    assert (decided["a"].points, decided["a"].status) == (1, "graded")
    assert (decided["b"].points, decided["b"].status, decided["b"].reason) == (0, "zero", "raised SystemExit")
    assert decided["c"].points == 1


def test_interpret_a_death_a_tamper_and_forged_lines():
    # the process died while importing masks.py: c is zeroed, a (complete) is kept, b is run again
    records = [_start("t_a0", "a", "patches"), _result("t_a0", "a", "patches"), _start("t_a1", "a", "patches"),
               _result("t_a1", "a", "patches"), _start("t_c0", "c", "masks"),
               {"event": "import", "module": "masks", "phase": "start"}]  # fmt: skip
    run = grade._Run([(i, r) for i, r in enumerate(records)], [], 0, None, None, "")
    decided, pending = grade._interpret(run, ["a", "b", "c"], _catalog(), grade.Settings())
    assert decided["a"].points == 2 and pending == ["b"]
    assert decided["c"].status == "zero" and "masks.py, when imported" in decided["c"].reason
    # tampering during a: a is zeroed and everything after it is run again
    records = [_start("t_a0", "a", "patches"), _result("t_a0", "a", "patches"), _start("t_a1", "a", "patches"),
               _result("t_a1", "a", "patches", "failed", "tamper", "changed torch.allclose"), _start("t_b0", "b", "patches"),
               _result("t_b0", "b", "patches"), {"event": "finish", "exitstatus": 0}]  # fmt: skip
    run = grade._Run([(i, r) for i, r in enumerate(records)], [], 0, None, None, "")
    decided, pending = grade._interpret(run, ["a", "b", "c"], _catalog(), grade.Settings())
    assert decided["a"].status == "zero" and "torch.allclose" in decided["a"].reason
    assert pending == ["b", "c"]
    # lines that do not carry the harness's signature
    run = grade._Run([(0, _start("t_c0", "c", "masks"))], [(1, "c")], 0, None, None, "")
    decided, pending = grade._interpret(run, ["c"], _catalog(), grade.Settings())
    assert "forged" in decided["c"].reason


# --------------------------------------------------------------------------------------------------------
# The grader on a class of submissions
# --------------------------------------------------------------------------------------------------------

# submission -> (exercises scored zero, words of the reason)
ADVERSARIAL = {
    "syntax_error": ({"patchify", "unpatchify", "sincos_2d"}, "syntax error"),
    "import_crash": ({"sample_block", "multiblock_masks", "gather_tokens"}, "could not import masks.py"),
    "infinite_loop": ({"warmup_cosine"}, "took longer than"),
    "sys_exit": ({"ijepa_loss"}, "SystemExit"),
    "os_exit": ({"ema_update"}, "ended the test process"),
    "huge_allocation": ({"predictor_forward"}, "ran out of memory"),
    "print_flood": ({"attention_weights"}, "printed more than"),
    "monkeypatch_pytest": ({"warmup_cosine"}, "_pytest.runner.call_and_report"),
    "monkeypatch_reference": ({"ijepa_loss"}, "minijepa.losses.ijepa_loss"),
    "writes_outside": ({"ijepa_loss"}, "outside.txt"),
    "imports_reference": ({"patchify", "unpatchify", "sincos_2d"}, "imports the reference implementation"),
    "imports_solutions": ({"gather_tokens"}, "solutions.masks"),
    "calls_reference": ({"patchify", "unpatchify"}, "minijepa/patches.py"),
}


def _digest(*folders: Path) -> str:
    h = hashlib.sha256()
    for folder in folders:
        for path in sorted(folder.rglob("*.py")):
            h.update(str(path).encode() + path.read_bytes())
    return h.hexdigest()


@pytest.fixture(scope="session")
def graded_class(tmp_path_factory):
    """Grade a class through the command line once per test run, even with pytest-xdist (the workers share
    one result through a lock file); returns (stdout, results.json, output folder)."""
    run_id = os.environ.get("PYTEST_XDIST_TESTRUNUID")
    shared = tmp_path_factory.getbasetemp().parent / f"graded-class-{run_id}" if run_id else tmp_path_factory.mktemp("graded-class")
    shared.mkdir(exist_ok=True)
    with open(shared / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (shared / "stdout.txt").exists():
            _grade_class(shared)
    stdout = (shared / "stdout.txt").read_text()
    checks = json.loads((shared / "checks.json").read_text())
    assert checks["exit_status"] == 0, (shared / "stderr.txt").read_text()[-3000:]
    return stdout, json.loads((shared / "out" / "results.json").read_text()), shared / "out", checks


@pytest.mark.slow
def test_grader_leaves_the_tests_alone(graded_class):
    """The graded tests in the repository are unchanged, and no zip member escaped its folder."""
    checks = graded_class[3]
    assert checks["tests_unchanged"], "grading changed tests/grading"
    assert checks["escaped"] == []


def _grade_class(base: Path) -> None:
    klass = base / "class"
    klass.mkdir()
    for name in ADVERSARIAL:
        shutil.copytree(FIXTURES / name, klass / name)
    shutil.copytree(SOLUTIONS, klass / "correct", ignore=shutil.ignore_patterns("__pycache__", "make_exercises.py"))
    shutil.copytree(EXERCISES, klass / "stubs", ignore=shutil.ignore_patterns("__pycache__"))
    partial = klass / "partial"  # right, except: warmup_cosine a stub, a wrong loss, no probe.py
    shutil.copytree(SOLUTIONS, partial, ignore=shutil.ignore_patterns("__pycache__", "make_exercises.py", "probe.py"))
    shutil.copy(EXERCISES / "schedules.py", partial / "schedules.py")
    shutil.copy(FIXTURES / "partial" / "losses.py", partial / "losses.py")
    with zipfile.ZipFile(klass / "zipped.zip", "w") as zf:  # a correct losses.py, zipped with its folder
        zf.write(SOLUTIONS / "losses.py", "zipped/exercises/losses.py")
        zf.writestr("../../escape.py", "print('escaped')\n")
    (klass / "not_a_zip.zip").write_bytes(b"PK but not really a zip")
    before = _digest(GRADING)
    out = base / "out"
    completed = subprocess.run(
        [sys.executable, "-m", "minijepa.grade", str(klass), "--out", str(out), "--timeout", "6", "--jobs", "2"],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    landing = (base / "escape.py", klass / "escape.py", Path(tempfile.gettempdir()) / "escape.py")  # ../../ from an unzip folder
    escaped = [str(p) for p in landing if p.exists()]
    checks = {"exit_status": completed.returncode, "tests_unchanged": _digest(GRADING) == before, "escaped": escaped}
    (base / "checks.json").write_text(json.dumps(checks))
    (base / "stdout.txt").write_text(completed.stdout)  # last: the other workers wait for this file
    (base / "stderr.txt").write_text(completed.stderr)


def _student(report: dict, name: str) -> dict:
    return next(s for s in report["students"] if s["name"] == name)


def _exercises(student: dict) -> dict:
    return {e["name"]: e for e in student["exercises"]}


@pytest.mark.slow
def test_grader_solutions_pass_every_graded_test(graded_class):
    report = graded_class[1]
    student = _student(report, "correct")
    assert student["total"] == student["max_total"] == report["max_total"]
    assert {t["outcome"] for e in student["exercises"] for t in e["tests"]} == {"passed"}
    zipped = _student(report, "zipped")
    loss = _exercises(zipped)["ijepa_loss"]
    assert loss["points"] == loss["max_points"] > 0 and zipped["total"] == loss["points"]
    assert any("unsafe path" in note for note in zipped["notes"])


@pytest.mark.slow
def test_grader_every_graded_test_fails_on_the_stubs(graded_class):
    report = graded_class[1]
    stubs = _student(report, "stubs")
    assert stubs["total"] == 0
    tests = [t for e in stubs["exercises"] for t in e["tests"]]
    assert len(tests) == sum(len(e["tests"]) for e in report["exercises"]) >= 30
    assert all(t["outcome"] == "failed" for t in tests), [t["id"] for t in tests if t["outcome"] != "failed"]
    assert all("not implemented" in t["feedback"] for t in tests)
    assert len(report["exercises"]) >= 10 and all(e["max_points"] > 0 for e in report["exercises"])


@pytest.mark.slow
def test_grader_gives_partial_marks(graded_class):
    report = graded_class[1]
    student = _student(report, "partial")
    ex = _exercises(student)
    maxima = {e["name"]: e["max_points"] for e in report["exercises"]}
    assert ex["warmup_cosine"]["points"] == 0 and ex["warmup_cosine"]["status"] == "graded"
    assert all("not implemented" in t["feedback"] for t in ex["warmup_cosine"]["tests"])
    assert ex["linear_probe"]["status"] == "zero" and "probe.py was not submitted" in ex["linear_probe"]["reason"]
    assert ex["ijepa_loss"]["points"] == 1  # only the shape check passes with a summed loss
    others = set(maxima) - {"warmup_cosine", "linear_probe", "ijepa_loss"}
    assert all(ex[name]["points"] == maxima[name] for name in others)
    assert 0 < student["total"] == report["max_total"] - maxima["warmup_cosine"] - maxima["linear_probe"] - (maxima["ijepa_loss"] - 1)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(ADVERSARIAL))
def test_grader_scores_adversarial_submissions_zero_with_a_reason(graded_class, name):
    report = graded_class[1]
    zeroed, words = ADVERSARIAL[name]
    ex = _exercises(_student(report, name))
    for exercise in zeroed:
        assert ex[exercise]["points"] == 0 and ex[exercise]["status"] == "zero", (exercise, ex[exercise])
        assert words in ex[exercise]["reason"], (exercise, ex[exercise]["reason"])
    submitted = {p.stem for p in (FIXTURES / name).glob("*.py")}
    for exercise, result in ex.items():
        if result["module"] not in submitted:
            assert "was not submitted" in result["reason"]


@pytest.mark.slow
def test_grader_isolates_exercises(graded_class):
    """A submission that kills its test process loses only the exercise that did it."""
    report = graded_class[1]
    ex = _exercises(_student(report, "os_exit"))
    assert ex["momentum_schedule"]["points"] == ex["momentum_schedule"]["max_points"] > 0
    ex = _exercises(_student(report, "imports_solutions"))
    assert ex["sample_block"]["status"] == "graded" and "not implemented" in ex["sample_block"]["tests"][0]["feedback"]
    ex = _exercises(_student(report, "print_flood"))
    assert "has no function attention" in ex["attention"]["reason"]
    assert any("not a readable zip" in n for n in _student(report, "not_a_zip")["notes"])


@pytest.mark.slow
def test_grader_writes_table_csv_and_json(graded_class):
    stdout, report, out, _ = graded_class
    names = [s["name"] for s in report["students"]]
    assert len(names) == len(ADVERSARIAL) + 5
    lines = stdout.splitlines()
    header = lines[0].split()
    assert header[0] == "student" and header[-1] == "total" and header[1:-1] == [e["name"] for e in report["exercises"]]
    rows = {line.split()[0]: line.split()[1:] for line in lines[2 : 3 + len(names)]}
    assert rows["(max)"][-1] == str(report["max_total"])
    for student in report["students"]:
        assert rows[student["name"]][-1] == str(student["total"])
        assert [int(v) for v in rows[student["name"]][:-1]] == [e["points"] for e in student["exercises"]]
    assert "scored zero / notes:" in stdout and "infinite_loop: warmup_cosine: took longer than" in stdout
    with open(out / "grades.csv", newline="") as f:
        grades = list(csv.DictReader(f))
    assert [g["student"] for g in grades] == names
    assert all(int(g["total"]) == _student(report, g["student"])["total"] for g in grades)
    with open(out / "results.csv", newline="") as f:
        results = list(csv.DictReader(f))
    per_student = sum(len(e["tests"]) for e in report["exercises"])
    assert len(results) == per_student * len(names)
    assert {r["outcome"] for r in results} <= {"passed", "failed", "not run"}
    flood = [r for r in results if r["student"] == "print_flood" and r["exercise"] == "attention_weights"]
    assert flood and all("printed more than" in r["feedback"] for r in flood)
