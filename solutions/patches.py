"""Exercises 1-3, images as sequences (notebook 1): patchify, unpatchify, sincos_2d.

A ViT cuts an image into a grid of P x P patches, flattens each patch into a vector, and tells every token
where it came from with a fixed 2-D sin-cos position embedding.

Notation: B batch, C channels, P patch size, H/W grid rows/columns (in patches), N = H * W, D width.

Check your work in the notebook (the cells that call ``student_or_reference("patches", ...)``) or from a
terminal:  MINIJEPA_SUBMISSION=exercises python -m pytest tests/grading/test_patches.py -k patchify
Exercise files may import torch, einops, numpy and math; not the course package (see docs/exercises.md).
"""

from __future__ import annotations

import torch


def patchify(images: torch.Tensor, patch_size: int) -> torch.Tensor:
    """Cut images into flattened patches, in raster order.

    images (B, C, H*P, W*P) -> patches (B, N, P*P*C), with P = patch_size and N = H * W.

    - Patch n comes from grid row n // W and grid column n % W (left to right, then top to bottom).
    - Inside a patch vector the pixels are listed row by row with the channels last: entry
      (i * P + j) * C + c holds pixel (i, j) of channel c (the layout MAE and I-JEPA use).
    - Raise ValueError if ``images`` is not 4-D or its height or width is not a multiple of P.

    Hints: ``images.reshape(B, C, H, P, W, P)``, then ``permute`` the axes into (B, H, W, P, P, C), then
    ``reshape`` to (B, H * W, P * P * C). (Or one ``einops.rearrange``.)
    """
    ### BEGIN SOLUTION
    if images.dim() != 4:
        raise ValueError(f"expected images of shape (B, C, H, W), got {tuple(images.shape)}")
    B, C, height, width = images.shape
    P = patch_size
    if height % P or width % P:
        raise ValueError(f"image size {height}x{width} is not a multiple of patch_size={P}")
    H, W = height // P, width // P
    x = images.reshape(B, C, H, P, W, P)  # (B, C, H, P, W, P)
    x = x.permute(0, 2, 4, 3, 5, 1)  # (B, H, W, P, P, C)
    return x.reshape(B, H * W, P * P * C)  # (B, N, P*P*C)
    ### END SOLUTION


def unpatchify(patches: torch.Tensor, patch_size: int, grid: int | tuple[int, int]) -> torch.Tensor:
    """The exact inverse of :func:`patchify`: patches (B, N, P*P*C) -> images (B, C, H*P, W*P).

    ``grid`` is the patch grid (H, W), or one int for a square grid; N must equal H * W.
    ``unpatchify(patchify(x, P), P, grid)`` gives back ``x`` exactly.

    Hint: undo patchify's steps in reverse order: reshape to (B, H, W, P, P, C), permute, reshape.
    """
    ### BEGIN SOLUTION
    H, W = (grid, grid) if isinstance(grid, int) else (int(grid[0]), int(grid[1]))
    B, N, L = patches.shape
    P = patch_size
    C = L // (P * P)
    x = patches.reshape(B, H, W, P, P, C)  # (B, H, W, P, P, C)
    x = x.permute(0, 5, 1, 3, 2, 4)  # (B, C, H, P, W, P)
    return x.reshape(B, C, H * P, W * P)  # (B, C, H*P, W*P)
    ### END SOLUTION


def sincos_2d(dim: int, grid: int | tuple[int, int], temperature: float = 10000.0) -> torch.Tensor:
    """Fixed 2-D sin-cos position embeddings of an H x W grid, in raster order: (H*W, dim), float32.

    With d = dim / 4 and frequencies w_k = temperature ** (-k / d) for k = 0 .. d-1, the patch in row y
    and column x (index y * W + x) gets

        [sin(x w_0) .. sin(x w_{d-1}), cos(x w_0) .. cos(x w_{d-1}),
         sin(y w_0) .. sin(y w_{d-1}), cos(y w_0) .. cos(y w_{d-1})]

    i.e. the first half of the channels encodes the COLUMN, the second half the ROW (the order of the
    official I-JEPA and MAE code). ``grid`` is (H, W) or one int. Raise ValueError if dim is not a
    multiple of 4.

    Hints: ``torch.meshgrid(torch.arange(H), torch.arange(W), indexing="ij")`` gives each patch's row and
    column; an outer product (positions (N, 1) times frequencies (1, d)) gives all the angles at once.
    Compute in float64 and convert to float32 at the end.
    """
    ### BEGIN SOLUTION
    if dim % 4:
        raise ValueError(f"dim must be a multiple of 4, got {dim}")
    H, W = (grid, grid) if isinstance(grid, int) else (int(grid[0]), int(grid[1]))
    d = dim // 4
    omega = temperature ** (-torch.arange(d, dtype=torch.float64) / d)  # (d,)
    rows, cols = torch.meshgrid(torch.arange(H), torch.arange(W), indexing="ij")  # (H, W) each

    def embed(positions: torch.Tensor) -> torch.Tensor:  # (N,) -> (N, 2d)
        angles = positions.reshape(-1, 1).double() * omega.reshape(1, -1)  # (N, d)
        return torch.cat([angles.sin(), angles.cos()], dim=1)

    return torch.cat([embed(cols), embed(rows)], dim=1).float()  # (N, dim)
    ### END SOLUTION
