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
* inside it the harness (tests/grading/harness.py) loads the files with a guarded ``__import__`` (no
  import of the reference), watches calls into the reference and caps printing while student code runs,
  checks after each exercise that the reference, pytest, torch's comparison functions and the test files
  are unchanged, and reports each test's outcome over a pipe, signed with a key only the harness received;
* the points come from the grader's own collection of the pristine tests, not from the submission.

See docs/exercises.md for the instructor's and the student's workflow, and for what this does and does not
guarantee (the threat model).

The first part of this module (the exercise list and the static scan) is shared with the harness.
"""

from __future__ import annotations

import argparse
import ast
import csv
import hashlib
import hmac
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

__all__ = [
    "EXERCISE_MODULES",
    "ALLOWED_IMPORTS",
    "Finding",
    "scan_source",
    "Settings",
    "Submission",
    "find_submissions",
    "collect_catalog",
    "grade",
    "write_report",
    "format_table",
    "main",
]

# ----------------------------------------------------------------------------------------------------------
# Shared rules: what a submission is, and what its files may contain
# ----------------------------------------------------------------------------------------------------------

#: The exercise files, one per course topic (the grader ignores every other file of a submission).
EXERCISE_MODULES = ("patches", "attention", "masks", "predictor", "ema", "losses", "schedules", "probe")

#: Top-level modules an exercise file may import (plus its sibling exercise files, relatively or as
#: ``exercises.<name>``).
ALLOWED_IMPORTS = frozenset(
    {
        "torch", "einops", "numpy", "math", "cmath", "typing", "typing_extensions", "__future__",
        "functools", "itertools", "collections", "dataclasses", "operator", "numbers", "abc", "enum",
        "copy", "random", "statistics", "warnings",
    }
)  # fmt: skip

#: Parts of torch that start processes, load code or compare results: not for exercise files.
DENIED_SUBMODULES = (
    "torch.multiprocessing", "torch.distributed", "torch.utils.cpp_extension", "torch.hub", "torch.package",
    "torch.testing", "torch.utils.data", "torch.cuda", "torch.backends",
)  # fmt: skip

#: The reference implementations: a submission that imports them is scored zero.
REFERENCE_PACKAGES = ("minijepa", "solutions")

#: Builtins an exercise file may not name (they open files, run code or reach the interpreter).
DENIED_NAMES = frozenset(
    {
        "__import__", "__builtins__", "__loader__", "__spec__", "exec", "eval", "compile", "open",
        "breakpoint", "exit", "quit", "globals", "locals", "vars",
    }
)  # fmt: skip

#: Attributes an exercise file may not use (module escape hatches and interpreter internals).
DENIED_ATTRIBUTES = frozenset(
    {
        "sys", "os", "subprocess", "multiprocessing", "importlib", "builtins", "ctypes", "hub",
        "cpp_extension", "_exit", "setprofile", "settrace", "_getframe", "__import__", "__builtins__",
        "__globals__", "__code__", "__closure__", "__subclasses__", "__bases__", "__base__", "__mro__",
        "__dict__", "__loader__", "__spec__", "f_globals", "f_locals", "f_back", "f_builtins", "gi_frame",
        "tb_frame", "cr_frame",
    }
)  # fmt: skip

MAX_FILE_BYTES = 256 * 1024
_REFERENCE_STRING = re.compile(r"(^|[/\\.\s])(minijepa|solutions)($|[/\\.])")


@dataclass(frozen=True)
class Finding:
    """A static-scan problem in one exercise file; ``function`` is None when it concerns the whole file."""

    module: str
    line: int
    function: str | None
    message: str

    def __str__(self) -> str:
        return f"{self.module}.py line {self.line}: {self.message}"


def allowed_import(name: str) -> str | None:
    """None if an exercise file may ``import name``, else why not."""
    top = name.partition(".")[0]
    if top in REFERENCE_PACKAGES:
        return f"imports the reference implementation ({name}): write your own code"
    if top == "exercises":
        rest = name.split(".")[1:]
        if not rest or (rest[0] in EXERCISE_MODULES and len(rest) == 1):
            return None
        return f"imports {name}: only the exercise files themselves can be imported from exercises"
    if top not in ALLOWED_IMPORTS or any(name == d or name.startswith(d + ".") for d in DENIED_SUBMODULES):
        return f"imports {name}: exercise files may only import torch, einops, numpy, math and a few standard modules"
    return None


def scan_source(source: str | bytes, module: str) -> list[Finding]:
    """Static checks of one exercise file; an empty list means nothing suspicious was found.

    Flags syntax errors, imports outside :data:`ALLOWED_IMPORTS` (the reference package in particular),
    names and attributes that reach interpreter internals, strings naming the reference package, and
    assignments to attributes of imported modules (monkeypatching). A finding inside a top-level function
    concerns that function only; anywhere else it concerns the whole file.
    """
    if isinstance(source, bytes):
        if len(source) > MAX_FILE_BYTES:
            return [Finding(module, 1, None, f"file is larger than {MAX_FILE_BYTES // 1024} KB")]
        try:
            source = source.decode("utf-8")
        except UnicodeDecodeError as error:
            return [Finding(module, 1, None, f"file is not UTF-8 text ({error.reason})")]
    try:
        tree = ast.parse(source, filename=f"{module}.py")
    except SyntaxError as error:
        return [Finding(module, error.lineno or 1, None, f"syntax error: {error.msg} (line {error.lineno})")]
    except ValueError as error:  # e.g. null bytes
        return [Finding(module, 1, None, f"cannot be parsed: {error}")]
    return _Scanner(module).run(tree)


class _Scanner(ast.NodeVisitor):
    def __init__(self, module: str):
        self.module = module
        self.findings: list[Finding] = []
        self.function: str | None = None  # the top-level function being visited
        self.imported: set[str] = set()  # names bound by imports anywhere in the file
        self.docstrings: set[int] = set()

    def run(self, tree: ast.Module) -> list[Finding]:
        for node in ast.walk(tree):
            if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                body = node.body
                if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                    self.docstrings.add(id(body[0].value))
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                for alias in node.names:
                    self.imported.add((alias.asname or alias.name).partition(".")[0])
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                self.function = node.name
                self.visit(node)
                self.function = None
            else:
                self.visit(node)
        return self.findings

    def flag(self, node: ast.AST, message: str) -> None:
        self.findings.append(Finding(self.module, getattr(node, "lineno", 1), self.function, message))

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            problem = allowed_import(alias.name)
            if problem:
                self.flag(node, problem)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level:
            target = (node.module or "").partition(".")[0]
            names = [a.name for a in node.names] if not node.module else [target]
            if node.level > 1 or any(n not in EXERCISE_MODULES for n in names):
                self.flag(node, "relative imports may only reach the other exercise files (from .masks import ...)")
            return
        problem = allowed_import(node.module or "")
        if problem:
            self.flag(node, problem)

    def visit_Name(self, node: ast.Name) -> None:
        if node.id in DENIED_NAMES:
            self.flag(node, f"uses {node.id} (not allowed in exercise files)")
        elif node.id in REFERENCE_PACKAGES:
            self.flag(node, f"refers to {node.id}, the reference implementation")

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if node.attr in DENIED_ATTRIBUTES:
            self.flag(node, f"uses .{node.attr} (not allowed in exercise files)")
        self.generic_visit(node)

    def visit_Constant(self, node: ast.Constant) -> None:
        if isinstance(node.value, str) and id(node) not in self.docstrings and _REFERENCE_STRING.search(node.value):
            self.flag(node, "names the reference implementation in a string")

    def _root(self, node: ast.AST) -> str | None:
        while isinstance(node, (ast.Attribute, ast.Subscript)):
            node = node.value
        return node.id if isinstance(node, ast.Name) else None

    def _check_targets(self, node: ast.AST, targets) -> None:
        for target in targets:
            for sub in ast.walk(target):
                if isinstance(sub, (ast.Attribute, ast.Subscript)) and self._root(sub) in self.imported:
                    self.flag(node, f"changes the library module {self._root(sub)} (monkeypatching is not allowed)")
                    return

    def visit_Assign(self, node: ast.Assign) -> None:
        self._check_targets(node, node.targets)
        self.generic_visit(node)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        self._check_targets(node, [node.target])
        self.generic_visit(node)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        self._check_targets(node, [node.target])
        self.generic_visit(node)

    def visit_Delete(self, node: ast.Delete) -> None:
        self._check_targets(node, node.targets)
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        if isinstance(node.func, ast.Name) and node.func.id in ("setattr", "delattr") and node.args:
            if self._root(node.args[0]) in self.imported:
                self.flag(node, f"changes the library module {self._root(node.args[0])} (monkeypatching is not allowed)")
        self.generic_visit(node)


# ----------------------------------------------------------------------------------------------------------
# Submissions: folders, zips, folders of submissions
# ----------------------------------------------------------------------------------------------------------

MAX_ZIP_MEMBERS = 5000
MAX_ZIP_BYTES = 64 * 1024 * 1024


@dataclass
class Submission:
    """One student's exercise files, read once into memory (``files``: module name -> bytes)."""

    name: str
    source: str
    files: dict[str, bytes] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _visible(path: Path) -> bool:
    return not path.name.startswith((".", "__")) and not path.is_symlink()


def _exercise_files(directory: Path) -> list[Path]:
    return [directory / f"{m}.py" for m in EXERCISE_MODULES if (directory / f"{m}.py").exists()]


def _locate(directory: Path, wrappers: bool) -> Path | None:
    """The folder holding the exercise files: ``directory``, its ``exercises/``, or (``wrappers``) inside
    a chain of single sub-folders, as zips made of one folder have."""
    for depth in range(4):
        if _exercise_files(directory):
            return directory
        if (directory / "exercises").is_dir() and _exercise_files(directory / "exercises"):
            return directory / "exercises"
        subdirs = [p for p in directory.iterdir() if p.is_dir() and _visible(p)]
        zips = [p for p in directory.iterdir() if p.suffix == ".zip" and _visible(p)]
        if not wrappers or len(subdirs) != 1 or zips:
            return None
        directory = subdirs[0]
    return None


def _read(directory: Path, name: str, source: str, notes: list[str]) -> Submission:
    submission = Submission(name, source, notes=list(notes))
    for path in _exercise_files(directory):
        if path.is_symlink() or not path.is_file():
            submission.notes.append(f"{path.name} is not a regular file: ignored")
            continue
        with open(path, "rb") as handle:
            submission.files[path.stem] = handle.read(MAX_FILE_BYTES + 1)  # the scan flags oversized files
    return submission


def _extract(archive: Path, workdir: Path) -> tuple[Path, list[str]]:
    """Extract the .py and .zip members of ``archive`` safely (no absolute paths, no '..', size limits)."""
    target = Path(tempfile.mkdtemp(prefix="unzip-", dir=workdir))
    notes: list[str] = []
    try:
        with zipfile.ZipFile(archive) as zf:
            total = 0
            for info in zf.infolist()[:MAX_ZIP_MEMBERS]:
                name = info.filename.replace("\\", "/")
                parts = [p for p in name.split("/") if p not in ("", ".")]
                if info.is_dir() or not parts or not parts[-1].endswith((".py", ".zip")):
                    continue
                if name.startswith("/") or ".." in parts or any(":" in p for p in parts):
                    notes.append(f"{archive.name}: unsafe path {info.filename!r} ignored")
                    continue
                if parts[0] == "__MACOSX" or any(p.startswith(".") for p in parts):
                    continue
                if (info.external_attr >> 16) & 0o170000 == 0o120000:
                    notes.append(f"{archive.name}: symbolic link {info.filename!r} ignored")
                    continue
                limit = MAX_FILE_BYTES + 1 if parts[-1].endswith(".py") else MAX_ZIP_BYTES
                with zf.open(info) as member:
                    data = member.read(limit)
                total += len(data)
                if total > MAX_ZIP_BYTES:
                    notes.append(f"{archive.name}: more than {MAX_ZIP_BYTES // 2**20} MB, the rest is ignored")
                    break
                dest = target.joinpath(*parts)
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.write_bytes(data)
            if len(zf.infolist()) > MAX_ZIP_MEMBERS:
                notes.append(f"{archive.name}: more than {MAX_ZIP_MEMBERS} files, the rest is ignored")
    except (zipfile.BadZipFile, OSError, RuntimeError, NotImplementedError) as error:
        notes.append(f"{archive.name} is not a readable zip file ({error})")
    return target, notes


def _open(path: Path, workdir: Path) -> tuple[Path, str, list[str]]:
    if path.is_file() and path.suffix.lower() == ".zip":
        root, notes = _extract(path, workdir)
        return root, path.stem, notes
    return path, path.name, []


def find_submissions(paths: list[str | Path], workdir: str | Path) -> list[Submission]:
    """Submissions named by ``paths`` (folders, zips, or folders/zips of submissions, one per student).

    Zips are extracted into ``workdir``. A folder given directly is one submission if it (or its
    ``exercises/`` folder) holds exercise files; otherwise each sub-folder or zip in it is one student.
    """
    workdir = Path(workdir)
    found: list[Submission] = []
    for given in paths:
        path = Path(given)
        if not path.exists():
            raise FileNotFoundError(f"no such submission: {path}")
        root, name, notes = _open(path, workdir)
        located = _locate(root, wrappers=path.is_file())
        if located is not None:
            found.append(_read(located, name, str(path), notes))
            continue
        children = sorted(
            p for p in root.iterdir() if _visible(p) and (p.is_dir() or p.suffix.lower() == ".zip")
        ) if root.is_dir() else []
        if not children:
            found.append(Submission(name, str(path), notes=notes + ["no exercise files found"]))
        for child in children:
            child_root, child_name, child_notes = _open(child, workdir)
            located = _locate(child_root, wrappers=True)
            if located is None:
                expected = ", ".join(f"{m}.py" for m in EXERCISE_MODULES)
                missing = f"no exercise files found (expected some of {expected})"
                found.append(Submission(child_name, str(child), notes=notes + child_notes + [missing]))
            else:
                found.append(_read(located, child_name, str(child), notes + child_notes))
    seen: dict[str, int] = {}
    for submission in found:  # unique names
        count = seen.get(submission.name, 0) + 1
        seen[submission.name] = count
        if count > 1:
            submission.name = f"{submission.name}-{count}"
    return found


# ----------------------------------------------------------------------------------------------------------
# Pristine copies, sandboxes and the test subprocess
# ----------------------------------------------------------------------------------------------------------


@dataclass
class Settings:
    timeout: float = 10.0  # seconds of wall-clock time per exercise
    memory_mb: int = 3072  # RLIMIT_DATA; the address space gets 4 GB more (torch alone maps ~3 GB)
    output_mb: int = 4  # RLIMIT_FSIZE: what the tests may print
    startup_timeout: float = 120.0  # python + torch + pytest collection, before the first test
    jobs: int = 1
    only: tuple[str, ...] = ()


@dataclass
class Pristine:
    """The graded tests and the reference package, read into memory when the grader starts."""

    tests: dict[str, bytes]
    reference: dict[str, bytes]

    @classmethod
    def load(cls, tests_dir: Path, reference_dir: Path | None = None) -> "Pristine":
        tests_dir = Path(tests_dir)
        reference_dir = Path(reference_dir or Path(__file__).resolve().parent)
        tests = {p.name: p.read_bytes() for p in sorted(tests_dir.glob("*.py"))}
        if "conftest.py" not in tests or "harness.py" not in tests:
            raise FileNotFoundError(f"{tests_dir} does not hold the graded tests (conftest.py, harness.py, test_*.py)")
        reference = {
            str(p.relative_to(reference_dir)): p.read_bytes()
            for p in sorted(reference_dir.rglob("*"))
            if p.is_file() and "__pycache__" not in p.parts and p.stat().st_size < 16 * 2**20
        }
        return cls(tests, reference)

    def digests(self) -> dict[str, str]:
        files = {f"tests/grading/{k}": v for k, v in self.tests.items()}
        files.update({f"ref/minijepa/{k}": v for k, v in self.reference.items()})
        files["pytest.ini"] = _PYTEST_INI
        return {k: hashlib.sha256(v).hexdigest() for k, v in files.items()}


_PYTEST_INI = b"[pytest]\n"

# Runs first in the subprocess: set the resource limits, then become pytest (limits survive exec).
_BOOT = """\
import json, os, resource, sys
for name, (soft, hard) in json.loads(sys.argv[1]).items():
    try:
        limit = getattr(resource, name)
        old_hard = resource.getrlimit(limit)[1]
        if old_hard != resource.RLIM_INFINITY:
            hard = min(hard, old_hard)
        resource.setrlimit(limit, (min(soft, hard), hard))
    except (AttributeError, ValueError, OSError):
        pass
os.execv(sys.executable, [sys.executable] + sys.argv[2:])
"""


def _make_sandbox(pristine: Pristine, files: dict[str, bytes], parent: Path) -> Path:
    root = Path(tempfile.mkdtemp(prefix="sandbox-", dir=parent))
    (root / "submission").mkdir()
    for module, data in files.items():
        (root / "submission" / f"{module}.py").write_bytes(data)
    for relative, data in [(f"tests/grading/{k}", v) for k, v in pristine.tests.items()] + [
        (f"ref/minijepa/{k}", v) for k, v in pristine.reference.items()
    ] + [("pytest.ini", _PYTEST_INI)]:
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        path.chmod(0o444)
    (root / "home").mkdir()
    (root / "tmp").mkdir()
    return root


def _remove(root: Path) -> None:
    def retry(function, path, _):
        try:
            os.chmod(path, 0o700)
            function(path)
        except OSError:
            pass

    if sys.version_info >= (3, 12):
        shutil.rmtree(root, onexc=retry)
    else:
        shutil.rmtree(root, onerror=retry)


def _sandbox_changes(root: Path, digests: dict[str, str]) -> list[str]:
    """Files of the sandbox outside the submission's folder (and HOME/TMPDIR) that differ from pristine."""
    skip = {"submission", "home", "tmp", "output.log"}
    seen, changed = set(), []
    for path in root.rglob("*"):
        relative = path.relative_to(root)
        if relative.parts[0] in skip or path.is_dir():
            continue
        key = relative.as_posix()
        seen.add(key)
        try:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
        except OSError:
            digest = None
        if digests.get(key) != digest:
            changed.append(key)
    return changed + [k for k in digests if k not in seen]


@dataclass
class _Run:
    records: list  # (time, record), signed by the harness
    forged: list  # (time, exercise) of lines that were not
    returncode: int
    stopped: str | None  # "timeout", "startup" or "deadline" when the grader killed it
    stopped_exercise: str | None
    log: str


class _Reader(threading.Thread):
    """Reads the harness's signed JSON lines from the pipe; remembers the exercise in progress."""

    def __init__(self, fd: int, key: bytes, limit: int = 32 * 2**20):
        super().__init__(daemon=True)
        self.fd, self.key, self.limit = fd, key, limit
        self.lock = threading.Lock()
        self.records: list = []
        self.forged: list = []
        self.current: tuple[str | None, float] = (None, 0.0)

    def run(self) -> None:
        buffer, total = b"", 0
        with os.fdopen(self.fd, "rb", buffering=0) as pipe:
            while True:
                chunk = pipe.read(65536)
                if not chunk:
                    break
                total += len(chunk)
                if total > self.limit:
                    continue  # keep draining, store nothing more
                buffer += chunk
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    self._line(line)
                if len(buffer) > 2**20:
                    self._forged()
                    buffer = b""

    def _forged(self) -> None:
        with self.lock:
            self.forged.append((time.monotonic(), self.current[0]))

    def _line(self, line: bytes) -> None:
        tag, _, payload = line.partition(b" ")
        expected = hmac.new(self.key, payload, hashlib.sha256).hexdigest().encode()
        if not hmac.compare_digest(tag, expected):
            return self._forged()
        try:
            record = json.loads(payload)
        except ValueError:
            return self._forged()
        if not isinstance(record, dict):
            return self._forged()
        now = time.monotonic()
        with self.lock:
            self.records.append((now, record))
            if record.get("event") == "start" and record.get("exercise") != self.current[0]:
                self.current = (record.get("exercise"), now)


def _log_excerpt(path: Path, head: int = 1500, tail: int = 3000) -> str:
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            if size <= head + tail:
                return f.read().decode("utf-8", "replace")
            start = f.read(head).decode("utf-8", "replace")
            f.seek(size - tail)
            return f"{start}\n... [{size - head - tail} bytes skipped] ...\n{f.read().decode('utf-8', 'replace')}"
    except OSError:
        return ""


def _run_tests(root: Path, test_files: list[str], only: list[str] | None, settings: Settings, collect: bool = False) -> _Run:
    key = secrets.token_bytes(32)
    key_r, key_w = os.pipe()
    report_r, report_w = os.pipe()
    os.write(key_w, key)
    os.close(key_w)
    mb = 2**20
    cpu = int(settings.startup_timeout + 2 * settings.timeout * max(1, len(only or [1])) + 30)
    limits = {
        "RLIMIT_DATA": (settings.memory_mb * mb, settings.memory_mb * mb),
        "RLIMIT_AS": ((settings.memory_mb + 4096) * mb, (settings.memory_mb + 4096) * mb),
        "RLIMIT_FSIZE": (settings.output_mb * mb, settings.output_mb * mb),
        "RLIMIT_CPU": (cpu, cpu + 5),
        "RLIMIT_CORE": (0, 0),
    }
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "HOME": str(root / "home"),
        "TMPDIR": str(root / "tmp"),
        "PYTHONPATH": str(root / "ref"),
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONNOUSERSITE": "1",
        "PYTHONHASHSEED": "0",
        "PYTHONUNBUFFERED": "1",
        "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "MALLOC_ARENA_MAX": "2",
        "MINIJEPA_SUBMISSION": str(root / "submission"),
        "MINIJEPA_SANDBOX": str(root),
        "MINIJEPA_MEMORY_MB": str(settings.memory_mb),
        "MINIJEPA_OUTPUT_MB": str(settings.output_mb),
        "MINIJEPA_GRADER_FDS": f"{key_r},{report_w}",
    }
    if only:
        env["MINIJEPA_GRADE_ONLY"] = ",".join(only)
    command = [
        sys.executable, "-c", _BOOT, json.dumps(limits), "-m", "pytest", "-c", str(root / "pytest.ini"),
        "--rootdir", str(root), "-p", "no:cacheprovider", "-s", "-q", "--tb=line", "-rN", "-o", "console_output_style=classic",
        *(["--collect-only"] if collect else []), *test_files,
    ]  # fmt: skip
    log_path = root / "output.log"
    reader = _Reader(report_r, key)
    with open(log_path, "wb") as log:
        try:
            process = subprocess.Popen(
                command, cwd=root, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                pass_fds=(key_r, report_w), start_new_session=True,
            )  # fmt: skip
        finally:
            os.close(key_r)
            os.close(report_w)
    reader.start()
    started = time.monotonic()
    deadline = settings.startup_timeout + settings.timeout * max(1, len(only or [1])) + 30
    stopped, stopped_exercise = None, None
    while True:
        try:
            returncode = process.wait(timeout=0.05)
            break
        except subprocess.TimeoutExpired:
            pass
        now = time.monotonic()
        with reader.lock:
            exercise, since = reader.current
        if exercise is None and now - started > settings.startup_timeout:
            stopped = "startup"
        elif exercise is not None and now - since > settings.timeout:
            stopped, stopped_exercise = "timeout", exercise
        elif now - started > deadline:
            stopped, stopped_exercise = "deadline", exercise
        if stopped:
            _kill(process)
            returncode = process.wait()
            break
    _kill(process)  # anything the tests left running in their process group
    reader.join(timeout=10)
    with reader.lock:
        return _Run(list(reader.records), list(reader.forged), returncode, stopped, stopped_exercise, _log_excerpt(log_path))


def _kill(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


# ----------------------------------------------------------------------------------------------------------
# The catalog of graded tests (from the pristine tests, in a subprocess without any student code)
# ----------------------------------------------------------------------------------------------------------


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


def collect_catalog(pristine: Pristine, settings: Settings, workdir: Path) -> Catalog:
    root = _make_sandbox(pristine, {}, Path(workdir))
    try:
        files = [f"tests/grading/{name}" for name in pristine.tests if name.startswith("test_")]
        run = _run_tests(root, files, None, settings, collect=True)
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


# ----------------------------------------------------------------------------------------------------------
# Grading one submission
# ----------------------------------------------------------------------------------------------------------

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


def grade_submission(
    submission: Submission, catalog: Catalog, pristine: Pristine, settings: Settings, workdir: Path
) -> StudentResult:
    """Grade one submission: static scan, then runs of the tests until every exercise is decided."""
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
    while pending:
        root = _make_sandbox(pristine, submission.files, workdir)
        try:
            run = _run_tests(root, catalog.test_files(pending), pending, settings)
            changed = _sandbox_changes(root, digests)
        finally:
            _remove(root)
        logs.append(run.log)
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
    catalog = collect_catalog(pristine, settings, workdir)

    def one(submission: Submission) -> StudentResult:
        try:
            result = grade_submission(submission, catalog, pristine, settings, workdir)
        except Exception as error:  # noqa: BLE001 - a grader bug must not cost the other students
            result = StudentResult(
                submission.name, submission.source,
                [_zero(e, f"internal grader error: {type(error).__name__}: {error}") for e in catalog.exercises],
                submission.notes, "", 0.0,
            )  # fmt: skip
        if progress:
            progress(result)
        return result

    with ThreadPoolExecutor(max_workers=max(1, settings.jobs)) as pool:
        results = list(pool.map(one, submissions))
    return catalog, results


# ----------------------------------------------------------------------------------------------------------
# Reports
# ----------------------------------------------------------------------------------------------------------


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
    return "\n".join(lines)


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
    """grades.csv (student x exercise), results.csv (one row per test), results.json (everything)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    names = [e.name for e in catalog.exercises]
    grades, tests, full = out / "grades.csv", out / "results.csv", out / "results.json"
    with open(grades, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["student", *names, "total", "max_total"])
        for r in results:
            writer.writerow([r.name, *[e.points for e in r.exercises], r.total, r.max_total])
    with open(tests, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["student", "exercise", "module", "test", "description", "points", "max_points", "outcome", "feedback"])
        for r in results:
            for e in r.exercises:
                for t in e.tests:
                    writer.writerow([r.name, e.name, e.module, t.id, t.description, t.points, t.max_points, t.outcome, t.feedback])
    full.write_text(json.dumps(_json(catalog, results, settings), indent=2), encoding="utf-8")
    return [grades, tests, full]


def _feedback(result: StudentResult) -> str:
    lines = [f"{result.name}: {result.total}/{result.max_total}"]
    for e in result.exercises:
        lines.append(f"  {e.name}: {e.points}/{e.max_points}{'  — ' + e.reason if e.status == 'zero' else ''}")
        for t in e.tests:
            mark = "✓" if t.outcome == "passed" else "✗"
            lines.append(f"    {mark} [{t.points}/{t.max_points}] {t.description}{'' if t.outcome == 'passed' else ': ' + t.feedback}")
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------------------
# Command line
# ----------------------------------------------------------------------------------------------------------


def _default_tests_dir() -> Path:
    return Path(__file__).resolve().parents[1] / "tests" / "grading"


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
    written = write_report(catalog, results, Path(args.out), settings)
    print(f"\nwrote {', '.join(str(p) for p in written)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
