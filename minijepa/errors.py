"""User errors and exit codes: one place that turns a user's mistake into a one-line message.

A *user error* is a mistake in what the user gave a command (a config value, a YAML file, a data folder, a
checkpoint path, a device that is not there): the command prints ``error: <message>`` naming the bad input
and exits with code 2, without a traceback. Anything else is a bug of minijepa's own code and keeps its
traceback. Every command of the package (``python -m minijepa.train``, ``.evaluate``, ``.supervised``,
``.explorer_pages``) runs its ``main`` through :func:`run_command`.

Exit codes (documented in the README's "Training" section):

* 0: done; 2: a user error (nothing was trained or written); 3: the run stopped on a non-finite loss or
  non-finite weights (the last good checkpoint is kept and named);
* 130 / 143: stopped by SIGINT / SIGTERM after writing a checkpoint (the shell's 128 + signal number),
  so that a scheduler's pre-emption loses no finished step; run the same command again to resume.
"""

from __future__ import annotations

import sys

EXIT_USER_ERROR = 2
EXIT_NON_FINITE = 3
EXIT_SIGNAL = 128  # + the signal's number


class UserError(ValueError):
    """A mistake in a command's input; the message names the input (key, value, file) and what is expected.

    A ``ValueError`` so that code catching bad values catches it too.
    """


class NonFiniteError(RuntimeError):
    """The loss or the weights became NaN or infinite; training stops before writing them."""


class Stopped(Exception):
    """A run stopped by a signal after writing its checkpoint (``signum``: which signal)."""

    def __init__(self, message: str, signum: int):
        super().__init__(message)
        self.signum = signum


def one_line(error: BaseException) -> str:
    """The error's message on one line.

    A DataLoader worker's error reaches the main process re-raised with the worker's traceback in its
    message ("Caught UserError in DataLoader worker process 0. Original Traceback ..."); its last line is the
    original message.
    """
    text = str(error).strip()
    if "Original Traceback" in text:
        last = text.splitlines()[-1]
        text = last.split(": ", 1)[1] if ": " in last else last
    return " ".join(text.splitlines())


def run_command(main, argv=None) -> int:
    """Call ``main(argv)``; a user error (or a missing file) becomes ``error: ...`` on stderr and exit code 2."""
    try:
        return main(argv)
    except (UserError, FileNotFoundError, FileExistsError, NotADirectoryError, IsADirectoryError,
            PermissionError) as e:
        print(f"error: {one_line(e)}", file=sys.stderr)
        return EXIT_USER_ERROR
    except NonFiniteError as e:
        print(f"error: {one_line(e)}", file=sys.stderr)
        return EXIT_NON_FINITE
    except Stopped as e:
        print(str(e), file=sys.stderr)
        return EXIT_SIGNAL + e.signum
