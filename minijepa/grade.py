"""The grader: runs the graded tests (tests/grading/) on students' exercise files and writes a report.

    python -m minijepa.grade SUBMISSION [SUBMISSION ...] [--out DIR]

A SUBMISSION is a folder or a .zip holding a student's exercise files (``patches.py``, ``attention.py`` ...,
at the top or in an ``exercises/`` folder), or a folder (or .zip) of such submissions, one per student. The
grader prints a table (student x exercise points, total) and writes ``grades.csv``, ``results.csv`` (one row
per test, with short feedback) and ``results.json`` into ``--out`` (default ``grades/``).

How a submission is run (the student's code is never imported into this process):

* it is read once, then copied with pristine copies of the graded tests and of this package (read into
  memory when the grader starts) into a fresh temporary folder: whatever a submission changes on disk,
  every run starts from pristine tests and reference, and no run shares files with another student's;
* a static scan rejects, per exercise, files that do not parse or that import anything but torch, einops,
  numpy and a few standard modules (the reference package ``minijepa`` and ``solutions`` included), or
  reach for interpreter internals (``sys``, ``os``, ``__import__``, ``open``, ``exec`` ...);
* pytest runs in a subprocess with limits on memory (RLIMIT_DATA / RLIMIT_AS), CPU time, output size
  (RLIMIT_FSIZE) and a wall-clock limit per exercise; HOME, TMPDIR and the working directory are inside
  the temporary folder; exercises are run one after the other and a run that dies, hangs or cheats is
  restarted for the exercises it had not reached, so one exercise never costs the others;
* inside it the tests never run student code: each exercise runs in a worker process of its own
  (tests/grading/worker.py) that loads the file with a guarded ``__import__`` (no import of the
  reference), watches calls into the reference, caps printing, and returns only plain data (numbers,
  strings, tensors: tests/grading/wire.py); the tests compare that with the reference in their own
  process, check the files around the submission and the worker's own integrity check after each
  exercise, and report each test's outcome over a pipe, signed with a key only the test process holds;
* the points come from the grader's own collection of the pristine tests, not from the submission.

See docs/exercises.md for the instructor's and the student's workflow, and for what this does and does not
guarantee (the threat model).

The first part of this module (the exercise list and the static scan) is shared with the harness.
"""

from __future__ import annotations

import sys

from .grading.catalog import Catalog, ExerciseInfo, GraderError, TestInfo, collect_catalog
from .grading.cli import main
from .grading.report import format_table, gradescope_results, write_gradescope, write_report
from .grading.rules import (
    ALLOWED_IMPORTS,
    DENIED_ATTRIBUTES,
    DENIED_NAMES,
    DENIED_SUBMODULES,
    EXERCISE_MODULES,
    MAX_FILE_BYTES,
    REFERENCE_PACKAGES,
    Finding,
    allowed_import,
    scan_source,
)
from .grading.runs import (
    SANDBOX_RETRIES,
    ZERO_CATEGORIES,
    ExerciseResult,
    StudentResult,
    TestResult,
    grade,
    grade_submission,
)
from .grading.sandbox import Pristine, Reaper, Settings
from .grading.submissions import Submission, find_submissions

__all__ = [
    "EXERCISE_MODULES",
    "ALLOWED_IMPORTS",
    "DENIED_ATTRIBUTES",
    "DENIED_NAMES",
    "DENIED_SUBMODULES",
    "MAX_FILE_BYTES",
    "REFERENCE_PACKAGES",
    "Finding",
    "allowed_import",
    "scan_source",
    "Settings",
    "Pristine",
    "Reaper",
    "Submission",
    "find_submissions",
    "TestInfo",
    "ExerciseInfo",
    "Catalog",
    "GraderError",
    "collect_catalog",
    "TestResult",
    "ExerciseResult",
    "StudentResult",
    "ZERO_CATEGORIES",
    "SANDBOX_RETRIES",
    "grade_submission",
    "grade",
    "format_table",
    "write_report",
    "gradescope_results",
    "write_gradescope",
    "main",
]

if __name__ == "__main__":
    sys.exit(main())
