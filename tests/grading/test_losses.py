"""Graded tests: exercises/losses.py (ijepa_loss)."""

import pytest
import torch

from minijepa.losses import ijepa_loss as ref_ijepa_loss

from .harness import assert_close, fail, tensor


def pair(*shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g), torch.randn(*shape, generator=g)


@pytest.mark.exercise("losses", "ijepa_loss")
class TestIjepaLoss:
    @pytest.mark.points(2)
    def test_matches_reference(self, fn):
        """the mean squared error over images, blocks, patches and channels, as a 0-dim tensor"""
        p, t = pair(2, 4, 6, 8, seed=1)
        value = tensor(fn(p.clone(), t.clone()), "the loss")
        if value.dim() != 0:
            fail(f"the loss should be a 0-dim tensor, got shape {tuple(value.shape)}")
        assert_close(value, ref_ijepa_loss(p, t), "the loss", atol=1e-6)
        assert_close(fn(p.clone(), p.clone()), torch.tensor(0.0), "the loss of perfect predictions", atol=1e-7)

    @pytest.mark.points(1)
    def test_gradient_matches_reference(self, fn):
        """the gradient with respect to the predictions equals the reference's"""
        p, t = pair(3, 2, 5, 4, seed=2)
        p.requires_grad_(True)
        ref_ijepa_loss(p, t).backward()
        expected = p.grad.clone()
        p2 = p.detach().clone().requires_grad_(True)
        loss = fn(p2, t.clone())
        tensor(loss, "the loss")
        loss.backward()
        assert p2.grad is not None, "no gradient reached the predictions"
        assert_close(p2.grad, expected, "the gradient", atol=1e-7)

    @pytest.mark.points(1)
    def test_rejects_different_shapes(self, fn):
        """raises ValueError when the shapes differ (instead of broadcasting)"""
        p, _ = pair(2, 3, 4, 5, seed=3)
        with pytest.raises(ValueError):
            fn(p, p[:, :1])
