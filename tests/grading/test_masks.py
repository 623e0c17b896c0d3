"""Graded tests: exercises/masks.py (sample_block, multiblock_masks, gather_tokens)."""

import pytest
import torch

from minijepa.masks import gather_tokens as ref_gather_tokens

from .harness import assert_close, fail, tensor


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def as_index(value, what, dim):
    t = tensor(value, what)
    if t.dtype != torch.long:
        fail(f"{what} should have dtype torch.long, got {t.dtype}")
    if t.dim() != dim:
        fail(f"{what} should be {dim}-D, got shape {tuple(t.shape)}")
    return t


def block_corner(idx: torch.Tensor, grid, block, what="the block"):
    """The (top, left) of an index set that is exactly an h x w block, in ascending order; else fail."""
    (H, W), (h, w) = grid, block
    if idx.numel() != h * w:
        fail(f"{what} has {idx.numel()} patches, expected {h}*{w}={h * w}")
    if (idx < 0).any() or (idx >= H * W).any():
        fail(f"{what} has indices outside the {H}x{W} grid: {idx.tolist()}")
    top, left = int(idx.min()) // W, int(idx.min()) % W
    rows, cols = torch.arange(top, top + h), torch.arange(left, left + w)
    expected = (rows[:, None] * W + cols[None, :]).flatten()
    if top + h > H or left + w > W or not torch.equal(idx, expected):
        fail(f"{what} is not a {h}x{w} block listed in ascending order: {idx.tolist()}")
    return top, left


@pytest.mark.exercise("masks", "sample_block")
class TestSampleBlock:
    @pytest.mark.points(1)
    def test_shape_dtype_and_order(self, fn):
        """(h*w,) long indices in ascending order"""
        idx = as_index(fn((5, 7), (2, 3), gen()), "sample_block((5, 7), (2, 3))", 1)
        assert idx.numel() == 6, f"{idx.numel()} indices, expected 6"
        assert bool((idx[1:] > idx[:-1]).all()), f"indices are not strictly ascending: {idx.tolist()}"

    @pytest.mark.points(1)
    def test_is_a_block_inside_the_grid(self, fn):
        """every draw is an h x w block inside the grid"""
        g = gen(1)
        for _ in range(40):
            block_corner(as_index(fn((5, 7), (3, 2), g), "a drawn block", 1), (5, 7), (3, 2))

    @pytest.mark.points(2)
    def test_reaches_last_row_and_column(self, fn):
        """every top-left corner can be drawn, including those touching the last row and column"""
        g = gen(2)
        corners = {block_corner(as_index(fn((4, 5), (2, 2), g), "a drawn block", 1), (4, 5), (2, 2)) for _ in range(300)}
        missing = sorted({(t, l) for t in range(3) for l in range(4)} - corners)
        assert not missing, f"these top-left corners were never drawn in 300 draws: {missing}"

    @pytest.mark.points(1)
    def test_corners_are_uniform(self, fn):
        """the 12 possible corners are about equally frequent over 1200 draws"""
        g = gen(3)
        counts = {}
        for _ in range(1200):
            corner = block_corner(as_index(fn((4, 5), (2, 2), g), "a drawn block", 1), (4, 5), (2, 2))
            counts[corner] = counts.get(corner, 0) + 1
        uniform = len(counts) == 12 and all(60 <= c <= 140 for c in counts.values())
        assert uniform, f"corner counts {sorted(counts.items())}, expected about 100 each"

    @pytest.mark.points(1)
    def test_uses_only_the_generator(self, fn):
        """same seed, same blocks; the global random state is not used"""
        state = torch.get_rng_state()
        first = [tensor(fn((6, 6), (2, 3), g)) for g in [gen(4)] for _ in range(5)]
        torch.manual_seed(123)
        second = [tensor(fn((6, 6), (2, 3), g)) for g in [gen(4)] for _ in range(5)]
        torch.set_rng_state(state)
        assert all(torch.equal(a, b) for a, b in zip(first, second)), "the same generator seed gave different blocks"
        assert len({tuple(t.tolist()) for t in first}) > 1, "five draws gave the same block every time"

    @pytest.mark.points(1)
    def test_whole_grid_and_too_large(self, fn):
        """a block as large as the grid covers it; a larger one raises ValueError"""
        idx = as_index(fn((3, 4), (3, 4), gen(5)), "sample_block((3, 4), (3, 4))", 1)
        assert torch.equal(idx, torch.arange(12)), f"expected all 12 patches, got {idx.tolist()}"
        with pytest.raises(ValueError):
            fn((3, 4), (4, 2), gen(5))


def draw_masks(fn, grid, M, target, context, g):
    result = fn(grid, M, target, context, g)
    if not (isinstance(result, tuple) and len(result) == 2):
        fail("multiblock_masks should return a pair (context, targets)")
    ctx = as_index(result[0], "the context", 1)
    tgt = as_index(result[1], "the targets", 2)
    if tuple(tgt.shape) != (M, target[0] * target[1]):
        fail(f"the targets have shape {tuple(tgt.shape)}, expected ({M}, {target[0] * target[1]})")
    return ctx, tgt


@pytest.mark.exercise("masks", "multiblock_masks")
class TestMultiblockMasks:
    @pytest.mark.points(1)
    def test_shapes_and_order(self, fn):
        """context (K,) ascending and unique, targets (M, T) each ascending"""
        ctx, tgt = draw_masks(fn, (8, 8), 4, (2, 3), (6, 6), gen(10))
        assert bool((ctx[1:] > ctx[:-1]).all()), f"context indices are not strictly ascending: {ctx.tolist()}"
        assert bool((tgt[:, 1:] > tgt[:, :-1]).all()), "target block indices are not ascending"

    @pytest.mark.points(1)
    def test_targets_are_blocks(self, fn):
        """every target is a block of the target shape"""
        g = gen(11)
        for _ in range(20):
            _, tgt = draw_masks(fn, (7, 9), 3, (3, 2), (5, 5), g)
            for m in range(3):
                block_corner(tgt[m], (7, 9), (3, 2), f"target block {m}")

    @pytest.mark.points(2)
    def test_context_excludes_targets(self, fn):
        """no context patch belongs to a target block"""
        g = gen(12)
        for _ in range(30):
            ctx, tgt = draw_masks(fn, (8, 8), 4, (2, 2), (7, 7), g)
            shared = sorted(set(ctx.tolist()) & set(tgt.flatten().tolist()))
            assert not shared, f"context patches {shared} are also target patches"

    @pytest.mark.points(2)
    def test_context_is_a_block_minus_targets(self, fn):
        """the context is exactly a context-shaped block minus the target patches"""
        (H, W), (h, w) = (6, 7), (4, 5)
        g = gen(13)
        for _ in range(20):
            ctx, tgt = draw_masks(fn, (H, W), 2, (2, 2), (h, w), g)
            taken = set(tgt.flatten().tolist())
            found = any(
                {r * W + c for r in range(t, t + h) for c in range(l, l + w)} - taken == set(ctx.tolist())
                for t in range(H - h + 1)
                for l in range(W - w + 1)
            )
            assert found, f"context {ctx.tolist()} is not a {h}x{w} block minus the targets {sorted(taken)}"

    @pytest.mark.points(1)
    def test_whole_grid_context_is_the_complement(self, fn):
        """with a context block as large as the grid, the context is every non-target patch"""
        g = gen(14)
        for _ in range(10):
            ctx, tgt = draw_masks(fn, (5, 5), 3, (2, 2), (5, 5), g)
            expected = sorted(set(range(25)) - set(tgt.flatten().tolist()))
            assert ctx.tolist() == expected, f"context {ctx.tolist()}, expected {expected}"

    @pytest.mark.points(1)
    def test_target_blocks_are_independent(self, fn):
        """the M blocks are placed independently, anywhere on the grid"""
        g = gen(15)
        corners, distinct = set(), 0
        for _ in range(150):
            _, tgt = draw_masks(fn, (4, 4), 2, (2, 2), (4, 4), g)
            c0, c1 = (block_corner(tgt[m], (4, 4), (2, 2), f"target block {m}") for m in range(2))
            corners.add(c1)
            distinct += c0 != c1
        assert distinct > 50, f"the two target blocks coincided in {150 - distinct} of 150 draws"
        assert len(corners) == 9, f"the second block reached only {len(corners)} of the 9 corners"


@pytest.mark.exercise("masks", "gather_tokens")
class TestGatherTokens:
    @pytest.mark.points(2)
    def test_two_dimensional_indices(self, fn):
        """x (B, N, D), idx (B, K) -> (B, K, D), equal to the reference"""
        g = gen(20)
        x = torch.randn(3, 10, 4, generator=g)
        idx = torch.stack([torch.randperm(10, generator=g)[:6] for _ in range(3)])
        assert_close(fn(x.clone(), idx.clone()), ref_gather_tokens(x, idx), "gather_tokens(x, idx)", atol=0, rtol=0)

    @pytest.mark.points(2)
    def test_three_dimensional_indices(self, fn):
        """x (B, N, D), idx (B, M, K) -> (B, M, K, D), equal to the reference"""
        g = gen(21)
        x = torch.randn(2, 12, 5, generator=g)
        idx = torch.randint(0, 12, (2, 3, 4), generator=g)
        assert_close(fn(x.clone(), idx.clone()), ref_gather_tokens(x, idx), "gather_tokens(x, idx) with blocks", atol=0, rtol=0)

    @pytest.mark.points(1)
    def test_gradients_flow_back(self, fn):
        """gradients reach x (repeated indices accumulate)"""
        g = gen(22)
        x = torch.randn(2, 6, 3, generator=g, requires_grad=True)
        idx = torch.tensor([[0, 0, 5], [2, 3, 3]])
        ref_gather_tokens(x, idx).square().sum().backward()
        expected = x.grad.clone()
        x2 = x.detach().clone().requires_grad_(True)
        out = fn(x2, idx.clone())
        tensor(out, "the result")
        out.square().sum().backward()
        assert x2.grad is not None, "no gradient reached x"
        assert_close(x2.grad, expected, "the gradient of x")
