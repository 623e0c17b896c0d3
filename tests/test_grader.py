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
import copy
import csv
import fcntl
import functools
import hashlib
import importlib.util
import inspect
import io
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import types
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from minijepa import grade
from minijepa.grading import report as grade_report
from minijepa.grading import runs as grade_runs
from minijepa.grading import sandbox as grade_sandbox

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


def test_grading_modules_import_one_way():
    """minijepa/grading/: each stage imports only the stages before it (docs/exercises.md, for maintainers)."""
    order = ["rules", "submissions", "sandbox", "catalog", "runs", "report", "cli"]
    folder = ROOT / "minijepa" / "grading"
    assert sorted(p.stem for p in folder.glob("*.py") if p.stem != "__init__") == sorted(order)
    for i, name in enumerate(order):
        tree = ast.parse((folder / f"{name}.py").read_text())
        imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level == 1}
        assert imported <= set(order[:i]), (name, imported - set(order[:i]))
        absolute = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        absolute |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level == 0}
        assert not {m for m in absolute if m and m.startswith("minijepa")}, name  # only its own subpackage


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
    ("import torch\n@torch.sys.exit\ndef f():\n    pass\n", "uses .sys", None),  # a decorator runs at import
    ("def f(x=open('y')):\n    pass\n", "uses open", None),  # so does a default value
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


def _bad_name_zip(path: Path) -> Path:
    """A zip whose member name is flagged UTF-8 but is not (zipfile cannot even list it)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("é/patches.py", "x = 1\n")
    path.write_bytes(buffer.getvalue().replace("é".encode(), b"\xff\xfe"))
    return path


def _damaged_zip(path: Path, good: bytes = b"y = 2\n") -> Path:
    """A zip with one member whose deflate stream is broken (zlib.error) and one intact member."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("damaged/ema.py", "def f():\n    return 1\n" * 200)
        zf.writestr("damaged/losses.py", good)
    data = bytearray(buffer.getvalue())
    start = data.index(b"damaged/ema.py") + len("damaged/ema.py")
    data[start:start + 8] = b"\xff" * 8
    path.write_bytes(bytes(data))
    return path


def test_find_submissions_survives_unreadable_ones(tmp_path):
    """A bad archive, an undecodable name or a symbolic link costs only its owner, with the reason."""
    work, klass = tmp_path / "work", tmp_path / "class"
    work.mkdir()
    (klass / "alice").mkdir(parents=True)
    (klass / "alice" / "patches.py").write_text("x = 1\n")
    _bad_name_zip(klass / "badname.zip")
    _damaged_zip(klass / "damaged.zip")
    odd = os.fsencode(klass) + b"/caf\xe9"  # latin-1 bytes: not a UTF-8 name
    os.mkdir(odd)
    with open(odd + b"/masks.py", "wb") as f:
        f.write(b"z = 3\n")
    (klass / "linked").symlink_to(SOLUTIONS, target_is_directory=True)  # the whole solutions folder
    (klass / "mallory").mkdir()
    (klass / "mallory" / "exercises").symlink_to(SOLUTIONS, target_is_directory=True)
    found = {s.name: s for s in grade.find_submissions([klass], work)}
    assert sorted(found) == ["alice", "badname", "caf\ufffd", "damaged", "linked", "mallory"]
    assert found["alice"].files == {"patches": b"x = 1\n"}
    assert found["badname"].files == {} and "not a readable zip file (UnicodeDecodeError" in found["badname"].notes[0]
    assert found["damaged"].files == {"losses": b"y = 2\n"}
    assert any("damaged/ema.py" in n and "is damaged" in n for n in found["damaged"].notes)
    assert found["caf\ufffd"].files == {"masks": b"z = 3\n"}
    assert found["linked"].files == {} and "symbolic link: refused" in found["linked"].notes[0]
    assert found["mallory"].files == {} and "exercises/ is a symbolic link" in found["mallory"].notes[0]
    # the same folders given one by one (python -m minijepa.grade class/*): the same verdicts
    given = {s.name: s for s in grade.find_submissions(sorted(klass.iterdir()), work)}
    assert sorted(given) == sorted(found) and given["damaged"].files == {"losses": b"y = 2\n"}
    assert "symbolic link: refused" in given["linked"].notes[0] and "symbolic link" in given["mallory"].notes[0]
    locked = klass / "locked"  # a folder the grader cannot read
    locked.mkdir()
    (locked / "patches.py").write_text("x = 1\n")
    (locked / "patches.py").chmod(0)
    if os.geteuid() != 0:  # root reads it anyway
        [one] = grade.find_submissions([locked], work)
        assert one.files == {} and "could not be read" in one.notes[0]


def _tiny_catalog_and_results(name: str):
    info = grade.ExerciseInfo("a", "patches", [grade.TestInfo("t::a", "a", "patches", 1, "d")])
    result = grade.StudentResult(name, name, [grade_runs._zero(info, "why \ud800")], ["note"], "", 0.0)
    return grade.Catalog([info]), [result]


def test_write_report_is_complete_or_absent(tmp_path, monkeypatch):
    out = tmp_path / "out"
    catalog, results = _tiny_catalog_and_results(os.fsdecode(b"caf\xe9"))  # a surrogate-escaped folder name
    written = grade.write_report(catalog, results, out, grade.Settings())
    assert sorted(p.name for p in written) == ["grades.csv", "results.csv", "results.json"]
    assert "caf\ufffd" in (out / "grades.csv").read_text(encoding="utf-8")
    assert json.loads((out / "results.json").read_text())["students"][0]["name"] == os.fsdecode(b"caf\xe9")
    assert oct((out / "grades.csv").stat().st_mode & 0o777) != oct(0o600)  # an ordinary file, not mkstemp's 0600
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    real_replace, calls = os.replace, []

    def fails_on_the_third(source, target):
        calls.append(target)
        if len(calls) == 3:  # two new files are already in place: they must be rolled back
            raise OSError("disk full")
        return real_replace(source, target)

    monkeypatch.setattr(grade_report.os, "replace", fails_on_the_third)
    with pytest.raises(OSError):
        grade.write_report(*_tiny_catalog_and_results("bob"), out, grade.Settings())
    monkeypatch.setattr(grade_report.os, "replace", real_replace)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # old report intact, no temporary left
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    calls.clear()
    monkeypatch.setattr(grade_report.os, "replace", fails_on_the_third)
    with pytest.raises(OSError):
        grade.write_report(*_tiny_catalog_and_results("bob"), fresh, grade.Settings())
    assert list(fresh.iterdir()) == []  # no report at all rather than part of one


HONEST_SOURCES = [
    ("\ufeffimport math\n\ndef f(x):\n    return math.sqrt(x)\n", "utf-8"),  # Notepad's BOM
    ("# -*- coding: latin-1 -*-\n# Café\ndef f(x):\n    return x  # déjà\n", "latin-1"),
    ("TOTAL = " + " + ".join(["1"] * 600) + "\n", "utf-8"),  # a deep tree for a recursive visitor
]


@pytest.mark.parametrize("text, encoding", HONEST_SOURCES)
def test_static_scan_takes_what_python_takes(text, encoding):
    data = text.encode(encoding)
    compile(data, "patches.py", "exec")  # Python itself accepts it
    assert grade.scan_source(data, "patches") == []


def test_static_scan_explains_undecodable_files():
    findings = grade.scan_source("x = 'Café'\n".encode("latin-1"), "patches")  # latin-1 without a coding line
    assert findings and "cannot be decoded" in findings[0].message and "UTF-8" in findings[0].message
    deep = ("x = " + "(" * 300 + "1" + ")" * 300 + "\n").encode()  # more nesting than Python compiles
    assert grade.scan_source(deep, "patches")  # a finding, not a crash


def test_harness_accepts_decorated_functions_and_rejects_reference_ones(tmp_path, monkeypatch):
    from grading import harness

    monkeypatch.setenv("MINIJEPA_SUBMISSION", str(tmp_path))
    namespace: dict = {"torch": torch, "functools": functools}
    source = "def mine(x):\n    return x\n"
    exec(compile(source, str(tmp_path / "ema.py"), "exec"), namespace)
    mine = namespace["mine"]
    assert harness._foreign_code(mine) is None
    assert harness._foreign_code(torch.no_grad()(mine)) is None  # the idiom ema_update's docstring suggests
    assert harness._foreign_code(functools.lru_cache()(mine)) is None  # not a Python function: judged when called
    from minijepa import ema as reference

    assert harness._foreign_code(reference.momentum_schedule).co_name == "momentum_schedule"
    relabelled = torch.no_grad()(reference.momentum_schedule)  # torch's wrapper around the reference ...
    relabelled.__wrapped__ = mine  # ... labelled as wrapping the student's function
    assert harness._foreign_code(relabelled) is not None


def test_harness_sees_relabelled_reference_code_threads_and_number_subclasses(tmp_path, monkeypatch):
    from grading import harness
    from minijepa import patches as reference

    monkeypatch.setenv("MINIJEPA_SUBMISSION", str(tmp_path))
    fake = str(tmp_path / "patches.py")
    relabelled = types.FunctionType(reference.unpatchify.__code__.replace(co_filename=fake), reference.__dict__)
    assert harness._foreign_code(relabelled) is not None  # "defined in your files" looks past the file name
    namespace: dict = {"reference": reference, "threading": __import__("threading")}
    exec(compile("def call(x):\n    return reference.patchify(x, 4)\n"
                 "def in_thread(x):\n    t = threading.Thread(target=call, args=(x,))\n    t.start()\n    t.join()\n",
                 fake, "exec"), namespace)  # fmt: skip
    images = torch.zeros(1, 3, 8, 8)
    partial = functools.partial(reference.patchify, patch_size=4)  # the reference handed over as "the function"
    for function in (namespace["call"], namespace["in_thread"], lambda x: relabelled(x, 4, (2, 2)), partial):
        with pytest.raises(harness.GradingFailure) as failure:
            harness.run_student_code("patchify", (), function, images)
        assert failure.value.category == "reference", function

    class Sneaky(float):
        def __float__(self):
            raise AssertionError("student code ran inside the comparison")

    assert harness.number(Sneaky(0.5)) == 0.5 and harness.number(np.float64(0.25)) == 0.25


def test_harness_refuses_a_file_changed_after_submission(tmp_path, monkeypatch):
    from grading import harness

    class GraderChannel:
        grader, digests = True, {"ema": hashlib.sha256(b"x = 1\n").hexdigest()}

    monkeypatch.setenv("MINIJEPA_SUBMISSION", str(tmp_path))
    monkeypatch.setattr(harness, "_channel", GraderChannel())
    monkeypatch.setattr(harness, "_sources", {})
    (tmp_path / "ema.py").write_bytes(b"x = 1\n")
    assert harness.source("ema") == b"x = 1\n"
    (tmp_path / "ema.py").write_bytes(b"x = 2\n")  # another process rewrites it: the bytes read first are kept
    assert harness.source("ema") == b"x = 1\n"
    harness._sources.clear()
    with pytest.raises(harness.GradingFailure) as failure:
        harness.source("ema")
    assert failure.value.category == "sandbox"


def test_wire_carries_plain_data_only():
    from grading import wire

    value = {"t": torch.arange(6, dtype=torch.float32).reshape(2, 3), "b": torch.ones(2, dtype=torch.bfloat16),
             "z": torch.tensor(7), "e": torch.zeros(0, 4, dtype=torch.int64), "x": [1, 2.5, float("nan"), None, True],
             "p": (np.float64(0.25), "s", torch.float16, torch.Size([2, 3]))}  # fmt: skip
    back = wire.decode(wire.encode(value))
    for key in ("t", "b", "z", "e"):
        assert type(back[key]) is torch.Tensor and back[key].dtype == value[key].dtype
        assert torch.equal(back[key], value[key])
    assert back["x"][:2] == [1, 2.5] and math.isnan(back["x"][2]) and back["x"][3:] == [None, True]
    assert back["p"] == (0.25, "s", torch.float16, torch.Size([2, 3])) and type(back["p"][0]) is float

    class Sneaky(float):
        def __float__(self):
            raise AssertionError("student code ran in the test process")

    class Mine(torch.Tensor):
        pass

    for odd, name in ((Sneaky(1.0), "Sneaky"), (torch.zeros(2).as_subclass(Mine), "Mine"), (object(), "object"),
                      ([Sneaky(2.0)], "Sneaky"), ({1: 2}, "dict")):  # fmt: skip
        got = wire.decode(wire.encode(odd))
        got = got[0] if isinstance(got, list) else got
        assert isinstance(got, wire.Opaque) and type(got).__name__ == name, (odd, got)
    with pytest.raises(Exception):
        wire.decode(b"\x05\x00\x00\x00\x00\x00\x00\x00cos\nsystem\n")  # bytes of a pickle: not read as one


WORKER_FILE = """
import torch


def spy(x):
    # every local name of every frame above this one, as a cheat that walks the stack would see them
    try:
        raise RuntimeError
    except RuntimeError as error:
        frame = getattr(error.__traceback__, "tb_" + "frame")
    names = []
    while frame is not None:
        names += list(getattr(frame, "f_" + "locals"))
        frame = getattr(frame, "f_" + "back")
    return getattr(getattr(torch, "o" + "s"), "getpid")(), names, x * 2


def in_place(t, net, g):
    t.mul_(2)
    with torch.no_grad():
        net.weight.add_(1)
    net.bias = torch.nn.Parameter(torch.zeros(2))
    return torch.randn(3, generator=g), torch.randn(1)


def square(x, net):
    return (net(x) ** 2).sum(), x.shape[0]


class BadShape(ValueError):
    pass


def fails(x):
    raise BadShape("x has the wrong shape")


def ends():
    getattr(getattr(torch, "o" + "s"), "_ex" + "it")(3)


def claims_the_sandbox_changed():
    modules = getattr(getattr(torch, "s" + "ys"), "modules")
    harness = next(m for name, m in list(modules.items()) if name.endswith("grading.harness"))
    raise harness.GradingFailure("the sandbox changed", "sandbox")  # the grader would re-run, then blame others
"""


def test_student_functions_run_in_a_worker_and_act_as_if_local(tmp_path, monkeypatch):
    """The student's function runs in another process that holds none of the test's frames, and its effects
    come back: in-place updates, replaced parameters, random states, gradients, errors, deaths."""
    from grading import harness

    monkeypatch.setenv("MINIJEPA_SUBMISSION", str(tmp_path))
    (tmp_path / "ema.py").write_text(WORKER_FILE)
    try:
        secret_expected_value = 0.123  # noqa: F841 - what a stack-walking cheat would look for
        ones = torch.ones(2)
        pid, names, doubled = harness.remote("ema", "spy")(ones)
        assert pid != os.getpid() and "secret_expected_value" not in names and "monkeypatch" not in names
        assert torch.equal(doubled, torch.full((2,), 2.0))
        assert ones._version == 0  # an argument the call did not change is not written back (autograd would see it)

        t, net, g = torch.ones(2), torch.nn.Linear(3, 2), torch.Generator().manual_seed(5)
        weight, bias, storage = net.weight, net.bias, t.data_ptr()
        expected_weight = net.weight.detach() + 1
        torch.manual_seed(11)
        drawn, global_draw = harness.remote("ema", "in_place")(t, net, g)
        assert torch.equal(t, torch.full((2,), 2.0)) and t.data_ptr() == storage  # updated in place, here too
        assert net.weight is weight and torch.equal(net.weight.detach(), expected_weight)
        assert net.bias is not bias and torch.equal(net.bias.detach(), torch.zeros(2))  # replaced, here too
        assert torch.equal(drawn, torch.randn(3, generator=torch.Generator().manual_seed(5)))
        assert torch.equal(torch.randn(3, generator=g), torch.randn(6, generator=torch.Generator().manual_seed(5))[3:])
        torch.manual_seed(11)
        assert torch.equal(global_draw, torch.randn(1))  # the global random state travels both ways

        x, net = torch.randn(4, 3, requires_grad=True), torch.nn.Linear(3, 2)
        loss, n = harness.remote("ema", "square")(x, net)
        assert n == 4 and loss.requires_grad
        (loss * 2).backward()  # through the worker: its gradients land on this process's tensors
        x2, net2 = x.detach().clone().requires_grad_(True), copy.deepcopy(net)
        net2.zero_grad(set_to_none=True)
        ((net2(x2) ** 2).sum() * 2).backward()
        assert torch.allclose(x.grad, x2.grad) and torch.allclose(net.weight.grad, net2.weight.grad)

        with pytest.raises(ValueError, match="wrong shape"):  # a built-in base class of the student's error
            harness.remote("ema", "fails")(1)
        with pytest.raises(harness.GradingFailure) as failure:  # only the test process decides "sandbox"
            harness.remote("ema", "claims_the_sandbox_changed")()
        assert failure.value.category == "tamper" and "sandbox" in str(failure.value)
        ends = harness.remote("ema", "ends")
        for _ in range(2):  # the exercise's later calls fail the same way
            with pytest.raises(harness.GradingFailure) as failure:
                ends()
            assert failure.value.category == "exit" and "exit status 3" in str(failure.value)
    finally:
        harness.finish_all()


def test_grader_reruns_a_run_whose_sandbox_was_changed_from_outside(tmp_path, monkeypatch):
    info = grade.ExerciseInfo("a", "patches", [grade.TestInfo("t_a0", "a", "patches", 1, "d")])
    catalog = grade.Catalog([info])
    runs: list[list[str]] = []
    plan: list[str] = []

    def fake_run(root, files, only, settings, collect=False, digests=None, reaper=None):
        runs.append(list(only))
        assert digests == {"patches": hashlib.sha256(b"x = 1\n").hexdigest()}
        category = plan[len(runs) - 1] if len(runs) <= len(plan) else "passed"
        records = [_start("t_a0", "a", "patches"), _result("t_a0", "a", "patches", "passed" if category == "passed" else "failed", category),
                   {"event": "finish", "exitstatus": 0}]  # fmt: skip
        return grade_sandbox._Run([(i, r) for i, r in enumerate(records)], [], 0, None, None, "")

    monkeypatch.setattr(grade_runs, "_run_tests", fake_run)
    monkeypatch.setattr(grade_runs, "_make_sandbox", lambda pristine, files, parent: tmp_path)
    monkeypatch.setattr(grade_runs, "_remove", lambda root: None)
    monkeypatch.setattr(grade_runs, "_sandbox_changes", lambda root, digests: [])
    submission = grade.Submission("s", "s", {"patches": b"x = 1\n"})
    pristine = grade.Pristine({}, {})
    plan[:] = ["sandbox"]
    result = grade.grade_submission(submission, catalog, pristine, grade.Settings(), tmp_path)
    assert len(runs) == 2 and result.total == 1  # discarded once, then graded in a fresh sandbox
    runs.clear()
    plan[:] = ["sandbox"] * 10
    result = grade.grade_submission(submission, catalog, pristine, grade.Settings(), tmp_path)
    assert len(runs) == grade.SANDBOX_RETRIES + 1 and result.total == 0
    assert "not this submission's doing" in result.exercises[0].reason


def test_harness_blames_and_undoes_changes_of_global_state():
    from grading import harness

    def switch_off_autograd():
        torch.set_grad_enabled(False)

    def change_dtype_and_trace():
        torch.set_default_dtype(torch.float64)
        sys.settrace(lambda *a: None)

    class Agreeable(torch.overrides.TorchFunctionMode):  # would make every .any() in a comparison False
        def __torch_function__(self, func, types, args=(), kwargs=None):
            result = func(*args, **(kwargs or {}))
            return torch.tensor(False) if func is torch.Tensor.any else result

    def push_a_mode():
        Agreeable().__enter__()  # left pushed after the call returns

    def set_an_alarm():
        signal.signal(signal.SIGALRM, lambda *a: None)
        signal.setitimer(signal.ITIMER_REAL, 30)

    cases = ((switch_off_autograd, "torch.is_grad_enabled()"), (change_dtype_and_trace, "get_default_dtype"),
             (push_a_mode, "torch function modes"), (set_an_alarm, "signal handlers"))  # fmt: skip
    for function, words in cases:
        before = harness.global_state()
        with pytest.raises(harness.GradingFailure) as failure:
            harness.run_student_code("importing ema.py", (), function)
        assert failure.value.category == "tamper" and words in str(failure.value)
        assert harness.global_state() == before  # put back for the other exercises
    assert bool(torch.ones(2).any()) and signal.getitimer(signal.ITIMER_REAL)[0] == 0
    assert harness.run_student_code("fine", (), lambda: 3) == 3


GRADESCOPE_VISIBILITY = {"hidden", "after_due_date", "after_published", "visible"}


def _check_gradescope(results: dict) -> None:
    """The fields Gradescope's autograder specification requires, with their types."""
    assert isinstance(results["tests"], list) and results["tests"]
    assert isinstance(results["score"], float)  # required unless every test has a score (ours have both)
    assert results.get("visibility", "visible") in GRADESCOPE_VISIBILITY
    assert results.get("stdout_visibility", "visible") in GRADESCOPE_VISIBILITY
    for test in results["tests"]:
        assert isinstance(test["name"], str) and test["name"]
        assert isinstance(test["score"], float) and isinstance(test["max_score"], float)
        assert 0 <= test["score"] <= test["max_score"]
        assert test["status"] in ("passed", "failed") and isinstance(test["output"], str)
        assert test["visibility"] in GRADESCOPE_VISIBILITY
    assert results["score"] == sum(t["score"] for t in results["tests"])
    json.dumps(results, allow_nan=False)


def test_gradescope_results_follow_the_specification(tmp_path):
    info = grade.ExerciseInfo("a", "patches", [grade.TestInfo("t::a1", "a", "patches", 2, "shape"),
                                                 grade.TestInfo("t::a2", "a", "patches", 1, "values")])
    b = grade.ExerciseInfo("b", "masks", [grade.TestInfo("t::b1", "b", "masks", 3, "cheats")])
    graded = grade_runs._graded(info, {"t::a1": {"outcome": "passed", "category": "passed", "message": ""},
                                  "t::a2": {"outcome": "failed", "category": "failed", "message": "off by 1"}})
    result = grade.StudentResult("s", "s", [graded, grade_runs._zero(b, "calls the reference")], ["a note"], "", 1.5)
    results = grade.gradescope_results(grade.Catalog([info, b]), result)
    _check_gradescope(results)
    assert results["score"] == 2.0 and [t["status"] for t in results["tests"]] == ["passed", "failed", "failed"]
    assert results["tests"][1]["output"] == "off by 1" and results["tests"][2]["output"] == "calls the reference"
    assert "a note" in results["output"]
    path = grade.write_gradescope(grade.Catalog([info, b]), [result], tmp_path / "results" / "results.json")
    assert json.loads(path.read_text()) == results
    with pytest.raises(ValueError):
        grade.write_gradescope(grade.Catalog([info, b]), [result, result], tmp_path / "two.json")


@pytest.mark.slow
def test_autograder_zip_runs_as_gradescope_runs_it(tmp_path):
    built = tmp_path / "autograder.zip"
    subprocess.run([sys.executable, str(ROOT / "tools" / "build_autograder.py"), "--out", str(built)], check=True,
                   capture_output=True)  # fmt: skip
    with zipfile.ZipFile(built) as zf:
        names = zf.namelist()
        modes = {i.filename: i.external_attr >> 16 for i in zf.infolist()}
        zf.extractall(tmp_path / "autograder" / "source")
    assert {"setup.sh", "run_autograder", "pyproject.toml", "minijepa/grade.py", "tests/grading/harness.py"} <= set(names)
    assert modes["setup.sh"] & 0o111 and modes["run_autograder"] & 0o111
    assert not [n for n in names if n.startswith(("solutions/", "exercises/", "tests/grader_fixtures"))]
    again = tmp_path / "again.zip"
    subprocess.run([sys.executable, str(ROOT / "tools" / "build_autograder.py"), "--out", str(again)], check=True,
                   capture_output=True)  # fmt: skip
    assert again.read_bytes() == built.read_bytes()  # deterministic
    root = tmp_path / "autograder"
    (root / "submission").mkdir()
    shutil.copy(SOLUTIONS / "schedules.py", root / "submission" / "schedules.py")
    env = dict(os.environ, AUTOGRADER_ROOT=str(root), PYTHON=sys.executable, MINIJEPA_GRADE_ARGS="--only warmup_cosine")
    env.pop("PYTHONPATH", None)
    completed = subprocess.run(["bash", str(root / "source" / "run_autograder")], env=env, capture_output=True, text=True,
                               timeout=300)  # fmt: skip
    assert completed.returncode == 0, completed.stderr[-2000:]
    results = json.loads((root / "results" / "results.json").read_text())
    _check_gradescope(results)
    assert results["score"] == sum(t["max_score"] for t in results["tests"]) > 0
    assert all(t["name"].startswith("warmup_cosine: ") for t in results["tests"])


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
    run = grade_sandbox._Run([(i, r) for i, r in enumerate(records)], [], 1, None, None, "")
    decided, pending = grade_runs._interpret(run, ["a", "b", "c"], _catalog(), grade.Settings())
    assert pending == []
    assert (decided["a"].points, decided["a"].status) == (1, "graded")
    assert (decided["b"].points, decided["b"].status, decided["b"].reason) == (0, "zero", "raised SystemExit")
    assert decided["c"].points == 1


def test_interpret_a_death_a_tamper_and_forged_lines():
    # the process died while importing masks.py: c is zeroed, a (complete) is kept, b is run again
    records = [_start("t_a0", "a", "patches"), _result("t_a0", "a", "patches"), _start("t_a1", "a", "patches"),
               _result("t_a1", "a", "patches"), _start("t_c0", "c", "masks"),
               {"event": "import", "module": "masks", "phase": "start"}]  # fmt: skip
    run = grade_sandbox._Run([(i, r) for i, r in enumerate(records)], [], 0, None, None, "")
    decided, pending = grade_runs._interpret(run, ["a", "b", "c"], _catalog(), grade.Settings())
    assert decided["a"].points == 2 and pending == ["b"]
    assert decided["c"].status == "zero" and "masks.py, when imported" in decided["c"].reason
    # tampering during a: a is zeroed and everything after it is run again
    records = [_start("t_a0", "a", "patches"), _result("t_a0", "a", "patches"), _start("t_a1", "a", "patches"),
               _result("t_a1", "a", "patches", "failed", "tamper", "changed torch.allclose"), _start("t_b0", "b", "patches"),
               _result("t_b0", "b", "patches"), {"event": "finish", "exitstatus": 0}]  # fmt: skip
    run = grade_sandbox._Run([(i, r) for i, r in enumerate(records)], [], 0, None, None, "")
    decided, pending = grade_runs._interpret(run, ["a", "b", "c"], _catalog(), grade.Settings())
    assert decided["a"].status == "zero" and "torch.allclose" in decided["a"].reason
    assert pending == ["b", "c"]
    # lines that do not carry the harness's signature
    run = grade_sandbox._Run([(0, _start("t_c0", "c", "masks"))], [(1, "c")], 0, None, None, "")
    decided, pending = grade_runs._interpret(run, ["c"], _catalog(), grade.Settings())
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
    "monkeypatch_pytest": ({"warmup_cosine"}, "_pytest.runner"),  # no pytest in the worker: its import fails
    "monkeypatch_reference": ({"ijepa_loss"}, "minijepa.losses.ijepa_loss"),
    "writes_outside": ({"ijepa_loss"}, "outside.txt"),
    "imports_reference": ({"patchify", "unpatchify", "sincos_2d"}, "imports the reference implementation"),
    "imports_solutions": ({"gather_tokens"}, "solutions.masks"),
    "calls_reference": ({"patchify", "unpatchify"}, "minijepa/patches.py"),
    "settrace_exit": ({"attention_weights", "attention", "block_forward"}, "sys.gettrace()"),
    "grad_disabled": ({"ema_update", "momentum_schedule"}, "torch.is_grad_enabled()"),
    "forged_report": ({"linear_probe"}, "ended the test process"),  # its signed "passed" records go nowhere
}

# Cheats that find nothing to cheat with in the worker: submission -> {exercise: the points its honest part earns}
CHEATS = {"frame_walk": {"warmup_cosine": 0}, "patches_the_tests": {"predictor_forward": 2}}

# Composed in _grade_class: the fixture's file appended to the solution's, plus these correct files beside it.
COMPOSED = {"settrace_exit": ("attention", ["ema"]), "grad_disabled": ("ema", ["masks", "losses"]),
            "escaping_child": ("ema", [])}  # fmt: skip
ESCAPE_MARKER = "minijepa-grader-escape-marker"


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
    for name in [*ADVERSARIAL, *CHEATS]:
        if name not in COMPOSED:
            shutil.copytree(FIXTURES / name, klass / name)
    for name, (hostile, innocent) in COMPOSED.items():
        (klass / name).mkdir()
        attack = (FIXTURES / name / f"{hostile}.py").read_text()
        (klass / name / f"{hostile}.py").write_text((SOLUTIONS / f"{hostile}.py").read_text() + "\n\n" + attack)
        for module in innocent:
            shutil.copy(SOLUTIONS / f"{module}.py", klass / name / f"{module}.py")
    unusual = klass / "unusual"  # correct files as honest students save them
    unusual.mkdir()
    (unusual / "schedules.py").write_bytes(b"\xef\xbb\xbf" + (SOLUTIONS / "schedules.py").read_bytes())  # Notepad's BOM
    latin = "# -*- coding: latin-1 -*-\n# Écrit par un étudiant.\n" + (SOLUTIONS / "losses.py").read_text()
    (unusual / "losses.py").write_bytes(latin.encode("latin-1"))
    (unusual / "masks.py").write_text((SOLUTIONS / "masks.py").read_text() + "\nTOTAL = " + " + ".join(["1"] * 600) + "\n")
    ema = (SOLUTIONS / "ema.py").read_text().replace("\ndef ema_update(", "\n@torch.no_grad()\ndef ema_update(", 1)
    assert "@torch.no_grad()" in ema
    (unusual / "ema.py").write_text(ema)
    _bad_name_zip(klass / "badname.zip")
    _damaged_zip(klass / "damaged.zip", good=(SOLUTIONS / "losses.py").read_bytes())
    odd = os.fsencode(klass) + b"/caf\xe9"  # a folder name that is not UTF-8
    os.mkdir(odd)
    shutil.copy(SOLUTIONS / "schedules.py", os.fsdecode(odd + b"/schedules.py"))
    (klass / "mallory").mkdir()
    (klass / "mallory" / "exercises").symlink_to(SOLUTIONS, target_is_directory=True)
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
    survivors = []  # processes started by a submission and still alive after the grader ended
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if ESCAPE_MARKER.encode() in (proc / "cmdline").read_bytes():
                survivors.append(int(proc.name))
                os.kill(int(proc.name), 9)
        except OSError:
            pass
    checks = {"exit_status": completed.returncode, "tests_unchanged": _digest(GRADING) == before, "escaped": escaped,
              "survivors": survivors}  # fmt: skip
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
    submitted = {p.stem for p in (FIXTURES / name).glob("*.py")} | set(COMPOSED.get(name, ("", []))[1])
    for exercise, result in ex.items():
        if result["module"] not in submitted:
            assert "was not submitted" in result["reason"]


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(CHEATS))
def test_grader_gives_cheats_only_what_their_honest_part_earns(graded_class, name):
    """Reading the test's expected value from its frame, or patching the tests' modules, gains nothing: the
    student's code runs in a worker that holds no test frame and no test module."""
    ex = _exercises(_student(graded_class[1], name))
    for exercise, points in CHEATS[name].items():
        assert ex[exercise]["points"] == points and ex[exercise]["status"] == "graded", (exercise, ex[exercise])


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
def test_grader_blames_global_state_on_the_file_that_changed_it(graded_class):
    """A file that changes process-wide state at import loses its own exercises and nothing else."""
    report = graded_class[1]
    ex = _exercises(_student(report, "settrace_exit"))  # its tracer would have ended the ema tests
    assert ex["ema_update"]["points"] == ex["ema_update"]["max_points"] > 0
    ex = _exercises(_student(report, "grad_disabled"))  # autograd switched off at import of ema.py
    for name in ("gather_tokens", "ijepa_loss"):  # both need gradients
        assert ex[name]["points"] == ex[name]["max_points"] > 0, (name, ex[name])


@pytest.mark.slow
def test_grader_ends_processes_that_left_the_run(graded_class):
    report, checks = graded_class[1], graded_class[3]
    ex = _exercises(_student(report, "escaping_child"))
    assert ex["ema_update"]["points"] == ex["ema_update"]["max_points"] > 0  # ema.py imported: the child was started
    if grade.Reaper.supported():
        assert checks["survivors"] == []


@pytest.mark.slow
def test_grader_scores_unusual_honest_files_and_unreadable_submissions(graded_class):
    report = graded_class[1]
    ex = _exercises(_student(report, "unusual"))  # BOM, latin-1 with a coding line, a 600-term sum, @torch.no_grad()
    for name in ("warmup_cosine", "ijepa_loss", "sample_block", "multiblock_masks", "gather_tokens", "ema_update"):
        assert ex[name]["points"] == ex[name]["max_points"] > 0, (name, ex[name]["reason"])
    assert "not a readable zip file" in _student(report, "badname")["notes"][0]
    damaged = _student(report, "damaged")
    assert _exercises(damaged)["ijepa_loss"]["points"] > 0 and any("is damaged" in n for n in damaged["notes"])
    odd = _student(report, "caf\ufffd")
    assert _exercises(odd)["warmup_cosine"]["points"] == _exercises(odd)["warmup_cosine"]["max_points"]
    mallory = _student(report, "mallory")
    assert mallory["total"] == 0 and "symbolic link" in mallory["notes"][0]


@pytest.mark.slow
def test_grader_writes_table_csv_and_json(graded_class):
    stdout, report, out, _ = graded_class
    names = [s["name"] for s in report["students"]]
    assert len(names) == len(ADVERSARIAL) + len(CHEATS) + len(set(COMPOSED) - set(ADVERSARIAL)) + 10
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
