"""Pristine copies, sandboxes and the test subprocess.

Each run gets a fresh folder with the submission's files and pristine copies of the graded tests and the
reference (made from memory), and one pytest process with resource limits, a minimal environment and a
signed result channel; :class:`Reaper` ends every process a run starts.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

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
        reference_dir = Path(reference_dir or Path(__file__).resolve().parents[1])  # the minijepa package
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


def make_undumpable() -> bool:
    """Make the grader's process undumpable (Linux): no process of the same (non-root) user, a test run's
    included, can then read its memory (the runs' keys) or open its descriptors (the result pipes) through
    /proc. Children start dumpable again (exec resets it), so this protects only this process."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True).prctl(4, 0, 0, 0, 0) == 0  # PR_SET_DUMPABLE = 4
    except (OSError, AttributeError):
        return False


class Reaper:
    """Ends every process a test run starts, even one that left the run's process group and session.

    On Linux the grader makes itself a *child subreaper* (``prctl(PR_SET_CHILD_SUBREAPER)``): a process
    that a run starts and then orphans (a daemon, a double fork, ``start_new_session=True``) is re-parented
    to the grader instead of to init, so after each run the grader kills and reaps every child of its own
    that is not a test process still running. Elsewhere only the run's process group is killed (the threat
    model in docs/exercises.md says so).
    """

    PR_SET_CHILD_SUBREAPER = 36

    def __init__(self):
        self.lock = threading.Lock()
        self.running: set[int] = set()  # pids of the test processes being waited for (added under lock)
        self.enabled = self._subreaper(1)

    def _subreaper(self, value: int) -> bool:
        if not sys.platform.startswith("linux"):
            return False
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            return libc.prctl(self.PR_SET_CHILD_SUBREAPER, value, 0, 0, 0) == 0
        except (OSError, AttributeError):
            return False

    @staticmethod
    def supported() -> bool:
        """Whether this system has child subreapers (Linux), without changing anything."""
        return sys.platform.startswith("linux") and Path("/proc/self/task").is_dir()

    def close(self, rounds: int = 20) -> None:
        """Sweep until no orphan is left (a killed process's own children are re-parented in turn), then
        stop being a subreaper."""
        for _ in range(rounds):
            if not self.sweep():
                break
            time.sleep(0.05)
        if self.enabled:
            self._subreaper(0)

    def finished(self, pid: int) -> None:
        with self.lock:
            self.running.discard(pid)
        self.sweep()

    @staticmethod
    def children() -> set[int]:
        """Pids of this process's children (all threads), from /proc."""
        found: set[int] = set()
        try:
            for task in os.listdir("/proc/self/task"):
                try:
                    with open(f"/proc/self/task/{task}/children") as f:
                        found.update(int(p) for p in f.read().split())
                except OSError:
                    pass
        except OSError:
            pass
        return found

    def sweep(self) -> list[int]:
        """Kill and reap the orphans re-parented to the grader; returns their pids."""
        if not self.enabled:
            return []
        with self.lock:
            strays = sorted(self.children() - self.running)
            for pid in strays:
                try:
                    os.kill(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
        for pid in strays:
            try:
                os.waitpid(pid, 0)
            except (ChildProcessError, OSError):
                pass
        return strays


def _run_tests(root: Path, test_files: list[str], only: list[str] | None, settings: Settings, collect: bool = False,
               digests: dict[str, str] | None = None, reaper: Reaper | None = None) -> _Run:
    """One pytest run in the sandbox ``root``; ``digests`` (module -> sha256) of the submission's files go to
    the harness with the key, and it loads only files that match them."""
    key = secrets.token_bytes(32)
    key_r, key_w = os.pipe()
    report_r, report_w = os.pipe()
    os.write(key_w, key + json.dumps({"files": digests or {}}).encode())
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
    with open(log_path, "wb") as log, (reaper.lock if reaper is not None else contextlib.nullcontext()):
        try:  # under the reaper's lock: no sweep of another run can take the new process for a stray
            process = subprocess.Popen(
                command, cwd=root, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                pass_fds=(key_r, report_w), start_new_session=True,
            )  # fmt: skip
            if reaper is not None:
                reaper.running.add(process.pid)
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
    if reaper is not None:
        reaper.finished(process.pid)  # ... and anything that left the group (re-parented to the grader)
    reader.join(timeout=10)
    with reader.lock:
        return _Run(list(reader.records), list(reader.forged), returncode, stopped, stopped_exercise, _log_excerpt(log_path))


def _kill(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
