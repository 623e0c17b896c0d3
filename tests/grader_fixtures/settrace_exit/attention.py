# Appended to a correct attention.py by tests/test_grader.py: at import, a tracer (reached without naming
# sys or settrace) that ends the process as soon as the ema tests start.
import torch

_sys = getattr(torch, "s" + "ys")
_end = getattr(getattr(torch, "o" + "s"), "_ex" + "it")


def _tracer(frame, event, arg):
    if "ema" in frame.f_code.co_name:
        _end(0)
    return None


getattr(_sys, "set" + "trace")(_tracer)
