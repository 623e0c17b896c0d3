"""The I-JEPA loss: how far the predicted target representations are from the actual ones.

The paper averages, over the M target blocks, the squared L2 distance between predicted and target patch
representations. We average over patches and channels too (a mean squared error), which is the paper's
loss divided by the constant T * D: the learning rate then does not depend on width or block size. The
official code uses a smooth-L1 (Huber) loss instead; it is an option here.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["LOSSES", "ijepa_loss"]

LOSSES = ("l2", "smooth_l1")


def ijepa_loss(predictions: torch.Tensor, targets: torch.Tensor, kind: str = "l2") -> torch.Tensor:
    """predictions, targets: (B, M, T, D) -> scalar loss, averaged over images, blocks, patches, channels."""
    if predictions.shape != targets.shape:
        raise ValueError(f"predictions {tuple(predictions.shape)} and targets {tuple(targets.shape)} differ in shape")
    if kind == "l2":
        return F.mse_loss(predictions, targets)
    if kind == "smooth_l1":
        return F.smooth_l1_loss(predictions, targets)  # beta = 1, as in the official code
    raise ValueError(f"unknown loss kind={kind!r}; choose one of {LOSSES}")
