"""Load checkpoints released with the official I-JEPA code into our own models.

Meta released I-JEPA encoders (ViT-H/14, ViT-H/16 at 448 px, ViT-g/16) as the *training* checkpoints that
``src/train.py`` of facebookresearch/ijepa writes. Each file is one pickled dict::

    {'encoder': ..., 'predictor': ..., 'target_encoder': ...,   # three model state dicts
     'opt': ..., 'scaler': ..., 'epoch': ..., 'loss': ..., 'batch_size': ..., 'world_size': ..., 'lr': ...}

Three things separate those state dicts from ours:

1. The models were wrapped in ``DistributedDataParallel`` when saved, so every key starts with ``module.``
   (files saved from a single process have no prefix; we accept both).
2. The official predictor prefixes its own layers: ``predictor_embed``, ``predictor_blocks.i...``,
   ``predictor_norm``, ``predictor_proj``. Ours are plain ``embed``, ``blocks.i...``, ``norm``, ``proj``.
   The encoder already uses our (timm's) names.
3. The official code keeps its fixed sin-cos position table as a frozen *parameter*, so it is saved
   (``pos_embed``, ``predictor_pos_embed``). Ours is a non-persistent buffer, recomputed from the grid. We
   drop the saved table, but only after checking that it equals the one we would compute: a checkpoint
   whose table was learned or interpolated would otherwise load "successfully" and silently give
   different features.

The files do not store the architecture, so :func:`infer_vit_config` reads it back from tensor shapes. The
one thing shapes cannot tell is the number of attention heads; it comes from the preset with that width
(the official factories ``vit_tiny`` ... ``vit_giant`` use the same widths and heads as ``VIT_PRESETS``).

Which encoder? The paper evaluates the *target* encoder (the EMA one), so that is the default.

Typical use, to visualise a real pretrained encoder::

    ckpt = read_official_checkpoint("IN1K-vit.h.14-300e.pth.tar")   # read the big file once
    encoder = load_official_checkpoint(ckpt)                            # target encoder, eval mode
    predictor = load_official_predictor(ckpt, encoder.config)
"""

from __future__ import annotations

import dataclasses
import os
import re
import torch
import torch.nn as nn

from .patches import sincos_2d
from .predictor import Predictor
from .vit import VIT_PRESETS, VisionTransformer, ViTConfig

__all__ = [
    "ENCODER_KEYS",
    "read_official_checkpoint",
    "convert_official_state_dict",
    "infer_vit_config",
    "load_official_checkpoint",
    "load_official_predictor",
    "save_encoder",
    "load_encoder",
]

ENCODER_KEYS = ("target_encoder", "encoder")  # the paper evaluates the target (EMA) encoder

# Official predictor name -> ours. Only prefixes differ; everything after them (``.0.attn.qkv.weight``) is shared.
_PREDICTOR_RENAMES = {
    "predictor_embed.": "embed.",
    "predictor_blocks.": "blocks.",
    "predictor_norm.": "norm.",
    "predictor_proj.": "proj.",
}
_POS_EMBED_KEY = {"encoder": "pos_embed", "predictor": "predictor_pos_embed"}

# Width -> heads, from our presets; width alone identifies the official model family.
_HEADS_BY_WIDTH = {preset["embed_dim"]: preset["num_heads"] for preset in VIT_PRESETS.values()}


# ----------------------------------------------------------------------------------------------- reading
def read_official_checkpoint(path: str | os.PathLike) -> dict:
    """``torch.load`` an official I-JEPA training checkpoint onto the CPU.

    Security: this uses ``weights_only=False``, which runs Python's unpickler, and unpickling can execute
    arbitrary code. We need it because the official files are whole training states, not bare tensors (they
    also pickle the optimiser and AMP-scaler states and Python numbers; PyTorch's safe ``weights_only``
    loader may refuse such a file depending on how it was written). Only load files you trust, e.g. the
    ones downloaded from the links in the official README.

    ``map_location="cpu"`` because the files were saved from GPUs; a CPU-only machine could not otherwise
    open them, and the caller decides where the model goes afterwards.
    """
    return torch.load(path, map_location="cpu", weights_only=False)


def _strip_module(state: dict) -> dict:
    """Remove the ``module.`` prefix that ``DistributedDataParallel`` adds to every key (if present)."""
    return {key.removeprefix("module."): value for key, value in state.items()}


def _open(path_or_dict: str | os.PathLike | dict) -> tuple[dict, str]:
    """The checkpoint dict and a name for it in error messages (the file path, or 'the given dict')."""
    if isinstance(path_or_dict, dict):
        return path_or_dict, "the given checkpoint dict"
    return read_official_checkpoint(path_or_dict), f"'{os.fspath(path_or_dict)}'"


def _select(checkpoint: dict, which: str, source: str) -> dict:
    """One model's state dict from a full checkpoint."""
    if which not in checkpoint:
        found = sorted(str(k) for k in checkpoint)[:12]
        raise ValueError(f"{source} has no {which!r} entry; its top-level keys are {found}. "
                       "Is it an official I-JEPA training checkpoint?")
    return checkpoint[which]


# -------------------------------------------------------------------------------------------- converting
def _check_sincos(table: torch.Tensor, key: str) -> None:
    """Raise unless a saved (1, N, D) position table is the fixed sin-cos table of a square grid.

    The tolerance follows the saved dtype (a half-precision copy of the table is still the same table),
    but a learned or interpolated table differs by far more than rounding.
    """
    if table.dim() != 3 or table.shape[0] != 1:
        raise ValueError(f"{key} should have shape (1, N, D), got {tuple(table.shape)}")
    n, dim = table.shape[1:]
    side = round(n ** 0.5)
    if side * side != n:
        raise ValueError(f"{key} has {n} positions, not a square grid; official I-JEPA grids are square")
    expected = sincos_2d(dim, side)[None]  # (1, N, D), the table our models recompute
    atol = max(1e-5, 4 * torch.finfo(table.dtype).eps) if table.is_floating_point() else 1e-5
    worst = (table.float() - expected).abs().max().item()
    if worst > atol:
        raise ValueError(
            f"{key} is not the fixed 2-D sin-cos table of a {side}x{side} grid (max difference {worst:.3g} > "
            f"{atol:.3g}). Our models recompute that table instead of loading it, so this checkpoint "
            "(learned or interpolated positions?) cannot be loaded faithfully."
        )


def convert_official_state_dict(state: dict, kind: str) -> dict:
    """Rename an official encoder or predictor state dict into ours.

    kind="encoder" (for either the context or the target encoder) or "predictor". Strips ``module.``,
    renames ``predictor_*`` layers, and checks then drops the saved sin-cos position table. Keys it does
    not know are passed through unchanged, so that loading with ``strict=True`` reports them.
    """
    if kind not in _POS_EMBED_KEY:
        raise ValueError(f"kind must be 'encoder' or 'predictor', got {kind!r}")
    state = _strip_module(state)
    pos_key = _POS_EMBED_KEY[kind]
    converted = {}
    for key, value in state.items():
        if key == pos_key:
            _check_sincos(value, key)
            continue  # ours is recomputed, not loaded
        if kind == "predictor":
            for theirs, ours in _PREDICTOR_RENAMES.items():
                if key.startswith(theirs):
                    key = ours + key.removeprefix(theirs)
                    break
        converted[key] = value
    return converted


# ------------------------------------------------------------------------------------ reading the shapes
def _num_blocks(state: dict, prefix: str) -> int:
    """How many Transformer blocks: one more than the largest i among keys ``{prefix}i.<...>``."""
    pattern = re.compile(re.escape(prefix) + r"(\d+)\.")
    indices = {int(m.group(1)) for key in state if (m := pattern.match(key))}
    if not indices:
        raise ValueError(f"no '{prefix}i...' keys found; is this an I-JEPA state dict?")
    return max(indices) + 1


def _heads_for_width(width: int, num_heads: int | None, what: str) -> int:
    if num_heads is not None:
        return num_heads
    if width not in _HEADS_BY_WIDTH:
        raise ValueError(
            f"{what} width {width} matches no preset ({sorted(_HEADS_BY_WIDTH)}), so the number of attention "
            "heads is unknown: pass num_heads=..."
        )
    return _HEADS_BY_WIDTH[width]


def infer_vit_config(state: dict, num_heads: int | None = None) -> ViTConfig:
    """The :class:`ViTConfig` of an official encoder state dict (with or without ``module.``), from shapes.

    - patch size, input channels, width: the patch embedding's conv kernel (D, C, P, P);
    - depth: the number of ``blocks.i``;
    - grid, hence image size: the saved ``pos_embed`` (1, N, D), with a square grid of side sqrt(N);
    - MLP ratio: ``blocks.0.mlp.fc1.weight`` (hidden, D), hidden / D (6144 / 1408 for ViT-g);
    - qkv bias: whether ``blocks.0.attn.qkv.bias`` exists;
    - ViT-22B options (never in official checkpoints, possible in minijepa's own): ``qk_norm`` if
      ``blocks.0.attn.q_norm.weight`` exists, ``parallel_blocks`` if ``blocks.0.norm2.weight`` does not,
      ``norm_bias`` if ``blocks.0.norm1.bias`` exists;
    - heads: not visible in any shape; taken from the preset of that width unless ``num_heads`` is given;
    - LayerNorm eps 1e-6, as in every official factory (``partial(nn.LayerNorm, eps=1e-6)``).
    """
    state = _strip_module(state)
    for key in ("patch_embed.proj.weight", "pos_embed", "blocks.0.mlp.fc1.weight"):
        if key not in state:
            raise ValueError(f"cannot infer the ViT architecture: no {key!r} in the state dict")
    width, in_chans, patch_h, patch_w = state["patch_embed.proj.weight"].shape
    if patch_h != patch_w:
        raise ValueError(f"non-square patches {patch_h}x{patch_w} are not supported")
    n = state["pos_embed"].shape[1]
    side = round(n ** 0.5)
    if side * side != n:
        raise ValueError(f"pos_embed has {n} positions, not a square grid")
    hidden = state["blocks.0.mlp.fc1.weight"].shape[0]
    has_norms = "blocks.0.norm1.weight" in state  # the options below are read from the block norms' keys
    return ViTConfig(
        image_size=side * patch_h,
        patch_size=patch_h,
        in_chans=in_chans,
        embed_dim=width,
        depth=_num_blocks(state, "blocks."),
        num_heads=_heads_for_width(width, num_heads, "encoder"),
        mlp_ratio=hidden / width,  # Block rounds width * ratio back to exactly `hidden`
        qkv_bias="blocks.0.attn.qkv.bias" in state,
        qk_norm="blocks.0.attn.q_norm.weight" in state,
        parallel_blocks=has_norms and "blocks.0.norm2.weight" not in state,
        norm_bias=not has_norms or "blocks.0.norm1.bias" in state,
        drop_path_rate=0.0,  # only matters for training
        norm_eps=1e-6,
    )


# --------------------------------------------------------------------------------------------- loading
def _load_strict(model: nn.Module, state: dict, source: str, what: str) -> None:
    """``load_state_dict(strict=True)``, with an error that names the keys, the model part and the file."""
    expected, given = set(model.state_dict()), set(state)
    missing, unexpected = sorted(expected - given), sorted(given - expected)
    if missing or unexpected:
        raise RuntimeError(
            f"cannot load the {what} from {source}: missing keys {missing}, unexpected keys {unexpected} "
            "(names after removing 'module.' and renaming to minijepa's names)"
        )
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:  # same names, different shapes
        raise RuntimeError(f"cannot load the {what} from {source}: {err}") from err


def load_official_checkpoint(
    path_or_dict: str | os.PathLike | dict, which: str = "target_encoder", num_heads: int | None = None
) -> VisionTransformer:
    """Our :class:`VisionTransformer` with the weights of an official I-JEPA encoder, in eval mode.

    ``path_or_dict``: a ``.pth.tar`` file, or a checkpoint already read with :func:`read_official_checkpoint`
    (reading a ViT-H file takes a while; read it once to also load the predictor). ``which``:
    ``"target_encoder"`` (the EMA encoder, the one the paper evaluates) or ``"encoder"`` (the context
    encoder). ``num_heads`` overrides the head count taken from the width's preset. See
    :func:`read_official_checkpoint` about trusting the file.
    """
    if which not in ENCODER_KEYS:
        raise ValueError(f"which must be one of {ENCODER_KEYS}, got {which!r}")
    checkpoint, source = _open(path_or_dict)
    official = _select(checkpoint, which, source)
    config = infer_vit_config(official, num_heads=num_heads)
    state = convert_official_state_dict(official, "encoder")
    model = VisionTransformer(config)
    _load_strict(model, state, source, which)
    return model.eval()


def load_official_predictor(
    path_or_dict: str | os.PathLike | dict, encoder_config: ViTConfig | VisionTransformer, num_heads: int | None = None
) -> Predictor:
    """Our :class:`Predictor` with the weights of an official I-JEPA predictor, in eval mode.

    The predictor works on the encoder's grid and width, so it needs the encoder's config (or the encoder
    itself). Its own width, depth, MLP ratio and output width come from shapes. Heads: the official
    ``init_model`` gives the predictor the *encoder's* head count (16 for ViT-H, with width 384 that is 24
    per head), so that is the default; ``num_heads`` overrides it.
    """
    config = getattr(encoder_config, "config", encoder_config)
    checkpoint, source = _open(path_or_dict)
    official = _strip_module(_select(checkpoint, "predictor", source))
    if "predictor_embed.weight" not in official or "predictor_pos_embed" not in official:
        raise ValueError(f"the predictor in {source} has no predictor_embed.weight / predictor_pos_embed")
    predictor_dim, embed_dim = official["predictor_embed.weight"].shape
    if embed_dim != config.embed_dim:
        raise ValueError(f"the predictor in {source} reads width {embed_dim}, the encoder config has {config.embed_dim}")
    n = official["predictor_pos_embed"].shape[1]
    if n != config.grid[0] * config.grid[1]:
        raise ValueError(f"the predictor in {source} has {n} positions, the encoder grid {config.grid} has "
                         f"{config.grid[0] * config.grid[1]}")
    hidden = official["predictor_blocks.0.mlp.fc1.weight"].shape[0]
    predictor = Predictor(
        grid=config.grid,
        embed_dim=embed_dim,
        predictor_dim=predictor_dim,
        depth=_num_blocks(official, "predictor_blocks."),
        num_heads=num_heads if num_heads is not None else config.num_heads,
        mlp_ratio=hidden / predictor_dim,
        qkv_bias="predictor_blocks.0.attn.qkv.bias" in official,
        norm_eps=1e-6,  # official vit_predictor: partial(nn.LayerNorm, eps=1e-6)
        out_dim=official["predictor_proj.weight"].shape[0],
    )
    _load_strict(predictor, convert_official_state_dict(official, "predictor"), source, "predictor")
    return predictor.eval()


# ------------------------------------------------------------------------------------ compact encoder files
def save_encoder(encoder: VisionTransformer, path: str | os.PathLike, dtype: torch.dtype = torch.float16,
                 **meta) -> None:
    """Write one encoder as a small self-describing file: its ViTConfig, its weights (in ``dtype``), ``meta``.

    The course ships its default run's target encoder this way (half precision: 5 MB instead of the
    checkpoint's 60), so that the later notebooks can show a trained model without training one first.
    Written to a temporary file, then renamed.
    """
    config = dataclasses.asdict(encoder.config)
    state = {k: v.to(dtype) if v.is_floating_point() else v for k, v in encoder.state_dict().items()}
    tmp = os.fspath(path) + ".tmp"
    torch.save({"format": "minijepa-encoder-v1", "vit_config": config, "state_dict": state, "meta": meta}, tmp)
    os.replace(tmp, path)


def load_encoder(path: str | os.PathLike) -> tuple[VisionTransformer, dict]:
    """Read a file written by :func:`save_encoder`: (the encoder in float32 and eval mode, its ``meta``)."""
    blob = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(blob, dict) or blob.get("format") != "minijepa-encoder-v1":
        raise ValueError(f"{path} is not an encoder file written by minijepa.pretrained.save_encoder")
    config = dict(blob["vit_config"])
    config["image_size"] = tuple(config["image_size"])
    model = VisionTransformer(ViTConfig(**config))
    state = {k: v.float() if v.is_floating_point() else v for k, v in blob["state_dict"].items()}
    _load_strict(model, state, os.fspath(path), "encoder")
    return model.eval(), blob["meta"]
