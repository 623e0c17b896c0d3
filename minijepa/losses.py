"""The I-JEPA loss: how far the predicted target representations are from the actual ones.

The paper averages, over the M target blocks, the squared L2 distance between predicted and target patch
representations. We average over patches and channels too (a mean squared error), which is the paper's
loss divided by the constant T * D: the learning rate then does not depend on width or block size. The
official code uses a smooth-L1 (Huber) loss instead; it is an option here.

``variance_covariance`` is an *extension*, not part of I-JEPA: VICReg's anti-collapse terms (Bardes et al.,
2022) on the context encoder's image embeddings. I-JEPA avoids collapse only through the predictor and the
slowly moving target; at small scale that leaves a long phase where the loss falls and features stay poor.
The variance term pushes every channel's spread across the batch up to 1, the covariance term decorrelates
channels, so the encoder gets a useful gradient from the first step. Off (weight 0) in the paper's recipe.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["LOSSES", "ijepa_loss", "variance_covariance"]

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


def variance_covariance(embeddings: torch.Tensor, eps: float = 1e-4) -> torch.Tensor:
    """embeddings: (B, D) -> VICReg's variance hinge plus covariance penalty (scalar, 0 when decorrelated).

    variance: mean over channels of relu(1 - std), std across the batch; covariance: sum of squared
    off-diagonal covariances / D. Both as in VICReg; their sum is weighted by ``model.vc_weight``.
    """
    if embeddings.dim() != 2 or embeddings.shape[0] < 2:
        raise ValueError(f"need (B, D) embeddings with B >= 2, got {tuple(embeddings.shape)}")
    x = embeddings.float() - embeddings.float().mean(dim=0)  # (B, D)
    B, D = x.shape
    std = torch.sqrt(x.var(dim=0) + eps)  # (D,)
    variance = F.relu(1 - std).mean()
    cov = x.T @ x / (B - 1)  # (D, D)
    off_diagonal = cov - torch.diag(torch.diag(cov))
    return variance + off_diagonal.pow(2).sum() / D
