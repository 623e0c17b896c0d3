import math
from functools import partial

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from minijepa.masks import gather_tokens
from minijepa.vit import VIT_PRESETS, Attention, Block, DropPath, ViTConfig, VisionTransformer, vit_config, vit_tiny

timm = pytest.importorskip("timm")
from timm.models.vision_transformer import VisionTransformer as TimmViT  # noqa: E402


def make_timm_copy(ours: VisionTransformer) -> TimmViT:
    """timm's VisionTransformer configured like ours (no class token, no head), with our weights copied in."""
    cfg = ours.config
    ref = TimmViT(
        img_size=cfg.image_size,
        patch_size=cfg.patch_size,
        in_chans=cfg.in_chans,
        embed_dim=cfg.embed_dim,
        depth=cfg.depth,
        num_heads=cfg.num_heads,
        mlp_ratio=cfg.mlp_ratio,
        qkv_bias=cfg.qkv_bias,
        class_token=False,
        global_pool="",
        num_classes=0,
        norm_layer=partial(nn.LayerNorm, eps=cfg.norm_eps),
    ).eval()
    state = dict(ours.state_dict())
    state["pos_embed"] = ours.pos_embed.clone()  # timm keeps positions as a parameter
    missing, unexpected = ref.load_state_dict(state, strict=True)
    assert not missing and not unexpected
    return ref


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(image_size=32, patch_size=8, embed_dim=48, depth=3, num_heads=3),
        dict(image_size=(32, 48), patch_size=16, embed_dim=64, depth=2, num_heads=4, mlp_ratio=2.0),
    ],
)
def test_matches_timm_with_copied_weights(kwargs):
    torch.manual_seed(0)
    ours = VisionTransformer(**kwargs).eval()
    ref = make_timm_copy(ours)
    x = torch.randn(3, 3, *ours.config.image_size)
    with torch.no_grad():
        expected = ref.forward_features(x)  # (B, N, D)
        got = ours(x)
    assert got.shape == expected.shape == (3, ours.num_patches, ours.embed_dim)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_keep_subset_matches_timm_on_the_same_tokens():
    torch.manual_seed(1)
    ours = VisionTransformer(image_size=32, patch_size=8, embed_dim=48, depth=2, num_heads=3).eval()
    ref = make_timm_copy(ours)
    x = torch.randn(2, 3, 32, 32)
    keep = torch.stack([torch.randperm(16)[:7].sort().values for _ in range(2)])  # (B, K)
    with torch.no_grad():
        tokens = ref._pos_embed(ref.patch_embed(x))  # (B, N, D) with positions, as timm computes them
        tokens = gather_tokens(tokens, keep)  # (B, K, D)
        expected = ref.norm(ref.blocks(tokens))
        got = ours(x, keep=keep)
    assert got.shape == (2, 7, 48)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_explicit_attention_path_matches_fused_and_returns_weights():
    torch.manual_seed(0)
    attn = Attention(dim=32, num_heads=4)
    x = torch.randn(2, 10, 32)
    fused = attn(x)
    explicit, weights = attn(x, return_attention=True)
    torch.testing.assert_close(fused, explicit, rtol=1e-5, atol=1e-5)
    assert weights.shape == (2, 4, 10, 10)
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, 4, 10))


def test_forward_with_attention_matches_forward():
    torch.manual_seed(0)
    model = vit_tiny(patch_size=8, image_size=32, depth=2).eval()
    x = torch.randn(2, 3, 32, 32)
    tokens, maps = model.forward_with_attention(x)
    torch.testing.assert_close(tokens, model(x), rtol=1e-5, atol=1e-5)
    assert len(maps) == 2 and maps[0].shape == (2, 3, 16, 16)


def test_init_rescales_residual_projections():
    """Truncated normal(0.02) everywhere, then attn.proj / mlp.fc2 of block l divided by sqrt(2 l)."""
    torch.manual_seed(0)
    model = VisionTransformer(image_size=32, patch_size=4, embed_dim=256, depth=6, num_heads=4)
    std = 0.02
    trunc_std = std * 0.8796  # std of a normal truncated at +-2 sigma
    fc1 = torch.cat([b.mlp.fc1.weight.flatten() for b in model.blocks])
    assert fc1.abs().max() <= 2 * std + 1e-7
    assert abs(fc1.std().item() - trunc_std) < 0.02 * trunc_std
    for layer, block in enumerate(model.blocks, start=1):
        for weight in (block.attn.proj.weight, block.mlp.fc2.weight):
            expected = trunc_std / math.sqrt(2 * layer)
            assert abs(weight.std().item() - expected) < 0.06 * expected, (layer, weight.std().item(), expected)
        assert torch.all(block.attn.qkv.bias == 0) and torch.all(block.norm1.weight == 1)
    # A model whose init was undone (every linear re-drawn, as the official helper does) fails this check:
    last = model.blocks[-1].mlp.fc2.weight
    nn.init.trunc_normal_(last, std=std, a=-2 * std, b=2 * std)
    assert last.std().item() > 2 * trunc_std / math.sqrt(2 * 6)


def test_drop_path_per_sample_and_eval_identity():
    torch.manual_seed(0)
    dp = DropPath(0.5)
    x = torch.ones(1000, 4, 8)
    y = dp.train()(x)
    per_sample = y[:, 0, 0]
    assert set(per_sample.unique().tolist()) <= {0.0, 2.0}
    assert torch.all(y == y[:, :1, :1])  # whole sample dropped or kept
    assert abs((per_sample == 0).float().mean().item() - 0.5) < 0.06
    assert torch.equal(dp.eval()(x), x)


def test_block_shapes_and_residual():
    block = Block(dim=24, num_heads=2)
    x = torch.randn(2, 5, 24)
    assert block(x).shape == (2, 5, 24)


@pytest.mark.parametrize("options", [dict(), dict(parallel=True, qk_norm=True), dict(drop_path=0.3)])
def test_block_last_n_tokens_equals_the_full_block_sliced(options):
    """Block(x, last=n) computes only the last n tokens' outputs (the predictor's last block): same values and
    same gradients as block(x)[:, -n:], for less work."""
    torch.manual_seed(0)
    block = Block(dim=24, num_heads=2, **options).eval()
    x = torch.randn(3, 7, 24, requires_grad=True)
    full = block(x)[:, -4:]
    part = block(x, last=4)
    assert part.shape == (3, 4, 24)
    torch.testing.assert_close(part, full, rtol=1e-5, atol=1e-6)
    g_full = torch.autograd.grad(full.square().sum(), [x, *block.parameters()])
    g_part = torch.autograd.grad(part.square().sum(), [x, *block.parameters()])
    for a, b in zip(g_part, g_full):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
    assert g_part[0][:, :3].abs().sum() > 0  # the first tokens still matter, as keys and values
    _, attn = block(x, return_attention=True, last=4)
    assert attn.shape == (3, 2, 4, 7)  # 4 queries over 7 keys


def test_presets_have_paper_sizes():
    expected = {"tiny": 5.7e6, "small": 22e6, "base": 86e6, "large": 307e6, "huge": 632e6}
    for name, params in expected.items():
        cfg = vit_config(name, patch_size=16, image_size=224)
        d, depth, r = cfg.embed_dim, cfg.depth, cfg.mlp_ratio
        # Count analytically (building ViT-H just to count is slow): per block 4 D^2 + 2 r D^2 (+ biases, norms).
        per_block = 4 * d * d + 4 * d + 2 * round(r * d) * d + round(r * d) + d + 4 * d
        total = depth * per_block + 16 * 16 * 3 * d + d + 2 * d
        assert abs(total - params) / params < 0.05, (name, total)
    model = vit_tiny(patch_size=16, image_size=224)
    assert abs(sum(p.numel() for p in model.parameters()) - 5.7e6) / 5.7e6 < 0.05
    assert VIT_PRESETS["giant"]["embed_dim"] == 1408
    assert round(1408 * vit_config("giant").mlp_ratio) == 6144


def test_bad_configs_raise_clear_errors():
    with pytest.raises(ValueError, match="not divisible by patch_size=16"):
        ViTConfig(image_size=100, patch_size=16)
    with pytest.raises(ValueError, match="num_heads=5"):
        ViTConfig(embed_dim=64, num_heads=5)
    with pytest.raises(ValueError, match="unknown ViT preset 'medium'"):
        vit_config("medium")
    model = vit_tiny(patch_size=8, image_size=32, depth=1)
    with pytest.raises(ValueError, match="expected 3 input channels, got 4"):
        model(torch.zeros(1, 4, 32, 32))
    with pytest.raises(IndexError, match="out of range"):
        model(torch.zeros(1, 3, 32, 32), keep=torch.tensor([[0, 16]]))


def test_other_resolution_recomputes_positions():
    model = vit_tiny(patch_size=8, image_size=32, depth=1).eval()
    x = torch.randn(1, 3, 32, 48)
    assert model(x).shape == (1, 4 * 6, 192)


def test_patch_embedding_init_xavier_by_default_or_as_the_official_code():
    """Xavier on the flattened patch (fan_in C*P*P, fan_out D) by default; truncated normal(0.02) on request."""
    torch.manual_seed(0)
    xavier = VisionTransformer(image_size=64, patch_size=8, embed_dim=192, depth=1, num_heads=3)
    bound = math.sqrt(6 / (3 * 8 * 8 + 192))
    w = xavier.patch_embed.proj.weight
    assert w.abs().max() <= bound and w.abs().max() > 0.95 * bound
    assert abs(w.std().item() - bound / math.sqrt(3)) < 0.03 * bound
    official = VisionTransformer(image_size=64, patch_size=8, embed_dim=192, depth=1, num_heads=3, patch_init="trunc_normal")
    assert official.patch_embed.proj.weight.abs().max() <= 0.04 + 1e-7
    with pytest.raises(ValueError, match="patch_init='he'"):
        VisionTransformer(image_size=64, patch_size=8, embed_dim=192, depth=1, num_heads=3, patch_init="he")


def test_xavier_patch_init_keeps_positions_from_dominating_the_tokens():
    """The reason for the default: with trunc-normal(0.02) patches of 8 px, position explains most of a token."""
    from minijepa.data import ShapesDataset, normalize

    images = normalize(ShapesDataset(64, image_size=64, seed=0).images.float() / 255)

    def position_share(patch_init):
        torch.manual_seed(0)
        model = VisionTransformer(image_size=64, patch_size=8, embed_dim=192, depth=2, num_heads=3,
                                  patch_init=patch_init).eval()
        with torch.no_grad():
            tokens = F.layer_norm(model(images), (192,))  # (B, N, D) as the I-JEPA targets
        return (tokens.mean(0).var(0, unbiased=False).sum() / tokens.var(dim=(0, 1), unbiased=False).sum()).item()

    official, xavier = position_share("trunc_normal"), position_share("xavier")
    assert official > 0.5 and xavier < 0.3, (official, xavier)
