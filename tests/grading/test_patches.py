"""Graded tests: exercises/patches.py (patchify, unpatchify, sincos_2d)."""

import pytest
import torch

from minijepa.patches import patchify as ref_patchify
from minijepa.patches import sincos_2d as ref_sincos_2d
from minijepa.patches import unpatchify as ref_unpatchify

from .harness import assert_close, tensor


def images(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


@pytest.mark.exercise("patches", "patchify")
class TestPatchify:
    @pytest.mark.points(1)
    def test_shape(self, fn):
        """(B, C, H*P, W*P) -> (B, H*W, P*P*C) on a rectangular image"""
        out = tensor(fn(images(2, 3, 8, 12), 4))
        assert tuple(out.shape) == (2, 6, 48), f"shape {tuple(out.shape)}, expected (2, 6, 48)"

    @pytest.mark.points(2)
    def test_matches_reference(self, fn):
        """values equal the reference on random rectangular images"""
        x = images(2, 3, 12, 8, seed=1)
        assert_close(fn(x.clone(), 4), ref_patchify(x, 4), "patchify(x, 4)", atol=0, rtol=0)

    @pytest.mark.points(1)
    def test_patch_layout(self, fn):
        """patch n is grid cell (n // W, n % W); its pixels row by row, channels last"""
        x = torch.arange(2 * 6 * 9, dtype=torch.float32).reshape(1, 2, 6, 9)  # 2 channels, 2 x 3 grid of 3 x 3 patches
        out = tensor(fn(x.clone(), 3))
        expected = x[0, :, 3:6, 3:6].permute(1, 2, 0).reshape(-1)  # grid row 1, column 1 -> patch 1 * 3 + 1
        assert_close(out[0, 4], expected, "patch 4 of a 2 x 3 grid", atol=0, rtol=0)

    @pytest.mark.points(1)
    def test_patch_size_one(self, fn):
        """patch size 1: every pixel is a patch of C values"""
        x = images(2, 1, 5, 7, seed=2)
        assert_close(fn(x.clone(), 1), ref_patchify(x, 1), "patchify(x, 1)", atol=0, rtol=0)

    @pytest.mark.points(1)
    def test_rejects_sizes_not_divisible(self, fn):
        """raises ValueError when the image is not a multiple of the patch size"""
        with pytest.raises(ValueError):
            fn(images(1, 3, 10, 12), 4)


@pytest.mark.exercise("patches", "unpatchify")
class TestUnpatchify:
    @pytest.mark.points(2)
    def test_inverts_patchify(self, fn):
        """unpatchify(patchify(x)) == x on a rectangular grid"""
        x = images(2, 3, 8, 12, seed=3)
        assert_close(fn(ref_patchify(x, 4), 4, (2, 3)), x, "unpatchify(patchify(x, 4), 4, (2, 3))", atol=0, rtol=0)

    @pytest.mark.points(1)
    def test_matches_reference(self, fn):
        """values equal the reference on random patches"""
        p = images(3, 6, 4 * 4 * 2, seed=4)
        assert_close(fn(p.clone(), 4, (3, 2)), ref_unpatchify(p, 4, (3, 2)), "unpatchify(p, 4, (3, 2))", atol=0, rtol=0)

    @pytest.mark.points(1)
    def test_square_grid_as_int(self, fn):
        """a square grid can be given as one int"""
        p = images(1, 9, 2 * 2 * 3, seed=5)
        assert_close(fn(p.clone(), 2, 3), ref_unpatchify(p, 2, 3), "unpatchify(p, 2, 3)", atol=0, rtol=0)


@pytest.mark.exercise("patches", "sincos_2d")
class TestSincos2d:
    @pytest.mark.points(1)
    def test_shape_and_dtype(self, fn):
        """(H*W, dim) float32"""
        out = tensor(fn(16, (3, 5)))
        assert tuple(out.shape) == (15, 16), f"shape {tuple(out.shape)}, expected (15, 16)"
        assert out.dtype == torch.float32, f"dtype {out.dtype}, expected torch.float32"

    @pytest.mark.points(2)
    def test_matches_reference_square(self, fn):
        """values equal the reference on a square grid"""
        assert_close(fn(32, 4), ref_sincos_2d(32, 4), "sincos_2d(32, 4)", atol=1e-6)

    @pytest.mark.points(1)
    def test_columns_first_on_a_rectangle(self, fn):
        """first half of the channels encodes the column, second half the row (3 x 5 grid)"""
        assert_close(fn(8, (3, 5)), ref_sincos_2d(8, (3, 5)), "sincos_2d(8, (3, 5))", atol=1e-6)

    @pytest.mark.points(1)
    def test_temperature(self, fn):
        """the temperature sets the frequency ladder"""
        assert_close(fn(12, (2, 3), temperature=100.0), ref_sincos_2d(12, (2, 3), 100.0), "sincos_2d(12, (2, 3), 100)", atol=1e-6)

    @pytest.mark.points(1)
    def test_rejects_dim_not_multiple_of_4(self, fn):
        """raises ValueError when dim is not a multiple of 4"""
        with pytest.raises(ValueError):
            fn(6, 3)
