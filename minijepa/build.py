"""From a config to models, and from a run folder back to a trained model.

Both the pretraining script and the evaluation need to build the same encoder, predictor and mask sampler
from a :class:`~minijepa.config.Config`, and to load what a run wrote. That lives here, below both, so
that the arrows between modules point one way: ``train`` and ``evaluate`` import ``build``, never each
other.
"""

from __future__ import annotations

from pathlib import Path

import torch

from .config import Config, config_from_dict
from .errors import UserError
from .ijepa import IJEPA
from .masks import BlockMasks, MultiBlockMasks, RandomMasks, RasterizedMasks
from .predictor import Predictor
from .vit import VisionTransformer, vit_config

__all__ = ["build_encoder", "build_model", "build_mask_sampler", "load_trained_model"]


def build_encoder(cfg: Config) -> VisionTransformer:
    """The ViT described by ``cfg.model`` (fresh random weights from the global torch RNG)."""
    m = cfg.model
    overrides = {k: getattr(m, k) for k in ("depth", "embed_dim", "num_heads") if getattr(m, k) is not None}
    options = {k: getattr(m, k) for k in ("patch_init", "pos_embed", "qk_norm", "parallel_blocks", "qkv_bias", "norm_bias")}
    return VisionTransformer(
        vit_config(m.encoder, image_size=m.image_size, patch_size=m.patch_size, drop_path_rate=m.drop_path_rate,
                   **options, **overrides)
    )


def build_model(cfg: Config) -> IJEPA:
    """Context encoder, predictor and the EMA target encoder described by ``cfg.model``."""
    encoder = build_encoder(cfg)
    m = cfg.model
    out_dim = IJEPA.pixel_dim(encoder) if m.target == "pixels" else None
    predictor = Predictor(
        encoder.grid,
        encoder.embed_dim,
        predictor_dim=m.predictor_dim,
        depth=m.predictor_depth,
        num_heads=m.predictor_heads or encoder.config.num_heads,
        drop_path_rate=m.drop_path_rate,
        out_dim=out_dim,
    )
    return IJEPA(encoder, predictor, loss=m.loss, target=m.target, vc_weight=m.vc_weight, sigreg_weight=m.sigreg_weight,
                 sigreg_directions=m.sigreg_directions)  # fmt: skip


def build_mask_sampler(cfg: Config, grid: tuple[int, int]):
    """The masking strategy of ``cfg.masks`` on a ``grid`` of patches."""
    k = cfg.masks
    if k.strategy == "multiblock":
        return MultiBlockMasks(
            grid,
            num_targets=k.num_targets,
            target_scale=k.target_scale,
            target_aspect_ratio=k.target_aspect_ratio,
            context_scale=k.context_scale,
            min_keep=k.min_keep,
            allow_overlap=k.allow_overlap,
            mode=k.mode,
        )
    if k.strategy == "random":
        return RandomMasks(grid, target_ratio=k.random_ratio)
    if k.strategy == "block":
        return BlockMasks(grid, target_scale=k.block_scale)
    if k.strategy == "rasterized":
        return RasterizedMasks(grid)
    raise ValueError(f"masks.strategy={k.strategy!r}; choose one of multiblock, random, block, rasterized")


def read_checkpoint(path: str | Path) -> dict:
    """The raw dict of a checkpoint written by ``minijepa.train``; a user error for a broken or foreign file.

    The file is only read: a truncated checkpoint stays where it is for the user to inspect or move.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # torch raises several types for a truncated or non-torch file
        first_line = (str(e).splitlines() or [""])[0][:200]
        raise UserError(f"cannot read checkpoint {path} ({type(e).__name__}: {first_line}); the file is left as it "
                        f"is: move it away, or train with --no-resume, to start over") from None
    if not isinstance(state, dict) or not {"model", "optimizer", "step", "config"} <= set(state):
        raise UserError(f"{path} is not a minijepa training checkpoint (expected the keys model, optimizer, step and "
                        f"config of python -m minijepa.train; for the official I-JEPA files use minijepa.pretrained)")
    return state


def load_trained_model(path: str | Path) -> tuple[IJEPA, Config, dict]:
    """(the I-JEPA model in eval mode, its config, the raw checkpoint) from a checkpoint the script wrote."""
    state = read_checkpoint(path)
    cfg = config_from_dict(state["config"])
    ijepa = build_model(cfg)
    try:
        ijepa.load_state_dict(state["model"])
    except RuntimeError as e:
        raise UserError(f"checkpoint {path} does not fit the model its config describes: {e}") from None
    return ijepa.eval(), cfg, state
