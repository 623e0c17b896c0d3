import math

import numpy as np
import pytest
import torch

from minijepa.patches import PatchEmbed, grid_size, patchify, sincos_1d, sincos_2d, unpatchify


@pytest.mark.parametrize("shape,p", [((2, 3, 32, 32), 8), ((1, 3, 48, 64), 16), ((3, 1, 12, 20), 4)])
def test_patchify_unpatchify_exact_inverse(shape, p, gen):
    x = torch.randn(*shape, generator=gen)
    patches = patchify(x, p)
    h, w = shape[2] // p, shape[3] // p
    assert patches.shape == (shape[0], h * w, p * p * shape[1])
    assert torch.equal(unpatchify(patches, p, (h, w)), x)


def test_patchify_raster_order_and_layout():
    # Image whose pixel value encodes (channel, row, col): check patch k = row-major grid cell k.
    c, hh, ww, p = 3, 8, 12, 4
    x = torch.arange(c * hh * ww, dtype=torch.float32).reshape(1, c, hh, ww)
    patches = patchify(x, p)  # (1, 6, 48)
    grid_w = ww // p
    for k in range(patches.shape[1]):
        r, col = divmod(k, grid_w)
        block = x[0, :, r * p:(r + 1) * p, col * p:(col + 1) * p]  # (C, P, P)
        expected = block.permute(1, 2, 0).reshape(-1)  # pixels row by row, channels last
        assert torch.equal(patches[0, k], expected)


def test_patchify_rejects_bad_sizes():
    with pytest.raises(ValueError, match="not divisible by patch_size=8"):
        patchify(torch.zeros(1, 3, 30, 32), 8)
    with pytest.raises(ValueError, match="not divisible"):
        grid_size((64, 60), 16)
    with pytest.raises(ValueError, match="shape"):
        unpatchify(torch.zeros(1, 5, 48), 4, (2, 2))


def test_patch_embed_conv_equals_linear_view(gen):
    torch.manual_seed(0)
    embed = PatchEmbed(patch_size=4, in_chans=3, embed_dim=16)
    x = torch.randn(2, 3, 16, 24, generator=gen)
    conv = embed(x)
    lin = embed.forward_linear(x)
    assert conv.shape == (2, 4 * 6, 16)
    torch.testing.assert_close(conv, lin, rtol=1e-5, atol=1e-5)


def test_patch_embed_rejects_wrong_channels():
    embed = PatchEmbed(patch_size=4, in_chans=3, embed_dim=8)
    with pytest.raises(ValueError, match="expected 3 input channels, got 1"):
        embed(torch.zeros(1, 1, 16, 16))
    with pytest.raises(ValueError, match="not divisible"):
        embed(torch.zeros(1, 3, 18, 16))


def numpy_sincos_2d(dim, h, w):
    """Independent NumPy transcription of the published formula (ViT/MAE 2-D sin-cos, column first)."""
    d = dim // 4
    out = np.zeros((h * w, dim))
    for y in range(h):
        for x in range(w):
            for k in range(d):
                freq = 1.0 / (10000 ** (k / d))
                out[y * w + x, k] = math.sin(x * freq)
                out[y * w + x, d + k] = math.cos(x * freq)
                out[y * w + x, 2 * d + k] = math.sin(y * freq)
                out[y * w + x, 3 * d + k] = math.cos(y * freq)
    return out


@pytest.mark.parametrize("dim,grid", [(16, (4, 4)), (32, (3, 5)), (64, (8, 2))])
def test_sincos_2d_matches_numpy_formula(dim, grid):
    ours = sincos_2d(dim, grid).numpy()
    ref = numpy_sincos_2d(dim, *grid)
    assert ours.shape == (grid[0] * grid[1], dim)
    np.testing.assert_allclose(ours, ref, atol=1e-6)


def test_sincos_properties():
    pe = sincos_2d(64, (6, 6))
    # Each (sin, cos) pair has unit norm, so every embedding has norm sqrt(dim/2).
    torch.testing.assert_close(pe.norm(dim=1), torch.full((36,), math.sqrt(32.0)))
    # Neighbours are more similar than far-away patches.
    sim = pe @ pe.T
    assert sim[0, 1] > sim[0, 5] and sim[0, 6] > sim[0, 30]
    with pytest.raises(ValueError, match="multiple of 4"):
        sincos_2d(18, 4)
    with pytest.raises(ValueError, match="even"):
        sincos_1d(7, torch.arange(3))
