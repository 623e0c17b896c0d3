"""Build the Gradescope autograder zip: ``setup.sh``, ``run_autograder`` and the project's grading files.

    python tools/build_autograder.py                 # -> dist/autograder.zip  (make autograder)
    python tools/build_autograder.py --out x.zip

Gradescope (https://gradescope-autograders.readthedocs.io/en/latest/specs/) unpacks the zip into
``/autograder/source``, runs ``setup.sh`` once when it builds the image, and ``run_autograder`` for each
submission, whose files are in ``/autograder/submission``; the scores go to ``/autograder/results/results.json``.
``setup.sh`` installs this project (its package, graded tests and dependencies, CPU-only torch) into a
virtual environment; ``run_autograder`` runs ``python -m minijepa.grade --gradescope`` on the submission.
Both read ``AUTOGRADER_ROOT`` (default ``/autograder``) and ``run_autograder`` reads ``PYTHON``, so the
same scripts can be tried on any machine (tests/test_grader.py does).

The zip is deterministic: same files, same bytes (fixed timestamps, sorted names).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: What the autograder needs of the project: the package (the grader and the reference it guards), the
#: graded tests, the packaging metadata (dependencies) and the licence/readme the metadata names.
INCLUDE = ("pyproject.toml", "README.md", "minijepa", "tests/grading")

SETUP_SH = """\
#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder image.
set -euo pipefail
ROOT="${AUTOGRADER_ROOT:-/autograder}"
if command -v apt-get >/dev/null && ! python3 -m venv --help >/dev/null 2>&1; then
    apt-get install -y python3 python3-venv python3-pip
fi
python3 -m venv "$ROOT/venv"
"$ROOT/venv/bin/python" -m pip install --upgrade pip
# CPU-only torch: the graded tests are tiny and Gradescope's machines have no GPU.
"$ROOT/venv/bin/python" -m pip install --extra-index-url https://download.pytorch.org/whl/cpu "$ROOT/source" \
    "pytest>=7.4"  # the graded tests run under pytest
"""

RUN_AUTOGRADER = """\
#!/usr/bin/env bash
# Gradescope runs this for every submission; the student's files are in $ROOT/submission.
set -uo pipefail
ROOT="${AUTOGRADER_ROOT:-/autograder}"
PYTHON="${PYTHON:-$ROOT/venv/bin/python}"
mkdir -p "$ROOT/results"
cd "$ROOT/source"
"$PYTHON" -m minijepa.grade "$ROOT/submission" --gradescope "$ROOT/results/results.json" --jobs 1 ${MINIJEPA_GRADE_ARGS:-}
"""


def project_files() -> list[Path]:
    """The files of INCLUDE that git tracks (so nothing untracked or ignored slips in), sorted; outside a git
    checkout, every file of INCLUDE but caches."""
    try:
        listed = subprocess.run(["git", "ls-files", "-z", *INCLUDE], cwd=ROOT, capture_output=True, check=True).stdout
        return sorted(ROOT / p for p in listed.decode().split("\0") if p)
    except (OSError, subprocess.CalledProcessError):
        found = []
        for name in INCLUDE:
            path = ROOT / name
            found += [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
        return sorted(found)


def _add(zf: zipfile.ZipFile, name: str, data: bytes, executable: bool = False) -> None:
    info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
    info.external_attr = (0o100755 if executable else 0o100644) << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    zf.writestr(info, data)


def build(out: Path) -> Path:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    temporary = out.with_suffix(out.suffix + ".tmp")
    with zipfile.ZipFile(temporary, "w") as zf:
        _add(zf, "setup.sh", SETUP_SH.encode(), executable=True)
        _add(zf, "run_autograder", RUN_AUTOGRADER.encode(), executable=True)
        for path in project_files():
            _add(zf, path.relative_to(ROOT).as_posix(), path.read_bytes())
    temporary.replace(out)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "dist" / "autograder.zip"))
    args = parser.parse_args(argv)
    path = build(Path(args.out))
    with zipfile.ZipFile(path) as zf:
        count = len(zf.namelist())
    print(f"wrote {path} ({count} files): upload it as the assignment's autograder on Gradescope")
    return 0


if __name__ == "__main__":
    sys.exit(main())
