"""I-JEPA: predict, in representation space, the embeddings of masked image blocks from a context block.

For one batch (the paper's Figure 3):
  1. the target encoder (an EMA copy, no gradients) encodes the *whole* image; its outputs, layer-normed
     over the channels, are gathered at the M target blocks -> targets (B, M, T, D);
  2. the context encoder encodes only the context patches -> (B, K, D);
  3. the predictor maps the context plus the target positions to predictions (B, M, T, D);
  4. the loss compares predictions and targets; only the context encoder and predictor get gradients.
After the optimiser step, the target encoder moves towards the context encoder (see :mod:`minijepa.ema`).

``target="pixels"`` replaces step 1 by the (per-patch normalised) pixels of the target blocks, the
generative baseline of the paper's ablation.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F

from .ema import ema_update, make_target_encoder
from .losses import LOSSES, ijepa_loss, random_directions, sigreg, variance_covariance
from .masks import MaskBatch, gather_tokens
from .patches import patchify
from .predictor import Predictor
from .vit import VisionTransformer

__all__ = ["IJEPA", "IJEPAOutput", "TARGET_TYPES"]

TARGET_TYPES = ("representation", "pixels")


@dataclass
class IJEPAOutput:
    loss: torch.Tensor  # scalar
    predictions: torch.Tensor  # (B, M, T, D)
    targets: torch.Tensor  # (B, M, T, D), no gradient
    context: torch.Tensor  # (B, K, D) context-encoder tokens


class _GatherImages(torch.autograd.Function):
    """(b, D) per process -> (W * b, D): every process's image embeddings, in rank order, with gradients.

    Batch statistics (the variance/covariance extension) must be those of the *global* batch, or two
    processes would train differently from one. Backward: the summed gradient of every process's copy of the
    loss, sliced to this process's rows; DDP then averages over processes, which gives the one-process gradient.
    """

    @staticmethod
    def forward(ctx, x):  # (b, D)
        parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, x.contiguous())
        ctx.rank, ctx.rows = dist.get_rank(), x.shape[0]
        return torch.cat(parts)  # (W * b, D)

    @staticmethod
    def backward(ctx, grad):  # (W * b, D)
        grad = grad.contiguous().clone()
        dist.all_reduce(grad)
        return grad[ctx.rank * ctx.rows : (ctx.rank + 1) * ctx.rows]


def global_batch(x: torch.Tensor) -> torch.Tensor:
    """The whole global batch's rows under torchrun (equal per-process batches), ``x`` itself otherwise."""
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        return _GatherImages.apply(x)
    return x


class IJEPA(nn.Module):
    """Context encoder + EMA target encoder + predictor, and the loss for one batch."""

    def __init__(
        self,
        encoder: VisionTransformer,
        predictor: Predictor,
        loss: str = "l2",
        target: str = "representation",
        vc_weight: float = 0.0,
        sigreg_weight: float = 0.0,
        sigreg_directions: int = 64,
    ):
        super().__init__()
        if not vc_weight >= 0:
            raise ValueError(f"vc_weight={vc_weight} must be >= 0 (0: off, the paper's recipe)")
        if not sigreg_weight >= 0:
            raise ValueError(f"sigreg_weight={sigreg_weight} must be >= 0 (0: off, the paper's recipe)")
        if not sigreg_directions >= 1:
            raise ValueError(f"sigreg_directions={sigreg_directions} must be >= 1")
        if loss not in LOSSES:
            raise ValueError(f"unknown loss={loss!r}; choose one of {LOSSES}")
        if target not in TARGET_TYPES:
            raise ValueError(f"unknown target={target!r}; choose one of {TARGET_TYPES}")
        if tuple(predictor.grid) != tuple(encoder.grid):
            raise ValueError(f"predictor grid {predictor.grid} differs from encoder grid {encoder.grid}")
        if predictor.embed_dim != encoder.embed_dim:
            raise ValueError(f"predictor input width {predictor.embed_dim} differs from encoder width {encoder.embed_dim}")
        expected_out = self.pixel_dim(encoder) if target == "pixels" else encoder.embed_dim
        if predictor.proj.out_features != expected_out:
            raise ValueError(
                f"predictor out_dim={predictor.proj.out_features} but target={target!r} needs {expected_out}"
            )
        self.context_encoder = encoder
        self.target_encoder = make_target_encoder(encoder)
        self.predictor = predictor
        self.loss_kind = loss
        self.target_kind = target
        self.vc_weight = vc_weight
        self.sigreg_weight, self.sigreg_directions = sigreg_weight, sigreg_directions
        if sigreg_weight > 0:
            # SIGReg draws new directions at every training step; from a generator seeded with this counter,
            # so that the draws are the same on every process and a resumed run (the counter is in the
            # checkpoint) continues them exactly.
            self.register_buffer("sigreg_step", torch.zeros((), dtype=torch.long))

    @staticmethod
    def pixel_dim(encoder: VisionTransformer) -> int:
        return encoder.config.patch_size ** 2 * encoder.config.in_chans

    @torch.no_grad()
    def compute_targets(self, images: torch.Tensor, masks: MaskBatch) -> torch.Tensor:
        """What the predictor must output at the target blocks: (B, M, T, D)."""
        if self.target_kind == "pixels":
            patches = patchify(images, self.context_encoder.config.patch_size)  # (B, N, P*P*C)
            # Normalise each patch (as MAE's norm_pix_loss) so that flat colours do not dominate.
            mean, var = patches.mean(-1, keepdim=True), patches.var(-1, keepdim=True)
            features = (patches - mean) / (var + 1e-6).sqrt()
        else:
            features = self.target_encoder(images)  # (B, N, D), the full image
            features = F.layer_norm(features, features.shape[-1:])  # normalise each token over channels
        return gather_tokens(features, masks.targets)  # (B, M, T, D)

    def forward(self, images: torch.Tensor, masks: MaskBatch) -> IJEPAOutput:
        targets = self.compute_targets(images, masks)  # (B, M, T, D)
        context = self.context_encoder(images, keep=masks.context)  # (B, K, D)
        predictions = self.predictor(context, masks.context, masks.targets)  # (B, M, T, D)
        loss = ijepa_loss(predictions, targets, self.loss_kind)
        if self.vc_weight > 0 or self.sigreg_weight > 0:  # the extensions' image embeddings, gathered once
            embeddings = global_batch(context.mean(dim=1))  # (B, K, D) -> (B, D), all processes' images
        if self.vc_weight > 0:  # extension (losses.variance_covariance): anti-collapse on image embeddings
            loss = loss + self.vc_weight * variance_covariance(embeddings)
        if self.sigreg_weight > 0:  # extension (losses.sigreg): image embeddings ~ isotropic Gaussian
            generator = torch.Generator().manual_seed(int(self.sigreg_step))
            directions = random_directions(embeddings.shape[1], self.sigreg_directions, generator)  # (D, M)
            loss = loss + self.sigreg_weight * sigreg(embeddings, directions)
            if self.training and torch.is_grad_enabled():
                self.sigreg_step += 1
        return IJEPAOutput(loss, predictions, targets, context)

    @torch.no_grad()
    def update_target(self, momentum: float) -> None:
        """Move the target encoder towards the context encoder (call after the optimiser step)."""
        ema_update(self.target_encoder, self.context_encoder, momentum)

    def trainable_modules(self) -> tuple[nn.Module, nn.Module]:
        return (self.context_encoder, self.predictor)
