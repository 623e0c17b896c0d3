"""Masking for I-JEPA: which patches the context encoder sees and which ones the predictor must predict.

Masks are *index tensors* into the H x W patch grid, flattened in raster order (index = row * W + col),
so applying a mask is a single gather (see :func:`gather_tokens`), as in MAE's models_mae.py.

Every strategy is a :class:`MaskSampler`: ``sampler.sample(B, generator)`` returns a :class:`MaskBatch`, and
``sampler`` itself is a DataLoader ``collate_fn``. The strategies are

* :class:`MultiBlockMasks`  the paper's sampler: M target blocks, one context block minus the targets.
  ``mode="unbiased"`` (default) draws exactly the distribution the paper describes; ``mode="reference"``
  reproduces the official collator (facebookresearch/ijepa, src/masks/multiblock.py) with its biases, so
  the course can show them.
* :class:`RandomMasks`, :class:`BlockMasks`, :class:`RasterizedMasks`  the paper's ablations (Table 6).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import torch
from einops import rearrange, repeat
from torch.utils.data import default_collate, get_worker_info

__all__ = [
    "MaskBatch",
    "gather_tokens",
    "MaskSampler",
    "MultiBlockMasks",
    "RandomMasks",
    "BlockMasks",
    "RasterizedMasks",
    "masks_to_grid",
    "coverage",
]


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


# ----------------------------------------------------------------------------------------------------
# Small helpers: validation, block geometry, index extraction
# ----------------------------------------------------------------------------------------------------


def _is_int(x) -> bool:
    return isinstance(x, (int, np.integer)) and not isinstance(x, bool)


def _as_grid(grid) -> tuple[int, int]:
    """``14`` -> (14, 14); ``(10, 14)`` -> (10, 14); anything else is a ValueError naming ``grid``."""
    hw = (grid, grid) if _is_int(grid) else tuple(grid) if isinstance(grid, (tuple, list)) else ()
    if len(hw) != 2 or not all(_is_int(v) and v >= 1 for v in hw):
        raise ValueError(f"grid={grid!r}: expected a positive int or a (H, W) pair of positive ints")
    return int(hw[0]), int(hw[1])


def _as_range(name: str, value, upper: float | None) -> tuple[float, float]:
    """Validate a ``(min, max)`` setting (a single number means a fixed value) inside (0, upper]."""
    pair = (value, value) if isinstance(value, (int, float)) else value
    ok = isinstance(pair, (tuple, list)) and len(pair) == 2
    ok = ok and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in pair)
    if not ok or not 0 < pair[0] <= pair[1] or (upper is not None and pair[1] > upper):
        where = "(0, 1]" if upper == 1 else "(0, inf)"
        raise ValueError(f"{name}={value!r}: expected (min, max) with min <= max, both in {where}")
    return float(pair[0]), float(pair[1])


def _check_int(name: str, value, minimum: int) -> int:
    if not _is_int(value) or value < minimum:
        raise ValueError(f"{name}={value!r}: expected an int >= {minimum}")
    return int(value)


def _mix_seeds(*seeds: int) -> int:
    """One well-mixed 63-bit seed from several ints (so related seeds give unrelated streams)."""
    return int(np.random.SeedSequence(list(seeds)).generate_state(1, dtype=np.uint64)[0] >> 1)


def _lerp(bounds: tuple[float, float], u: float) -> float:
    return bounds[0] + u * (bounds[1] - bounds[0])


def _block_shape(scale: float, ratio: float, grid: tuple[int, int]) -> tuple[int, int]:
    """Block size (h, w) covering about ``scale`` of the grid with h / w about ``ratio``.

    Solving h * w = s N and h / w = a gives h = sqrt(s N a), w = sqrt(s N / a). We round each to the
    nearest integer (Python's round, half to even; exact ties have probability zero) and clamp to
    [1, H] x [1, W]: a block may span the whole grid but never exceeds it. Rounding alone moves h and w
    by at most 1/2, so (h - 1/2)(w - 1/2) <= s N <= (h + 1/2)(w + 1/2) unless the clamp was hit.
    """
    H, W = grid
    area = scale * H * W
    h = min(max(round((area * ratio) ** 0.5), 1), H)
    w = min(max(round((area / ratio) ** 0.5), 1), W)
    return h, w


def _reference_shape(u: float, scale, ratio, grid: tuple[int, int]) -> tuple[int, int]:
    """The official collator's block size: ONE uniform number ``u`` sets both scale and aspect ratio.

    The area is floored to an int first, and h, w are then shrunk until they are smaller than the grid.
    """
    H, W = grid
    area = int(H * W * _lerp(scale, u))
    a = _lerp(ratio, u)
    h, w = int(round((area * a) ** 0.5)), int(round((area / a) ** 0.5))
    return min(h, H - 1), min(w, W - 1)  # the official `while h >= H: h -= 1`


def _block_grid(top: torch.Tensor, left: torch.Tensor, h: int, w: int, grid) -> torch.Tensor:
    """Boolean pictures of h x w blocks with top-left corners (top, left): (...,) -> (..., H, W)."""
    H, W = grid
    rows, cols = torch.arange(H), torch.arange(W)
    in_rows = (rows >= top[..., None]) & (rows < top[..., None] + h)  # (..., H)
    in_cols = (cols >= left[..., None]) & (cols < left[..., None] + w)  # (..., W)
    return in_rows[..., :, None] & in_cols[..., None, :]  # (..., H, W)


def _block_indices(top: torch.Tensor, left: torch.Tensor, h: int, w: int, width: int) -> torch.Tensor:
    """Raster indices of h x w blocks, ascending: (...,) -> (..., h*w)."""
    rows = top[..., None] + torch.arange(h)  # (..., h)
    cols = left[..., None] + torch.arange(w)  # (..., w)
    index = rows[..., :, None] * width + cols[..., None, :]  # (..., h, w)
    return index.flatten(-2)  # (..., h*w) row by row, hence ascending


def _lowest_keys(mask: torch.Tensor, k: int, key: torch.Tensor) -> torch.Tensor:
    """Among the True positions of each row of ``mask`` (B, N), keep the k with the lowest ``key``.

    A random key keeps a uniform random subset; key = index keeps the first k in raster order.
    Returns (B, k) indices sorted ascending.
    """
    key = key.masked_fill(~mask, float("inf"))  # (B, N) positions outside the mask are never picked
    keep = key.topk(k, dim=1, largest=False).indices  # (B, k)
    return keep.sort(dim=1).values  # (B, k)


def _equal_count_indices(mask: torch.Tensor) -> torch.Tensor:
    """(B, N) boolean mask with the same count c in every row -> (B, c) ascending indices."""
    return torch.nonzero(mask)[:, 1].reshape(mask.shape[0], -1)  # nonzero walks row by row


# ----------------------------------------------------------------------------------------------------
# The common interface
# ----------------------------------------------------------------------------------------------------


class MaskSampler:
    """A mask strategy: ``sample(B, generator) -> MaskBatch``, and a DataLoader ``collate_fn``.

    Randomness comes only from a ``torch.Generator`` (never the global RNG), so the same seed gives the
    same masks. Used as a ``collate_fn`` the sampler draws from its own generator, created lazily:

    * in the main process (``num_workers=0``) it is seeded with ``seed``; ``state_dict()`` /
      ``load_state_dict()`` save and restore it, so a resumed run draws exactly the same masks;
    * in a DataLoader worker it is seeded from ``worker_info.seed`` (mixed with ``seed``). PyTorch derives
      that seed from the DataLoader's base seed (the main process's RNG, or ``DataLoader(generator=...)``)
      plus the worker id, so workers draw different masks and the whole run is reproducible from the main
      process. Mixing keeps the masks independent of the worker's global RNG (seeded with the same number,
      e.g. for augmentations). Workers keep no resumable state of their own.
    """

    def __init__(self, grid, seed: int = 0):
        self.grid = _as_grid(grid)
        self.seed = _check_int("seed", seed, 0)
        self._generator: torch.Generator | None = None
        self._owner: str | None = None  # which process (main or worker seed) the generator belongs to

    @property
    def num_patches(self) -> int:
        return self.grid[0] * self.grid[1]

    def sample(self, batch_size: int, generator: torch.Generator | None = None) -> MaskBatch:
        """Masks for ``batch_size`` images; ``generator=None`` uses the sampler's own generator."""
        batch_size = _check_int("batch_size", batch_size, 1)
        return self._sample(batch_size, self.generator if generator is None else generator)

    def _sample(self, batch_size: int, generator: torch.Generator) -> MaskBatch:
        raise NotImplementedError

    def __call__(self, batch):
        """``collate_fn``: (images, labels, masks) for tuple samples, (batch, masks) otherwise."""
        collated = default_collate(batch)
        masks = self.sample(len(batch), self.generator)
        if isinstance(collated, (list, tuple)):
            return (*collated, masks)
        return collated, masks

    @staticmethod
    def _current_owner() -> str:
        info = get_worker_info()
        return "main" if info is None else f"worker seed {info.seed}"

    @property
    def generator(self) -> torch.Generator:
        """The sampler's own generator, (re)created when first used in this process."""
        owner = self._current_owner()
        if self._generator is None or self._owner != owner:  # a copy made for a worker re-seeds itself
            info = get_worker_info()
            seed = self.seed if info is None else _mix_seeds(info.seed, self.seed)
            self._generator, self._owner = torch.Generator().manual_seed(seed), owner
        return self._generator

    def state_dict(self) -> dict:
        return {"seed": self.seed, "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.seed = state["seed"]
        self._generator, self._owner = torch.Generator(), self._current_owner()
        self._generator.set_state(state["generator"])

    def __getstate__(self) -> dict:
        # Pickle the generator state as plain bytes: no tensor, so no shared-memory handle per worker.
        state = dict(self.__dict__)
        if self._generator is not None:
            state["_generator"] = self._generator.get_state().numpy().tobytes()
        return state

    def __setstate__(self, state: dict) -> None:
        if isinstance(state["_generator"], bytes):
            generator = torch.Generator()
            generator.set_state(torch.frombuffer(bytearray(state["_generator"]), dtype=torch.uint8))
            state["_generator"] = generator
        self.__dict__.update(state)

    def __repr__(self) -> str:
        settings = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({settings})"


# ----------------------------------------------------------------------------------------------------
# The paper's multi-block masks
# ----------------------------------------------------------------------------------------------------


class MultiBlockMasks(MaskSampler):
    """I-JEPA's multi-block masking: M target blocks, and one large context block minus the targets.

    Per batch we draw ONE target shape (h, w), shared by all M blocks of all images, and one context
    shape; positions are independent per image and per block. Sharing the target shape is what the paper
    does, and it is what lets the targets be one (B, M, T) tensor with T = h * w (no padding, one gather).
    Contexts differ in size (targets cut different holes), so they are cut to the batch minimum K.

    ``mode="unbiased"`` (default) follows the paper's text exactly:
      * scale s ~ U(scale range) and aspect ratio a ~ U(ratio range), drawn independently;
      * h, w from :func:`_block_shape` (rounded, clamped to the grid, so a block may span it);
      * top-left corners uniform over all valid positions 0..H-h and 0..W-w, so every patch can be hit;
      * an image whose context keeps fewer than ``min_keep`` patches redraws all its block positions
        (up to ``max_tries`` rounds, i.e. positions are uniform *given* a valid context), else RuntimeError;
      * contexts are cut to K = the batch minimum by keeping a uniform random subset (no spatial bias).

    ``mode="reference"`` reproduces the official collator's behaviour on purpose, to study its biases:
    one uniform number sets both scale and ratio; h, w are shrunk below H, W; corners come from
    randint(0, H - h), which never reaches the last row and column; a block is accepted only if it has
    MORE than ``min_keep`` patches (targets too); the context is redrawn up to ``max_tries`` times, then,
    as in the official code, it stops avoiding the last target block, then the last two, ... (so in rare
    cases it overlaps targets); contexts are cut to the batch minimum keeping the LOWEST raster indices.
    Where the official code would loop forever (a drawn block with <= min_keep patches) we raise instead.
    """

    MODES = ("unbiased", "reference")

    def __init__(
        self,
        grid,
        num_targets: int = 4,
        target_scale=(0.15, 0.2),
        target_aspect_ratio=(0.75, 1.5),
        context_scale=(0.85, 1.0),
        context_aspect_ratio=(1.0, 1.0),
        min_keep: int = 10,
        allow_overlap: bool = False,
        mode: str = "unbiased",
        max_tries: int = 20,
        seed: int = 0,
    ):
        super().__init__(grid, seed)
        self.num_targets = _check_int("num_targets", num_targets, 1)
        self.target_scale = _as_range("target_scale", target_scale, upper=1)
        self.target_aspect_ratio = _as_range("target_aspect_ratio", target_aspect_ratio, upper=None)
        self.context_scale = _as_range("context_scale", context_scale, upper=1)
        self.context_aspect_ratio = _as_range("context_aspect_ratio", context_aspect_ratio, upper=None)
        self.min_keep = _check_int("min_keep", min_keep, 1)
        if not isinstance(allow_overlap, bool):
            raise ValueError(f"allow_overlap={allow_overlap!r}: expected True or False")
        self.allow_overlap = allow_overlap
        if mode not in self.MODES:
            raise ValueError(f"mode={mode!r}: expected one of {self.MODES}")
        self.mode = mode
        self.max_tries = _check_int("max_tries", max_tries, 1)
        if mode == "unbiased":
            self._check_unbiased_feasible()
        else:
            self._check_reference_feasible()

    # -- shapes -------------------------------------------------------------------------------------

    def _shape(self, which: str, u: float, v: float = 0.0) -> tuple[int, int]:
        """Block shape of the ``which`` ("target"/"context") block from uniform numbers u (and v)."""
        scale, ratio = getattr(self, f"{which}_scale"), getattr(self, f"{which}_aspect_ratio")
        if self.mode == "reference":
            return _reference_shape(u, scale, ratio, self.grid)
        return _block_shape(_lerp(scale, u), _lerp(ratio, v), self.grid)

    def _possible_shapes(self, which: str, steps: int = 65) -> set[tuple[int, int]]:
        """The shapes mode "unbiased" can draw, found on a steps x steps lattice of (u, v), ends included."""
        us = [i / (steps - 1) for i in range(steps)]
        return {self._shape(which, u, v) for u in us for v in us}

    # -- construction-time checks ---------------------------------------------------------------------

    def _check_unbiased_feasible(self) -> None:
        """Fail at construction, not mid-training, when min_keep cannot (or hardly can) be met."""
        (H, W), k = self.grid, self.min_keep
        pairs = [(c, t) for c in self._possible_shapes("context") for t in self._possible_shapes("target")]

        def best_case(c, t):  # most context patches next to ONE target block placed to overlap least
            overlap = 0 if self.allow_overlap else max(0, t[0] + c[0] - H) * max(0, t[1] + c[1] - W)
            return c[0] * c[1] - overlap

        c, t = min(pairs, key=lambda pair: best_case(*pair))
        if best_case(c, t) < k:
            raise ValueError(
                f"min_keep={k}: a {c[0]}x{c[1]} context block next to a {t[0]}x{t[1]} target block keeps at "
                f"most {best_case(c, t)} patches even in the best case; lower min_keep or target_scale, "
                f"or raise context_scale"
            )
        # A seeded trial with a private generator: the hardest shape pair, then ordinary batches.
        trial = torch.Generator().manual_seed(0)
        c, t = min(pairs, key=lambda pair: pair[0][0] * pair[0][1] - pair[1][0] * pair[1][1])
        try:
            self._place_unbiased(256, t, c, trial)
            for _ in range(32):
                self._sample(8, trial)
        except RuntimeError as error:
            raise ValueError(f"min_keep={k}: these settings fail a seeded trial at construction. {error}") from None

    def _check_reference_feasible(self) -> None:
        """The official collator hangs on blocks with <= min_keep patches: refuse or warn up front."""
        H, W = self.grid
        if H < 2 or W < 2:
            raise ValueError(f"grid={self.grid}: mode='reference' needs H, W >= 2 (blocks are shrunk below them)")
        us = [i / 1024 for i in range(1025)]
        bad = {}
        for which in ("target", "context"):
            areas = [h * w for h, w in (self._shape(which, u) for u in us)]
            bad[which] = sum(a <= self.min_keep for a in areas) / len(areas)
            if bad[which] == 1.0:
                raise ValueError(
                    f"min_keep={self.min_keep}: in mode='reference' every {which} block has at most "
                    f"{max(areas)} patches, and the official collator only accepts more than min_keep (it "
                    f"would loop forever); lower min_keep or raise {which}_scale"
                )
        p_fail = 1 - (1 - bad["target"]) * (1 - bad["context"])
        if p_fail > 0:
            warnings.warn(
                f"mode='reference' with min_keep={self.min_keep} on a {H}x{W} grid: about {p_fail:.0%} of "
                f"batches draw a block with <= min_keep patches; the official collator hangs on those, "
                f"sample() raises RuntimeError",
                RuntimeWarning,
                stacklevel=3,
            )

    # -- sampling -------------------------------------------------------------------------------------

    def _sample(self, batch_size: int, generator: torch.Generator) -> MaskBatch:
        if self.mode == "unbiased":
            u = torch.rand(4, generator=generator, dtype=torch.float64).tolist()  # independent s, a
            target, context = self._shape("target", u[0], u[1]), self._shape("context", u[2], u[3])
            return self._sample_unbiased(batch_size, target, context, generator)
        u = torch.rand(2, generator=generator).tolist()  # one number per block: s and a move together
        target, context = self._shape("target", u[0]), self._shape("context", u[1])
        return self._sample_reference(batch_size, target, context, generator)

    def _place_unbiased(self, B: int, target, context, g):
        """Block corners for B images, redrawn (vectorized) where the context keeps < min_keep patches.

        Returns target corners (B, M) x2 and the context picture (B, H, W).
        """
        (H, W), M = self.grid, self.num_targets
        (th, tw), (ch, cw) = target, context
        t_top, t_left = torch.empty(B, M, dtype=torch.long), torch.empty(B, M, dtype=torch.long)
        context_grid = torch.empty(B, H, W, dtype=torch.bool)
        pending = torch.arange(B)  # images still waiting for a valid draw
        for _ in range(self.max_tries):
            n = len(pending)
            top = torch.randint(0, H - th + 1, (n, M), generator=g)  # (n, M) 0..H-th inclusive
            left = torch.randint(0, W - tw + 1, (n, M), generator=g)  # (n, M)
            c_top = torch.randint(0, H - ch + 1, (n,), generator=g)  # (n,)
            c_left = torch.randint(0, W - cw + 1, (n,), generator=g)  # (n,)
            keep = _block_grid(c_top, c_left, ch, cw, self.grid)  # (n, H, W)
            if not self.allow_overlap:
                keep &= ~_block_grid(top, left, th, tw, self.grid).any(dim=1)  # minus union of targets
            ok = keep.sum(dim=(1, 2)) >= self.min_keep  # (n,)
            done = pending[ok]
            t_top[done], t_left[done], context_grid[done] = top[ok], left[ok], keep[ok]
            pending = pending[~ok]
            if len(pending) == 0:
                return t_top, t_left, context_grid
        raise RuntimeError(
            f"MultiBlockMasks: {len(pending)} of {B} images kept fewer than min_keep={self.min_keep} context "
            f"patches in all max_tries={self.max_tries} draws (target blocks {th}x{tw}, context block "
            f"{ch}x{cw}); relax the settings: lower min_keep, num_targets or target_scale, raise "
            f"context_scale or max_tries"
        )

    def _sample_unbiased(self, B: int, target, context, g) -> MaskBatch:
        (th, tw), W = target, self.grid[1]
        t_top, t_left, context_grid = self._place_unbiased(B, target, context, g)
        targets = _block_indices(t_top, t_left, th, tw, W)  # (B, M, th*tw)
        keep = rearrange(context_grid, "b h w -> b (h w)")  # (B, N)
        k = int(keep.sum(dim=1).min())
        random_key = torch.rand(keep.shape, generator=g)  # (B, N): uniform subset, no spatial preference
        return MaskBatch(_lowest_keys(keep, k, random_key), targets, self.grid)

    def _sample_reference(self, B: int, target, context, g) -> MaskBatch:
        (H, W), M = self.grid, self.num_targets
        (th, tw), (ch, cw) = target, context
        for which, (h, w) in (("target", target), ("context", context)):
            if h * w <= self.min_keep:
                raise RuntimeError(
                    f"mode='reference' drew a {h}x{w} {which} block ({h * w} patches) but accepts only blocks "
                    f"with more than min_keep={self.min_keep} patches: the official collator loops forever "
                    f"here. Lower min_keep, raise {which}_scale, or use mode='unbiased'"
                )
        top = torch.randint(0, H - th, (B, M), generator=g)  # (B, M) exclusive: last row never reached
        left = torch.randint(0, W - tw, (B, M), generator=g)  # (B, M)
        inside = _block_grid(top, left, th, tw, self.grid)  # (B, M, H, W)
        # The official schedule: max_tries draws avoiding all M targets, then M-1, ..., then none.
        schedule = [0] if self.allow_overlap else [n for n in range(M, -1, -1) for _ in range(self.max_tries)]
        keep = torch.empty(B, H, W, dtype=torch.bool)
        pending = torch.arange(B)
        for n_avoid in schedule:  # ends: with n_avoid = 0 the block alone has > min_keep patches
            c_top = torch.randint(0, H - ch, (len(pending),), generator=g)  # (P,)
            c_left = torch.randint(0, W - cw, (len(pending),), generator=g)  # (P,)
            candidate = _block_grid(c_top, c_left, ch, cw, self.grid)  # (P, H, W)
            candidate &= ~inside[pending, :n_avoid].any(dim=1)  # minus the first n_avoid target blocks
            ok = candidate.sum(dim=(1, 2)) > self.min_keep  # (P,)
            keep[pending[ok]] = candidate[ok]
            pending = pending[~ok]
            if len(pending) == 0:
                break
        keep = rearrange(keep, "b h w -> b (h w)")  # (B, N)
        k = int(keep.sum(dim=1).min())
        raster_key = torch.arange(H * W, dtype=torch.float).expand(B, -1)  # (B, N): first k in raster order
        targets = _block_indices(top, left, th, tw, W)  # (B, M, th*tw)
        return MaskBatch(_lowest_keys(keep, k, raster_key), targets, self.grid)


# ----------------------------------------------------------------------------------------------------
# The paper's ablation strategies (Table 6): one target "block" or quadrants
# ----------------------------------------------------------------------------------------------------


class RandomMasks(MaskSampler):
    """Targets: a random ``target_ratio`` of the patches, as ONE target (M = 1); context: the rest."""

    def __init__(self, grid, target_ratio: float = 0.6, seed: int = 0):
        super().__init__(grid, seed)
        if not isinstance(target_ratio, (int, float)) or not 0 < target_ratio < 1:
            raise ValueError(f"target_ratio={target_ratio!r}: expected a number in (0, 1)")
        self.target_ratio = float(target_ratio)
        self.num_target_patches = round(self.target_ratio * self.num_patches)
        if not 1 <= self.num_target_patches < self.num_patches:
            raise ValueError(
                f"target_ratio={target_ratio!r}: gives {self.num_target_patches} of {self.num_patches} patches "
                f"on the {self.grid} grid, but target and context must both be non-empty"
            )

    def _sample(self, batch_size: int, generator: torch.Generator) -> MaskBatch:
        B, N, T = batch_size, self.num_patches, self.num_target_patches
        chosen = torch.rand(B, N, generator=generator).topk(T, dim=1).indices  # (B, T) a uniform T-subset
        is_target = torch.zeros(B, N, dtype=torch.bool).scatter_(1, chosen, True)  # (B, N)
        targets = _equal_count_indices(is_target)  # (B, T) ascending
        context = _equal_count_indices(~is_target)  # (B, N - T) ascending
        return MaskBatch(context, targets[:, None], self.grid)  # targets (B, 1, T)


class BlockMasks(MaskSampler):
    """One large target block (M = 1) at a uniform random position; context: its complement."""

    def __init__(self, grid, target_scale=0.6, aspect_ratio=(1.0, 1.0), seed: int = 0):
        super().__init__(grid, seed)
        self.target_scale = _as_range("target_scale", target_scale, upper=1)
        self.aspect_ratio = _as_range("aspect_ratio", aspect_ratio, upper=None)
        steps = [i / 64 for i in range(65)]
        shapes = {self._shape(u, v) for u in steps for v in steps}
        h, w = max(shapes, key=lambda hw: hw[0] * hw[1])
        if h * w >= self.num_patches:
            raise ValueError(f"target_scale={target_scale!r}: a {h}x{w} block covers the whole grid, no context left")

    def _shape(self, u: float, v: float) -> tuple[int, int]:
        return _block_shape(_lerp(self.target_scale, u), _lerp(self.aspect_ratio, v), self.grid)

    def _sample(self, batch_size: int, generator: torch.Generator) -> MaskBatch:
        (H, W), B = self.grid, batch_size
        h, w = self._shape(*torch.rand(2, generator=generator, dtype=torch.float64).tolist())
        top = torch.randint(0, H - h + 1, (B, 1), generator=generator)  # (B, 1) all valid positions
        left = torch.randint(0, W - w + 1, (B, 1), generator=generator)  # (B, 1)
        targets = _block_indices(top, left, h, w, W)  # (B, 1, h*w)
        outside = ~rearrange(_block_grid(top, left, h, w, self.grid), "b 1 h w -> b (h w)")  # (B, N)
        return MaskBatch(_equal_count_indices(outside), targets, self.grid)  # context (B, N - h*w)


class RasterizedMasks(MaskSampler):
    """Quadrants: the context is one random quadrant, the targets are the other three (M = 3, T = N/4)."""

    def __init__(self, grid, seed: int = 0):
        super().__init__(grid, seed)
        H, W = self.grid
        if H % 2 or W % 2:
            raise ValueError(f"grid={grid!r}: RasterizedMasks needs an even number of rows and columns")

    def _sample(self, batch_size: int, generator: torch.Generator) -> MaskBatch:
        W, h, w = self.grid[1], self.grid[0] // 2, self.grid[1] // 2
        top, left = torch.tensor([0, 0, h, h]), torch.tensor([0, w, 0, w])  # quadrants TL, TR, BL, BR
        quadrants = _block_indices(top, left, h, w, W)  # (4, N/4)
        others = torch.tensor([[o for o in range(4) if o != q] for q in range(4)])  # (4, 3)
        q = torch.randint(0, 4, (batch_size,), generator=generator)  # (B,) the context quadrant
        context = quadrants[q]  # (B, N/4)
        targets = quadrants[others[q]]  # (B, 3, N/4)
        return MaskBatch(context, targets, self.grid)


# ----------------------------------------------------------------------------------------------------
# Looking at masks: pictures and coverage heat maps
# ----------------------------------------------------------------------------------------------------


def masks_to_grid(masks: MaskBatch) -> tuple[torch.Tensor, torch.Tensor]:
    """Index masks -> boolean pictures: context (B, H, W) and targets (B, M, H, W)."""
    (H, W), (B, M, _) = masks.grid, masks.targets.shape
    device = masks.context.device
    context = torch.zeros(B, H * W, dtype=torch.bool, device=device).scatter_(1, masks.context, True)
    targets = torch.zeros(B, M, H * W, dtype=torch.bool, device=device).scatter_(2, masks.targets, True)
    return (
        rearrange(context, "b (h w) -> b h w", h=H),  # (B, H, W)
        rearrange(targets, "b m (h w) -> b m h w", h=H),  # (B, M, H, W)
    )


def coverage(
    sampler: MaskSampler, num_samples: int, batch_size: int = 256, generator: torch.Generator | None = None
) -> dict[str, torch.Tensor]:
    """How often each patch is context / in some target block, over ``num_samples`` images.

    Returns {"context": (H, W), "target": (H, W)} frequencies in [0, 1]; the course draws them as heat maps.
    """
    num_samples = _check_int("num_samples", num_samples, 1)
    H, W = sampler.grid
    context_count, target_count = torch.zeros(H, W), torch.zeros(H, W)
    done = 0
    while done < num_samples:
        b = min(batch_size, num_samples - done)
        context, targets = masks_to_grid(sampler.sample(b, generator))
        context_count += context.sum(dim=0)  # (H, W)
        target_count += targets.any(dim=1).sum(dim=0)  # (H, W)
        done += b
    return {"context": context_count / num_samples, "target": target_count / num_samples}
