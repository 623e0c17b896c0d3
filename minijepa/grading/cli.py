"""The command line: ``python -m minijepa.grade`` (see minijepa/grade.py for what it does)."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from .catalog import GraderError
from .report import _feedback, format_table, write_gradescope, write_report
from .runs import StudentResult, grade
from .sandbox import Pristine, Settings
from .submissions import _one, find_submissions

def _default_tests_dir() -> Path:
    return Path(__file__).resolve().parents[2] / "tests" / "grading"  # minijepa/grading/cli.py -> the repository


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m minijepa.grade",
        description="Grade exercise submissions with the graded tests; print a table and write CSV and JSON reports.",
    )
    parser.add_argument("submissions", nargs="+", help="a folder or .zip of exercise files, or a folder of them (one per student)")
    parser.add_argument("--out", default="grades", help="folder for grades.csv, results.csv and results.json (default: grades)")
    parser.add_argument("--timeout", type=float, default=Settings.timeout, help="seconds per exercise (default: %(default)s)")
    parser.add_argument("--memory-mb", type=int, default=Settings.memory_mb, help="memory limit in MB (default: %(default)s)")
    parser.add_argument("--output-mb", type=int, default=Settings.output_mb, help="output limit in MB (default: %(default)s)")
    parser.add_argument("--jobs", type=int, default=min(4, os.cpu_count() or 1), help="submissions graded at once (default: %(default)s)")
    parser.add_argument("--only", default="", help="comma-separated exercises to grade (default: all)")
    parser.add_argument("--tests", default=None, help="folder of the graded tests (default: tests/grading next to this package)")
    parser.add_argument("-v", "--verbose", action="store_true", help="also print every test's result and feedback")
    parser.add_argument("--gradescope", default=None, metavar="RESULTS_JSON",
                        help="grade ONE submission and write Gradescope's results.json there (instead of --out's files)")
    args = parser.parse_args(argv)
    settings = Settings(
        timeout=args.timeout, memory_mb=args.memory_mb, output_mb=args.output_mb, jobs=args.jobs,
        only=tuple(e for e in args.only.split(",") if e),
    )  # fmt: skip
    try:
        pristine = Pristine.load(Path(args.tests) if args.tests else _default_tests_dir())
    except FileNotFoundError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="minijepa-grade-") as tmp:
        workdir = Path(tmp)
        try:
            if args.gradescope:  # one student's upload (Gradescope's /autograder/submission), whatever its layout
                if len(args.submissions) != 1 or not Path(args.submissions[0]).exists():
                    raise FileNotFoundError(f"--gradescope takes one existing submission folder, got {args.submissions}")
                submissions = [_one(Path(args.submissions[0]), workdir, [], wrappers=True)]
            else:
                submissions = find_submissions(args.submissions, workdir)
        except FileNotFoundError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        print(f"grading {len(submissions)} submission(s) ...", file=sys.stderr, flush=True)

        def progress(result: StudentResult) -> None:
            print(f"  {result.name}: {result.total}/{result.max_total} ({result.seconds:.1f} s)", file=sys.stderr, flush=True)

        try:
            catalog, results = grade(submissions, pristine, settings, workdir, progress)
        except GraderError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
    print(format_table(catalog, results))
    if args.verbose:
        print()
        print("\n\n".join(_feedback(r) for r in results))
    if args.gradescope:
        print(f"\nwrote {write_gradescope(catalog, results, Path(args.gradescope))}")
        return 0
    written = write_report(catalog, results, Path(args.out), settings)
    print(f"\nwrote {', '.join(str(p) for p in written)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
