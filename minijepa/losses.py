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

``sigreg`` is another extension: LeJEPA's SIGReg (Balestriero & LeCun, 2025), which asks the image
embeddings to be distributed as an isotropic standard Gaussian. It checks that one direction at a time
(Cramér-Wold: a distribution is fixed by all its one-dimensional projections): the embeddings are projected
on random unit directions, and each projection's empirical characteristic function is compared with the
Gaussian's, exp(-t^2 / 2) (the Epps-Pulley test statistic). Unlike the variance hinge it constrains every
moment, and unlike the covariance penalty its cost grows linearly with the width. Off in the paper's recipe.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["LOSSES", "ijepa_loss", "random_directions", "sigreg", "variance_covariance"]

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


def random_directions(dim: int, count: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """(dim, count): ``count`` random unit vectors of R^dim, as columns (uniform on the sphere)."""
    directions = torch.randn(dim, count, generator=generator)  # (D, M)
    return directions / directions.norm(dim=0, keepdim=True)


def sigreg(embeddings: torch.Tensor, directions: torch.Tensor, points: int = 17, t_max: float = 5.0) -> torch.Tensor:
    """embeddings (B, D), directions (D, M) -> the Epps-Pulley statistic averaged over the M directions.

    For each direction, the projections p_b = z_b . a have the empirical characteristic function
    phi(t) = mean_b exp(i t p_b); the statistic is B * integral of |phi(t) - exp(-t^2/2)|^2 exp(-t^2/2) dt
    over t in [-t_max, t_max] (trapezoid rule on ``points`` nodes): near 0 when the projections look like
    N(0, 1) samples, large for collapsed (all equal) or badly scaled embeddings. Weighted by
    ``model.sigreg_weight``.
    """
    if embeddings.dim() != 2 or embeddings.shape[0] < 2:
        raise ValueError(f"need (B, D) embeddings with B >= 2, got {tuple(embeddings.shape)}")
    if directions.dim() != 2 or directions.shape[0] != embeddings.shape[1]:
        raise ValueError(f"directions {tuple(directions.shape)} do not match embeddings {tuple(embeddings.shape)}")
    B = embeddings.shape[0]
    projections = embeddings.float() @ directions.to(embeddings.device, torch.float32)  # (B, M)
    t = torch.linspace(-t_max, t_max, points, device=embeddings.device)  # (T,)
    angles = projections.unsqueeze(-1) * t  # (B, M, T)
    real, imaginary = torch.cos(angles).mean(dim=0), torch.sin(angles).mean(dim=0)  # (M, T): the empirical CF
    gaussian = torch.exp(-0.5 * t**2)  # (T,): the standard normal's CF, also the integration weight
    error = ((real - gaussian) ** 2 + imaginary**2) * gaussian  # (M, T)
    return B * torch.trapezoid(error, t, dim=-1).mean()
