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
    ### BEGIN SOLUTION
    H, W = grid
    h, w = block
    if not (1 <= h <= H and 1 <= w <= W):
        raise ValueError(f"a {h}x{w} block does not fit in a {H}x{W} grid")
    top = int(torch.randint(0, H - h + 1, (1,), generator=generator))
    left = int(torch.randint(0, W - w + 1, (1,), generator=generator))
    rows = torch.arange(top, top + h)  # (h,)
    cols = torch.arange(left, left + w)  # (w,)
    return (rows[:, None] * W + cols[None, :]).flatten()  # (h*w,) row by row: ascending
    ### END SOLUTION


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
    ### BEGIN SOLUTION
    targets = torch.stack([sample_block(grid, target_block, generator) for _ in range(num_targets)])  # (M, T)
    context = sample_block(grid, context_block, generator)  # (h_c * w_c,)
    keep = ~torch.isin(context, targets.flatten())  # (h_c * w_c,)
    return context[keep], targets  # (K,), (M, T)
    ### END SOLUTION


def gather_tokens(x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """Masking as index gathering: keep the tokens of ``x`` at the patch indices ``idx``.

    x (B, N, D) and idx (B, K) -> (B, K, D):       out[b, k] = x[b, idx[b, k]]
    x (B, N, D) and idx (B, M, K) -> (B, M, K, D): out[b, m, k] = x[b, idx[b, m, k]]
    Gradients must flow back to ``x`` (no Python loops over tokens needed).

    Hints: ``torch.gather(x, 1, index)`` with ``index`` = idx expanded to (B, K, D); for a 3-D idx,
    flatten the block axis into K first and restore it at the end.
    """
    ### BEGIN SOLUTION
    if idx.dim() == 3:  # (B, M, K): gather every block at once, then restore the block axis
        B, M, K = idx.shape
        return gather_tokens(x, idx.reshape(B, M * K)).reshape(B, M, K, x.shape[-1])  # (B, M, K, D)
    index = idx.long().unsqueeze(-1).expand(-1, -1, x.shape[-1])  # (B, K, D)
    return torch.gather(x, 1, index)  # (B, K, D)
    ### END SOLUTION
