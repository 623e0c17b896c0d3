"""Images as sequences: patchify / unpatchify, the patch embedding, and fixed 2-D sin-cos positions.

A ViT never sees pixels directly. It cuts the image into a grid of P x P patches, flattens each patch
into a vector and maps it linearly to the model width D. Because attention is permutation-invariant, each
token also receives a *position embedding* telling it where on the grid it came from.

Notation: B batch, C channels, P patch size, H/W grid rows/columns (in patches), N = H * W, D width.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from einops import rearrange

__all__ = [
    "as_pair",
    "grid_size",
    "patchify",
    "unpatchify",
    "PatchEmbed",
    "sincos_1d",
    "sincos_2d",
    "resize_positions",
]


def as_pair(x: int | tuple[int, int] | list[int]) -> tuple[int, int]:
    """``224 -> (224, 224)``; ``(64, 96) -> (64, 96)``."""
    if isinstance(x, int):
        return (x, x)
    if len(x) != 2:
        raise ValueError(f"expected an int or a pair (height, width), got {x!r}")
    return (int(x[0]), int(x[1]))


def grid_size(image_size: int | tuple[int, int], patch_size: int) -> tuple[int, int]:
    """Patch grid (H, W) of an image, checking that the patches tile it exactly."""
    height, width = as_pair(image_size)
    if patch_size < 1:
        raise ValueError(f"patch_size must be >= 1, got {patch_size}")
    if height % patch_size or width % patch_size:
        bad = [f"{name} {side}" for name, side in (("height", height), ("width", width)) if side % patch_size]
        raise ValueError(
            f"image size {height}x{width} is not divisible by patch_size={patch_size} ({' and '.join(bad)}); "
            f"choose a height and width that are multiples of {patch_size}"
        )
    return (height // patch_size, width // patch_size)


def patchify(images: torch.Tensor, patch_size: int) -> torch.Tensor:
    """Cut images into flattened patches, in raster order (row by row).

    images: (B, C, H*P, W*P) -> patches: (B, N, P*P*C) with N = H*W.
    Each patch vector lists its pixels row by row, channels last (the layout MAE uses).
    """
    if images.dim() != 4:
        raise ValueError(f"expected images of shape (B, C, H, W), got {tuple(images.shape)}")
    grid_size(images.shape[-2:], patch_size)  # raises a clear error if the patches do not tile the image
    return rearrange(images, "b c (h p1) (w p2) -> b (h w) (p1 p2 c)", p1=patch_size, p2=patch_size)


def unpatchify(patches: torch.Tensor, patch_size: int, grid: int | tuple[int, int]) -> torch.Tensor:
    """Exact inverse of :func:`patchify`: (B, N, P*P*C) -> (B, C, H*P, W*P)."""
    h, w = as_pair(grid)
    if patches.dim() != 3 or patches.shape[1] != h * w:
        raise ValueError(f"expected patches of shape (B, {h * w}, P*P*C) for a {h}x{w} grid, got {tuple(patches.shape)}")
    if patches.shape[2] % (patch_size * patch_size):
        raise ValueError(f"patch vectors of length {patches.shape[2]} are not a multiple of P*P={patch_size ** 2}")
    return rearrange(patches, "b (h w) (p1 p2 c) -> b c (h p1) (w p2)", h=h, w=w, p1=patch_size, p2=patch_size)


class PatchEmbed(nn.Module):
    """Linear embedding of non-overlapping P x P patches, written as a strided convolution.

    A convolution with kernel P and stride P applies the *same* linear map to every patch: it is exactly
    ``patchify`` followed by one ``nn.Linear(P*P*C, D)``. :meth:`forward_linear` computes it that way, which
    is how the ViT paper describes it; :meth:`forward` uses the convolution, which is faster.

    Nothing here depends on the image size, so any image whose height and width are multiples of P works,
    rectangular ones included; other sizes raise a ValueError naming the size (the convolution alone would
    silently drop the leftover pixels).
    """

    def __init__(self, patch_size: int = 16, in_chans: int = 3, embed_dim: int = 768, bias: bool = True):
        super().__init__()
        self.patch_size = patch_size
        self.in_chans = in_chans
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size, bias=bias)

    def check_input(self, images: torch.Tensor) -> tuple[int, int]:
        """The patch grid (H, W) of ``images`` (B, C, H*P, W*P); a ValueError naming what is wrong otherwise."""
        if images.dim() != 4:
            raise ValueError(f"expected images of shape (B, C, H, W), got {tuple(images.shape)}")
        if images.shape[1] != self.in_chans:
            raise ValueError(f"expected {self.in_chans} input channels, got {images.shape[1]} (shape {tuple(images.shape)})")
        return grid_size(images.shape[-2:], self.patch_size)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        self.check_input(images)
        x = self.proj(images)  # (B, D, H, W)
        return rearrange(x, "b d h w -> b (h w) d")  # (B, N, D)

    def forward_linear(self, images: torch.Tensor) -> torch.Tensor:
        """The same embedding as :meth:`forward`, computed as patchify + a matrix product."""
        self.check_input(images)
        patches = patchify(images, self.patch_size)  # (B, N, P*P*C)
        # The conv kernel (D, C, P, P) is the linear weight, reordered like patchify's (p1 p2 c) layout.
        weight = rearrange(self.proj.weight, "d c p1 p2 -> d (p1 p2 c)")  # (D, P*P*C)
        return F.linear(patches, weight, self.proj.bias)  # (B, N, D)


def sincos_1d(dim: int, positions: torch.Tensor, temperature: float = 10000.0) -> torch.Tensor:
    """1-D sin-cos embedding of (possibly fractional) positions: (L,) -> (L, dim).

    Channel k < dim/2 holds sin(pos * w_k), channel dim/2 + k holds cos(pos * w_k), with frequencies
    w_k = temperature^(-k / (dim/2)) for k = 0 .. dim/2 - 1, a geometric ladder from 1 down to ~1/temperature,
    so nearby positions get similar vectors and far ones dissimilar vectors (the Transformer paper's recipe).
    """
    if dim % 2:
        raise ValueError(f"sin-cos embedding width must be even, got {dim}")
    half = dim // 2
    omega = torch.arange(half, dtype=torch.float64) / half  # (dim/2,)
    omega = temperature ** (-omega)  # (dim/2,)
    angles = positions.to(torch.float64).reshape(-1, 1) * omega.reshape(1, -1)  # (L, dim/2)
    return torch.cat([angles.sin(), angles.cos()], dim=1).float()  # (L, dim)


def sincos_2d(dim: int, grid: int | tuple[int, int], temperature: float = 10000.0) -> torch.Tensor:
    """Fixed 2-D sin-cos position embeddings for an H x W grid, in raster order: (H*W, dim).

    The first dim/2 channels are the 1-D embedding (:func:`sincos_1d`, width dim/2) of the patch's column
    x, the last dim/2 channels the 1-D embedding of its row y:

        pe[y*W + x] = [sin(x w_0) .. sin(x w_{d-1}), cos(x w_0) .. cos(x w_{d-1}),
                       sin(y w_0) .. sin(y w_{d-1}), cos(y w_0) .. cos(y w_{d-1})],   d = dim/4,

    with w_k = temperature^(-k/d). Column-first is the order of the official I-JEPA and MAE code, so their
    checkpoints load unchanged. The grid may be rectangular; dim must be a multiple of 4.
    """
    h, w = as_pair(grid)
    if dim % 4:
        raise ValueError(f"2-D sin-cos embedding width must be a multiple of 4, got {dim}")
    rows, cols = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")  # (H, W) each
    emb_x = sincos_1d(dim // 2, cols.reshape(-1), temperature)  # (H*W, dim/2): the column
    emb_y = sincos_1d(dim // 2, rows.reshape(-1), temperature)  # (H*W, dim/2): the row
    return torch.cat([emb_x, emb_y], dim=1)  # (H*W, dim)


def resize_positions(
    pos_embed: torch.Tensor, grid: int | tuple[int, int], new_grid: int | tuple[int, int]
) -> torch.Tensor:
    """Resample a table of position embeddings from one patch grid to another: (1, H*W, D) -> (1, H'*W', D).

    Learned positions exist only for the grid they were trained on. To run the model on a bigger or
    rectangular image we treat the table as a D-channel image of H x W pixels and resize that image
    bicubically, so the new grid's embedding at a point is a smooth blend of its trained neighbours.
    ``align_corners=False`` maps the *areas* of the two grids onto each other (patch centres, not corner
    patches, line up); no anti-aliasing, the plain bicubic kernel. Every row of the table is a patch:
    there is no class token to split off first. A table already at ``new_grid`` is returned as it is.
    Gradients flow through the resampling, so a resized learned table can still be trained.
    """
    h, w = as_pair(grid)
    new_h, new_w = as_pair(new_grid)
    if pos_embed.dim() != 3 or pos_embed.shape[0] != 1 or pos_embed.shape[1] != h * w:
        raise ValueError(f"expected positions of shape (1, {h * w}, D) for a {h}x{w} grid, got {tuple(pos_embed.shape)}")
    if (h, w) == (new_h, new_w):
        return pos_embed
    image = rearrange(pos_embed, "1 (h w) d -> 1 d h w", h=h, w=w)  # (1, D, H, W)
    image = F.interpolate(image.float(), size=(new_h, new_w), mode="bicubic", align_corners=False, antialias=False)  # (1, D, H', W')
    return rearrange(image, "1 d h w -> 1 (h w) d").to(pos_embed.dtype)  # (1, H'*W', D)
