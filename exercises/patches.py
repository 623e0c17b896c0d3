# Exercise file: write your code where the functions raise NotImplementedError.
# (Generated from solutions/patches.py by `python solutions/make_exercises.py`; graded by tests/grading/.)
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
    raise NotImplementedError("exercise 'patchify' is not implemented yet")


def unpatchify(patches: torch.Tensor, patch_size: int, grid: int | tuple[int, int]) -> torch.Tensor:
    """The exact inverse of :func:`patchify`: patches (B, N, P*P*C) -> images (B, C, H*P, W*P).

    ``grid`` is the patch grid (H, W), or one int for a square grid; N must equal H * W.
    ``unpatchify(patchify(x, P), P, grid)`` gives back ``x`` exactly.

    Hint: undo patchify's steps in reverse order: reshape to (B, H, W, P, P, C), permute, reshape.
    """
    raise NotImplementedError("exercise 'unpatchify' is not implemented yet")


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
    raise NotImplementedError("exercise 'sincos_2d' is not implemented yet")
