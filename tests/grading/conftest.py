"""pytest hooks of the graded tests: markers, the ``fn`` fixture, per-test results and integrity checks.

Every graded test sits in a class marked ``@pytest.mark.exercise(module, function)`` and carries
``@pytest.mark.points(n)``; the ``fn`` fixture is the submission's function for that exercise (see
harness.py). These hooks only look at the tests of this folder, so they are harmless in a plain
``pytest tests`` run.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from . import harness, worker  # noqa: F401 - worker: loaded before any test's snapshot

SEVERE = ("sandbox", "tamper", "reference", "static", "exit", "memory", "output", "import", "missing", "not_implemented")


class _State:
    infos: dict[str, dict] = {}  # nodeid -> test description (graded tests only)
    phases: dict[str, list] = {}  # nodeid -> [(phase, outcome, message)]
    baseline: dict | None = None
    check_after: set[str] = set()  # nodeids after which the integrity checks run (last test of each exercise)
    files: dict | None = None
    sandbox: Path | None = None
    global_state: dict | None = None  # harness.global_state() when the current graded test started


state = _State()


def _graded(path) -> bool:
    try:
        Path(path).resolve().relative_to(harness.HERE)
    except ValueError:
        return False
    return True


def _info(item: pytest.Item) -> dict:
    exercise = item.get_closest_marker("exercise")
    points = item.get_closest_marker("points")
    if exercise is None or len(exercise.args) != 2 or points is None or len(points.args) != 1:
        raise pytest.UsageError(
            f"{item.nodeid}: a graded test needs @pytest.mark.exercise(module, function) on its class "
            f"and @pytest.mark.points(n)"
        )
    module, name = exercise.args
    value = points.args[0]
    if module not in harness.rules.EXERCISE_MODULES or not isinstance(value, int) or value < 1:
        raise pytest.UsageError(f"{item.nodeid}: unknown exercise module {module!r} or bad points {value!r}")
    doc = (getattr(item, "obj", None).__doc__ or "").strip().splitlines()
    return {
        "id": f"{item.path.name}::{item.nodeid.split('::', 1)[1]}",
        "exercise": name,
        "module": module,
        "points": value,
        "description": doc[0] if doc else item.name,
        "allow": list(exercise.kwargs.get("allow", ())),
    }


def pytest_configure(config):
    config.addinivalue_line("markers", "points(n): how many points a graded test is worth")
    config.addinivalue_line("markers", "exercise(module, function, allow=()): the exercise a graded test checks")
    channel = harness.channel()  # under the grader this reads the key now, before any student code runs
    sandbox = os.environ.get("MINIJEPA_SANDBOX")
    if channel.grader:
        harness.protect_process()
    if channel.grader and sandbox:
        state.sandbox = Path(sandbox)
        state.files = harness.files_snapshot(state.sandbox)
    channel.send({"event": "hello", "pid": os.getpid(), "submission": str(harness.submission_dir())})


def pytest_report_header(config):
    return f"graded submission: {harness.submission_dir()} (set MINIJEPA_SUBMISSION=exercises to grade your own work)"


def pytest_collection_modifyitems(config, items):
    only = os.environ.get("MINIJEPA_GRADE_ONLY")
    wanted = set(only.split(",")) if only else None
    keep, drop = [], []
    for item in items:
        if _graded(item.path):
            info = _info(item)
            state.infos[item.nodeid] = info
            if wanted is not None and info["exercise"] not in wanted:
                drop.append(item)
                continue
        keep.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def pytest_collection_finish(session):
    tests = [state.infos[item.nodeid] for item in session.items if item.nodeid in state.infos]
    harness.report({"event": "collected", "tests": tests})
    if tests and not session.config.option.collectonly:
        harness.start_workers()
        if any(t["module"] == "probe" for t in tests):
            # The probe tests train the reference probe here; the first optimizer of a process imports
            # torch._dynamo (seconds, and it sets TORCHINDUCTOR_CACHE_DIR): before any test, not inside one.
            import torch

            torch.optim.AdamW([torch.zeros(1, requires_grad=True)])
    if harness.channel().grader:
        state.baseline = harness.code_snapshot()
    graded = [item for item in session.items if item.nodeid in state.infos]
    for item, following in zip(graded, graded[1:] + [None]):
        if following is None or state.infos[following.nodeid]["exercise"] != state.infos[item.nodeid]["exercise"]:
            state.check_after.add(item.nodeid)  # the exercise's worker is checked and ended after this test


@pytest.fixture(autouse=True)
def _one_thread():
    """Graded tests are tiny: one intra-op thread is faster (no spinning on a busy machine) and deterministic."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def fn(request):
    """The submission's function for the exercise of this test's class: it runs in the exercise's own worker
    process (started, and the file imported there, on the first call), never in this one."""
    marker = request.node.get_closest_marker("exercise")
    module, name = marker.args
    return harness.remote(module, name, allow=tuple(marker.kwargs.get("allow", ())))


def pytest_runtest_logstart(nodeid, location):
    info = state.infos.get(nodeid)
    if info is None:
        return
    harness.raised.clear()
    state.phases[nodeid] = []
    state.global_state = harness.global_state()
    harness.report({"event": "start", "id": info["id"], "exercise": info["exercise"], "module": info["module"]})


def _message(report) -> str:
    longrepr = report.longrepr
    crash = getattr(longrepr, "reprcrash", None)
    if crash is not None and crash.message:
        text = crash.message
    elif isinstance(longrepr, tuple) and len(longrepr) == 3:  # skips: (path, line, reason)
        text = str(longrepr[2])
    else:
        text = str(longrepr or "")
    text = text.strip()
    for prefix in ("grading.harness.GradingFailure: ", "GradingFailure: ", "Failed: "):
        text = text.removeprefix(prefix)
    return " ".join(text.split())[:400]


def pytest_runtest_logreport(report):
    phases = state.phases.get(report.nodeid)
    if phases is not None:
        phases.append((report.when, report.outcome, "" if report.passed else _message(report)))


def pytest_runtest_logfinish(nodeid, location):
    info = state.infos.get(nodeid)
    phases = state.phases.pop(nodeid, None)
    if info is None or phases is None:
        return
    passed = bool(phases) and all(outcome == "passed" for _, outcome, _ in phases)
    passed = passed and any(when == "call" for when, _, _ in phases)
    message = next((m for _, outcome, m in phases if outcome != "passed"), "")
    if phases and not message and not passed:
        message = "the test did not run"
    category = "passed" if passed else "failed"
    for failure in harness.raised:  # the most telling special failure raised during this test
        if failure.category in SEVERE and (category not in SEVERE or SEVERE.index(failure.category) < SEVERE.index(category)):
            category, message = failure.category, str(failure)
    if any(outcome == "skipped" for _, outcome, _ in phases):
        passed, category = False, "failed"
        message = f"skipped: {message}"
    record = {"event": "result", "id": info["id"], "exercise": info["exercise"], "module": info["module"]}
    changed = harness._state_changes(state.global_state) if state.global_state is not None else []
    if changed:  # outside the watched calls: a returned object's __del__, __iter__ ... run by the test
        harness._restore(state.global_state, changed)
        passed, category = False, "tamper"
        message = f"objects of this exercise changed the process's global state ({', '.join(changed[:3])}) after the call"
    if nodeid in state.check_after:  # once per exercise: were the reference, torch, pytest ... touched?
        changes = harness.finish(info["exercise"])  # in the exercise's worker, which ends here
        if state.baseline is not None:  # and, under the grader, in this process (no student code runs here)
            changes += harness.code_changes(state.baseline, harness.code_snapshot())
        if state.files is not None:
            changes += [f"file {name}" for name in harness.file_changes(state.files, harness.files_snapshot(state.sandbox))]
        if changes:
            passed, category = False, "tamper"
            message = f"changed {', '.join(changes[:3])}{' ...' if len(changes) > 3 else ''} (tampering is not allowed)"
    harness.raised.clear()
    record.update(outcome="passed" if passed else "failed", category=category, message=message)
    harness.report(record)


def pytest_sessionfinish(session, exitstatus):
    harness.finish_all()
    harness.report({"event": "finish", "exitstatus": int(exitstatus)})
