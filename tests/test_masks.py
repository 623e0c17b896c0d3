"""Tests for minijepa.masks: the samplers draw the distributions the I-JEPA paper describes.

Statistical tolerances are derived, not tuned:

* Rounding. A block of scale s and aspect ratio a has h = round(sqrt(s N a)), w = round(sqrt(s N / a)),
  so h and w are each within 1/2 of their exact values. Hence an observed h x w block is consistent with
  the settings iff some s in the scale range has (h - 1/2)(w - 1/2) <= s N <= (h + 1/2)(w + 1/2), and some
  a in the ratio range has (h - 1/2)/(w + 1/2) <= a <= (h + 1/2)/(w - 1/2). The lower bounds on area and
  ratio are skipped for a block clamped to the grid (h == H or w == W), which is smaller than its exact size.
* Trends. Mirroring the grid top <-> bottom maps the unbiased sampler's distribution onto itself, so any
  per-image statistic d that flips sign under the mirror (first-row minus last-row coverage, slope of the
  row profile) has mean 0, even given the other images of the batch. With d in [-c, c], Hoeffding-Azuma
  gives |mean of n images| <= 2c sqrt(ln(2 / delta) / (2 n)) with probability 1 - delta; we use
  delta = 1e-6. The reference sampler's biases are far larger than these tolerances.
"""

import math
import os
import pickle
import sys
import threading

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from minijepa.masks import (
    BlockMasks,
    MaskBatch,
    MaskSampler,
    MultiBlockMasks,
    RandomMasks,
    RasterizedMasks,
    coverage,
    gather_tokens,
    masks_to_grid,
)

GRIDS = [(14, 14), (8, 8), (10, 14)]
DELTA = 1e-6
PAPER_REFERENCE_SHAPES = {(5, 6), (6, 5), (6, 6), (7, 5), (8, 5)}  # facts.md, 14 x 14 grid


# ------------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------------


def draw(sampler, num_batches, batch_size, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [sampler.sample(batch_size, g) for _ in range(num_batches)]


def check_index_tensors(masks: MaskBatch, batch_size: int):
    """dtype, shape, range, and strictly ascending (hence unique) indices in every mask."""
    H, W = masks.grid
    assert masks.context.dtype == torch.long and masks.targets.dtype == torch.long
    assert masks.context.dim() == 2 and masks.targets.dim() == 3
    assert masks.context.shape[0] == masks.targets.shape[0] == batch_size
    for idx in (masks.context, masks.targets):
        assert idx.min() >= 0 and idx.max() < H * W
        assert (idx.diff(dim=-1) > 0).all(), "indices must be sorted ascending and unique"


def block_extent(targets: torch.Tensor, width: int):
    """Bounding-box height, width and top-left corner of each target block: (B, M, T) -> (B, M) each."""
    rows, cols = targets // width, targets % width
    top, left = rows.min(-1).values, cols.min(-1).values
    return rows.max(-1).values - top + 1, cols.max(-1).values - left + 1, top, left


def check_rectangles(masks: MaskBatch):
    """Every target block is a full h x w rectangle, and all blocks of the batch share that shape."""
    h, w, _, _ = block_extent(masks.targets, masks.grid[1])
    T = masks.targets.shape[-1]
    # T unique indices inside an h x w bounding box with h * w == T fill the box: a contiguous rectangle.
    assert (h * w == T).all()
    assert (h == h.flatten()[0]).all() and (w == w.flatten()[0]).all()
    return int(h.flatten()[0]), int(w.flatten()[0])


def consistent_with(h, w, grid, scale, ratio):
    """Could round(sqrt(s N a)), round(sqrt(s N / a)) (clamped) give h x w for s, a in range? (see top)."""
    H, W = grid
    N, clamped = H * W, h == H or w == W
    area_ok = (h - 0.5) * (w - 0.5) <= scale[1] * N and (clamped or (h + 0.5) * (w + 0.5) >= scale[0] * N)
    ratio_ok = (h - 0.5) / (w + 0.5) <= ratio[1] and (clamped or (h + 0.5) / max(w - 0.5, 1e-9) >= ratio[0])
    return area_ok and ratio_ok


def hoeffding(n, half_range):
    return 2 * half_range * math.sqrt(math.log(2 / DELTA) / (2 * n))


def slope(profile: torch.Tensor) -> float:
    x = torch.arange(len(profile), dtype=torch.float64)
    x = x - x.mean()
    return float((x * profile.double()).sum() / (x * x).sum())


def slope_bound(length: int) -> float:
    """Largest |slope| of a least-squares line through values in [0, 1] at x = 0..length-1."""
    x = torch.arange(length, dtype=torch.float64)
    x = x - x.mean()
    return float(x.abs().sum() / (x * x).sum() / 2)


def spearman(x: torch.Tensor, y: torch.Tensor) -> float:
    rx, ry = x.argsort().argsort().double(), y.argsort().argsort().double()
    return float(torch.corrcoef(torch.stack([rx, ry]))[0, 1])


def run_with_timeout(fn, seconds=20.0):
    """Run fn in a thread; fail (instead of hanging the suite) if it does not return in time."""
    result = {}

    def target():
        try:
            result["value"] = fn()
        except BaseException as error:  # noqa: BLE001 - handed back to the test
            result["error"] = error

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"did not return within {seconds} s"
    return result


# ------------------------------------------------------------------------------------------------
# MultiBlockMasks: shapes, settings, invariants
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("grid", GRIDS)
@pytest.mark.parametrize("allow_overlap", [False, True])
def test_multiblock_unbiased_invariants(grid, allow_overlap):
    sampler = MultiBlockMasks(grid, allow_overlap=allow_overlap)
    H, W = grid
    shapes = set()
    for masks in draw(sampler, num_batches=40, batch_size=256):  # 10,240 images, 40 target shapes
        check_index_tensors(masks, 256)
        assert masks.grid == (H, W) and masks.num_targets == 4
        h, w = check_rectangles(masks)
        shapes.add((h, w))
        assert consistent_with(h, w, grid, sampler.target_scale, sampler.target_aspect_ratio), (h, w)
        assert masks.context.shape[1] >= sampler.min_keep
        context, targets = masks_to_grid(masks)  # (B, H, W), (B, M, H, W)
        overlap = (context & targets.any(dim=1)).sum()
        assert (overlap == 0) if not allow_overlap else (overlap > 0)
    assert len(shapes) >= 3, "the target shape should change from batch to batch"


@pytest.mark.parametrize("grid", GRIDS)
def test_multiblock_context_block_shape(grid):
    """With no targets cut out and min_keep = N/2, the context is the whole h x w context block."""
    N = grid[0] * grid[1]
    sampler = MultiBlockMasks(grid, allow_overlap=True, min_keep=1, context_scale=(0.3, 0.7))
    for masks in draw(sampler, num_batches=40, batch_size=64):
        block = MaskBatch(masks.context, masks.context[:, None], masks.grid)
        h, w = check_rectangles(block)  # every image keeps a full rectangle of the same shape
        assert consistent_with(h, w, grid, (0.3, 0.7), (1.0, 1.0)), (h, w, N)


@pytest.mark.parametrize("grid", [(64, 64), (48, 64)])
def test_unbiased_scale_uniform_and_independent_of_ratio(grid):
    """Big grids make rounding small, so the drawn scale and ratio are visible in the block shapes."""
    H, W = grid
    sampler = MultiBlockMasks(grid)
    hw = torch.tensor([check_rectangles(m) for m in draw(sampler, num_batches=1500, batch_size=1)])
    scale = (hw[:, 0] * hw[:, 1]).double() / (H * W)
    ratio = hw[:, 0].double() / hw[:, 1]
    for values, (lo, hi) in ((scale, sampler.target_scale), (ratio, sampler.target_aspect_ratio)):
        u = ((values - lo) / (hi - lo)).clamp(0, 1 - 1e-9)
        freq = torch.histc(u, bins=5, min=0, max=1) / len(u)
        # SE of a bin is sqrt(0.2 * 0.8 / 1500) = 0.010; rounding moves some mass to a neighbour bin.
        assert (freq - 0.2).abs().max() < 0.06, freq
    assert abs(spearman(scale, ratio)) < 0.15  # 1500 pairs: SE of rho is 1/sqrt(1499) = 0.026


def test_reference_scale_and_ratio_move_together():
    sampler = MultiBlockMasks(64, mode="reference")
    hw = torch.tensor([check_rectangles(m) for m in draw(sampler, num_batches=400, batch_size=1)])
    scale, ratio = (hw[:, 0] * hw[:, 1]).double(), hw[:, 0].double() / hw[:, 1]
    assert spearman(scale, ratio) > 0.95  # one random number for both: monotone up to rounding


def test_reference_matches_the_official_collator_facts():
    """facts.md: 14 x 14 grid, paper settings, batch 128."""
    sampler = MultiBlockMasks(14, mode="reference")
    # the rarest shape, (8, 5), has probability 0.026: 400 batches miss it with probability 3e-5
    shapes = {check_rectangles(m) for m in draw(sampler, num_batches=400, batch_size=2)}
    assert shapes == PAPER_REFERENCE_SHAPES
    batches = draw(sampler, num_batches=100, batch_size=128)
    for m in batches:
        context, targets = masks_to_grid(m)
        # the context block is always the top-left 13 x 13 square; no block reaches the last row/col
        for picture in (context, targets.any(dim=1)):
            assert not picture[:, 13, :].any() and not picture[:, :, 13].any()
    mean_k = sum(m.context.shape[1] for m in batches) / len(batches)
    assert 44 < mean_k < 56, mean_k  # "about 50 context patches after truncation"


@pytest.mark.skipif(not os.environ.get("IJEPA_REPO"), reason="set IJEPA_REPO to a checkout of facebookresearch/ijepa")
def test_reference_mode_matches_the_official_collator():
    """Side by side with the official MaskCollator (14 x 14, paper settings, 40 batches of 128 each)."""
    sys.path.insert(0, os.environ["IJEPA_REPO"])
    from src.masks.multiblock import MaskCollator

    collator = MaskCollator(
        input_size=(224, 224), patch_size=16, enc_mask_scale=(0.85, 1.0), pred_mask_scale=(0.15, 0.2),
        aspect_ratio=(0.75, 1.5), nenc=1, npred=4, min_keep=10, allow_overlap=False,
    )  # fmt: skip
    theirs = []
    with torch.random.fork_rng():  # it draws positions from the global RNG
        torch.manual_seed(0)
        for _ in range(40):
            _, context, targets = collator([torch.zeros(()) for _ in range(128)])
            theirs.append(MaskBatch(context[0], torch.stack(targets, dim=1), (14, 14)))
    ours = draw(MultiBlockMasks(14, mode="reference"), num_batches=40, batch_size=128)
    stats = []
    for batches in (theirs, ours):
        context = torch.cat([masks_to_grid(m)[0] for m in batches]).double().mean(dim=0)  # (H, W)
        targets = torch.cat([masks_to_grid(m)[1].any(dim=1) for m in batches]).double().mean(dim=0)
        k = sum(m.context.shape[1] for m in batches) / len(batches)
        stats.append((context, targets, k, {check_rectangles(m) for m in batches}))
    (c1, t1, k1, s1), (c2, t2, k2, s2) = stats
    assert s1 <= PAPER_REFERENCE_SHAPES and s2 <= PAPER_REFERENCE_SHAPES and abs(k1 - k2) < 5
    # Batch-level noise dominates (5 target shapes, 40 batches); observed differences are below 0.02.
    for a, b in ((c1, c2), (t1, t2)):
        assert torch.equal(a == 0, b == 0)
        for dim in (0, 1):
            assert (a.mean(dim=dim) - b.mean(dim=dim)).abs().max() < 0.05


# ------------------------------------------------------------------------------------------------
# Coverage: unbiased is symmetric, reference shows its known biases
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("grid", [(14, 14), (10, 14)])
def test_unbiased_coverage_has_no_spatial_trend(grid):
    n = 12_288
    sampler = MultiBlockMasks(grid)
    cov = coverage(sampler, n, batch_size=1024, generator=torch.Generator().manual_seed(0))
    for kind, freq in cov.items():
        assert freq.shape == grid
        assert (freq > 0).all(), f"some position is never {kind}"
        if kind == "target":
            assert (freq < 1).all()
        for profile in (freq.mean(dim=1), freq.mean(dim=0)):  # rows (top -> bottom), cols (left -> right)
            # per-image first-minus-last lies in [-1, 1]; per-image slope in [-b, b]
            assert abs(float(profile[0] - profile[-1])) < hoeffding(n, 1.0), (kind, profile)
            bound = slope_bound(len(profile))
            assert abs(slope(profile)) < hoeffding(n, bound), (kind, profile)


def test_reference_coverage_shows_the_known_biases():
    n = 12_288
    sampler = MultiBlockMasks(14, mode="reference")
    cov = coverage(sampler, n, batch_size=1024, generator=torch.Generator().manual_seed(0))
    never = (cov["context"] == 0) & (cov["target"] == 0)
    assert never[13, :].all() and never[:, 13].all() and int(never.sum()) == 27
    rows = cov["context"].mean(dim=1)  # (H,) falls from the top to nothing at the bottom
    assert float(rows[0] - rows[-2]) > 0.5
    assert slope(rows) < -5 * hoeffding(n, slope_bound(14))  # measured: about -0.05


# ------------------------------------------------------------------------------------------------
# Seeds, generator state, settings
# ------------------------------------------------------------------------------------------------

SAMPLERS = [
    lambda: MultiBlockMasks(14),
    lambda: MultiBlockMasks(14, mode="reference"),
    lambda: RandomMasks(14),
    lambda: BlockMasks(14),
    lambda: RasterizedMasks(14),
]


@pytest.mark.parametrize("make", SAMPLERS)
def test_same_seed_same_masks_and_global_rng_untouched(make):
    sampler = make()
    rng_before = torch.get_rng_state()
    a, b, c = (draw(sampler, 3, 64, seed=s) for s in (7, 7, 8))
    assert torch.equal(torch.get_rng_state(), rng_before), "sampling must not touch the global RNG"
    for x, y in zip(a, b):
        assert torch.equal(x.context, y.context) and torch.equal(x.targets, y.targets)
    assert any(not torch.equal(x.targets, z.targets) for x, z in zip(a, c))


def test_own_generator_state_dict_resumes_exactly():
    sampler = MultiBlockMasks(14, seed=3)
    first = sampler.sample(32)
    assert torch.equal(first.context, MultiBlockMasks(14, seed=3).sample(32).context)
    state = sampler.state_dict()
    expected = [sampler.sample(32) for _ in range(3)]
    resumed = MultiBlockMasks(14, seed=3)
    resumed.load_state_dict(state)
    for want in expected:
        got = resumed.sample(32)
        assert torch.equal(got.context, want.context) and torch.equal(got.targets, want.targets)


@pytest.mark.parametrize("make", SAMPLERS)
def test_picklable(make):
    sampler = make()
    sampler.sample(4)  # create its generator first: it must pickle too
    copy = pickle.loads(pickle.dumps(sampler))
    assert repr(copy) == repr(sampler)
    x, y = copy.sample(16), sampler.sample(16)
    assert torch.equal(x.context, y.context) and torch.equal(x.targets, y.targets)


BAD_SETTINGS = [
    (dict(target_scale=(0.3, 0.2)), "target_scale"),
    (dict(target_scale=(0.0, 0.2)), "target_scale"),
    (dict(target_scale=(0.1, 1.5)), "target_scale"),  # a block bigger than the grid
    (dict(target_scale=(0.2,)), "target_scale"),
    (dict(context_scale=(0.9, 1.2)), "context_scale"),
    (dict(target_aspect_ratio=(-1.0, 2.0)), "target_aspect_ratio"),
    (dict(context_aspect_ratio=(2.0, 1.0)), "context_aspect_ratio"),
    (dict(num_targets=0), "num_targets"),
    (dict(min_keep=0), "min_keep"),
    (dict(min_keep=190), "min_keep"),  # more than any context can keep
    (dict(target_scale=(1.0, 1.0)), "target_scale"),  # the targets leave no context
    (dict(num_targets=12, target_scale=(0.3, 0.4), min_keep=30), "min_keep"),  # fails the seeded trial
    (dict(max_tries=0), "max_tries"),
    (dict(mode="paper"), "mode"),
    (dict(allow_overlap="no"), "allow_overlap"),
    (dict(grid=0), "grid"),
    (dict(grid=(14,)), "grid"),
    (dict(grid=8, mode="reference", target_scale=(0.15, 0.15), target_aspect_ratio=(0.75, 0.75)), "min_keep"),
    (dict(seed=-1), "seed"),
]


@pytest.mark.parametrize("kwargs, name", BAD_SETTINGS)
def test_bad_settings_raise_value_error_naming_the_setting(kwargs, name):
    kwargs = {"grid": 14, **kwargs}
    with pytest.raises(ValueError, match=name):
        MultiBlockMasks(**kwargs)


@pytest.mark.parametrize(
    "make, name",
    [
        (lambda: RandomMasks(14, target_ratio=1.0), "target_ratio"),
        (lambda: RandomMasks(1, target_ratio=0.6), "target_ratio"),
        (lambda: BlockMasks(14, target_scale=1.0), "target_scale"),
        (lambda: BlockMasks(14, aspect_ratio=0), "aspect_ratio"),
        (lambda: RasterizedMasks((14, 7)), "grid"),
        (lambda: RasterizedMasks(9), "grid"),
    ],
)
def test_ablation_bad_settings(make, name):
    with pytest.raises(ValueError, match=name):
        make()


def test_unmeetable_min_keep_raises_instead_of_hanging():
    sampler = MultiBlockMasks(8)
    sampler.min_keep = 60  # bypass the construction checks on purpose
    result = run_with_timeout(lambda: sampler.sample(256, torch.Generator().manual_seed(0)))
    assert isinstance(result.get("error"), RuntimeError) and "min_keep=60" in str(result["error"])


def test_reference_mode_where_the_official_collator_hangs():
    """8 x 8 grid, paper settings: a 3 x 3 target (9 patches <= min_keep) for about half the batches."""
    with pytest.warns(RuntimeWarning, match="min_keep"):
        sampler = MultiBlockMasks(8, mode="reference")
    g = torch.Generator().manual_seed(0)

    def many():
        failures, sizes = 0, []
        for _ in range(200):
            try:
                sizes.append(sampler.sample(128, g).context.shape[1])
            except RuntimeError as error:
                assert "min_keep=10" in str(error)
                failures += 1
        return failures, sizes

    failures, sizes = run_with_timeout(many)["value"]
    assert 0.3 < failures / 200 < 0.7
    assert all(k > 10 for k in sizes) and 8 < sum(sizes) / len(sizes) < 16  # facts.md: about 12 of 64


# ------------------------------------------------------------------------------------------------
# DataLoader integration and gathering
# ------------------------------------------------------------------------------------------------


def loader_masks(sampler, num_workers, seed, context=None):
    # A list of (numpy image, label): picklable without torch shared memory (spawn workers get a copy).
    data = [(np.random.default_rng(i).standard_normal((3, 8, 8), dtype=np.float32), i) for i in range(64)]
    loader = DataLoader(
        data,
        batch_size=16,
        collate_fn=sampler,
        num_workers=num_workers,
        generator=torch.Generator().manual_seed(seed),
        multiprocessing_context=context if num_workers else None,
    )
    out = []
    for images, labels, masks in loader:
        assert images.shape == (16, 3, 8, 8) and labels.shape == (16,)
        check_index_tensors(masks, 16)
        out.append(masks)
    return out


@pytest.mark.parametrize("num_workers, context", [(0, None), (2, "fork"), (2, "spawn")])
def test_collate_fn_in_a_dataloader(num_workers, context):
    sampler = MultiBlockMasks(8)
    sampler.sample(1)  # the main process's generator exists before the workers start
    first = loader_masks(sampler, num_workers, seed=1, context=context)
    assert len(first) == 4
    if num_workers:  # reproducible from the DataLoader's seed; workers differ from each other
        again = loader_masks(sampler, num_workers, seed=1, context=context)
        other = loader_masks(sampler, num_workers, seed=2, context=context)
        assert all(torch.equal(a.context, b.context) for a, b in zip(first, again))
        assert not torch.equal(first[0].targets, first[1].targets)  # batch 0 worker 0, batch 1 worker 1
        assert any(not torch.equal(a.targets, b.targets) for a, b in zip(first, other))


def test_collate_fn_plain_tensor_samples_and_gathering():
    sampler = RasterizedMasks(8)
    images, masks = sampler([torch.randn(3, 8, 8) for _ in range(5)])
    assert images.shape == (5, 3, 8, 8) and isinstance(masks, MaskBatch)
    tokens = torch.arange(64.0)[None, :, None].expand(5, 64, 2)  # (B, N, D) token value = its index
    assert torch.equal(gather_tokens(tokens, masks.context)[..., 0].long(), masks.context)  # (B, K)
    assert torch.equal(gather_tokens(tokens, masks.targets)[..., 0].long(), masks.targets)  # (B, M, T)


# ------------------------------------------------------------------------------------------------
# Ablation strategies
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("grid", GRIDS)
def test_random_masks(grid):
    N = grid[0] * grid[1]
    T = round(0.6 * N)
    sampler = RandomMasks(grid)
    masks = sampler.sample(4096, torch.Generator().manual_seed(0))
    check_index_tensors(masks, 4096)
    assert masks.targets.shape == (4096, 1, T) and masks.context.shape == (4096, N - T)
    context, targets = masks_to_grid(masks)
    assert not (context & targets[:, 0]).any() and (context | targets[:, 0]).all()  # complement
    freq = targets[:, 0].double().mean(dim=0)  # every patch is a target with probability T / N
    assert (freq - T / N).abs().max() < hoeffding(4096, 0.5)


@pytest.mark.parametrize("grid", GRIDS)
def test_block_masks(grid):
    H, W = grid
    sampler = BlockMasks(grid)
    masks = sampler.sample(4096, torch.Generator().manual_seed(0))
    check_index_tensors(masks, 4096)
    h, w = check_rectangles(masks)
    assert masks.num_targets == 1 and consistent_with(h, w, grid, (0.6, 0.6), (1.0, 1.0))
    context, targets = masks_to_grid(masks)
    assert not (context & targets[:, 0]).any() and (context | targets[:, 0]).all()
    _, _, top, left = block_extent(masks.targets, W)
    assert set(top.flatten().tolist()) == set(range(H - h + 1))  # every valid position, last included
    assert set(left.flatten().tolist()) == set(range(W - w + 1))


@pytest.mark.parametrize("grid", GRIDS)
def test_rasterized_masks(grid):
    H, W = grid
    N = H * W
    masks = RasterizedMasks(grid).sample(2048, torch.Generator().manual_seed(0))
    check_index_tensors(masks, 2048)
    assert masks.targets.shape == (2048, 3, N // 4) and masks.context.shape == (2048, N // 4)
    context, targets = masks_to_grid(masks)
    everything = torch.cat([context[:, None], targets], dim=1)  # (B, 4, H, W)
    assert (everything.sum(dim=1) == 1).all()  # four disjoint parts that tile the grid
    for part in everything.flatten(0, 1):  # each part is one H/2 x W/2 quadrant
        rows, cols = part.nonzero(as_tuple=True)
        assert rows.min() in (0, H // 2) and cols.min() in (0, W // 2)
        assert int(rows.max() - rows.min()) + 1 == H // 2 and int(cols.max() - cols.min()) + 1 == W // 2
    first = context.reshape(2048, -1).float().argmax(dim=1)  # the context's first patch names its quadrant
    counts = torch.bincount(first, minlength=N)[[0, W // 2, (H // 2) * W, (H // 2) * W + W // 2]]
    assert counts.sum() == 2048 and ((counts / 2048 - 0.25).abs() < hoeffding(2048, 0.5)).all()


def test_coverage_and_masks_to_grid_agree_with_counts():
    sampler = BlockMasks((10, 14), target_scale=(0.2, 0.4), aspect_ratio=(0.5, 2.0))
    masks = sampler.sample(100, torch.Generator().manual_seed(0))
    context, targets = masks_to_grid(masks)
    assert context.shape == (100, 10, 14) and targets.shape == (100, 1, 10, 14)
    assert (context.sum(dim=(1, 2)) == masks.context.shape[1]).all()
    assert (targets.sum(dim=(2, 3)) == masks.targets.shape[2]).all()
    cov = coverage(sampler, 1000, batch_size=300, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(cov["context"] + cov["target"], torch.ones(10, 14))  # complement, 1000 images


def test_base_class_is_abstract():
    with pytest.raises(NotImplementedError):
        MaskSampler(4).sample(2)
