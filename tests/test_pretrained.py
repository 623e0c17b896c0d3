"""Loading official I-JEPA checkpoints (minijepa.pretrained), without downloading anything.

We write files in the official layout ourselves: our models' weights renamed to the official names by
:func:`official_state` below (written independently of minijepa.pretrained), with the 'module.' prefixes,
the saved sin-cos tables and the extra training-state entries of src/train.py's save_checkpoint.

If the environment variable IJEPA_REPO points to a checkout of facebookresearch/ijepa, the official model
code itself is also compared with ours, e.g.:
    mkdir -p /tmp/ijepa && git -C <mirror> archive HEAD | tar -x -C /tmp/ijepa && IJEPA_REPO=/tmp/ijepa pytest ...
"""

import importlib
import os
import sys
from functools import partial

import pytest
import torch
import torch.nn as nn

from minijepa.predictor import Predictor
from minijepa.pretrained import (
    convert_official_state_dict,
    infer_vit_config,
    load_official_checkpoint,
    load_official_predictor,
    read_official_checkpoint,
)
from minijepa.vit import VIT_PRESETS, VisionTransformer, vit_config

# A ViT-Tiny width (so the head count is inferred from the preset), but 2 blocks on a 4x4 grid: fast.
WIDTH, HEADS, DEPTH, PATCH, IMAGE = 192, 3, 2, 8, 32
PRED_DIM, PRED_DEPTH = 48, 2


def _perturb(model: nn.Module, seed: int) -> nn.Module:
    """Move every trained parameter (LayerNorms and biases too, which start at 1 and 0) so any mix-up shows.

    Frozen ones (the official code's sin-cos tables) stay as they are.
    """
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(0.05 * torch.randn(p.shape, generator=gen))
    return model.eval()


def make_models():
    torch.manual_seed(0)
    config = vit_config("tiny", depth=DEPTH, patch_size=PATCH, image_size=IMAGE)
    encoder = _perturb(VisionTransformer(config), 1)
    target = _perturb(VisionTransformer(config), 2)
    predictor = _perturb(Predictor(config.grid, WIDTH, PRED_DIM, PRED_DEPTH, num_heads=HEADS), 3)
    return encoder, target, predictor


def official_state(model: nn.Module, kind: str, prefix: str = "module.") -> dict:
    """Our state dict in the official layout: official names, saved sin-cos table, DDP prefix."""
    state = {k: v.clone() for k, v in model.state_dict().items()}
    if kind == "encoder":
        state["pos_embed"] = model.pos_embed.clone()
    else:
        renamed = {}
        for key, value in state.items():
            head, _, rest = key.partition(".")
            name = {"embed": "predictor_embed", "blocks": "predictor_blocks", "norm": "predictor_norm",
                    "proj": "predictor_proj", "mask_token": "mask_token"}[head]
            renamed[name + ("." + rest if rest else "")] = value
        state = renamed
        state["predictor_pos_embed"] = model.pos_embed.clone()
    return {prefix + k: v for k, v in state.items()}


def official_checkpoint(encoder, target, predictor, prefix="module."):
    """The dict src/train.py's save_checkpoint writes."""
    opt = torch.optim.AdamW(list(encoder.parameters()) + list(predictor.parameters()))
    return {
        "encoder": official_state(encoder, "encoder", prefix),
        "predictor": official_state(predictor, "predictor", prefix),
        "target_encoder": official_state(target, "encoder", prefix),
        "opt": opt.state_dict(),
        "scaler": None,
        "epoch": 7,
        "loss": 0.123,
        "batch_size": 2,
        "world_size": 1,
        "lr": 1e-3,
    }


@pytest.fixture
def models():
    return make_models()


@pytest.fixture
def checkpoint_file(models, tmp_path):
    path = tmp_path / "IN1K-vit.t.8-tiny.pth.tar"
    torch.save(official_checkpoint(*models), path)
    return path


def sample_batch():
    gen = torch.Generator().manual_seed(4)
    images = torch.randn(2, 3, IMAGE, IMAGE, generator=gen)
    context = torch.randn(2, 5, WIDTH, generator=gen)
    context_idx = torch.tensor([[0, 1, 2, 4, 5], [3, 6, 7, 9, 12]])
    target_idx = torch.tensor([[[10, 11, 14], [8, 9, 13]], [[0, 1, 4], [13, 14, 15]]])  # (B, M=2, T=3)
    return images, context, context_idx, target_idx


# ------------------------------------------------------------------------------------ round trips
def test_target_encoder_loads_exactly(models, checkpoint_file):
    _, target, _ = models
    loaded = load_official_checkpoint(checkpoint_file)
    assert loaded.config == target.config and not loaded.training
    images = sample_batch()[0]
    with torch.no_grad():
        assert torch.equal(loaded(images), target(images))


def test_context_encoder_on_request(models, checkpoint_file):
    encoder, target, _ = models
    loaded = load_official_checkpoint(checkpoint_file, which="encoder")
    images = sample_batch()[0]
    with torch.no_grad():
        assert torch.equal(loaded(images), encoder(images))
        assert not torch.equal(loaded(images), target(images))
    with pytest.raises(ValueError, match="which"):
        load_official_checkpoint(checkpoint_file, which="predictor")


def test_predictor_loads_exactly(models, checkpoint_file):
    _, _, predictor = models
    ckpt = read_official_checkpoint(checkpoint_file)
    encoder = load_official_checkpoint(ckpt)  # an already-read dict works too
    loaded = load_official_predictor(ckpt, encoder.config)
    assert loaded.predictor_dim == PRED_DIM and len(loaded.blocks) == PRED_DEPTH and not loaded.training
    _, context, context_idx, target_idx = sample_batch()
    with torch.no_grad():
        assert torch.equal(loaded(context, context_idx, target_idx), predictor(context, context_idx, target_idx))
    load_official_predictor(ckpt, encoder)  # the encoder itself is accepted in place of its config


def test_without_module_prefix(models, tmp_path):
    _, target, predictor = models
    ckpt = official_checkpoint(*models, prefix="")
    assert "patch_embed.proj.weight" in ckpt["target_encoder"]
    images, context, context_idx, target_idx = sample_batch()
    loaded = load_official_checkpoint(ckpt)
    loaded_pred = load_official_predictor(ckpt, loaded.config)
    with torch.no_grad():
        assert torch.equal(loaded(images), target(images))
        assert torch.equal(loaded_pred(context, context_idx, target_idx), predictor(context, context_idx, target_idx))


def test_convert_names(models):
    _, _, predictor = models
    converted = convert_official_state_dict(official_state(predictor, "predictor"), "predictor")
    assert set(converted) == set(predictor.state_dict())
    assert "predictor_pos_embed" not in converted and "blocks.1.attn.qkv.weight" in converted
    with pytest.raises(ValueError, match="kind"):
        convert_official_state_dict({}, "decoder")


# ------------------------------------------------------------------------------------------- errors
def test_wrong_pos_embed_raises(models):
    encoder, target, predictor = models
    ckpt = official_checkpoint(*models)
    ckpt["target_encoder"]["module.pos_embed"] += 0.01  # e.g. a learned table
    with pytest.raises(ValueError, match="pos_embed is not the fixed 2-D sin-cos"):
        load_official_checkpoint(ckpt)
    ckpt["predictor"]["module.predictor_pos_embed"] = torch.randn(1, 16, PRED_DIM)
    with pytest.raises(ValueError, match="predictor_pos_embed"):
        load_official_predictor(ckpt, encoder.config)


def test_half_precision_table_is_accepted(models):
    ckpt = official_checkpoint(*models)
    ckpt["target_encoder"]["module.pos_embed"] = ckpt["target_encoder"]["module.pos_embed"].half()
    load_official_checkpoint(ckpt)  # rounding is not a different table


def test_missing_key_error_names_key_and_file(models, tmp_path):
    ckpt = official_checkpoint(*models)
    del ckpt["target_encoder"]["module.blocks.1.mlp.fc2.bias"]
    ckpt["target_encoder"]["module.head.weight"] = torch.zeros(10, WIDTH)
    path = tmp_path / "broken.pth.tar"
    torch.save(ckpt, path)
    with pytest.raises(RuntimeError) as err:
        load_official_checkpoint(path)
    message = str(err.value)
    assert "blocks.1.mlp.fc2.bias" in message and "head.weight" in message and "broken.pth.tar" in message


def test_missing_entry_and_shape_mismatch(models):
    ckpt = official_checkpoint(*models)
    with pytest.raises(ValueError, match="no 'target_encoder' entry"):
        load_official_checkpoint({"model": ckpt["encoder"]})
    ckpt["predictor"]["module.predictor_proj.weight"] = torch.zeros(WIDTH, PRED_DIM + 4)
    with pytest.raises(RuntimeError, match="predictor"):
        load_official_predictor(ckpt, models[0].config)


# --------------------------------------------------------------------------------- config inference
def _shape_only_state(preset: str, patch: int, grid: int) -> dict:
    """An official-looking state dict of meta tensors: shapes without memory (a ViT-g would be 4 GB)."""
    cfg = VIT_PRESETS[preset]
    width, depth = cfg["embed_dim"], cfg["depth"]
    hidden = round(width * cfg.get("mlp_ratio", 4.0))
    meta = partial(torch.empty, device="meta")
    state = {"module.patch_embed.proj.weight": meta(width, 3, patch, patch),
             "module.pos_embed": meta(1, grid * grid, width)}
    for i in range(depth):
        state[f"module.blocks.{i}.mlp.fc1.weight"] = meta(hidden, width)
        state[f"module.blocks.{i}.attn.qkv.bias"] = meta(3 * width)
        for norm in ("norm1", "norm2"):
            state[f"module.blocks.{i}.{norm}.weight"] = meta(width)
            state[f"module.blocks.{i}.{norm}.bias"] = meta(width)
    return state


@pytest.mark.parametrize("options", [dict(), dict(qk_norm=True), dict(parallel_blocks=True, qkv_bias=False),
                                     dict(norm_bias=False, qk_norm=True)])
def test_vit22b_options_inferred_from_key_names(options):
    """minijepa's own encoders with ViT-22B options load back with the right options (official ones have none)."""
    torch.manual_seed(0)
    model = VisionTransformer(image_size=32, patch_size=8, embed_dim=48, depth=2, num_heads=3, **options).eval()
    config = infer_vit_config(model.state_dict() | {"pos_embed": model.pos_embed}, num_heads=3)
    assert config == model.config
    rebuilt = VisionTransformer(config).eval()
    rebuilt.load_state_dict(model.state_dict())
    images = torch.randn(2, 3, 32, 32)
    assert torch.equal(rebuilt(images), model(images))


@pytest.mark.parametrize("preset", sorted(VIT_PRESETS))
def test_heads_inferred_for_each_preset_width(preset):
    config = infer_vit_config(_shape_only_state(preset, patch=14, grid=16))
    expected = vit_config(preset, patch_size=14, image_size=224)
    assert config == expected  # heads, depth, width, MLP ratio (48/11 for giant), image size, eps


def test_infer_448px_and_head_override():
    config = infer_vit_config(_shape_only_state("huge", patch=16, grid=28), num_heads=20)
    assert config.image_size == (448, 448) and config.grid == (28, 28) and config.num_heads == 20


def test_unknown_width_needs_num_heads(models):
    torch.manual_seed(0)
    odd = VisionTransformer(image_size=16, patch_size=8, embed_dim=40, depth=1, num_heads=5).eval()
    ckpt = {"target_encoder": official_state(odd, "encoder")}
    with pytest.raises(ValueError, match="num_heads"):
        load_official_checkpoint(ckpt)
    loaded = load_official_checkpoint(ckpt, num_heads=5)
    images = torch.randn(1, 3, 16, 16)
    with torch.no_grad():
        assert torch.equal(loaded(images), odd(images))


# ----------------------------------------------------------------------- against the official code
@pytest.fixture(scope="module")
def official_vit():
    """src.models.vision_transformer from an official checkout at $IJEPA_REPO (skipped if unset)."""
    repo = os.environ.get("IJEPA_REPO")
    if not repo:
        pytest.skip("set IJEPA_REPO to a checkout of facebookresearch/ijepa to compare with the official code")
    sys.path.insert(0, repo)
    try:
        yield importlib.import_module("src.models.vision_transformer")
    finally:
        sys.path.remove(repo)
        for name in [n for n in sys.modules if n == "src" or n.startswith("src.")]:
            del sys.modules[name]


def test_official_encoder_matches(official_vit):
    torch.manual_seed(0)
    theirs = official_vit.VisionTransformer(
        img_size=[IMAGE], patch_size=PATCH, embed_dim=WIDTH, depth=DEPTH, num_heads=HEADS,
        qkv_bias=True, norm_layer=partial(nn.LayerNorm, eps=1e-6),
    )
    _perturb(theirs, 5)
    ours = load_official_checkpoint({"target_encoder": {"module." + k: v for k, v in theirs.state_dict().items()}})
    images = sample_batch()[0]
    with torch.no_grad():
        expected = theirs(images, masks=None)  # masks=None: every patch, like our forward without `keep`
        torch.testing.assert_close(ours(images), expected, rtol=1e-5, atol=1e-5)
        keep = torch.tensor([[0, 3, 5, 6], [1, 2, 9, 15]])  # the context encoder's view: kept patches only
        torch.testing.assert_close(ours(images, keep), theirs(images, masks=[keep]), rtol=1e-5, atol=1e-5)


def test_official_predictor_matches(official_vit):
    torch.manual_seed(0)
    theirs = official_vit.vit_predictor(
        num_patches=(IMAGE // PATCH) ** 2, embed_dim=WIDTH, predictor_embed_dim=PRED_DIM, depth=PRED_DEPTH,
        num_heads=HEADS,
    )
    _perturb(theirs, 6)
    config = vit_config("tiny", depth=DEPTH, patch_size=PATCH, image_size=IMAGE)
    ours = load_official_predictor({"predictor": {"module." + k: v for k, v in theirs.state_dict().items()}}, config)
    _, context, context_idx, target_idx = sample_batch()
    with torch.no_grad():
        expected = theirs(context, [context_idx], [target_idx[:, m] for m in range(target_idx.shape[1])])
        got = ours(context, context_idx, target_idx)  # (B, M, T, D); theirs stacks block-major: (M*B, T, D)
        torch.testing.assert_close(got.transpose(0, 1).flatten(0, 1), expected, rtol=1e-5, atol=1e-5)


def test_compact_encoder_file_round_trip(tmp_path):
    """save_encoder / load_encoder: config and weights come back (float16 rounding), meta kept, bad files named."""
    from minijepa.pretrained import load_encoder, save_encoder
    from minijepa.vit import VisionTransformer as ViT

    torch.manual_seed(0)
    model = ViT(image_size=32, patch_size=8, embed_dim=48, depth=2, num_heads=3, qk_norm=True).eval()
    save_encoder(model, tmp_path / "enc.pt", step=7)
    loaded, meta = load_encoder(tmp_path / "enc.pt")
    assert meta == {"step": 7} and loaded.config == model.config and not loaded.training
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(loaded(x), model(x), atol=2e-2, rtol=1e-2)
    assert (tmp_path / "enc.pt").stat().st_size < sum(p.numel() for p in model.parameters()) * 2 + 20_000
    torch.save({"a": 1}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not an encoder file"):
        load_encoder(tmp_path / "other.pt")
