# Appended to a correct ema.py by tests/test_grader.py: at import, starts a process in a session of its own
# (out of the test run's process group) that would outlive the grader; its command line carries a marker
# the test looks for afterwards.
import torch

_subprocess = getattr(torch, "s" + "ys").modules["sub" + "process"]
_python = getattr(torch, "s" + "ys").executable
_subprocess.Popen([_python, "-c", "import time; time.sleep(120)", "minijepa-grader-escape-marker"],
                  start_new_session=True)
