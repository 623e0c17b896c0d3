"""Graded tests: exercises/probe.py (linear_probe)."""

import pytest
import torch

from minijepa.evaluate import linear_probe as ref_linear_probe

from .harness import fail, number


def blobs(n, dim=8, separation=3.0, noise=1.0, shift=0.0, seed=0):
    """Two Gaussian classes, +-separation/2 along the first axis (+ shift), equal sizes."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 2
    x = torch.randn(n, dim, generator=g) * noise
    x[:, 0] += (y.float() - 0.5) * separation + shift
    return x, y


@pytest.mark.exercise("probe", "linear_probe")
class TestLinearProbe:
    @pytest.mark.points(2)
    def test_separable_features(self, fn):
        """near-perfect accuracy on well separated classes"""
        (tx, ty), (vx, vy) = blobs(200, separation=6.0, seed=1), blobs(100, separation=6.0, seed=2)
        acc = number(fn(tx, ty, vx, vy), "the accuracy")
        assert acc >= 0.95, f"accuracy {acc:.3f} on well separated classes, expected >= 0.95"

    @pytest.mark.points(1)
    def test_returns_a_float_in_0_1(self, fn):
        """returns a Python float between 0 and 1"""
        (tx, ty), (vx, vy) = blobs(60, seed=3), blobs(40, seed=4)
        acc = fn(tx, ty, vx, vy, epochs=10)
        if not isinstance(acc, float):
            fail(f"linear_probe should return a Python float, got {type(acc).__name__}")
        assert 0.0 <= acc <= 1.0, f"accuracy {acc} is not in [0, 1]"

    @pytest.mark.points(1)
    def test_does_not_train_on_test_labels(self, fn):
        """test labels that contradict the training labels give low accuracy"""
        (tx, ty), (vx, vy) = blobs(200, separation=6.0, seed=5), blobs(100, separation=6.0, seed=6)
        acc = number(fn(tx, ty, vx, 1 - vy), "the accuracy")
        assert acc <= 0.1, f"accuracy {acc:.3f} with flipped test labels: the probe seems to learn from the test set"

    @pytest.mark.points(1)
    def test_standardises_with_training_statistics(self, fn):
        """test features are standardised with the TRAINING mean and std"""
        (tx, ty), (vx, vy) = blobs(200, separation=4.0, seed=7), blobs(100, separation=4.0, shift=8.0, seed=8)
        expected = ref_linear_probe(tx, ty, vx, vy)
        acc = number(fn(tx, ty, vx, vy), "the accuracy")
        assert abs(acc - expected) <= 0.1, f"accuracy {acc:.3f} on shifted test features, the reference gets {expected:.3f}"

    @pytest.mark.points(1)
    def test_close_to_reference_on_noisy_features(self, fn):
        """about the reference's accuracy on overlapping classes"""
        (tx, ty), (vx, vy) = blobs(300, dim=16, separation=1.5, seed=9), blobs(300, dim=16, separation=1.5, seed=10)
        expected = ref_linear_probe(tx, ty, vx, vy)
        acc = number(fn(tx, ty, vx, vy), "the accuracy")
        assert abs(acc - expected) <= 0.06, f"accuracy {acc:.3f}, the reference gets {expected:.3f}"
