"""Masking for I-JEPA: which patches the context encoder sees and which ones the predictor must predict.

Masks are *index tensors* into the H x W patch grid, flattened in raster order (index = row * W + col),
so applying a mask is a single gather (see :func:`gather_tokens`), as in MAE's models_mae.py.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from einops import repeat


@dataclass
class MaskBatch:
    """Masks for a batch of B images on an H x W patch grid.

    context: (B, K) indices of the patches the context encoder sees, sorted ascending.
    targets: (B, M, T) indices of the M target blocks (T patches each), sorted ascending per block.
    grid:    (H, W) the patch grid the indices refer to.
    """

    context: torch.Tensor
    targets: torch.Tensor
    grid: tuple[int, int]

    @property
    def num_targets(self) -> int:
        return self.targets.shape[1]

    def to(self, device, non_blocking: bool = False) -> "MaskBatch":
        return MaskBatch(
            self.context.to(device, non_blocking=non_blocking),
            self.targets.to(device, non_blocking=non_blocking),
            self.grid,
        )

    def pin_memory(self) -> "MaskBatch":
        # Called by DataLoader(pin_memory=True) on custom batch types.
        return MaskBatch(self.context.pin_memory(), self.targets.pin_memory(), self.grid)


def gather_tokens(x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """Keep the tokens of ``x`` at the positions ``idx``: masking as index gathering.

    x:   (B, N, D) one token per patch.
    idx: (B, K) or (B, M, K) patch indices in [0, N).
    returns (B, K, D) or (B, M, K, D).
    """
    if idx.dtype not in (torch.int64, torch.int32):
        raise TypeError(f"mask indices must be an integer tensor, got dtype {idx.dtype}")
    if idx.shape[0] != x.shape[0]:
        raise ValueError(f"mask batch size {idx.shape[0]} does not match token batch size {x.shape[0]}")
    n = x.shape[1]
    # Validate on CPU only: on an accelerator the check would force a host sync on the hot path.
    if idx.device.type == "cpu" and idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= n):
        raise IndexError(
            f"mask indices out of range: min {int(idx.min())}, max {int(idx.max())}, but there are {n} patches"
        )
    if idx.dim() == 3:  # (B, M, K): gather each block, keep the block axis
        b, m, k = idx.shape
        out = gather_tokens(x, idx.reshape(b, m * k))  # (B, M*K, D)
        return out.reshape(b, m, k, x.shape[-1])  # (B, M, K, D)
    index = repeat(idx.long(), "b k -> b k d", d=x.shape[-1])  # (B, K, D)
    return torch.gather(x, dim=1, index=index)  # (B, K, D)
