"""Typed run configuration: dataclasses loaded from YAML, with errors that name the bad key.

A run is described by one YAML file under ``configs/`` with five sections (model, masks, data, optim, run),
optionally changed from the command line with ``--set section.key=value``. The resolved configuration is
saved into the run folder and into every checkpoint, so a run can always be reproduced.
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .errors import UserError

__all__ = [
    "ModelConfig",
    "MaskConfig",
    "DataConfig",
    "OptimConfig",
    "RunConfig",
    "Config",
    "load_config",
    "apply_overrides",
    "config_to_dict",
    "config_from_dict",
    "validate",
    "CHOICES",
]

# The allowed values of every string option (the modules that implement them check the same names; a test
# keeps the two in step).
CHOICES = {
    "model.encoder": ("tiny", "small", "base", "large", "huge", "giant"),
    "model.patch_init": ("xavier", "trunc_normal"),
    "model.pos_embed": ("sincos", "learned"),
    "model.loss": ("l2", "smooth_l1"),
    "model.target": ("representation", "pixels"),
    "masks.strategy": ("multiblock", "random", "block", "rasterized"),
    "masks.mode": ("unbiased", "reference"),
    "data.dataset": ("shapes", "imagefolder", "cifar10", "stl10"),
    "data.eval_task": ("shape", "count", "position", "size"),
    "run.precision": ("auto", "fp32", "bf16"),
}
_DEVICE = re.compile(r"auto|cpu|cuda(:\d+)?")


@dataclass
class ModelConfig:
    encoder: str = "tiny"  # ViT preset: tiny, small, base, large, huge, giant
    image_size: int = 64
    patch_size: int = 8
    depth: int | None = None  # None: the preset's value
    embed_dim: int | None = None
    num_heads: int | None = None
    drop_path_rate: float = 0.0
    patch_init: str = "xavier"  # xavier (as MAE) or trunc_normal (as the official code); see vit.ViTConfig
    pos_embed: str = "sincos"  # sincos (I-JEPA) or learned
    qk_norm: bool = False  # ViT-22B's stability options (vit.ViTConfig)
    parallel_blocks: bool = False
    qkv_bias: bool = True
    norm_bias: bool = True
    predictor_dim: int = 96
    predictor_depth: int = 4
    predictor_heads: int | None = None  # None: the encoder's number of heads
    loss: str = "l2"  # l2 (paper) or smooth_l1 (official code)
    target: str = "representation"  # representation (I-JEPA) or pixels (generative baseline)
    vc_weight: float = 0.0  # extension, off in I-JEPA: VICReg variance/covariance on context embeddings (losses.py)
    sigreg_weight: float = 0.0  # extension, off in I-JEPA: LeJEPA's SIGReg on context embeddings (losses.py)
    sigreg_directions: int = 64  # random directions SIGReg tests per step


@dataclass
class MaskConfig:
    strategy: str = "multiblock"  # multiblock, random, block, rasterized
    mode: str = "unbiased"  # multiblock only: unbiased, or reference (the official collator's behaviour)
    num_targets: int = 4
    target_scale: tuple[float, float] = (0.15, 0.2)
    target_aspect_ratio: tuple[float, float] = (0.75, 1.5)
    context_scale: tuple[float, float] = (0.85, 1.0)
    min_keep: int = 10
    allow_overlap: bool = False
    random_ratio: float = 0.6  # random strategy: fraction of patches that are targets
    block_scale: float = 0.6  # block strategy: area of the single target block


@dataclass
class DataConfig:
    dataset: str = "shapes"  # shapes (embedded), imagefolder, cifar10, stl10
    root: str | None = None  # folder of the real dataset
    num_images: int = 4096  # shapes only: size of the training set
    num_eval_images: int = 1024  # shapes only: size of the evaluation set
    crop_scale: tuple[float, float] = (0.3, 1.0)
    num_workers: int = 0
    eval_task: str = "shape"  # label used for the final probe on the shapes dataset (all are reported)


@dataclass
class OptimConfig:
    batch_size: int = 64  # global batch, split evenly across processes
    epochs: int = 10
    max_steps: int | None = None  # stop early (for tests and smoke runs); schedules still span all epochs
    warmup_epochs: float = 1.0
    lr_start: float = 2e-4
    lr: float = 1e-3  # peak learning rate after warm-up
    lr_final: float = 1e-6
    weight_decay: tuple[float, float] = (0.04, 0.4)  # cosine from first to second
    ema: tuple[float, float] = (0.996, 1.0)  # EMA momentum, linear from first to second
    betas: tuple[float, float] = (0.9, 0.999)
    grad_clip: float | None = None


@dataclass
class RunConfig:
    seed: int = 0
    device: str = "auto"  # auto, cpu, cuda, cuda:N
    precision: str = "auto"  # auto (bf16 on GPU, fp32 on CPU), fp32, bf16
    compile: bool = False  # torch.compile the encoder and predictor
    deterministic: bool = False
    threads: int | None = None  # CPU threads per process (None: torch's default)
    log_every: int = 10
    checkpoint_every: int = 100  # steps
    evaluate: bool = True  # linear probe / k-NN report at the end
    probe_every: int = 0  # steps between quick probes of both encoders (probe curves in metrics.jsonl); 0: off
    ceiling: str | None = None  # JSON of `python -m minijepa.supervised` shown by the report when its config matches
    tensorboard: bool = False
    collapse_std: float = 0.1  # warn when the spread of target tokens (evaluate.feature_std, 1 = healthy) falls below


@dataclass
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    masks: MaskConfig = field(default_factory=MaskConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    run: RunConfig = field(default_factory=RunConfig)


def _convert(value, hint, where: str):
    """Check ``value`` against the type ``hint`` (converting lists to tuples and ints to floats)."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _convert(value, option, where)
            except UserError as e:
                errors.append(str(e))
        raise UserError(errors[0] if errors else f"{where}: bad value {value!r}")
    if origin is tuple:
        args = typing.get_args(hint)
        if not isinstance(value, (list, tuple)) or len(value) != len(args):
            raise UserError(f"{where}: expected a list of {len(args)} values, got {value!r}")
        return tuple(_convert(v, a, f"{where}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
    if hint is bool:
        if not isinstance(value, bool):
            raise UserError(f"{where}: expected true/false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise UserError(f"{where}: expected an integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, str):  # YAML 1.1 reads "3e-4" (no dot) as a string; accept it as a number
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise UserError(f"{where}: expected a number, got {value!r}")
        if not math.isfinite(value):
            raise UserError(f"{where}: expected a finite number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise UserError(f"{where}: expected a string, got {value!r}")
        return value
    raise TypeError(f"{where}: unsupported type {hint}")


def _from_dict(cls, data: dict, where: str):
    if not isinstance(data, dict):
        raise UserError(f"{where or 'config'}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise UserError(f"unknown config key {where + '.' if where else ''}{unknown[0]}; valid keys: {sorted(names)}")
    kwargs = {}
    for name, value in data.items():
        key = f"{where}.{name}" if where else name
        hint = hints[name]
        if dataclasses.is_dataclass(hint):
            kwargs[name] = _from_dict(hint, value or {}, key)
        else:
            kwargs[name] = _convert(value, hint, key)
    return cls(**kwargs)


def config_from_dict(data: dict) -> Config:
    """A checked :class:`Config`: types (:func:`_from_dict`), then ranges and consistency (:func:`validate`)."""
    return validate(_from_dict(Config, data or {}, ""))


def _check(ok: bool, key: str, value, expected: str) -> None:
    if not ok:
        raise UserError(f"{key}={value!r}: {expected}")


def _at_least(key: str, value, low, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    _check(value is not None and value >= low, key, value, f"must be >= {low}" + (" (or null)" if allow_none else ""))


def _interval(key: str, pair, low: float, high: float, low_open: bool = True) -> None:
    """A [first, second] range with low < first <= second <= high (or low <= first)."""
    a, b = pair
    inside = (low < a if low_open else low <= a) and a <= b <= high
    _check(inside, key, list(pair), f"expected [a, b] with {low} {'<' if low_open else '<='} a <= b <= {high}")


def validate(cfg: Config) -> Config:
    """Check every value's range and the sections' consistency; raise :class:`UserError` naming key and value.

    Runs wherever a config is made (YAML, ``--set``, a checkpoint's saved config), so a bad value stops a
    command before anything is built, trained or written.
    """
    for key, options in CHOICES.items():
        section, name = key.split(".")
        value = getattr(getattr(cfg, section), name)
        _check(value in options, key, value, f"choose one of {list(options)}")
    m, k, d, o, r = cfg.model, cfg.masks, cfg.data, cfg.optim, cfg.run
    _at_least("model.image_size", m.image_size, 1)
    _at_least("model.patch_size", m.patch_size, 1)
    _check(m.image_size % m.patch_size == 0, "model.image_size", m.image_size,
           f"must be a multiple of model.patch_size={m.patch_size}")
    for name in ("depth", "embed_dim", "num_heads"):
        _at_least(f"model.{name}", getattr(m, name), 1, allow_none=True)
    from .vit import VIT_PRESETS  # the preset fills in width and heads that the config leaves at null

    width = m.embed_dim if m.embed_dim is not None else VIT_PRESETS[m.encoder]["embed_dim"]
    heads = m.num_heads if m.num_heads is not None else VIT_PRESETS[m.encoder]["num_heads"]
    _check(width % heads == 0, "model.embed_dim", width, f"must be a multiple of the {heads} attention heads "
           f"(model.num_heads={m.num_heads}, preset {m.encoder})")
    _check(0 <= m.drop_path_rate < 1, "model.drop_path_rate", m.drop_path_rate, "must be in [0, 1)")
    _at_least("model.predictor_dim", m.predictor_dim, 1)
    _at_least("model.predictor_depth", m.predictor_depth, 1)
    _at_least("model.predictor_heads", m.predictor_heads, 1, allow_none=True)
    predictor_heads = m.predictor_heads if m.predictor_heads is not None else heads
    _check(m.predictor_dim % predictor_heads == 0, "model.predictor_dim", m.predictor_dim,
           f"must be a multiple of the predictor's {predictor_heads} attention heads (model.predictor_heads="
           f"{m.predictor_heads}; null: the encoder's)")
    _at_least("model.vc_weight", m.vc_weight, 0)
    _at_least("model.sigreg_weight", m.sigreg_weight, 0)
    _at_least("model.sigreg_directions", m.sigreg_directions, 1)

    patches = (m.image_size // m.patch_size) ** 2
    _at_least("masks.num_targets", k.num_targets, 1)
    _interval("masks.target_scale", k.target_scale, 0, 1)
    _interval("masks.target_aspect_ratio", k.target_aspect_ratio, 0, math.inf)
    _interval("masks.context_scale", k.context_scale, 0, 1)
    _at_least("masks.min_keep", k.min_keep, 1)
    _check(k.min_keep <= patches, "masks.min_keep", k.min_keep,
           f"must be at most the {patches} patches of model.image_size={m.image_size} / model.patch_size={m.patch_size}")
    _check(0 < k.random_ratio < 1, "masks.random_ratio", k.random_ratio, "must be in (0, 1)")
    _check(0 < k.block_scale < 1, "masks.block_scale", k.block_scale, "must be in (0, 1)")

    if d.dataset != "shapes":
        _check(d.root is not None and d.root != "", "data.root", d.root, f"data.dataset={d.dataset} needs the folder that holds it")
    _at_least("data.num_images", d.num_images, 1)
    _at_least("data.num_eval_images", d.num_eval_images, 1)
    _interval("data.crop_scale", d.crop_scale, 0, 1)
    _at_least("data.num_workers", d.num_workers, 0)

    _at_least("optim.batch_size", o.batch_size, 1)
    if d.dataset == "shapes":
        _check(o.batch_size <= d.num_images, "optim.batch_size", o.batch_size,
               f"must be at most data.num_images={d.num_images} (one step needs one full batch)")
    _at_least("optim.epochs", o.epochs, 1)
    _at_least("optim.max_steps", o.max_steps, 1, allow_none=True)
    _check(0 <= o.warmup_epochs <= o.epochs, "optim.warmup_epochs", o.warmup_epochs,
           f"must be between 0 and optim.epochs={o.epochs}")
    _at_least("optim.lr_start", o.lr_start, 0)
    _check(o.lr > 0, "optim.lr", o.lr, "must be > 0 (the peak learning rate)")
    _at_least("optim.lr_final", o.lr_final, 0)
    _check(all(w >= 0 for w in o.weight_decay), "optim.weight_decay", list(o.weight_decay), "both values must be >= 0")
    _check(all(0 <= e <= 1 for e in o.ema), "optim.ema", list(o.ema), "both momenta must be in [0, 1]")
    _check(all(0 <= b < 1 for b in o.betas), "optim.betas", list(o.betas), "both values must be in [0, 1)")
    if o.grad_clip is not None:
        _check(o.grad_clip > 0, "optim.grad_clip", o.grad_clip, "must be > 0 (or null: no clipping)")

    _at_least("run.seed", r.seed, 0)
    _check(bool(_DEVICE.fullmatch(r.device)), "run.device", r.device, "use auto, cpu, cuda or cuda:N")
    _at_least("run.threads", r.threads, 1, allow_none=True)
    _at_least("run.log_every", r.log_every, 1)
    _at_least("run.checkpoint_every", r.checkpoint_every, 1)
    _at_least("run.probe_every", r.probe_every, 0)
    _at_least("run.collapse_std", r.collapse_std, 0)
    return cfg


def config_to_dict(config: Config) -> dict:
    """Plain dict (tuples as lists) suitable for YAML / JSON / checkpoints."""

    def plain(x):
        if isinstance(x, dict):
            return {k: plain(v) for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            return [plain(v) for v in x]
        return x

    return plain(dataclasses.asdict(config))


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    """Apply ``section.key=value`` strings (values parsed as YAML: 3, 1e-3, true, [0.1, 0.2], null)."""
    data = {k: dict(v) if isinstance(v, dict) else v for k, v in (data or {}).items()}
    for item in overrides:
        if "=" not in item:
            raise UserError(f"--set expects section.key=value, got {item!r}")
        key, raw = item.split("=", 1)
        parts = key.strip().split(".")
        if len(parts) != 2:
            raise UserError(f"--set key must look like section.key, got {key!r}")
        section, name = parts
        data.setdefault(section, {})
        if not isinstance(data[section], dict):
            raise UserError(f"config section {section!r} is not a mapping")
        try:
            data[section][name] = yaml.safe_load(raw)
        except yaml.YAMLError as e:
            raise UserError(f"--set {item}: the value is not valid YAML ({getattr(e, 'problem', None) or e})") from None
    return data


def load_config(path: str | Path | None, overrides: list[str] | None = None) -> Config:
    """Read a YAML config (or the defaults when ``path`` is None), apply overrides, check every key."""
    data = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"config file not found: {path}")
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as e:
            where = getattr(e, "problem_mark", None)
            at = f" (line {where.line + 1}, column {where.column + 1})" if where is not None else ""
            raise UserError(f"config file {path} is not valid YAML{at}: {getattr(e, 'problem', None) or e}") from None
        except UnicodeDecodeError as e:
            raise UserError(f"config file {path} is not UTF-8 text: {e}") from None
        if not isinstance(data, dict):
            raise UserError(f"config file {path}: expected a mapping of sections (model, masks, data, optim, run), "
                            f"got a {type(data).__name__}")
    return config_from_dict(apply_overrides(data, overrides or []))
