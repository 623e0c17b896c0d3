"""Exercise 13, the I-JEPA loss (notebook 6): ijepa_loss.

The paper averages, over the M target blocks, the squared L2 distance between the predicted and the target
patch representations. We also average over images, patches and channels (a mean squared error): the
paper's loss divided by the constant T * D, so the learning rate does not depend on width or block size.

Check your work in the notebook or from a terminal:
    MINIJEPA_SUBMISSION=exercises python -m pytest tests/grading/test_losses.py
"""

from __future__ import annotations

import torch


def ijepa_loss(predictions: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """predictions, targets (B, M, T, D) -> the mean squared error, a 0-dim tensor.

    The mean over images, target blocks, patches and channels of (prediction - target) ** 2. It must be
    differentiable with respect to ``predictions`` (the targets come from the EMA encoder and are usually
    detached by the caller). Raise ValueError if the two shapes differ (broadcasting would silently
    compute something else).
    """
    ### BEGIN SOLUTION
    if predictions.shape != targets.shape:
        raise ValueError(f"predictions {tuple(predictions.shape)} and targets {tuple(targets.shape)} differ in shape")
    return ((predictions - targets) ** 2).mean()
    ### END SOLUTION
