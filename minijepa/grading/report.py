"""Reports: the table, grades.csv / results.csv / results.json, and Gradescope's results.json."""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from dataclasses import asdict
from pathlib import Path

from .catalog import Catalog
from .runs import StudentResult
from .sandbox import Settings
from .submissions import _printable

def format_table(catalog: Catalog, results: list[StudentResult]) -> str:
    """Students x exercises points, with a first row of maxima and notes on zeros below."""
    names = [e.name for e in catalog.exercises]
    width = max([len("student"), len("(max)")] + [len(r.name) for r in results])
    columns = [max(len(n), 3) for n in names] + [max(len("total"), len(f"{catalog.max_total}"))]
    header = "  ".join(["student".ljust(width)] + [n.rjust(w) for n, w in zip(names + ["total"], columns)])
    lines = [header, "-" * len(header)]
    maxima = [str(e.max_points) for e in catalog.exercises] + [str(catalog.max_total)]
    lines.append("  ".join(["(max)".ljust(width)] + [v.rjust(w) for v, w in zip(maxima, columns)]))
    for r in results:
        values = [str(e.points) for e in r.exercises] + [str(r.total)]
        lines.append("  ".join([r.name.ljust(width)] + [v.rjust(w) for v, w in zip(values, columns)]))
    notes = []
    for r in results:
        by_reason: dict[str, list[str]] = {}
        for e in r.exercises:
            if e.status == "zero":
                by_reason.setdefault(e.reason, []).append(e.name)
        for reason, exercises in by_reason.items():
            notes.append(f"  {r.name}: {', '.join(exercises)}: {reason}")
        for note in r.notes:
            notes.append(f"  {r.name}: {note}")
    if notes:
        lines += ["", "scored zero / notes:"] + notes
    return _printable("\n".join(lines))


def _json(catalog: Catalog, results: list[StudentResult], settings: Settings) -> dict:
    return {
        "settings": {k: v for k, v in asdict(settings).items() if k != "jobs"},
        "max_total": catalog.max_total,
        "exercises": [
            {"name": e.name, "module": e.module, "max_points": e.max_points, "tests": [asdict(t) for t in e.tests]}
            for e in catalog.exercises
        ],
        "students": [
            {
                "name": r.name,
                "source": r.source,
                "total": r.total,
                "max_total": r.max_total,
                "seconds": round(r.seconds, 2),
                "notes": r.notes,
                "exercises": [asdict(e) for e in r.exercises],
                "log": r.log,
            }
            for r in results
        ],
    }


def write_report(catalog: Catalog, results: list[StudentResult], out: Path, settings: Settings) -> list[Path]:
    """grades.csv (student x exercise), results.csv (one row per test), results.json (everything).

    All or nothing: the three files are written under temporary names first and renamed into place only
    when all of them are complete, so a failure never leaves a half-written report (nor mixes a new
    grades.csv with an old results.json). Text that is not valid UTF-8 is written with U+FFFD.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    names = [e.name for e in catalog.exercises]
    grade_rows = [["student", *names, "total", "max_total"]]
    grade_rows += [[r.name, *[e.points for e in r.exercises], r.total, r.max_total] for r in results]
    test_rows = [["student", "exercise", "module", "test", "description", "points", "max_points", "outcome", "feedback"]]
    test_rows += [[r.name, e.name, e.module, t.id, t.description, t.points, t.max_points, t.outcome, t.feedback]
                  for r in results for e in r.exercises for t in e.tests]  # fmt: skip
    contents = {"grades.csv": _csv_text(grade_rows), "results.csv": _csv_text(test_rows),
                "results.json": json.dumps(_json(catalog, results, settings), indent=2)}  # fmt: skip
    staged = {out / name: _stage(out, name, text) for name, text in contents.items()}  # fails before any rename
    previous = {final: final.read_bytes() for final in staged if final.is_file()}
    done: list[Path] = []
    try:
        for final, temporary in staged.items():
            os.replace(temporary, final)
            done.append(final)
    except BaseException:
        for final in done:  # roll back: the previous report, or none, as before this call
            if final in previous:
                os.replace(_stage(out, final.name, previous[final]), final)
            else:
                final.unlink(missing_ok=True)
        raise
    finally:
        for temporary in staged.values():
            temporary.unlink(missing_ok=True)
    return list(staged)


def _stage(out: Path, name: str, content: str | bytes) -> Path:
    """``content`` in a new temporary file next to ``out/name``, flushed to disk, with the umask's mode."""
    handle, temporary = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=out)
    try:
        with os.fdopen(handle, "wb") as f:
            f.write(content.encode("utf-8", "replace") if isinstance(content, str) else content)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)  # mkstemp makes 0600; a report is an ordinary file
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return Path(temporary)


def _csv_text(rows: list[list]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer).writerows([[_printable(str(v)) for v in row] for row in rows])
    return buffer.getvalue()


def gradescope_results(catalog: Catalog, result: StudentResult) -> dict:
    """One submission's results in Gradescope's autograder format (``/autograder/results/results.json``).

    See https://gradescope-autograders.readthedocs.io/en/latest/specs/: a top-level ``score``, and one
    entry per graded test with ``name``, ``number``, ``score``, ``max_score``, ``status``, ``output`` and
    ``visibility``. An exercise scored zero as a whole (a cheat, a crash) says why in each of its tests.
    """
    tests = []
    for i, exercise in enumerate(result.exercises, 1):
        for j, test in enumerate(exercise.tests, 1):
            why = exercise.reason if exercise.status == "zero" else test.feedback
            tests.append({
                "name": _printable(f"{exercise.name}: {test.description}"),
                "number": f"{i}.{j}",
                "score": float(test.points),
                "max_score": float(test.max_points),
                "status": "passed" if test.points == test.max_points and test.outcome == "passed" else "failed",
                "output": _printable(why if test.outcome != "passed" or exercise.status == "zero" else ""),
                "visibility": "visible",
            })  # fmt: skip
    summary = [f"{result.total}/{result.max_total} points"] + [_printable(n) for n in result.notes]
    return {
        "score": float(result.total),
        "execution_time": round(result.seconds, 1),
        "output": "\n".join(summary),
        "stdout_visibility": "hidden",
        "visibility": "visible",
        "tests": tests,
    }


def write_gradescope(catalog: Catalog, results: list[StudentResult], path: Path) -> Path:
    """Write :func:`gradescope_results` of the one submission graded (atomically)."""
    if len(results) != 1:
        raise ValueError(f"--gradescope grades one submission at a time, got {len(results)}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = _stage(path.parent, path.name, json.dumps(gradescope_results(catalog, results[0]), indent=2))
    try:
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return path


def _feedback(result: StudentResult) -> str:
    lines = [f"{result.name}: {result.total}/{result.max_total}"]
    for e in result.exercises:
        lines.append(f"  {e.name}: {e.points}/{e.max_points}{'  — ' + e.reason if e.status == 'zero' else ''}")
        for t in e.tests:
            mark = "✓" if t.outcome == "passed" else "✗"
            lines.append(f"    {mark} [{t.points}/{t.max_points}] {t.description}{'' if t.outcome == 'passed' else ': ' + t.feedback}")
    return _printable("\n".join(lines))
