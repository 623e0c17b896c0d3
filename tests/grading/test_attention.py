"""Graded tests: exercises/attention.py (attention_weights, attention, block_forward)."""

import math
from collections import OrderedDict

import pytest
import torch
import torch.nn as nn

from minijepa.vit import Attention, Block

from .harness import StandIn, assert_close, build, tensor


def randn(*shape, seed=0, scale=1.0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed)) * scale


def randomized(factory, seed: int, scale: float = 0.3) -> nn.Module:
    """``factory()`` with every parameter drawn from N(0, scale^2) (LayerNorm gains around 1), seeded."""
    module = build(factory, seed)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            p.copy_(torch.randn(p.shape, generator=g) * scale + (1.0 if "norm" in name and name.endswith("weight") else 0.0))
    return module.eval()


def attention_stand_in(attn: Attention) -> StandIn:
    return StandIn(qkv=attn.qkv, proj=attn.proj, num_heads=attn.num_heads)


def block_stand_in(block: Block) -> StandIn:
    mlp = nn.Sequential(OrderedDict(fc1=block.mlp.fc1, act=nn.GELU(), fc2=block.mlp.fc2))
    return StandIn(norm1=block.norm1, attn=attention_stand_in(block.attn), norm2=block.norm2, mlp=mlp)


def split_qkv(attn: Attention, x: torch.Tensor):
    B, N, D = x.shape
    h = attn.num_heads
    qkv = attn.qkv(x).reshape(B, N, 3, h, D // h).permute(2, 0, 3, 1, 4)  # (3, B, h, N, d)
    return qkv[0].detach(), qkv[1].detach()


@pytest.mark.exercise("attention", "attention_weights")
class TestAttentionWeights:
    @pytest.mark.points(1)
    def test_shape_and_rows_sum_to_one(self, fn):
        """(B, h, N, d) x 2 -> (B, h, N, N), every row sums to 1"""
        w = tensor(fn(randn(2, 3, 5, 4), randn(2, 3, 5, 4, seed=1)))
        assert tuple(w.shape) == (2, 3, 5, 5), f"shape {tuple(w.shape)}, expected (2, 3, 5, 5)"
        assert_close(w.sum(-1), torch.ones(2, 3, 5), "the sums of the rows")

    @pytest.mark.points(2)
    def test_matches_reference(self, fn):
        """equal to the reference Attention's weights (scaled by 1/sqrt(head width))"""
        attn = randomized(lambda: Attention(16, 4), seed=2)
        x = randn(2, 6, 16, seed=3)
        with torch.no_grad():
            _, expected = attn(x, return_attention=True)
        q, k = split_qkv(attn, x)
        assert_close(fn(q, k), expected, "attention_weights(q, k)")

    @pytest.mark.points(1)
    def test_large_logits_stay_finite(self, fn):
        """large logits give a finite, exact softmax (no overflow)"""
        q, k = randn(1, 2, 4, 8, seed=4, scale=60.0), randn(1, 2, 4, 8, seed=5, scale=60.0)
        expected = (q @ k.transpose(-2, -1) / math.sqrt(8)).double().softmax(dim=-1).float()
        assert_close(fn(q, k), expected, "attention_weights on large logits")


@pytest.mark.exercise("attention", "attention")
class TestAttention:
    @pytest.mark.points(2)
    def test_output_matches_reference(self, fn):
        """output equals the reference Attention (4 heads)"""
        attn = randomized(lambda: Attention(16, 4), seed=6)
        x = randn(2, 5, 16, seed=7)
        with torch.no_grad():
            expected, _ = attn(x, return_attention=True)
            result = fn(x.clone(), attention_stand_in(attn))
        assert isinstance(result, tuple) and len(result) == 2, "attention should return (output, weights)"
        assert_close(result[0], expected, "the output")

    @pytest.mark.points(1)
    def test_weights_match_reference(self, fn):
        """the returned weights equal the reference's"""
        attn = randomized(lambda: Attention(16, 4), seed=8)
        x = randn(2, 5, 16, seed=9)
        with torch.no_grad():
            _, expected = attn(x, return_attention=True)
            result = fn(x.clone(), attention_stand_in(attn))
        assert isinstance(result, tuple) and len(result) == 2, "attention should return (output, weights)"
        assert_close(result[1], expected, "the weights")

    @pytest.mark.points(1)
    def test_single_head(self, fn):
        """one head of width D"""
        attn = randomized(lambda: Attention(8, 1), seed=10)
        x = randn(3, 4, 8, seed=11)
        with torch.no_grad():
            expected, _ = attn(x, return_attention=True)
            result = fn(x.clone(), attention_stand_in(attn))
        assert isinstance(result, tuple) and len(result) == 2, "attention should return (output, weights)"
        assert_close(result[0], expected, "the output with one head")

    @pytest.mark.points(1)
    def test_gradients_match_reference(self, fn):
        """gradients with respect to the input equal the reference's"""
        attn = randomized(lambda: Attention(12, 3), seed=12)
        x = randn(2, 4, 12, seed=13).requires_grad_(True)
        attn(x, return_attention=True)[0].square().sum().backward()
        expected = x.grad.clone()
        x2 = x.detach().clone().requires_grad_(True)
        result = fn(x2, attention_stand_in(attn))
        assert isinstance(result, tuple) and len(result) == 2, "attention should return (output, weights)"
        tensor(result[0], "the output")
        result[0].square().sum().backward()
        assert x2.grad is not None, "no gradient reached the input"
        assert_close(x2.grad, expected, "the input's gradient")


@pytest.mark.exercise("attention", "block_forward")
class TestBlockForward:
    @pytest.mark.points(3)
    def test_matches_reference(self, fn):
        """equal to the reference pre-norm Block"""
        block = randomized(lambda: Block(16, 4, mlp_ratio=2.0), seed=14)
        x = randn(2, 6, 16, seed=15)
        with torch.no_grad():
            expected = block(x)
            result = fn(x.clone(), block_stand_in(block))
        assert_close(result, expected, "block_forward(x)")

    @pytest.mark.points(1)
    def test_single_token(self, fn):
        """works on a sequence of one token"""
        block = randomized(lambda: Block(8, 2), seed=16)
        x = randn(3, 1, 8, seed=17)
        with torch.no_grad():
            expected = block(x)
            result = fn(x.clone(), block_stand_in(block))
        assert_close(result, expected, "block_forward on one token")

    @pytest.mark.points(1)
    def test_gradients_match_reference(self, fn):
        """gradients with respect to the input equal the reference's"""
        block = randomized(lambda: Block(12, 3), seed=18)
        x = randn(2, 5, 12, seed=19).requires_grad_(True)
        block(x).square().sum().backward()
        expected = x.grad.clone()
        x2 = x.detach().clone().requires_grad_(True)
        out = fn(x2, block_stand_in(block))
        tensor(out, "the output")
        out.square().sum().backward()
        assert x2.grad is not None, "no gradient reached the input"
        assert_close(x2.grad, expected, "the input's gradient")
