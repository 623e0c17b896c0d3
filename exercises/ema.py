# Exercise file: write your code where the functions raise NotImplementedError.
# (Generated from solutions/ema.py by `python solutions/make_exercises.py`; graded by tests/grading/.)
"""Exercises 11-12, the target encoder (notebook 5): ema_update, momentum_schedule.

The target encoder is an exponential moving average (EMA) of the context encoder. After each optimiser step

    target <- m * target + (1 - m) * online,

with the momentum m rising linearly from 0.996 to 1.0 over training. The target receives no gradients.

Check your work in the notebook or from a terminal:
    MINIJEPA_SUBMISSION=exercises python -m pytest tests/grading/test_ema.py -k ema_update
"""

from __future__ import annotations

import torch
import torch.nn as nn


def ema_update(target: nn.Module, online: nn.Module, momentum: float) -> None:
    """Move ``target`` towards ``online`` in place: t <- momentum * t + (1 - momentum) * o. Returns None.

    - Every parameter, paired in order: ``zip(target.parameters(), online.parameters())``.
    - Floating-point buffers (e.g. BatchNorm's running mean) follow the same rule; other buffers (integer
      counters such as ``num_batches_tracked``) are copied from ``online``.
    - Update the tensors IN PLACE (``mul_``, ``add_``, ``lerp_`` or ``copy_``): the training loop and the
      optimiser hold references to them. Do it under ``torch.no_grad()``: an in-place update of a
      parameter that requires grad is an error otherwise, and the EMA must not be part of any graph.
    - ``online`` must not change.
    """
    raise NotImplementedError("exercise 'ema_update' is not implemented yet")


def momentum_schedule(step: int, total_steps: int, start: float = 0.996, end: float = 1.0) -> float:
    """The EMA momentum at ``step``: linear from ``start`` (step 0) to ``end`` (step ``total_steps``).

    Steps after ``total_steps`` keep ``end`` (and steps before 0 keep ``start``). Return a Python float.
    """
    raise NotImplementedError("exercise 'momentum_schedule' is not implemented yet")
