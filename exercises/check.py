"""Notebook helper: use your own implementation when it works, the reference when it does not (yet).

Not an exercise (and identical in exercises/ and solutions/). A notebook cell does

    from exercises.check import student_or_reference
    from minijepa.patches import patchify as reference_patchify

    x = torch.randn(2, 3, 32, 32)
    patchify = student_or_reference(
        "patches", "patchify", reference_patchify,
        check=lambda f: torch.testing.assert_close(f(x, 8), reference_patchify(x, 8)),
    )

and prints one line: "✓ your patchify works", or "patchify is not implemented yet — using the reference
from minijepa.patches", or the failing check. Later cells use ``patchify`` and always run.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import sys
import textwrap
import traceback
from typing import Callable

__all__ = ["student_or_reference"]


def student_or_reference(
    module_name: str,
    function_name: str,
    reference: Callable,
    check: Callable[[Callable], object] | None = None,
) -> Callable:
    """Return your ``function_name`` from ``<this package>/<module_name>.py`` if it passes ``check``, else ``reference``.

    module_name:   the exercise file without ``.py``: "patches", "attention", "masks", "predictor", "ema",
                   "losses", "schedules" or "probe".
    function_name: the function to use, e.g. "patchify".
    reference:     the implementation to fall back on (from the ``minijepa`` package).
    check:         optional quick check: called with your function, it should raise (an AssertionError,
                   for example from ``torch.testing.assert_close``) when something is wrong.

    The file is (re)loaded on every call, so after editing it, re-run the cell. Nothing here raises: a
    file that does not import, a missing function, a stub that raises ``NotImplementedError`` or a failed
    check all print a short explanation and return ``reference``.
    """
    package = __package__ or "exercises"
    where = f"{package}/{module_name}.py"
    origin = getattr(reference, "__module__", None) or "the reference package"
    fallback = f"using the reference from {origin}"
    try:
        full_name = f"{package}.{module_name}"
        if full_name in sys.modules:
            module = importlib.reload(sys.modules[full_name])
        else:
            module = importlib.import_module(full_name)
    except (Exception, SystemExit) as error:  # a syntax error, a crash at import time...
        _say(f"✗ could not import {where}: {_one_line(error)} — {fallback}")
        return reference
    function = getattr(module, function_name, None)
    if not callable(function):
        _say(f"✗ {where} has no function {function_name} — {fallback}")
        return reference
    if _is_stub(function):
        _say(f"{function_name} is not implemented yet — {fallback}")
        return reference
    if check is None:
        _say(f"using your {function_name} from {where} (no quick check given)")
        return function
    try:
        check(function)
    except NotImplementedError:
        _say(f"{function_name} is not implemented yet — {fallback}")
        return reference
    except (Exception, SystemExit) as error:
        _say(f"✗ your {function_name} does not pass the quick check — {fallback}\n{_short_traceback(error)}")
        return reference
    _say(f"✓ your {function_name} works")
    return function


def _say(message: str) -> None:
    print(message, flush=True)


def _one_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__


def _short_traceback(error: BaseException, frames: int = 3) -> str:
    lines = traceback.format_exception(type(error), error, error.__traceback__, limit=-frames)
    return textwrap.indent("".join(lines).rstrip(), "    ")


def _is_stub(function: Callable) -> bool:
    """True when the body (after the docstring) is just ``raise NotImplementedError(...)``."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
    except (OSError, TypeError, SyntaxError):
        return False
    definition = tree.body[0] if tree.body else None
    if not isinstance(definition, (ast.FunctionDef, ast.AsyncFunctionDef)):
        return False
    body = definition.body
    if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant):
        body = body[1:]  # the docstring
    if len(body) != 1 or not isinstance(body[0], ast.Raise) or body[0].exc is None:
        return False
    exc = body[0].exc
    name = exc.func if isinstance(exc, ast.Call) else exc
    return isinstance(name, ast.Name) and name.id == "NotImplementedError"
