# Exercise file: write your code where the functions raise NotImplementedError.
# (Generated from solutions/masks.py by `python solutions/make_exercises.py`; graded by tests/grading/.)
"""Exercises 7-9, multi-block masking (notebook 3): sample_block, multiblock_masks, gather_tokens.

Masks are index tensors into the H x W patch grid, flattened in raster order (index = row * W + col).
I-JEPA samples M target blocks and one large context block, removes the target patches from the context,
and applies a mask by gathering tokens at the kept indices.

Randomness comes only from the ``torch.Generator`` you are given (never the global random state), so the
same seed gives the same masks.

Check your work in the notebook or from a terminal:
    MINIJEPA_SUBMISSION=exercises python -m pytest tests/grading/test_masks.py -k sample_block
"""

from __future__ import annotations

import torch


def sample_block(grid: tuple[int, int], block: tuple[int, int], generator: torch.Generator) -> torch.Tensor:
    """The patch indices of one h x w block at a uniformly random position on an H x W grid.

    grid (H, W), block (h, w) -> indices (h*w,), dtype torch.long, in ascending (raster) order.

    - Every top-left corner (top, left) with 0 <= top <= H - h and 0 <= left <= W - w is equally likely:
      a block CAN touch the last row and the last column. (The official I-JEPA code draws
      ``randint(0, H - h)``, whose upper end is exclusive, so its blocks never do.)
    - Draw only from ``generator``, e.g. ``torch.randint(low, high, (1,), generator=generator)``
      (``high`` is exclusive).
    - Raise ValueError if the block does not fit in the grid (h > H or w > W, or h, w < 1).

    Hint: the rows are top .. top+h-1 and the columns left .. left+w-1; index = row * W + col.
    """
    raise NotImplementedError("exercise 'sample_block' is not implemented yet")


def multiblock_masks(
    grid: tuple[int, int],
    num_targets: int,
    target_block: tuple[int, int],
    context_block: tuple[int, int],
    generator: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """I-JEPA's multi-block masks for ONE image: (context (K,), targets (M, T)).

    - targets: ``num_targets`` = M blocks of shape ``target_block`` (T = h * w patches each), each placed
      independently with :func:`sample_block`; shape (M, T), dtype long, each row ascending. Target
      blocks may overlap each other.
    - context: one block of shape ``context_block`` placed with :func:`sample_block`, MINUS every patch
      that belongs to some target block (so the context never sees what it must predict); a 1-D long
      tensor of the remaining K indices, ascending. K varies from draw to draw.

    Hint: ``torch.isin(context, targets.flatten())`` marks the context patches to drop.
    """
    raise NotImplementedError("exercise 'multiblock_masks' is not implemented yet")


def gather_tokens(x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """Masking as index gathering: keep the tokens of ``x`` at the patch indices ``idx``.

    x (B, N, D) and idx (B, K) -> (B, K, D):       out[b, k] = x[b, idx[b, k]]
    x (B, N, D) and idx (B, M, K) -> (B, M, K, D): out[b, m, k] = x[b, idx[b, m, k]]
    Gradients must flow back to ``x`` (no Python loops over tokens needed).

    Hints: ``torch.gather(x, 1, index)`` with ``index`` = idx expanded to (B, K, D); for a 3-D idx,
    flatten the block axis into K first and restore it at the end.
    """
    raise NotImplementedError("exercise 'gather_tokens' is not implemented yet")
