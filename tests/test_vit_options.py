"""ViT options: other resolutions, learned positions, and ViT-22B's stability options (qk_norm, parallel blocks, no biases)."""

import itertools
import math
from functools import partial

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from minijepa.masks import gather_tokens
from minijepa.patches import resize_positions, sincos_2d
from minijepa.vit import Attention, Block, ViTConfig, VisionTransformer

SMALL = dict(image_size=64, patch_size=8, embed_dim=32, depth=2, num_heads=4)  # an 8 x 8 grid


def small_vit(seed: int = 0, **overrides) -> VisionTransformer:
    torch.manual_seed(seed)
    return VisionTransformer(**{**SMALL, **overrides}).eval()


def images(*size, batch: int = 2, seed: int = 0) -> torch.Tensor:
    return torch.randn(batch, 3, *size, generator=torch.Generator().manual_seed(seed))


# ------------------------------------------------------------------------------------------ other resolutions
@pytest.mark.parametrize("pos_embed", ["sincos", "learned"])
@pytest.mark.parametrize("size, grid", [((96, 96), (12, 12)), ((64, 96), (8, 12)), ((96, 64), (12, 8)), ((32, 32), (4, 4))])
def test_runs_at_other_resolutions(pos_embed, size, grid):
    model = small_vit(pos_embed=pos_embed)
    x = images(*size)
    n = grid[0] * grid[1]
    out = model(x)
    assert out.shape == (2, n, 32) and torch.isfinite(out).all()
    assert model.position_embeddings(grid).shape == (1, n, 32)
    tokens, maps = model.forward_with_attention(x)
    torch.testing.assert_close(tokens, out, rtol=1e-5, atol=1e-5)
    assert len(maps) == 2 and maps[0].shape == (2, 4, n, n)
    torch.testing.assert_close(maps[1].sum(-1), torch.ones(2, 4, n))


@pytest.mark.parametrize("pos_embed", ["sincos", "learned"])
def test_built_size_is_bit_identical_to_no_interpolation(pos_embed):
    model = small_vit(pos_embed=pos_embed)
    assert model.position_embeddings((8, 8)) is model.pos_embed  # nothing recomputed or resampled
    assert model.position_embeddings(8) is model.pos_embed
    x = images(64, 64)
    with torch.no_grad():
        tokens = model.patch_embed(x) + model.pos_embed  # (B, N, D): the plain ViT, by hand
        for block in model.blocks:
            tokens = block(tokens)
        expected = model.norm(tokens)
        assert torch.equal(model(x), expected)


def test_sincos_at_a_new_grid_is_computed_for_that_grid():
    model = small_vit()
    for grid in [(12, 12), (8, 12), (5, 3)]:
        assert torch.equal(model.position_embeddings(grid), sincos_2d(32, grid)[None])
    # ... and the built grid's rows are the top-left corner of a bigger grid's (extension, not stretching)
    big = model.position_embeddings((8, 12)).reshape(8, 12, 32)
    assert torch.equal(big[:, :8].reshape(1, 64, 32), model.pos_embed)


def test_sincos_positions_follow_the_model_dtype():
    model = small_vit().double()
    assert model.position_embeddings((8, 12)).dtype == torch.float64
    assert model(images(64, 96).double()).dtype == torch.float64


def test_keep_path_at_other_resolutions():
    model = small_vit(pos_embed="learned")
    x = images(96, 64)  # 12 x 8 = 96 patches; indices up to 95 are valid now, not only up to 63
    keep = torch.stack([torch.randperm(96, generator=torch.Generator().manual_seed(b))[:20].sort().values for b in range(2)])
    keep[0, -1] = 95
    embedded = model.embed(x)  # (B, 96, D)
    assert embedded.shape == (2, 96, 32)
    assert torch.equal(model.embed(x, keep), gather_tokens(embedded, keep))  # each kept token keeps its position
    out = model(x, keep=keep)
    assert out.shape == (2, 20, 32)
    full = torch.arange(96).expand(2, 96)
    torch.testing.assert_close(model(x, keep=full), model(x), rtol=1e-6, atol=1e-6)
    with pytest.raises(IndexError, match="out of range"):
        model(x, keep=torch.tensor([[0, 96], [1, 2]]))


@pytest.mark.parametrize("size, bad", [((65, 64), "height 65"), ((64, 90), "width 90"), ((60, 90), "height 60 and width 90")])
def test_sizes_that_are_not_multiples_of_the_patch_raise(size, bad):
    model = small_vit()
    with pytest.raises(ValueError, match=f"image size {size[0]}x{size[1]} is not divisible by patch_size=8 \\({bad}\\)"):
        model(images(*size))


# ------------------------------------------------------------------------------------------ learned positions
def test_learned_positions_are_a_trunc_normal_parameter():
    model = VisionTransformer(image_size=128, patch_size=8, embed_dim=64, depth=1, num_heads=4, pos_embed="learned")
    pos = model.pos_embed
    assert isinstance(pos, nn.Parameter) and pos.requires_grad and pos.shape == (1, 256, 64)
    assert pos.abs().max() <= 0.04 + 1e-7  # truncated at 2 std
    assert abs(pos.std().item() - 0.02 * 0.8796) < 0.05 * 0.02
    sincos = small_vit()
    assert "pos_embed" not in dict(sincos.named_parameters()) and "pos_embed" in dict(sincos.named_buffers())


def test_config_checks_the_position_kind():
    with pytest.raises(ValueError, match="pos_embed='rope'"):
        ViTConfig(pos_embed="rope")
    with pytest.raises(ValueError, match="multiple of 4"):
        ViTConfig(embed_dim=30, num_heads=3)
    VisionTransformer(image_size=16, patch_size=8, embed_dim=30, num_heads=3, depth=1, pos_embed="learned")  # no sin-cos: fine


def test_state_dicts_save_learned_positions_and_not_sincos():
    learned = small_vit(seed=0, pos_embed="learned")
    state = learned.state_dict()
    assert "pos_embed" in state
    fresh = small_vit(seed=1, pos_embed="learned")
    assert not torch.equal(fresh.pos_embed, learned.pos_embed)
    fresh.load_state_dict(state, strict=True)
    assert torch.equal(fresh.pos_embed, learned.pos_embed)
    x = images(64, 96)
    assert torch.equal(fresh(x), learned(x))  # the loaded table is the one resized for other grids too

    sincos = small_vit()
    assert "pos_embed" not in sincos.state_dict()  # a non-persistent buffer, as before
    small_vit(seed=1).load_state_dict(sincos.state_dict(), strict=True)
    with pytest.raises(RuntimeError, match="pos_embed"):  # a learned table does not load silently into a sin-cos model
        small_vit().load_state_dict(state, strict=True)


def test_learned_positions_get_gradients_through_the_resize():
    model = small_vit(pos_embed="learned").train()
    model(images(96, 64)).square().mean().backward()
    assert model.pos_embed.grad is not None and model.pos_embed.grad.abs().sum() > 0


def test_resize_to_the_same_grid_is_the_identity():
    table = torch.randn(1, 12, 8)
    assert resize_positions(table, (3, 4), (3, 4)) is table
    model = small_vit(pos_embed="learned")
    assert model.position_embeddings((8, 8)) is model.pos_embed


def test_resize_keeps_rows_and_columns_apart():
    """A table that varies only along columns still does after resizing to a rectangle; constants stay constant."""
    cols = torch.arange(4.0).repeat(4)  # (16,): value = column index, raster order
    table = torch.stack([cols, torch.ones(16)], dim=1)[None]  # (1, 16, 2)
    out = resize_positions(table, (4, 4), (6, 8)).reshape(6, 8, 2)
    torch.testing.assert_close(out[..., 1], torch.ones(6, 8))  # bicubic weights sum to 1 (up to rounding)
    assert torch.allclose(out[..., 0], out[:1, :, 0].expand(6, 8))  # every row the same
    assert torch.all(out[0, 1:, 0] > out[0, :-1, 0])  # increasing along the columns
    assert abs(out[0, :, 0].mean().item() - 1.5) < 1e-5  # symmetric around the centre (align_corners=False)


def test_resize_round_trip_is_close_to_identity_for_smooth_tables():
    """4x4 -> 8x8 -> 4x4 with bicubic resampling loses almost nothing of a slowly varying table."""
    g = torch.Generator().manual_seed(0)
    rows, cols = torch.meshgrid(torch.arange(4.0), torch.arange(4.0), indexing="ij")
    freq = torch.randn(16, 2, generator=g) * 0.3  # low spatial frequencies
    phase = torch.rand(16, generator=g) * 2 * math.pi
    table = torch.sin(freq[:, :1, None] * rows + freq[:, 1:, None] * cols + phase[:, None, None])  # (D, 4, 4)
    table = table.reshape(16, 16).T[None]  # (1, N, D)
    up = resize_positions(table, (4, 4), (8, 8))
    assert up.shape == (1, 64, 16)
    back = resize_positions(up, (8, 8), (4, 4))
    assert (back - table).abs().max() < 0.02  # measured 0.009 on values of size ~1
    assert (back - table).norm() / table.norm() < 0.01


def test_resize_matches_timm_without_antialiasing():
    timm_pos = pytest.importorskip("timm.layers.pos_embed")
    table = torch.randn(1, 5 * 7, 12, generator=torch.Generator().manual_seed(0))
    ours = resize_positions(table, (5, 7), (9, 4))
    ref = timm_pos.resample_abs_pos_embed(table, [9, 4], old_size=[5, 7], num_prefix_tokens=0, antialias=False)
    torch.testing.assert_close(ours, ref, rtol=0, atol=0)


def test_resize_checks_the_table_shape():
    with pytest.raises(ValueError, match=r"\(1, 16, D\) for a 4x4 grid"):
        resize_positions(torch.zeros(1, 15, 8), (4, 4), (8, 8))


# ------------------------------------------------------------------------------------------ ViT-22B options
OPTIONS = ("qk_norm", "parallel_blocks", "qkv_bias", "norm_bias")
COMBINATIONS = [dict(zip(OPTIONS, values)) for values in itertools.product([False, True], repeat=4)]


@pytest.mark.parametrize("options", COMBINATIONS, ids=lambda o: "-".join(f"{k}={int(v)}" for k, v in o.items()))
def test_every_option_combination_runs(options):
    model = small_vit(**options, drop_path_rate=0.1)
    x = images(32, 48)  # another resolution too
    out = model(x)
    assert out.shape == (2, 24, 32)
    tokens, maps = model.forward_with_attention(x)
    torch.testing.assert_close(tokens, out, rtol=1e-5, atol=1e-5)  # explicit softmax path = fused SDPA path
    assert all(m.shape == (2, 4, 24, 24) for m in maps)
    torch.testing.assert_close(maps[0].sum(-1), torch.ones(2, 4, 24))
    model.train()(x).sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


def reference_block(block: Block, x: torch.Tensor) -> torch.Tensor:
    """The standard pre-norm block written out with functional ops and the block's own weights."""
    def ln(norm, t):
        return F.layer_norm(t, t.shape[-1:], norm.weight, norm.bias, norm.eps)

    a = block.attn
    q, k, v = F.linear(ln(block.norm1, x), a.qkv.weight, a.qkv.bias).chunk(3, dim=-1)  # 3 x (B, N, D)
    split = lambda t: t.unflatten(-1, (a.num_heads, -1)).transpose(1, 2)  # (B, h, N, d)
    q, k, v = split(q), split(k), split(v)
    attn = (q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])).softmax(-1)  # (B, h, N, N)
    y = (attn @ v).transpose(1, 2).flatten(2)  # (B, N, D)
    x = x + F.linear(y, a.proj.weight, a.proj.bias)
    hidden = F.gelu(F.linear(ln(block.norm2, x), block.mlp.fc1.weight, block.mlp.fc1.bias))
    return x + F.linear(hidden, block.mlp.fc2.weight, block.mlp.fc2.bias)


def test_options_off_is_exactly_the_standard_block():
    torch.manual_seed(0)
    block = Block(32, 4).eval()
    for p in block.parameters():  # move every weight and bias away from its init, so each one matters
        nn.init.normal_(p, std=0.3)
    x = torch.randn(2, 10, 32)
    torch.testing.assert_close(block(x), reference_block(block, x), rtol=1e-5, atol=1e-5)
    explicit = Block(32, 4, qkv_bias=True, qk_norm=False, parallel=False, norm_bias=True).eval()
    assert explicit.load_state_dict(block.state_dict(), strict=True)
    assert torch.equal(explicit(x), block(x))
    # A model whose config names the defaults is the same model: same parameters, same output bit for bit.
    plain, named = small_vit(), small_vit(qk_norm=False, parallel_blocks=False, qkv_bias=True, norm_bias=True)
    assert plain.state_dict().keys() == named.state_dict().keys()
    assert torch.equal(plain(images(64, 64)), named(images(64, 64)))


def test_parallel_block_shares_one_layer_norm():
    torch.manual_seed(0)
    block = Block(32, 4, parallel=True).eval()
    for p in block.parameters():
        nn.init.normal_(p, std=0.3)
    assert block.norm2 is None
    assert sum(p.numel() for p in block.parameters()) == sum(p.numel() for p in Block(32, 4).parameters()) - 2 * 32
    x = torch.randn(2, 10, 32)
    h = block.norm1(x)
    torch.testing.assert_close(block(x), x + block.attn(h) + block.mlp(h), rtol=1e-6, atol=1e-6)
    out, attn = block(x, return_attention=True)
    torch.testing.assert_close(out, block(x), rtol=1e-5, atol=1e-5)


def test_qk_norm_normalises_each_head_of_queries_and_keys():
    torch.manual_seed(0)
    attn = Attention(64, 4, qk_norm=True)  # d = 16
    nn.init.normal_(attn.qkv.weight, std=1.0)
    x = torch.randn(3, 7, 64) * 5
    q, k, v = attn.heads(x)  # (B, h, N, d) each
    assert q.shape == k.shape == v.shape == (3, 4, 7, 16)
    for t in (q, k):  # default affine (gain 1, bias 0): zero mean, unit variance, norm sqrt(d) per head and token
        torch.testing.assert_close(t.mean(-1), torch.zeros(3, 4, 7), atol=1e-5, rtol=0)
        torch.testing.assert_close(t.norm(dim=-1), torch.full((3, 4, 7), 4.0), atol=1e-4, rtol=0)
    assert not torch.allclose(v.norm(dim=-1), torch.full((3, 4, 7), 4.0))  # values are left alone
    assert attn.q_norm.weight.shape == (16,)  # one LayerNorm of width d, shared by the heads


def test_qk_norm_bounds_the_logits_and_attention_still_sums_to_one():
    torch.manual_seed(0)
    plain, normed = Attention(64, 4), Attention(64, 4, qk_norm=True)
    normed.load_state_dict(plain.state_dict(), strict=False)  # same projections
    with torch.no_grad():
        plain.qkv.weight.mul_(50)
        normed.qkv.weight.mul_(50)
    x = torch.randn(2, 9, 64)
    _, w_plain, l_plain = plain(x, return_attention=True, return_logits=True)
    out, w_normed, l_normed = normed(x, return_attention=True, return_logits=True)
    assert l_plain.abs().max() > 100  # big weights, big logits: nearly one-hot rows
    assert l_normed.abs().max() <= math.sqrt(16) + 1e-4  # |q . k| / sqrt(d) <= |q| |k| / sqrt(d) = sqrt(d)
    torch.testing.assert_close(w_normed.sum(-1), torch.ones(2, 4, 9))
    torch.testing.assert_close(w_normed, l_normed.softmax(-1))
    torch.testing.assert_close(out, normed(x), rtol=1e-5, atol=1e-5)  # SDPA fast path agrees


def test_return_logits_order_and_values():
    torch.manual_seed(0)
    attn = Attention(32, 4)
    x = torch.randn(2, 6, 32)
    out, logits = attn(x, return_logits=True)
    out2, weights = attn(x, return_attention=True)
    torch.testing.assert_close(out, out2)
    torch.testing.assert_close(logits.softmax(-1), weights)
    q, k, _ = attn.heads(x)
    torch.testing.assert_close(logits, q @ k.transpose(-2, -1) / math.sqrt(8))
    assert len(attn(x, return_attention=True, return_logits=True)) == 3


def test_no_bias_variants_have_no_bias_parameters():
    model = small_vit(qkv_bias=False, norm_bias=False, qk_norm=True)
    names = [name for name, _ in model.named_parameters()]
    assert not any("qkv.bias" in n for n in names)
    assert not any("norm" in n and n.endswith(".bias") for n in names)  # norm1, norm2, q_norm, k_norm, final norm
    layer_norms = [m for m in model.modules() if isinstance(m, nn.LayerNorm)]
    assert len(layer_norms) == 2 * 4 + 1 and all(m.bias is None and m.weight is not None for m in layer_norms)
    for block in model.blocks:  # ViT-22B keeps the biases of the MLP and of the attention output
        assert block.attn.qkv.bias is None
        assert block.attn.proj.bias is not None and block.mlp.fc1.bias is not None and block.mlp.fc2.bias is not None
    only_qkv = small_vit(qkv_bias=False)
    assert all(block.norm1.bias is not None for block in only_qkv.blocks)
    only_norm = small_vit(norm_bias=False)
    assert all(block.attn.qkv.bias is not None for block in only_norm.blocks)


def test_options_keep_the_init():
    model = small_vit(qk_norm=True, norm_bias=False, parallel_blocks=True, qkv_bias=False)
    for block in model.blocks:
        assert torch.equal(block.attn.q_norm.weight, torch.ones(8)) and torch.equal(block.attn.k_norm.weight, torch.ones(8))


@pytest.mark.parametrize("options", [dict(qk_norm=True), dict(qkv_bias=False), dict(qk_norm=True, qkv_bias=False)])
def test_qk_norm_and_no_qkv_bias_match_timm(options):
    """timm's ViT has the same qk_norm (one LayerNorm of the head width for q, one for k) and names it the same."""
    timm_vit = pytest.importorskip("timm.models.vision_transformer")
    ours = small_vit(**options)
    for p in ours.parameters():
        nn.init.normal_(p, mean=1.0 if p.dim() == 1 else 0.0, std=0.2)
    cfg = ours.config
    ref = timm_vit.VisionTransformer(
        img_size=cfg.image_size, patch_size=cfg.patch_size, embed_dim=cfg.embed_dim, depth=cfg.depth,
        num_heads=cfg.num_heads, qkv_bias=cfg.qkv_bias, qk_norm=cfg.qk_norm, class_token=False, global_pool="",
        num_classes=0, norm_layer=partial(nn.LayerNorm, eps=cfg.norm_eps),
    ).eval()
    ref.load_state_dict(dict(ours.state_dict(), pos_embed=ours.pos_embed.clone()), strict=True)
    x = images(64, 64)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), ref.forward_features(x), rtol=1e-5, atol=1e-5)
