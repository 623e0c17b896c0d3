"""The grading harness: how the graded tests load a submission, call it, and report what happened.

The submission is the folder named by the environment variable ``MINIJEPA_SUBMISSION`` (default: the
repository's ``solutions/``, so that a plain ``pytest tests`` checks the reference answers).

Two processes take part. The **test process** (pytest: conftest.py and the test modules) never runs
student code: the ``fn`` fixture is a :class:`Remote`, whose calls go to a **worker** process of the
exercise's own (worker.py) and come back as plain data (wire.py); the comparison with the reference
happens in the test process. In the worker, the exercise files are loaded by path as modules of a private
package (so ``exercises`` and ``solutions`` never shadow each other, and ``from .masks import
gather_tokens`` works between exercise files), inside the exercise's first call: a file that does not
import fails its own tests and nothing else.

Safety nets in the worker, in the order they act:

* static scan (:func:`minijepa.grading.rules.scan_source`): a flagged file or function is not run;
* the module's ``__builtins__`` have a guarded ``__import__`` (only torch, einops, numpy and a few standard
  modules) and no ``open``/``exec``/``eval``/``compile``;
* every call of a student function runs under a profiler hook that records calls into the reference
  package (``minijepa``) or ``solutions/``, except the ones an exercise allows (the predictor may call
  the reference Transformer blocks it is given); under the grader, with ``sys.stdout``/``sys.stderr``
  replaced by a sink that fails the call past ``MINIJEPA_OUTPUT_MB``; global state it changes is undone
  and blamed on it;
* after the last test of each exercise: the functions of the reference, of ``torch``, ``torch.testing``
  and ``torch.Tensor`` must be unchanged since before the file was loaded; and (in the test process, under
  the grader) the files next to the submission; otherwise that test fails as tampering (and the grader
  scores the exercise zero).

Under the grader (``minijepa.grade``) the results go over a pipe whose HMAC key the test process reads
from an inherited file descriptor before any worker exists; with ``MINIJEPA_GRADING_REPORT=path`` they are
written as JSON lines to ``path`` (used by tests/test_grader.py). Neither changes what the tests check.
"""

from __future__ import annotations

import builtins
import errno
import gc
import hashlib
import hmac
import importlib
import importlib.abc
import importlib.util
import inspect
import io
import json
import math
import os
import pickle
import signal
import sys
import threading
import types
from pathlib import Path

import torch
import torch.nn as nn

import minijepa
from minijepa.grading import rules

from . import wire

HERE = Path(__file__).resolve().parent
PACKAGE = __name__.rpartition(".")[0]  # "grading" (or "tests.grading" if tests/ becomes a package)
REPOSITORY = HERE.parents[1]
REFERENCE_DIR = Path(minijepa.__file__).resolve().parent


def submission_dir() -> Path:
    """The folder whose exercise files are graded: $MINIJEPA_SUBMISSION, else the repository's solutions/."""
    chosen = os.environ.get("MINIJEPA_SUBMISSION")
    return Path(chosen).resolve() if chosen else REPOSITORY / "solutions"


class GradingFailure(AssertionError):
    """A test failure with a category the grader understands (``not_implemented``, ``import``, ``memory``...).

    Categories that make the grader score the whole exercise zero: ``static``, ``reference``, ``exit``,
    ``memory``, ``tamper``.
    """

    def __init__(self, message: str, category: str = "failed"):
        super().__init__(message)
        self.category = category
        raised.append(self)


raised: list[GradingFailure] = []  # failures raised during the current test (read by conftest.py)


# ----------------------------------------------------------------------------------------------------------
# Loading the submission
# ----------------------------------------------------------------------------------------------------------

_REMOVED_BUILTINS = ("open", "exec", "eval", "compile", "breakpoint", "input", "exit", "quit", "help")
_modules: dict[str, object] = {}  # exercise module -> module, or (message, category) when it failed


def _guarded_builtins(package: str) -> dict:
    guarded = dict(builtins.__dict__)
    for name in _REMOVED_BUILTINS:
        guarded.pop(name, None)
    real_import = builtins.__import__

    def __import__(name, globals=None, locals=None, fromlist=(), level=0):  # noqa: A002
        if level == 0:
            problem = rules.allowed_import(name)
            if problem:
                raise ImportError(f"{name}: this exercise file {problem.split(': ', 1)[-1]}")
            if name.partition(".")[0] == "exercises":  # the student's own files, wherever they are graded
                name = package + name[len("exercises"):]
        return real_import(name, globals, locals, fromlist, level)

    guarded["__import__"] = __import__
    return guarded


_sources: dict[tuple[str, str], bytes] = {}  # (submission folder, module) -> the bytes checked, scanned and run


def source(module_name: str) -> bytes:
    """The submitted file's bytes, read once; under the grader they must match the digest it sent.

    The scan and the import both use these bytes, so what runs is what was scanned and submitted, whatever
    writes into the folder afterwards.
    """
    key = (str(submission_dir()), module_name)
    if key not in _sources:
        data = (submission_dir() / f"{module_name}.py").read_bytes()
        expected = channel().digests.get(module_name)
        if channel().grader and expected != hashlib.sha256(data).hexdigest():
            raise GradingFailure(f"{module_name}.py on disk is not the submitted file (changed by another process)", "sandbox")
        _sources[key] = data
    return _sources[key]


_GUARDED_IMPORT = next(c for c in _guarded_builtins.__code__.co_consts if isinstance(c, types.CodeType) and c.co_name == "__import__")


class _SubmissionLoader(importlib.abc.Loader):
    def __init__(self, path: Path, package: str):
        self.path, self.package = path, package

    def create_module(self, spec):
        return None

    def get_source(self, fullname: str) -> str:
        return importlib.util.decode_source(source(self.path.stem))  # PEP 263, as the import decodes it

    def exec_module(self, module: types.ModuleType) -> None:
        code = compile(source(self.path.stem), str(self.path), "exec", dont_inherit=True)
        module.__dict__["__builtins__"] = _guarded_builtins(self.package)
        exec(code, module.__dict__)


class _SubmissionFinder(importlib.abc.MetaPathFinder):
    """Serves ``<package>.<exercise module>`` from the submission folder, and nothing else."""

    def __init__(self, package: str, directory: Path):
        self.package, self.directory = package, directory

    def find_spec(self, fullname, path=None, target=None):
        head, _, name = fullname.rpartition(".")
        if head != self.package:
            return None
        file = self.directory / f"{name}.py"
        if name not in rules.EXERCISE_MODULES or not file.is_file():
            return None
        return importlib.util.spec_from_file_location(fullname, file, loader=_SubmissionLoader(file, self.package))


def package() -> tuple[str, Path]:
    """The private package the submission's files are imported into (its import hook is installed once)."""
    directory = submission_dir()
    name = "_submission_" + hashlib.sha1(str(directory).encode()).hexdigest()[:12]
    if name not in sys.modules:
        module = types.ModuleType(name, f"the exercise files in {directory}")
        module.__path__ = []  # submodules come only from _SubmissionFinder
        module.__package__ = name
        sys.modules[name] = module
        sys.meta_path.insert(0, _SubmissionFinder(name, directory))
    return name, directory


_findings: dict[str, list] = {}


def findings(module_name: str) -> list:
    """Static-scan findings of one of the submission's files (cached)."""
    if module_name not in _findings:
        path = submission_dir() / f"{module_name}.py"
        _findings[module_name] = rules.scan_source(source(module_name), module_name) if path.is_file() else []
    return _findings[module_name]


def _describe(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    where = ""
    tb = error.__traceback__
    while tb is not None:  # the last frame inside the submission
        if Path(tb.tb_frame.f_code.co_filename).parent == submission_dir():
            where = f" (line {tb.tb_lineno})"
        tb = tb.tb_next
    return f"{type(error).__name__}{': ' + text[0][:200] if text else ''}{where}"


def load(module_name: str) -> types.ModuleType:
    """Import the submission's ``<module_name>.py`` (once per process); raise GradingFailure if impossible."""
    cached = _modules.get(module_name)
    if isinstance(cached, tuple):
        raise GradingFailure(*cached)
    if cached is not None:
        return cached
    package_name, directory = package()
    path = directory / f"{module_name}.py"
    failure = None
    if not path.is_file():
        failure = (f"{module_name}.py was not submitted", "missing")
    else:
        try:
            whole_file = [f for f in findings(module_name) if f.function is None]
        except GradingFailure as error:  # the file on disk is not the submitted one
            whole_file, failure = [], (str(error), error.category)
        if whole_file:
            failure = (f"{whole_file[0]}", "static")
    if failure is None:
        report({"event": "import", "module": module_name, "phase": "start"})
        try:  # import-time code is student code too: same watch on the reference, output and memory
            module = run_student_code(f"importing {module_name}.py", (), importlib.import_module, f"{package_name}.{module_name}")
        except GradingFailure as error:
            failure = (str(error), error.category)
        except BaseException as error:  # noqa: BLE001 - any exception raised at import time
            failure = (f"could not import {module_name}.py: {_describe(error)}", "import")
        if failure is not None:
            sys.modules.pop(f"{package_name}.{module_name}", None)
        report({"event": "import", "module": module_name, "phase": "end", "ok": failure is None})
    if failure is not None:
        _modules[module_name] = failure
        raise GradingFailure(*failure)
    _modules[module_name] = module
    return module


def student(module_name: str, name: str, allow: tuple[str, ...] = ()):
    """The submission's function ``name`` from ``<module_name>.py``, wrapped by :class:`Guarded`."""
    module = load(module_name)
    flagged = [f for f in findings(module_name) if f.function == name]
    if flagged:
        raise GradingFailure(str(flagged[0]), "static")
    function = vars(module).get(name)
    if function is None:
        raise GradingFailure(f"{module_name}.py has no function {name}", "missing")
    if not callable(function):
        raise GradingFailure(f"{name} in {module_name}.py is not a function", "failed")
    foreign = _foreign_code(function)
    if foreign is not None:
        origin = Path(foreign.co_filename)
        where = f"{origin.parent.name}/{origin.name}" if origin.parent.name in ("minijepa", "solutions") else str(origin)
        raise GradingFailure(f"{name} is not defined in your exercise files (it is {where}: {foreign.co_name})", "reference")
    return Guarded(function, name, allow)


def _foreign_code(function) -> types.CodeType | None:
    """None if ``function`` is the student's own, else the code object that shows it is not.

    A function wrapped by a decorator (``@torch.no_grad()``, ``functools.wraps`` ...) is the student's if
    the chain of ``__wrapped__`` ends in the submission's files, no link of it is the reference's, and each
    wrapper really calls what its ``__wrapped__`` names (it is in the wrapper's closure: a label stuck on
    another function proves nothing). Everything is read from the objects themselves, never through
    ``getattr``, which could run code.
    """
    seen = 0
    while True:
        code = function.__code__ if isinstance(function, types.FunctionType) else inspect.getattr_static(function, "__code__", None)
        if not isinstance(code, types.CodeType):
            return None  # not a Python function (a class, a partial): the reference watch judges its calls
        filename = code.co_filename
        if Path(filename).resolve().parent == submission_dir():
            return code if _fingerprint(code) in _reference_fingerprints(_forbidden_prefixes()) else None  # relabelled
        inner = function.__dict__.get("__wrapped__") if isinstance(function, types.FunctionType) else None
        if inner is None or filename.startswith(_forbidden_prefixes()) or seen >= 16:
            return code
        if not any(_cell(c) is inner for c in function.__closure__ or ()):
            return code
        function, seen = inner, seen + 1


def _cell(cell):
    try:
        return cell.cell_contents
    except ValueError:  # an empty cell
        return None


# ----------------------------------------------------------------------------------------------------------
# Calling student code
# ----------------------------------------------------------------------------------------------------------


_prefixes: dict = {}  # $MINIJEPA_SUBMISSION -> the prefixes (resolving paths costs more than a student call)


def _forbidden_prefixes() -> tuple[str, ...]:
    key = os.environ.get("MINIJEPA_SUBMISSION")
    if key not in _prefixes:
        prefixes = [str(REFERENCE_DIR) + os.sep]
        solutions = (REPOSITORY / "solutions").resolve()
        if solutions != submission_dir():
            prefixes.append(str(solutions) + os.sep)
        _prefixes[key] = tuple(prefixes)
    return _prefixes[key]


class _ReferenceWatch:
    """Profiler hook: remembers the first entry into the reference (or solutions/) from student code.

    An entry is a call of reference code whose nearest caller that is reference or student code (looking
    through library frames such as torch's ``Module.__call__``) is student code, or no such caller at all
    (the "student function" is a reference function). Entries named in ``allow`` ("vit.py:forward") are
    fine, and so is everything the reference calls from there.
    """

    def __init__(self, allow: tuple[str, ...]):
        self.allow = set(allow)
        self.prefixes = _forbidden_prefixes()
        self.student = str(submission_dir()) + os.sep
        self.harness = str(HERE) + os.sep
        self.violation: str | None = None
        self.tampered = False
        self.fingerprints = _reference_fingerprints(self.prefixes)
        self.checked: dict[int, tuple] = {}  # id(code) -> (code, is a relabelled reference code)

    def hook(self, frame, event, arg):
        if event != "call" or self.violation is not None:
            return
        code = frame.f_code
        if not code.co_filename.startswith(self.prefixes):
            if code.co_filename.startswith(self.student):
                seen = self.checked.get(id(code))
                if seen is None or seen[0] is not code:
                    seen = self.checked[id(code)] = (code, _fingerprint(code) in self.fingerprints)
                if seen[1]:
                    where = Path(self.fingerprints[_fingerprint(code)])
                    self.violation = f"{where.parent.name}/{where.name}: {_qualname(code)}, relabelled as your file's"
            return
        caller = frame.f_back
        while caller is not None:
            filename = caller.f_code.co_filename
            if filename.startswith(self.prefixes):
                return  # called by the reference itself: only its entry is judged
            if filename.startswith(self.harness):
                if caller.f_code is _GUARDED_IMPORT:
                    return  # the guarded __import__ asks minijepa.grading.rules
                break  # straight from the harness's call: the "student function" is the reference (a partial...)
            if filename.startswith(self.student):
                break
            caller = caller.f_back
        if f"{os.path.basename(code.co_filename)}:{code.co_name}" not in self.allow:
            where = Path(code.co_filename)
            self.violation = f"{where.parent.name}/{where.name}: {getattr(code, 'co_qualname', code.co_name)}"

    def __enter__(self):
        self.previous = sys.getprofile()
        self.previous_threads = threading.getprofile()
        self.installed = self.hook  # one bound-method object, to recognise it afterwards
        threading.setprofile(self.installed)  # threads the student code starts are watched too
        sys.setprofile(self.installed)
        return self

    def __exit__(self, *exc):
        self.tampered = sys.getprofile() is not self.installed or threading.getprofile() is not self.installed
        sys.setprofile(self.previous)
        threading.setprofile(self.previous_threads)
        return False


def _qualname(code: types.CodeType) -> str:
    return getattr(code, "co_qualname", code.co_name)


def _fingerprint(code: types.CodeType) -> tuple:
    """What a copy of a code object keeps when it is relabelled (``code.replace(co_filename=...)``)."""
    return code.co_code, _qualname(code), code.co_firstlineno, code.co_argcount


_fingerprints: dict = {"modules": None, "codes": {}}


def _module_file(module) -> str:
    """A module's ``__file__``, read without running any code of it (a student module could define anything)."""
    try:
        value = vars(module).get("__file__")
    except TypeError:
        return ""
    return value if type(value) is str else ""


def _reference_fingerprints(prefixes: tuple[str, ...]) -> dict:
    """Fingerprint -> file of every code object of the loaded reference modules (cached per set of modules)."""
    if _fingerprints.get("key") == (len(sys.modules), prefixes):
        return _fingerprints["codes"]
    _fingerprints["key"] = (len(sys.modules), prefixes)
    loaded = tuple(sorted(n for n, m in list(sys.modules.items()) if _module_file(m).startswith(prefixes)))
    if loaded != _fingerprints["modules"]:
        codes: dict = {}
        for name in loaded:
            stack = list(vars(sys.modules[name]).values())
            seen: set[int] = set()
            while stack:
                value = stack.pop()
                if id(value) in seen:
                    continue
                seen.add(id(value))
                if isinstance(value, types.CodeType):
                    if value.co_filename.startswith(prefixes):
                        codes[_fingerprint(value)] = value.co_filename
                        stack.extend(c for c in value.co_consts if isinstance(c, types.CodeType))
                elif isinstance(value, (types.FunctionType, types.MethodType)):
                    stack.append(getattr(value, "__code__", None) or getattr(value.__func__, "__code__", None))
                    stack.extend(value.__dict__.values() if isinstance(value, types.FunctionType) else ())
                elif isinstance(value, (staticmethod, classmethod)):
                    stack.append(value.__func__)
                elif isinstance(value, property):
                    stack.extend(f for f in (value.fget, value.fset, value.fdel) if f is not None)
                elif isinstance(value, type) and getattr(value, "__module__", None) == name:
                    stack.extend(vars(value).values())
        _fingerprints.update(modules=loaded, codes=codes)
    return _fingerprints["codes"]


def _out_of_memory(error: BaseException) -> bool:
    text = str(error).lower()
    return isinstance(error, MemoryError) or (
        isinstance(error, RuntimeError)
        and any(s in text for s in ("can't allocate memory", "not enough memory", "out of memory", "cannot allocate"))
    )


class OutputLimit(BaseException):
    """Raised into student code that prints more than the grader allows."""


class _CappedOutput(io.TextIOBase):
    """Stands in for sys.stdout / sys.stderr during student calls under the grader: counts, discards, and
    raises OutputLimit past the limit (so a print flood fails its exercise instead of filling the disk)."""

    def __init__(self, limit: int):
        self.limit, self.count = limit, 0

    def writable(self) -> bool:
        return True

    def write(self, text) -> int:
        self.count += len(text)
        if self.count > self.limit:
            raise OutputLimit(f"printed more than {self.limit // 2**20} MB")
        return len(text)


def _output_limit() -> int | None:
    value = os.environ.get("MINIJEPA_OUTPUT_MB")
    return int(float(value) * 2**20) if value and channel().grader else None


def global_state() -> dict:
    """The process-wide settings that one exercise's code could change to break another's tests.

    Compared before and after every call of student code (its import included): a change is restored at
    once and blamed on the call that made it, so it can never cost a later exercise its points.
    """
    state = {
        "torch.is_grad_enabled()": torch.is_grad_enabled(),
        "torch.is_inference_mode_enabled()": torch.is_inference_mode_enabled(),
        "torch.get_default_dtype()": torch.get_default_dtype(),
        "torch.get_default_device()": str(torch.get_default_device()),
        "torch.get_num_threads()": torch.get_num_threads(),
        "torch.are_deterministic_algorithms_enabled()": torch.are_deterministic_algorithms_enabled(),
        "torch.is_anomaly_enabled()": torch.is_anomaly_enabled(),
        "torch function modes": torch._C._len_torch_function_stack(),
        "torch dispatch modes": torch._C._len_torch_dispatch_stack(),
        "sys.gettrace()": sys.gettrace(),
        "sys.getrecursionlimit()": sys.getrecursionlimit(),
        "sys.excepthook": sys.excepthook,
        "sys.meta_path": tuple(sys.meta_path),
        "threading.settrace": threading.gettrace(),
        "threading.setprofile": threading.getprofile(),
        "running threads": frozenset(t.ident for t in threading.enumerate()),
        "os.environ": _environment(),
        "working directory": os.getcwd(),
        "gc.isenabled()": gc.isenabled(),
        "gc.callbacks": tuple(gc.callbacks),
        "signal handlers": tuple(_handler(n) for n in _SIGNALS),
    }
    if hasattr(signal, "getitimer"):
        state["pending alarm"] = any(signal.getitimer(t)[0] > 0 for t in _TIMERS)
    return state


# The signals a run can receive without help from outside (timers, children, pipes, limits, a terminal):
# a handler or a pending timer of one exercise could end another exercise's tests.
_SIGNALS = tuple(getattr(signal, n) for n in ("SIGALRM", "SIGVTALRM", "SIGPROF", "SIGCHLD", "SIGPIPE", "SIGXCPU",
                                              "SIGXFSZ", "SIGTERM", "SIGINT", "SIGHUP", "SIGUSR1", "SIGUSR2",
                                              "SIGSEGV", "SIGFPE", "SIGABRT") if hasattr(signal, n))  # fmt: skip
_TIMERS = tuple(getattr(signal, n) for n in ("ITIMER_REAL", "ITIMER_VIRTUAL", "ITIMER_PROF") if hasattr(signal, n))


def _environment() -> tuple:
    """The environment as it is stored (cheap: this runs around every student call); pytest's own entry,
    PYTEST_CURRENT_TEST, is left out."""
    data = getattr(os.environ, "_data", None)
    items = data.items() if isinstance(data, dict) else ((k.encode(), v.encode()) for k, v in os.environ.items())
    return tuple(kv for kv in items if kv[0] != b"PYTEST_CURRENT_TEST")


def _handler(number):
    try:
        return signal.getsignal(number)
    except (ValueError, OSError):
        return None


def _restore(before: dict, changed: list[str]) -> None:
    """Put back what a student call changed (best effort; the call is failed either way)."""
    setters = {
        "torch.is_grad_enabled()": torch.set_grad_enabled,
        "torch.get_default_dtype()": torch.set_default_dtype,
        "torch.get_default_device()": torch.set_default_device,
        "torch.get_num_threads()": torch.set_num_threads,
        "torch.are_deterministic_algorithms_enabled()": torch.use_deterministic_algorithms,
        "torch.is_anomaly_enabled()": torch.autograd.set_detect_anomaly,
        "sys.gettrace()": sys.settrace,
        "sys.getrecursionlimit()": sys.setrecursionlimit,
        "threading.settrace": threading.settrace,
        "threading.setprofile": threading.setprofile,
        "working directory": os.chdir,
    }
    for what in changed:
        try:
            if what in setters:
                setters[what](before[what])
            elif what == "sys.excepthook":
                sys.excepthook = before[what]
            elif what == "sys.meta_path":
                sys.meta_path[:] = list(before[what])
            elif what == "os.environ":
                current = os.environ.get("PYTEST_CURRENT_TEST")
                os.environ.clear()
                os.environ.update({os.fsdecode(k): os.fsdecode(v) for k, v in before[what]})
                if current is not None:
                    os.environ["PYTEST_CURRENT_TEST"] = current
            elif what == "gc.isenabled()":
                gc.enable() if before[what] else gc.disable()
            elif what == "gc.callbacks":
                gc.callbacks[:] = list(before[what])
            elif what == "signal handlers":
                for number, handler in zip(_SIGNALS, before[what]):
                    if handler is not None and signal.getsignal(number) is not handler:
                        signal.signal(number, handler)
            elif what == "pending alarm":
                for timer in _TIMERS:
                    signal.setitimer(timer, 0)
            elif what == "torch.is_inference_mode_enabled()":
                torch._C._set_grad_enabled(torch.is_grad_enabled())  # leaving inference mode needs its guard object
            elif what == "torch function modes":
                while torch._C._len_torch_function_stack() > before[what]:
                    torch._C._pop_torch_function_stack()
            elif what == "torch dispatch modes":
                while torch._C._len_torch_dispatch_stack() > before[what]:
                    torch._C._pop_torch_dispatch_stack()
        except Exception:  # noqa: BLE001 - restoring is best effort; the blame is already decided
            pass


def _state_changes(before: dict) -> list[str]:
    after = global_state()
    changed = [k for k, v in before.items() if after.get(k) != v]
    if "running threads" in changed and not (after["running threads"] - before["running threads"]):
        changed.remove("running threads")  # a thread of its own that ended is no harm
    return changed


def run_student_code(name: str, allow: tuple[str, ...], function, *args, **kwargs):
    """``function(*args, **kwargs)`` (student code) with calls into the reference watched and, under the
    grader, output capped; special failures become GradingFailures with clear messages and categories.

    Global state (grad mode, default dtype, trace hooks, torch modes, threads ...: :func:`global_state`) that
    the call changes is put back and fails the call as tampering."""
    watch = _ReferenceWatch(allow)
    limit = _output_limit()
    saved = sys.stdout, sys.stderr
    sink = _CappedOutput(limit) if limit else None
    before = global_state()
    if sink is not None:
        sys.stdout = sys.stderr = sink
    try:
        with watch:
            result = function(*args, **kwargs)
    except BaseException as error:  # noqa: BLE001
        _state_verdict(name, before)
        _verdict(name, watch)
        translated = _translate(name, error)
        if translated is error:
            raise
        raise translated from None
    finally:
        sys.stdout, sys.stderr = saved
    _state_verdict(name, before)
    _verdict(name, watch)
    if sink is not None and sink.count > sink.limit:  # the student caught OutputLimit and went on
        raise _translate(name, OutputLimit())
    return result


def _state_verdict(name: str, before: dict) -> None:
    changed = _state_changes(before)
    if changed:
        _restore(before, changed)
        raise GradingFailure(f"{name} changed the process's global state ({', '.join(changed[:3])}): "
                             "exercises must leave it as they found it", "tamper")


def _verdict(name: str, watch: _ReferenceWatch) -> None:
    if watch.violation:
        raise GradingFailure(f"{name} calls the reference implementation ({watch.violation}): write your own", "reference")
    if watch.tampered:
        raise GradingFailure(f"{name} changed the profiler", "tamper")


def _translate(name: str, error: BaseException) -> BaseException:
    if isinstance(error, NotImplementedError):
        return GradingFailure(f"{name} is not implemented yet", "not_implemented")
    if _out_of_memory(error):
        limit = os.environ.get("MINIJEPA_MEMORY_MB")
        return GradingFailure(f"{name} ran out of memory{f' (limit {limit} MB)' if limit else ''}", "memory")
    if isinstance(error, OutputLimit) or (isinstance(error, OSError) and error.errno == errno.EFBIG):
        mb = os.environ.get("MINIJEPA_OUTPUT_MB", "?")
        return GradingFailure(f"{name} printed more than {mb} MB (the grader's limit)", "output")
    if isinstance(error, SystemExit):
        return GradingFailure(f"{name} raised SystemExit (sys.exit is not allowed in exercises)", "exit")
    if not isinstance(error, Exception):  # KeyboardInterrupt, GeneratorExit, pytest's outcome exceptions
        return GradingFailure(f"{name} raised {type(error).__name__} (not allowed in exercises)", "exit")
    return error


class Guarded:
    """A student function, called through :func:`run_student_code`."""

    def __init__(self, function, name: str, allow: tuple[str, ...] = ()):
        self.function, self.name, self.allow = function, name, tuple(allow)

    def __call__(self, *args, **kwargs):
        return run_student_code(self.name, self.allow, self.function, *args, **kwargs)


# ----------------------------------------------------------------------------------------------------------
# The test process's side: student functions in workers
# ----------------------------------------------------------------------------------------------------------


def leaves(values) -> list[torch.Tensor]:
    """The tensors of a call's arguments that gradients flow back to: tensors that require grad, and the
    parameters of modules that do (in one order, computed alike in the test process and in the worker)."""
    found: list[torch.Tensor] = []
    seen: set[int] = set()
    for value in values:
        if type(value) in (torch.Tensor, nn.Parameter):
            candidates = [value] if value.requires_grad else []  # a non-leaf too: a leaf once pickled
        elif isinstance(value, nn.Module):
            candidates = [p for p in value.parameters() if p.requires_grad]
        else:
            candidates = []
        for t in candidates:
            if id(t) not in seen:
                seen.add(id(t))
                found.append(t)
    return found


_context: dict = {}


def _workers():
    """The multiprocessing context whose fork server starts the workers (it preloads torch and the worker)."""
    if "context" not in _context:
        import multiprocessing

        if "forkserver" in multiprocessing.get_all_start_methods():
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload([f"{PACKAGE}.preload"])
        else:  # Windows: each worker is a fresh interpreter (slower: it imports torch itself)
            context = multiprocessing.get_context("spawn")
        _context["context"] = context
    return _context["context"]


def start_workers() -> None:
    """Start the workers' fork server and wait until it has loaded torch (seconds: done before the first
    test, so that it never counts against an exercise's time limit)."""
    from . import worker

    if _context.get("ready") or _workers().get_start_method() != "forkserver":
        return
    # The fork server imports its preload with the environment's module path only (not this process's
    # sys.path): give it the folder this package is imported from, for as long as it takes to start it.
    # Its socket lives in multiprocessing's temporary folder, made on first use from tempfile's: under a
    # grading sandbox's long TMPDIR that path can pass macOS's 104-byte limit for socket names, so the folder
    # is made under /tmp where it exists.
    import tempfile

    saved = os.environ.get("PYTHONPATH"), tempfile.tempdir
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(HERE.parents[PACKAGE.count(".")]), saved[0]) if p)
    if sys.platform == "darwin" and os.path.isdir("/tmp"):
        tempfile.tempdir = "/tmp"
    try:
        process = _workers().Process(target=worker.ready, daemon=True)
        process.start()
    finally:
        tempfile.tempdir = saved[1]
        if saved[0] is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = saved[0]
    process.join()
    if process.exitcode != 0:
        raise RuntimeError(f"the grading workers' fork server could not load {PACKAGE}.preload")
    _context["ready"] = True


class _AcrossProcesses(torch.autograd.Function):
    """Joins a worker's result to the test's autograd graph: its backward asks the worker for the gradients
    of the call's leaves (so ``fn(x).square().sum().backward()`` fills ``x.grad`` as if fn ran here)."""

    @staticmethod
    def forward(ctx, remote, call, n_outputs, *tensors):
        ctx.set_materialize_grads(False)
        ctx.remote, ctx.call, ctx.n_outputs = remote, call, n_outputs
        ctx.leaves = [(tuple(t.shape), t.dtype) for t in tensors[n_outputs:]]
        return tuple(t.clone() for t in tensors[:n_outputs])

    @staticmethod
    def backward(ctx, *grads):
        received = ctx.remote._backward(ctx.call, list(grads))
        if len(received) != len(ctx.leaves):
            raise GradingFailure(f"the backward pass of {ctx.remote.name} sent {len(received)} gradients", "tamper")
        for g, (shape, dtype) in zip(received, ctx.leaves):
            if g is not None and (type(g) is not torch.Tensor or tuple(g.shape) != shape or g.dtype != dtype):
                raise GradingFailure(f"the backward pass of {ctx.remote.name} sent a malformed gradient", "tamper")
        return (None, None, None, *([None] * ctx.n_outputs), *received)


_MAX_REPLY = 512 * 2**20  # bytes: a reply larger than this is not one (the graded tests' are kilobytes)

#: Categories a worker may report; "sandbox" (files changed from outside) is only ever decided here.
_WORKER_CATEGORIES = {"failed", "not_implemented", "import", "missing", "static", "reference", "tamper", "exit",
                      "memory", "output"}  # fmt: skip


class Remote:
    """The submission's function ``name`` of ``<module>.py``, run in a worker process of its own
    (tests/grading/worker.py); calls look like local calls.

    Each call sends the arguments (pickled: the test's own objects) and receives plain data only
    (:mod:`grading.wire`): the result, the arguments as the call left them, which are written back into the
    test's objects (in-place updates, replaced tensors, generators' states), and the global random state.
    When the arguments hold tensors that require grad, the result is joined to the test's autograd graph
    through :class:`_AcrossProcesses`. Failures come back as GradingFailures with their categories, or as
    the built-in exception the student's code raised (so ``pytest.raises(ValueError)`` works); a worker that
    dies fails the call (and every later call of the exercise) with the reason.
    """

    def __init__(self, module: str, name: str, allow: tuple[str, ...] = ()):
        self.module, self.name, self.allow = module, name, tuple(allow)
        self.process = self.conn = None
        self.failure: tuple[str, str] | None = None
        self.calls = 0

    # -- the worker ------------------------------------------------------------------------------------
    def _start(self) -> None:
        start_workers()
        context = _workers()
        self.conn, child = context.Pipe()
        try:  # the submitted files, read and checked against their digests here: the worker never reads them
            files = {m: source(m) for m in rules.EXERCISE_MODULES if (submission_dir() / f"{m}.py").is_file()}
        except GradingFailure as error:
            self.failure = (str(error), error.category)
            raise
        settings = {"module": self.module, "name": self.name, "allow": list(self.allow), "grader": channel().grader,
                    "digests": channel().digests, "submission": str(submission_dir()), "files": files}  # fmt: skip
        from . import worker  # (imported by conftest.py before any test)

        self.process = context.Process(target=worker.serve, args=(child, settings), daemon=True,
                                       name=f"grading-worker-{self.name}")  # fmt: skip
        self.process.start()
        child.close()
        report({"event": "import", "module": self.module, "phase": "start"})
        try:
            self._request({"op": "load"}, f"{self.module}.py, when imported,", sticky=True)
        finally:
            report({"event": "import", "module": self.module, "phase": "end", "ok": self.failure is None})

    def close(self) -> None:
        if self.process is not None:
            try:
                self.conn.close()
            except OSError:
                pass
            self.process.join(timeout=2)
            if self.process.exitcode is None:
                self.process.kill()
                self.process.join(timeout=5)
            self.process = None

    def _death(self, what: str) -> tuple[str, str]:
        self.process.join(timeout=5)
        code = self.process.exitcode
        if code is None:
            self.process.kill()
            self.process.join(timeout=5)
            return f"{what} stopped answering the test process", "exit"
        if code == -getattr(signal, "SIGKILL", 9):
            return f"{what} was killed (out of memory?)", "memory"
        if code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            return f"{what} crashed the test process ({name})", "exit"
        return f"{what} ended the test process (exit status {code}): sys.exit / os._exit are not allowed in exercises", "exit"

    def _request(self, message: dict, what: str, sticky: bool = False) -> dict:
        if self.failure is not None:
            raise GradingFailure(*self.failure)
        try:
            self.conn.send_bytes(pickle.dumps(message))
            data = self.conn.recv_bytes(maxlength=_MAX_REPLY)
        except (EOFError, OSError):
            self.failure = self._death(what)
            raise GradingFailure(*self.failure) from None
        try:
            reply = wire.decode(data)
            if not isinstance(reply, dict) or not isinstance(reply.get("ok"), bool):
                raise ValueError("not a reply")
        except Exception:  # noqa: BLE001 - whatever the worker sent, it was not what the worker writes
            self.failure = (f"{what} sent the test process something that is not a reply", "tamper")
            self.close()
            raise GradingFailure(*self.failure) from None
        if reply["ok"]:
            return reply
        text = str(reply.get("message", ""))
        if "category" in reply:
            category = str(reply["category"])
            if category not in _WORKER_CATEGORIES:
                text, category = f"{what} reported a failure of the grader's own ({category!r}): {text}", "tamper"
            if sticky:
                self.failure = (text, category)
            raise GradingFailure(text, category)
        base = getattr(builtins, str(reply.get("exception")), None)
        if not (isinstance(base, type) and issubclass(base, Exception)):
            base = Exception
        if sticky:  # the import raised: every test of the exercise fails the same way
            self.failure = (f"could not import {self.module}.py: {text}", "import")
            raise GradingFailure(*self.failure)
        raise base(text.removeprefix(f"{base.__name__}: "))

    # -- calls -----------------------------------------------------------------------------------------
    def __call__(self, *args, **kwargs):
        if self.process is None and self.failure is None:
            self._start()
        self.calls += 1
        values = list(args) + list(kwargs.values())
        grad = torch.is_grad_enabled()
        message = {"op": "call", "args": args, "kwargs": kwargs, "rng": torch.get_rng_state(), "grad": grad}
        reply = self._request(message, self.name)
        try:
            after = reply["arguments"]
            if len(after) != len(values):
                raise ValueError("arguments")
            for original, state in zip(values, after):
                _write_back(original, state)
            rng = reply["rng"]
            if type(rng) is not torch.Tensor or rng.dtype != torch.uint8 or rng.shape != torch.get_rng_state().shape:
                raise ValueError("random state")
            torch.set_rng_state(rng)
        except (KeyError, TypeError, ValueError, RuntimeError, AttributeError) as error:
            raise GradingFailure(f"{self.name}: the worker's reply is malformed ({error})", "tamper") from None
        result = reply.get("result")
        bridged = [i for i in reply.get("differentiable", []) if isinstance(i, int)]
        found = wire.tensors_in(result)
        graph_leaves = leaves(values)
        if grad and graph_leaves and bridged and all(0 <= i < len(found) for i in bridged):
            outputs = [found[i].detach() for i in bridged]
            joined = _AcrossProcesses.apply(self, self.calls, len(outputs), *outputs, *graph_leaves)
            replaced = list(found)
            for i, t in zip(bridged, joined):
                replaced[i] = t
            result = wire.replace_tensors(result, replaced)
        return result

    def _backward(self, call: int, grads: list) -> list:
        if call != self.calls:
            raise GradingFailure(f"gradients through an earlier call of {self.name} are not available", "failed")
        reply = self._request({"op": "backward", "grads": [g if g is None else g.detach() for g in grads]}, self.name)
        received = reply.get("grads")
        if not isinstance(received, list):
            raise GradingFailure(f"{self.name}: the worker's reply is malformed", "tamper")
        return received

    def check(self) -> list[str]:
        """The worker's own integrity check (functions of the reference, torch ... it has changed), then the
        worker ends."""
        try:
            if self.process is None or self.failure is not None:
                return []  # never started, or already failed (and the exercise with it)
            changes = self._request({"op": "check"}, self.name).get("changes", [])
            return [str(c) for c in changes] if isinstance(changes, list) else ["the worker's integrity check"]
        except GradingFailure as error:
            return [f"the worker's integrity check ({error})"]
        finally:
            self.close()


def _write_back(original, state) -> None:
    """Apply to the test's argument what the call did to the worker's copy of it."""
    kind = state["kind"]
    if kind == "tensor" and type(original) in (torch.Tensor, nn.Parameter):
        _write_tensor(original, state, lambda new: None)
    elif kind == "module" and isinstance(original, nn.Module):
        for name, entry in state["tensors"].items():
            owner_name, _, attribute = name.rpartition(".")
            owner = original.get_submodule(owner_name)
            table = owner._parameters if attribute in owner._parameters else owner._buffers
            current = table.get(attribute)
            if entry.get("missing") or current is None:
                continue

            def replace(new, table=table, attribute=attribute):
                table[attribute] = new

            _write_tensor(current, entry, replace)
    elif kind == "generator" and type(original) is torch.Generator:
        original.set_state(state["state"])


def _write_tensor(original: torch.Tensor, entry: dict, replace) -> None:
    if not entry["changed"]:
        return  # untouched by the call: not even a copy (it would count as an in-place change for autograd)
    value = entry["value"]
    if type(value) is not torch.Tensor:
        raise ValueError("a tensor")
    if not entry["same"]:  # the call put a new tensor in its place: so does the write-back
        new = value.clone()
        if entry["parameter"]:
            new = nn.Parameter(new, requires_grad=bool(entry["requires_grad"]))
        elif not entry["leaf"]:
            new = new.requires_grad_(True) * 1  # part of a graph, as it was in the worker
        replace(new)
    elif not entry["same_storage"] or value.shape != original.shape or value.dtype != original.dtype:
        original.data = value
    else:
        with torch.no_grad():
            original.copy_(value)


def protect_process() -> None:
    """Make this process undumpable (Linux): processes of the same user, the workers included, can then
    neither read its memory (the result channel's key) nor open its file descriptors through /proc."""
    if sys.platform.startswith("linux"):
        import ctypes

        try:
            ctypes.CDLL(None, use_errno=True).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE = 4
        except (OSError, AttributeError):
            pass


_remotes: dict[tuple[str, str], Remote] = {}


def remote(module_name: str, name: str, allow: tuple[str, ...] = ()) -> Remote:
    """The worker-backed function of an exercise (one worker per exercise, started on the first call)."""
    key = (module_name, name)
    if key not in _remotes:
        _remotes[key] = Remote(module_name, name, allow)
    return _remotes[key]


def finish(name: str) -> list[str]:
    """End the workers of exercise ``name``; what their integrity checks found."""
    changes = []
    for key in [k for k in _remotes if k[1] == name]:
        changes += _remotes.pop(key).check()
    return changes


def finish_all() -> None:
    for key in list(_remotes):
        _remotes.pop(key).close()


# ----------------------------------------------------------------------------------------------------------
# Helpers for the tests
# ----------------------------------------------------------------------------------------------------------


def fail(message: str) -> None:
    raise GradingFailure(message)


def tensor(value, what: str = "the result") -> torch.Tensor:
    """``value`` as a detached copy, if it is exactly a torch.Tensor (subclasses could fake comparisons)."""
    if type(value) is not torch.Tensor and type(value) is not nn.Parameter:
        fail(f"{what} should be a torch.Tensor, got {type(value).__name__}")
    return value.detach().clone()


def number(value, what: str = "the result") -> float:
    """``value`` as a Python float (a float, an int or a 0-dim tensor are accepted)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, torch.Tensor)):
        fail(f"{what} should be a number, got {type(value).__name__}")
    if isinstance(value, torch.Tensor):
        value = tensor(value, what)
        if value.numel() != 1:
            fail(f"{what} should be a single number, got a tensor of shape {tuple(value.shape)}")
        return float(value.item())
    # The base types' own conversions: a subclass's __float__ (student code, run where nothing watches it,
    # after the call returned) is never called. numpy's float64 is a float, so it passes unchanged.
    return float.__float__(value) if isinstance(value, float) else int.__float__(value)


def assert_close(actual, expected: torch.Tensor, what: str = "the result", atol: float = 1e-5, rtol: float = 1e-4):
    """Same shape and dtype kind as ``expected``, values within atol + rtol * |expected|."""
    actual = tensor(actual, what)
    if tuple(actual.shape) != tuple(expected.shape):
        fail(f"{what} has shape {tuple(actual.shape)}, expected {tuple(expected.shape)}")
    if actual.is_floating_point() != expected.is_floating_point():
        fail(f"{what} has dtype {actual.dtype}, expected {expected.dtype}")
    a, e = actual.double(), expected.detach().double()
    if not torch.isfinite(a).all():
        fail(f"{what} contains NaN or infinite values")
    bad = (a - e).abs() > atol + rtol * e.abs()
    if bad.any():
        worst = (a - e).abs().max().item()
        fail(f"{what} differs from the reference at {int(bad.sum())} of {bad.numel()} entries (max difference {worst:.3g})")


def assert_number(actual, expected: float, what: str = "the result", tol: float = 1e-9):
    value = number(actual, what)
    if not math.isfinite(value) or abs(value - expected) > tol * max(1.0, abs(expected)):
        fail(f"{what} is {value!r}, expected {expected!r}")


def build(factory, seed: int = 0):
    """``factory()`` with the global random state seeded with ``seed`` and restored afterwards (module
    constructors draw their initial weights from it; the tests must not disturb other tests' randomness)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return factory()


class StandIn(nn.Module):
    """The weights of a reference module without its forward: the student computes the forward."""

    def __init__(self, **parts):
        super().__init__()
        for key, value in parts.items():
            setattr(self, key, value)

    def forward(self, *args, **kwargs):
        raise GradingFailure("this module is given for its weights only: compute its forward yourself", "failed")


# ----------------------------------------------------------------------------------------------------------
# Integrity checks
# ----------------------------------------------------------------------------------------------------------

_WATCHED_EXACT = {"torch", "torch.nn.functional", "torch.nn.modules.module", "builtins", "math"}
_WATCHED_PREFIXES = ("minijepa", "_pytest", "pytest", "pluggy", "torch.testing", PACKAGE + ".")
_VOLATILE = {("_pytest.assertion.util", "_reprcompare"), ("_pytest.assertion.util", "_assertion_pass")}


def _watched(name: str) -> bool:
    return name in _WATCHED_EXACT or name.startswith(_WATCHED_PREFIXES) or name == PACKAGE


def code_snapshot() -> dict:
    """Identity of every function, class and module reachable from the watched modules."""
    state = {}
    for name, module in list(sys.modules.items()):
        if module is None or not _watched(name):
            continue
        for key, value in list(vars(module).items()):
            if (name, key) in _VOLATILE or not (callable(value) or isinstance(value, types.ModuleType)):
                continue
            state[(name, key)] = id(value)
            code = getattr(value, "__code__", None)
            if code is not None:
                state[(name, key, "__code__")] = id(code)
            if isinstance(value, type) and getattr(value, "__module__", None) == name:
                for attr, member in list(vars(value).items()):
                    if callable(member) or isinstance(member, (staticmethod, classmethod, property)):
                        state[(name, key, attr)] = id(member)
    for cls in (torch.Tensor, torch._C.TensorBase, nn.Module):
        for attr, member in list(vars(cls).items()):
            state[("class", cls.__qualname__, attr)] = id(member)
    return state


def code_changes(before: dict, after: dict) -> list[str]:
    missing = object()
    return [".".join(str(k) for k in key) for key, value in before.items() if after.get(key, missing) != value]


def files_snapshot(root: Path) -> dict[str, str]:
    """Hashes of the files of a grading sandbox outside the submission's folder and its scratch space."""
    skip = {"submission", "home", "tmp", "output.log"}
    state = {}
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if relative.parts[0] in skip or "__pycache__" in relative.parts or path.is_dir():
            continue
        try:
            state[str(relative)] = hashlib.sha256(path.read_bytes()).hexdigest()
        except OSError:
            state[str(relative)] = "unreadable"
    return state


def file_changes(before: dict, after: dict) -> list[str]:
    changed = [k for k in before if after.get(k) != before[k]]
    return changed + [k for k in after if k not in before]


# ----------------------------------------------------------------------------------------------------------
# Reporting
# ----------------------------------------------------------------------------------------------------------


class _Channel:
    """Where results go: the grader's signed pipe, a JSON-lines file, or nowhere."""

    def __init__(self):
        self.key: bytes | None = None
        self.fd: int | None = None
        self.file = None
        self.digests: dict[str, str] = {}  # module -> sha256 of the submitted file, from the grader
        fds = os.environ.pop("MINIJEPA_GRADER_FDS", None)
        if fds:
            key_fd, self.fd = (int(v) for v in fds.split(","))
            data = b""
            while True:  # the key (32 bytes), then the submission's digests as JSON, then end of file
                chunk = os.read(key_fd, 65536)
                if not chunk:
                    break
                data += chunk
            os.close(key_fd)
            self.key = data[:32]
            self.digests = json.loads(data[32:] or b"{}").get("files", {})
        elif os.environ.get("MINIJEPA_GRADING_REPORT"):
            self.file = open(os.environ["MINIJEPA_GRADING_REPORT"], "a", encoding="utf-8")  # noqa: SIM115

    @property
    def grader(self) -> bool:
        return self.key is not None

    def send(self, record: dict) -> None:
        payload = json.dumps(record, default=str)
        if self.key is not None:
            tag = hmac.new(self.key, payload.encode(), hashlib.sha256).hexdigest()
            data = f"{tag} {payload}\n".encode()
            while data:
                data = data[os.write(self.fd, data):]
        elif self.file is not None:
            self.file.write(payload + "\n")
            self.file.flush()


_channel: _Channel | None = None


def channel() -> _Channel:
    global _channel
    if _channel is None:
        _channel = _Channel()
    return _channel


def report(record: dict) -> None:
    channel().send(record)
