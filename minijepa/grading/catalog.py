"""The catalog of graded tests: which tests each exercise has and their points.

Collected from the pristine tests, in a subprocess without any student code, so a submission can never
change what it is graded on.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .rules import EXERCISE_MODULES
from .sandbox import Pristine, Reaper, Settings, _make_sandbox, _remove, _run_tests

@dataclass
class TestInfo:
    id: str
    exercise: str
    module: str
    points: int
    description: str


@dataclass
class ExerciseInfo:
    name: str
    module: str
    tests: list[TestInfo]

    @property
    def max_points(self) -> int:
        return sum(t.points for t in self.tests)


@dataclass
class Catalog:
    exercises: list[ExerciseInfo]

    def __getitem__(self, name: str) -> ExerciseInfo:
        return next(e for e in self.exercises if e.name == name)

    @property
    def max_total(self) -> int:
        return sum(e.max_points for e in self.exercises)

    def test_files(self, exercises: list[str]) -> list[str]:
        modules = {self[e].module for e in exercises}
        files = {t.id.split("::")[0] for e in self.exercises if e.module in modules for t in e.tests}
        return [f"tests/grading/{f}" for f in sorted(files)]


class GraderError(RuntimeError):
    """The grader itself could not work (not a student's fault)."""


def collect_catalog(pristine: Pristine, settings: Settings, workdir: Path, reaper: Reaper | None = None) -> Catalog:
    root = _make_sandbox(pristine, {}, Path(workdir))
    try:
        files = [f"tests/grading/{name}" for name in pristine.tests if name.startswith("test_")]
        run = _run_tests(root, files, None, settings, collect=True, reaper=reaper)
    finally:
        _remove(root)
    collected = [r for _, r in run.records if r.get("event") == "collected"]
    if not collected:
        raise GraderError(f"could not collect the graded tests (exit status {run.returncode}):\n{run.log}")
    exercises: dict[str, ExerciseInfo] = {}
    for t in collected[0]["tests"]:
        info = TestInfo(t["id"], t["exercise"], t["module"], int(t["points"]), t["description"])
        exercises.setdefault(info.exercise, ExerciseInfo(info.exercise, info.module, [])).tests.append(info)
    order = {m: i for i, m in enumerate(EXERCISE_MODULES)}
    ranked = sorted(exercises.values(), key=lambda e: (order.get(e.module, 99), list(exercises).index(e.name)))
    if settings.only:
        unknown = set(settings.only) - {e.name for e in ranked}
        if unknown:
            raise GraderError(f"unknown exercise(s) {sorted(unknown)}; the exercises are {[e.name for e in ranked]}")
        ranked = [e for e in ranked if e.name in settings.only]
    return Catalog(ranked)
