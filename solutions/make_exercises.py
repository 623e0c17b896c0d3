"""Generate exercises/ from solutions/: one source for the stubs and their solutions.

In a solution file, the code between the lines ``### BEGIN SOLUTION`` and ``### END SOLUTION`` (inside a
function, after its docstring) is replaced in the exercise file by

    raise NotImplementedError("exercise 'patchify' is not implemented yet")

Everything else (imports, signatures, docstrings with shapes and hints) is copied, so stubs and solutions
cannot drift apart. Files without markers (``__init__.py``, ``check.py``) are copied unchanged. This script
itself is not copied.

    python solutions/make_exercises.py           # (re)write exercises/
    python solutions/make_exercises.py --check   # exit 1 if exercises/ is not what this would write

tests/test_grader.py runs the check.
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

BEGIN = "### BEGIN SOLUTION"
END = "### END SOLUTION"
SOLUTIONS = Path(__file__).resolve().parent
EXERCISES = SOLUTIONS.parent / "exercises"
HEADER = (
    "# Exercise file: write your code where the functions raise NotImplementedError.\n"
    "# (Generated from solutions/{name} by `python solutions/make_exercises.py`; graded by tests/grading/.)\n"
)


def render(source: str, name: str = "<solution>") -> str:
    """The exercise version of one solution file's text."""
    tree = ast.parse(source, filename=name)
    functions = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    lines = source.splitlines(keepends=True)
    out: list[str] = []
    i = 0
    found = False
    while i < len(lines):
        text = lines[i].strip()
        if text == END:
            raise ValueError(f"{name}:{i + 1}: {END} without {BEGIN}")
        if text != BEGIN:
            out.append(lines[i])
            i += 1
            continue
        found = True
        indent = lines[i][: len(lines[i]) - len(lines[i].lstrip())]
        inside = [f for f in functions if f.lineno < i + 1 <= (f.end_lineno or f.lineno)]
        if not inside:
            raise ValueError(f"{name}:{i + 1}: {BEGIN} must be inside a function")
        function = max(inside, key=lambda f: f.lineno)  # the innermost
        end = next((j for j in range(i + 1, len(lines)) if lines[j].strip() in (BEGIN, END)), None)
        if end is None or lines[end].strip() != END:
            raise ValueError(f"{name}:{i + 1}: {BEGIN} without a matching {END}")
        out.append(f"{indent}raise NotImplementedError(\"exercise '{function.name}' is not implemented yet\")\n")
        i = end + 1
    if not found:
        return source
    return HEADER.format(name=name) + "".join(out)


def expected_files(solutions: Path = SOLUTIONS) -> dict[str, str]:
    """{file name: text} of the exercises folder that ``solutions`` generates."""
    return {
        path.name: render(path.read_text(encoding="utf-8"), path.name)
        for path in sorted(solutions.glob("*.py"))
        if path.name != Path(__file__).name
    }


def differences(solutions: Path = SOLUTIONS, exercises: Path = EXERCISES) -> list[str]:
    """What differs between ``exercises`` and what ``solutions`` generates (empty when in step)."""
    wanted = expected_files(solutions)
    problems = []
    for name, text in wanted.items():
        path = exercises / name
        if not path.is_file():
            problems.append(f"exercises/{name} is missing")
        elif path.read_text(encoding="utf-8") != text:
            problems.append(f"exercises/{name} differs from what solutions/{name} generates")
    for path in sorted(exercises.glob("*.py")):
        if path.name not in wanted:
            problems.append(f"exercises/{path.name} has no counterpart in solutions/")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only check that exercises/ is up to date")
    args = parser.parse_args(argv)
    if args.check:
        problems = differences()
        for problem in problems:
            print(problem)
        if problems:
            print("run `python solutions/make_exercises.py` to regenerate exercises/ from solutions/")
        return 1 if problems else 0
    EXERCISES.mkdir(exist_ok=True)
    for name, text in expected_files().items():
        (EXERCISES / name).write_text(text, encoding="utf-8")
        print(f"wrote exercises/{name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
