"""Grading one submission: the static scan, then runs of the tests until every exercise is decided.

:func:`_interpret` reads what one run proves (signed results, deaths, tampering, forged lines); runs that
died or were cheated are repeated, in fresh sandboxes, for the exercises they had not decided.
"""

from __future__ import annotations

import functools
import hashlib
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from .catalog import Catalog, ExerciseInfo, collect_catalog
from .rules import scan_source
from .sandbox import Pristine, Reaper, Settings, _make_sandbox, _remove, _Run, _run_tests, _sandbox_changes, make_undumpable
from .submissions import Submission

#: Test failures that score the whole exercise zero (the reason goes into the feedback).
ZERO_CATEGORIES = ("tamper", "reference", "static", "exit", "memory", "output", "import", "missing")


@dataclass
class TestResult:
    id: str
    description: str
    points: int
    max_points: int
    outcome: str  # "passed", "failed" or "not run"
    feedback: str


@dataclass
class ExerciseResult:
    name: str
    module: str
    points: int
    max_points: int
    status: str  # "graded" or "zero" (scored zero for the reason given)
    reason: str
    tests: list[TestResult]


@dataclass
class StudentResult:
    name: str
    source: str
    exercises: list[ExerciseResult]
    notes: list[str]
    log: str
    seconds: float

    @property
    def total(self) -> int:
        return sum(e.points for e in self.exercises)

    @property
    def max_total(self) -> int:
        return sum(e.max_points for e in self.exercises)


def _zero(info: ExerciseInfo, reason: str, records: dict | None = None) -> ExerciseResult:
    tests = []
    for t in info.tests:
        record = (records or {}).get(t.id)
        outcome = record["outcome"] if record else "not run"
        tests.append(TestResult(t.id, t.description, 0, t.points, outcome, (record or {}).get("message") or reason))
    return ExerciseResult(info.name, info.module, 0, info.max_points, "zero", reason, tests)


def _graded(info: ExerciseInfo, records: dict) -> ExerciseResult:
    for t in info.tests:
        if records[t.id]["category"] in ZERO_CATEGORIES:
            return _zero(info, records[t.id]["message"], records)
    tests = [
        TestResult(t.id, t.description, t.points if records[t.id]["outcome"] == "passed" else 0, t.points,
                   records[t.id]["outcome"], records[t.id]["message"])
        for t in info.tests
    ]  # fmt: skip
    return ExerciseResult(info.name, info.module, sum(t.points for t in tests), info.max_points, "graded", "", tests)


def _death(run: _Run, settings: Settings, finished: bool = False) -> str:
    if "File too large" in run.log:
        return f"printed more than {settings.output_mb} MB and broke the test process"
    if run.stopped == "timeout":
        return f"took longer than {settings.timeout:g} s (an infinite loop?) and was stopped"
    if run.stopped == "deadline":
        return "the test process ran past the grader's overall time limit and was stopped"
    code = run.returncode
    if code < 0:
        sig = -code
        if sig == getattr(signal, "SIGXFSZ", None):
            return f"printed more than {settings.output_mb} MB and was stopped"
        if sig == getattr(signal, "SIGXCPU", None):
            return "used more CPU time than allowed and was stopped"
        if sig == signal.SIGKILL:
            return "the test process was killed (out of memory?)"
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = f"signal {sig}"
        return f"crashed the test process ({name})"
    if finished:
        return f"broke the test process (pytest ended with exit status {code} in the middle of this exercise)"
    return f"ended the test process (exit status {code}): sys.exit / os._exit are not allowed in exercises"


def _interpret(run: _Run, exercises: list[str], catalog: Catalog, settings: Settings):
    """Decide what one run of the tests proves. Returns ({exercise: ExerciseResult}, [exercises to re-run])."""
    events = [(t, 0, r) for t, r in run.records] + [(t, 1, {"event": "forged", "exercise": e}) for t, e in run.forged]
    events.sort(key=lambda e: (e[0], e[1]))
    module_of = {e: catalog[e].module for e in exercises}
    records: dict[str, dict[str, dict]] = {e: {} for e in exercises}
    verdicts: dict[str, str] = {}
    in_flight = None  # (exercise, module) of the test that started and has no result yet
    importing = None  # module whose import started and did not end
    finished = False
    trusted = True
    for _, _, record in events:
        event = record.get("event")
        if event == "start":
            in_flight = (record.get("exercise"), record.get("module"))
        elif event == "import":
            importing = record.get("module") if record.get("phase") == "start" else None
        elif event == "result" and record.get("exercise") in records:
            exercise = record["exercise"]
            if record.get("category") == "tamper":
                # Checked once per exercise: the culprit is this exercise's code (or its file's import-time
                # code, which the exercises re-run below execute again in a fresh process and so reveal too).
                verdicts.setdefault(exercise, record.get("message") or "tampering")
                trusted = False
                break
            records[exercise][record.get("id")] = record
            in_flight = None
        elif event == "forged":
            culprit = record.get("exercise") or (in_flight[0] if in_flight else None)
            for e in [culprit] if culprit in records else exercises:
                verdicts.setdefault(e, "wrote forged lines into the grader's result channel")
            trusted = False
            break
        elif event == "finish":
            finished = True
    if trusted and (not finished or in_flight is not None or importing is not None):
        reason = _death(run, settings, finished)
        if importing is not None:
            for e in exercises:
                if module_of[e] == importing:
                    verdicts.setdefault(e, f"{importing}.py, when imported: {reason}")
        elif in_flight is not None and in_flight[0] in records:
            verdicts.setdefault(in_flight[0], reason)
        elif run.stopped == "timeout" and run.stopped_exercise in records:
            verdicts.setdefault(run.stopped_exercise, reason)
    decided, pending = {}, []
    for e in exercises:
        info = catalog[e]
        if e in verdicts:
            decided[e] = _zero(info, verdicts[e], records[e])
        elif all(t.id in records[e] for t in info.tests):
            decided[e] = _graded(info, records[e])
        elif trusted and finished:
            decided[e] = _zero(info, "its tests did not run", records[e])
        else:
            pending.append(e)
    return decided, pending


#: How often an exercise is run again in a fresh sandbox when its files were changed from outside its run.
SANDBOX_RETRIES = 2


def grade_submission(
    submission: Submission, catalog: Catalog, pristine: Pristine, settings: Settings, workdir: Path,
    reaper: Reaper | None = None,
) -> StudentResult:
    """Grade one submission: static scan, then runs of the tests until every exercise is decided.

    The harness loads the submission's files only if their digests are the ones read here; a run that
    finds them changed (something outside the run wrote into its sandbox) is discarded and its exercises
    are run again in a new sandbox, so no other process can change what is graded.
    """
    started = time.monotonic()
    results: dict[str, ExerciseResult] = {}
    pending: list[str] = []
    scans = {m: scan_source(data, m) for m, data in submission.files.items()}
    for info in catalog.exercises:
        if info.module not in submission.files:
            results[info.name] = _zero(info, f"{info.module}.py was not submitted")
            continue
        flagged = [f for f in scans[info.module] if f.function in (None, info.name)]
        if flagged:
            results[info.name] = _zero(info, str(flagged[0]))
        else:
            pending.append(info.name)
    logs = []
    digests = pristine.digests()
    files = {m: hashlib.sha256(data).hexdigest() for m, data in submission.files.items()}
    retries = 0
    while pending:
        root = _make_sandbox(pristine, submission.files, workdir)
        try:
            run = _run_tests(root, catalog.test_files(pending), pending, settings, digests=files, reaper=reaper)
            changed = _sandbox_changes(root, digests)
        finally:
            _remove(root)
        logs.append(run.log)
        if any(r.get("category") == "sandbox" for _, r in run.records):
            retries += 1
            if retries <= SANDBOX_RETRIES:
                continue  # not the submission's doing: the same exercises again, in a fresh sandbox
            for name in pending:
                results[name] = _zero(catalog[name], "the grader's sandbox was changed by another process while it ran "
                                      "(not this submission's doing): grade it again with --jobs 1")
            break
        decided, still = _interpret(run, pending, catalog, settings)
        if changed:  # a backstop: the harness normally catches this test by test
            reason = f"changed files outside its folder: {', '.join(changed[:3])}"
            for name, result in list(decided.items()):
                if result.status == "graded":
                    decided[name] = _zero(catalog[name], reason)
        if not decided:  # no progress: never loop forever
            for name in still:
                decided[name] = _zero(catalog[name], f"the grader could not run its tests ({_death(run, settings)})")
            still = []
        results.update(decided)
        pending = still
    ordered = [results[e.name] for e in catalog.exercises]
    log = "\n".join(logs)[-6000:]
    return StudentResult(submission.name, submission.source, ordered, submission.notes, log, time.monotonic() - started)


def grade(
    submissions: list[Submission],
    pristine: Pristine,
    settings: Settings,
    workdir: Path,
    progress=None,
) -> tuple[Catalog, list[StudentResult]]:
    """Grade every submission (``settings.jobs`` at a time); one broken submission never stops the others."""
    make_undumpable()  # it holds every run's key and result pipe
    reaper = Reaper()
    try:
        catalog = collect_catalog(pristine, settings, workdir, reaper)
        with ThreadPoolExecutor(max_workers=max(1, settings.jobs)) as pool:
            one = functools.partial(_grade_one, catalog=catalog, pristine=pristine, settings=settings, workdir=workdir,
                                    reaper=reaper, progress=progress)
            results = list(pool.map(one, submissions))
    finally:
        reaper.close()
    return catalog, results


def _grade_one(submission: Submission, catalog: Catalog, pristine: Pristine, settings: Settings, workdir: Path,
               reaper: Reaper, progress) -> StudentResult:
    """:func:`grade_submission`, with a grader error costing only this submission."""
    try:
        result = grade_submission(submission, catalog, pristine, settings, workdir, reaper)
    except Exception as error:  # noqa: BLE001 - a grader bug must not cost the other students
        result = StudentResult(
            submission.name, submission.source,
            [_zero(e, f"internal grader error: {type(error).__name__}: {error}") for e in catalog.exercises],
            submission.notes, "", 0.0,
        )  # fmt: skip
    if progress:
        progress(result)
    return result
