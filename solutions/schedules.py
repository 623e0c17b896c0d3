"""Exercise 14, the learning-rate schedule (notebook 6): warmup_cosine.

I-JEPA warms the learning rate up linearly (2e-4 -> 1e-3 over 40 epochs in the paper's recipe), then lets
it follow half a cosine down to a small final value (1e-6).

Check your work in the notebook or from a terminal:
    MINIJEPA_SUBMISSION=exercises python -m pytest tests/grading/test_schedules.py
"""

from __future__ import annotations

import math


def warmup_cosine(step: int, total_steps: int, warmup_steps: int, start: float, peak: float, final: float) -> float:
    """The learning rate at ``step`` (a Python float).

    - Warm-up, 0 <= step < warmup_steps: linear from ``start`` (step 0) towards ``peak``
      (lr = start + (peak - start) * step / warmup_steps).
    - Then half a cosine from ``peak`` (at step = warmup_steps) to ``final`` (at step = total_steps):
      with p = (step - warmup_steps) / (total_steps - warmup_steps),
      lr = final + (peak - final) * (1 + cos(pi * p)) / 2.
    - After total_steps the rate stays at ``final``.
    - Edge cases: warmup_steps = 0 starts directly at ``peak``; warmup_steps = total_steps warms up and then
      stays at ``peak`` (there is no room for the cosine).
    """
    ### BEGIN SOLUTION
    if step < warmup_steps:
        return start + (peak - start) * step / warmup_steps
    if warmup_steps >= total_steps:
        return float(peak)
    progress = min((step - warmup_steps) / (total_steps - warmup_steps), 1.0)
    return final + (peak - final) * 0.5 * (1.0 + math.cos(math.pi * progress))
    ### END SOLUTION
