"""Graded tests: exercises/predictor.py (predictor_forward)."""

import pytest
import torch

from minijepa.predictor import Predictor

from .harness import StandIn, assert_close, build, tensor

# The predictor's Transformer blocks are reference Blocks the student applies with block(x): allowed.
ALLOW_BLOCKS = ("vit.py:forward",)


def reference(seed=0, grid=(4, 4), dim=16, width=12) -> Predictor:
    p = build(lambda: Predictor(grid, embed_dim=dim, predictor_dim=width, depth=2, num_heads=3), seed).eval()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():  # larger than the 0.02 init, so that every term of the forward matters
        for name, param in p.named_parameters():
            param.add_(torch.randn(param.shape, generator=g) * 0.2)
    return p


def stand_in(p: Predictor) -> StandIn:
    return StandIn(embed=p.embed, mask_token=p.mask_token, pos_embed=p.pos_embed, blocks=p.blocks, norm=p.norm, proj=p.proj)


def inputs(B, K, M, T, N=16, dim=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    context = torch.randn(B, K, dim, generator=g)
    context_idx = torch.stack([torch.randperm(N, generator=g)[:K].sort().values for _ in range(B)])  # (B, K)
    target_idx = torch.stack(
        [torch.stack([torch.randperm(N, generator=g)[:T].sort().values for _ in range(M)]) for _ in range(B)]
    )  # (B, M, T)
    return context, context_idx, target_idx


@pytest.mark.exercise("predictor", "predictor_forward", allow=ALLOW_BLOCKS)
class TestPredictorForward:
    @pytest.mark.points(1)
    def test_shape(self, fn):
        """(B, K, D), (B, K), (B, M, T) -> (B, M, T, D)"""
        p = reference(1)
        context, cidx, tidx = inputs(2, 5, 3, 4, seed=1)
        with torch.no_grad():
            out = tensor(fn(stand_in(p), context, cidx, tidx))
        assert tuple(out.shape) == (2, 3, 4, 16), f"shape {tuple(out.shape)}, expected (2, 3, 4, 16)"

    @pytest.mark.points(2)
    def test_matches_reference_one_block(self, fn):
        """equal to the reference Predictor with one target block"""
        p = reference(2)
        context, cidx, tidx = inputs(2, 6, 1, 5, seed=2)
        with torch.no_grad():
            expected = p(context, cidx, tidx)
            result = fn(stand_in(p), context.clone(), cidx.clone(), tidx.clone())
        assert_close(result, expected, "the predictions", atol=1e-4)

    @pytest.mark.points(3)
    def test_matches_reference_several_blocks(self, fn):
        """equal to the reference Predictor with three target blocks per image"""
        p = reference(3)
        context, cidx, tidx = inputs(3, 5, 3, 4, seed=3)
        with torch.no_grad():
            expected = p(context, cidx, tidx)
            result = fn(stand_in(p), context.clone(), cidx.clone(), tidx.clone())
        assert_close(result, expected, "the predictions", atol=1e-4)

    @pytest.mark.points(1)
    def test_blocks_do_not_see_each_other(self, fn):
        """moving one target block leaves the other blocks' predictions unchanged"""
        p = reference(4)
        context, cidx, tidx = inputs(2, 5, 3, 4, seed=4)
        moved = tidx.clone()
        moved[:, 2] = (moved[:, 2] + 1) % 16
        with torch.no_grad():
            a = tensor(fn(stand_in(p), context, cidx, tidx))
            b = tensor(fn(stand_in(p), context, cidx, moved))
        assert tuple(a.shape) == (2, 3, 4, 16), f"shape {tuple(a.shape)}, expected (2, 3, 4, 16)"
        assert_close(b[:, :2], a[:, :2], "blocks 0 and 1 after moving block 2", atol=1e-5)

    @pytest.mark.points(1)
    def test_gradients_match_reference(self, fn):
        """gradients reach the context and the mask token, as in the reference"""
        p = reference(5)
        context, cidx, tidx = inputs(2, 4, 2, 3, seed=5)
        context.requires_grad_(True)
        p(context, cidx, tidx).square().sum().backward()
        expected_context, expected_token = context.grad.clone(), p.mask_token.grad.clone()
        p.zero_grad(set_to_none=True)
        context2 = context.detach().clone().requires_grad_(True)
        out = fn(stand_in(p), context2, cidx, tidx)
        tensor(out, "the predictions")
        out.square().sum().backward()
        assert context2.grad is not None and p.mask_token.grad is not None, "no gradient reached the context or the mask token"
        assert_close(context2.grad, expected_context, "the context's gradient", atol=1e-4)
        assert_close(p.mask_token.grad, expected_token, "the mask token's gradient", atol=1e-4)
