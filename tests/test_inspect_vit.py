"""Analysis helpers: filter PCA, position similarity, mean attention distance, attention logit maxima."""

import math

import pytest
import torch

from minijepa import explorers
from minijepa.explorers import AttentionExplorer
from minijepa.inspect_vit import (
    attention_distance,
    attention_logits_max,
    mean_attention_distance,
    patch_distances,
    patch_filter_pca,
    position_similarity,
)
from minijepa.patches import sincos_2d
from minijepa.vit import VisionTransformer


def images(*size, batch: int = 3, seed: int = 0) -> torch.Tensor:
    return torch.randn(batch, 3, *size, generator=torch.Generator().manual_seed(seed))


# ------------------------------------------------------------------------------------------ filter PCA
def two_direction_filters():
    """64 filters (3, 4, 4) = mean + a_i * red + b_i * ramp, with a, b orthogonal zero-mean sequences."""
    red = torch.zeros(3, 4, 4)
    red[0] = 1.0
    red = red / red.norm()  # a flat red tile
    ramp = torch.tensor([-1.0, -0.5, 0.0, 1.5]).expand(3, 4, 4).clone()  # grey, brighter to the right, zero-sum
    ramp = ramp / ramp.norm()
    assert abs((red * ramp).sum()) < 1e-7  # orthogonal directions
    i = torch.arange(64)
    a = 3.0 * torch.where(i % 2 == 0, 1.0, -1.0)  # variance 9
    b = torch.where(i % 4 < 2, 1.0, -1.0)  # variance 1, orthogonal to a, both zero-mean
    mean = torch.rand(3, 4, 4, generator=torch.Generator().manual_seed(0))  # removed by the centring
    filters = mean + a[:, None, None, None] * red + b[:, None, None, None] * ramp  # (64, 3, 4, 4)
    return filters, red, ramp


def test_filter_pca_recovers_two_known_directions():
    filters, red, ramp = two_direction_filters()
    comps, ratios = patch_filter_pca(filters, k=3, normalize=False)
    assert comps.shape == (3, 3, 4, 4) and ratios.shape == (3,)
    torch.testing.assert_close(comps[0], red, atol=1e-5, rtol=0)  # sign: largest entry positive
    torch.testing.assert_close(comps[1], ramp, atol=1e-5, rtol=0)
    torch.testing.assert_close(ratios[:2], torch.tensor([0.9, 0.1]), atol=1e-5, rtol=0)  # 9 / (9 + 1), 1 / (9 + 1)
    assert ratios[2] < 1e-6  # nothing left after two directions


def test_filter_pca_tiles_are_ready_to_show():
    filters, _, ramp = two_direction_filters()
    tiles, ratios = patch_filter_pca(filters, k=2)
    assert tiles.amin(dim=(1, 2, 3)).tolist() == [0.0, 0.0] and tiles.amax(dim=(1, 2, 3)).tolist() == [1.0, 1.0]
    torch.testing.assert_close(tiles[0, 0], torch.ones(4, 4))  # the first component is pure red
    torch.testing.assert_close(tiles[0, 1:], torch.zeros(2, 4, 4))
    expected = torch.tensor([0.0, 0.2, 0.4, 1.0]).expand(3, 4, 4)  # the ramp, scaled to [0, 1]
    torch.testing.assert_close(tiles[1], expected)
    assert torch.all(tiles.isfinite())


def test_filter_pca_on_a_model_and_bad_inputs():
    model = VisionTransformer(image_size=32, patch_size=8, embed_dim=64, depth=1, num_heads=4)
    tiles, ratios = patch_filter_pca(model.patch_embed.proj.weight, k=28)
    assert tiles.shape == (28, 3, 8, 8) and not tiles.requires_grad
    assert torch.all(ratios[1:] <= ratios[:-1]) and 0 < ratios.sum() <= 1 + 1e-6
    with pytest.raises(ValueError, match="k=65"):
        patch_filter_pca(model.patch_embed.proj.weight, k=65)
    with pytest.raises(ValueError, match=r"\(D, C, P, P\)"):
        patch_filter_pca(torch.zeros(64, 192), k=2)


# ------------------------------------------------------------------------------------------ position similarity
def test_sincos_position_similarity_is_one_on_the_diagonal_symmetric_and_decays():
    dim, grid = 192, 8
    sim = position_similarity(sincos_2d(dim, grid)[None], grid)
    assert sim.shape == (8, 8, 8, 8)
    flat = sim.reshape(64, 64)
    torch.testing.assert_close(flat.diagonal(), torch.ones(64))
    torch.testing.assert_close(flat, flat.T)
    along_row = sim[0, 0, 0]  # corner patch against the first row
    along_diagonal = torch.stack([sim[0, 0, i, i] for i in range(grid)])
    assert torch.all(along_row[1:] < along_row[:-1]) and torch.all(along_diagonal[1:] < along_diagonal[:-1])
    # By hand: rows/columns each fill half the channels with (sin, cos) pairs of d = dim/4 frequencies w_k, so
    # cos(p, p') = (sum_k cos(dx w_k) + sum_k cos(dy w_k)) / (dim / 2).
    w = 10000.0 ** (-torch.arange(48, dtype=torch.float64) / 48)
    expected = (torch.cos(3 * w).sum() + 48) / 96
    assert math.isclose(sim[0, 0, 0, 3].item(), expected.item(), rel_tol=1e-5)


def test_position_similarity_of_one_hot_positions_is_the_identity():
    table = torch.eye(6) * 5  # (N, D), 2 x 3 grid
    sim = position_similarity(table, (2, 3))
    assert sim.shape == (2, 3, 2, 3)
    assert torch.equal(sim.reshape(6, 6), torch.eye(6))
    assert torch.equal(position_similarity(table[None], (2, 3)), sim)  # (1, N, D) works too
    with pytest.raises(ValueError, match="3x3 grid"):
        position_similarity(table, 3)


def test_position_similarity_of_a_learned_table():
    model = VisionTransformer(image_size=32, patch_size=8, embed_dim=32, depth=1, num_heads=4, pos_embed="learned")
    sim = position_similarity(model.pos_embed, model.grid)
    assert sim.shape == (4, 4, 4, 4) and not sim.requires_grad
    torch.testing.assert_close(sim.reshape(16, 16).diagonal(), torch.ones(16))


# ------------------------------------------------------------------------------------------ attention distance
def test_explorers_use_the_same_distance_functions():
    assert explorers.attention_distance is attention_distance and explorers.patch_distances is patch_distances


def uniform_attention_vit(**kwargs) -> VisionTransformer:
    """Zero query/key projections: every logit is 0, so every head attends uniformly."""
    model = VisionTransformer(**{**dict(image_size=32, patch_size=8, embed_dim=32, depth=3, num_heads=4), **kwargs})
    with torch.no_grad():
        for block in model.blocks:
            block.attn.qkv.weight[:64].zero_()  # the query and key rows
            block.attn.qkv.bias[:64].zero_()
    return model


@pytest.mark.parametrize("size", [(32, 32), (32, 48)])
def test_uniform_attention_scores_the_mean_pairwise_patch_distance(size):
    model = uniform_attention_vit()
    distance = mean_attention_distance(model, images(*size), patch_size=8)
    grid = (size[0] // 8, size[1] // 8)
    expected = patch_distances(grid, 8).mean()  # e.g. 4 x 4 patches of 8 px: about 20.8 px
    assert distance.shape == (3, 4)
    torch.testing.assert_close(distance, expected.expand(3, 4), rtol=1e-5, atol=1e-5)


def test_identity_attention_scores_zero():
    """Tokens = positions only; queries = 1000 x keys, so each token's own key wins the softmax outright."""
    model = VisionTransformer(image_size=32, patch_size=8, embed_dim=32, depth=2, num_heads=1)
    with torch.no_grad():
        model.patch_embed.proj.weight.zero_()
        model.patch_embed.proj.bias.zero_()
        for block in model.blocks:
            block.attn.qkv.weight.zero_()
            block.attn.qkv.bias.zero_()
            block.attn.qkv.weight[:32] = 1000 * torch.eye(32)  # q = 1000 LN(x)
            block.attn.qkv.weight[32:64] = torch.eye(32)  # k = LN(x): q_i . k_j is largest at j = i
            for layer in (block.attn.proj, block.mlp.fc2):  # nothing written back: every block sees the positions
                layer.weight.zero_()
                layer.bias.zero_()
    _, maps = model.forward_with_attention(images(32, 32))
    torch.testing.assert_close(maps[0][0, 0], torch.eye(16))
    distance = mean_attention_distance(model, images(32, 32))
    assert distance.shape == (2, 1)
    assert distance.abs().max() < 1e-4


def test_mean_attention_distance_matches_the_explorer_and_restores_the_mode():
    torch.manual_seed(0)
    model = VisionTransformer(image_size=32, patch_size=8, embed_dim=32, depth=2, num_heads=4).train()
    x = images(32, 32, batch=1)
    distance = mean_attention_distance(model, x)
    assert model.training  # put back in training mode
    explorer = AttentionExplorer.from_encoder(model, x[0], normalize=False)
    torch.testing.assert_close(distance, torch.as_tensor(explorer.mean_distances()), rtol=1e-5, atol=1e-4)
    batch = images(32, 32, batch=5)
    per_image = torch.stack([mean_attention_distance(model, img[None]) for img in batch]).mean(0)
    torch.testing.assert_close(mean_attention_distance(model, batch, batch_size=2), per_image, rtol=1e-5, atol=1e-4)


# ------------------------------------------------------------------------------------------ attention logits
def test_attention_logits_max_is_the_largest_pre_softmax_logit():
    torch.manual_seed(0)
    model = VisionTransformer(image_size=32, patch_size=8, embed_dim=32, depth=3, num_heads=4)
    x = images(32, 48, batch=5)
    _, logits = model.forward_with_attention(x, return_logits=True)  # L x (B, h, N, N)
    per_head = attention_logits_max(model, x, per_head=True, batch_size=2)
    assert per_head.shape == (3, 4)
    torch.testing.assert_close(per_head, torch.stack([l.amax(dim=(0, 2, 3)) for l in logits]))
    torch.testing.assert_close(attention_logits_max(model, x), per_head.amax(1))


def test_qk_norm_bounds_the_logit_maximum():
    def grown(**options):  # query/key weights grown 30x, as in a run whose logits blew up
        torch.manual_seed(0)
        model = VisionTransformer(image_size=32, patch_size=8, embed_dim=64, depth=2, num_heads=4, **options)
        with torch.no_grad():
            for block in model.blocks:
                block.attn.qkv.weight[:128].mul_(30)
        return model

    x = images(32, 32)
    plain = attention_logits_max(grown(), x)
    normed = attention_logits_max(grown(qk_norm=True), x)
    assert plain.min() > 10 * normed.max()
    assert normed.max() <= math.sqrt(16) + 1e-4  # head width 16, unit LayerNorm gains
