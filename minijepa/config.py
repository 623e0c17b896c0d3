"""Typed run configuration: dataclasses loaded from YAML, with errors that name the bad key.

A run is described by one YAML file under ``configs/`` with five sections (model, masks, data, optim, run),
optionally changed from the command line with ``--set section.key=value``. The resolved configuration is
saved into the run folder and into every checkpoint, so a run can always be reproduced.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml

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
]


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
            except ValueError as e:
                errors.append(str(e))
        raise ValueError(errors[0] if errors else f"{where}: bad value {value!r}")
    if origin is tuple:
        args = typing.get_args(hint)
        if not isinstance(value, (list, tuple)) or len(value) != len(args):
            raise ValueError(f"{where}: expected a list of {len(args)} values, got {value!r}")
        return tuple(_convert(v, a, f"{where}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
    if hint is bool:
        if not isinstance(value, bool):
            raise ValueError(f"{where}: expected true/false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{where}: expected an integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, str):  # YAML 1.1 reads "3e-4" (no dot) as a string; accept it as a number
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ValueError(f"{where}: expected a string, got {value!r}")
        return value
    raise TypeError(f"{where}: unsupported type {hint}")


def _from_dict(cls, data: dict, where: str):
    if not isinstance(data, dict):
        raise ValueError(f"{where or 'config'}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ValueError(f"unknown config key {where + '.' if where else ''}{unknown[0]}; valid keys: {sorted(names)}")
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
    return _from_dict(Config, data or {}, "")


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
            raise ValueError(f"--set expects section.key=value, got {item!r}")
        key, raw = item.split("=", 1)
        parts = key.strip().split(".")
        if len(parts) != 2:
            raise ValueError(f"--set key must look like section.key, got {key!r}")
        section, name = parts
        data.setdefault(section, {})
        if not isinstance(data[section], dict):
            raise ValueError(f"config section {section!r} is not a mapping")
        data[section][name] = yaml.safe_load(raw)
    return data


def load_config(path: str | Path | None, overrides: list[str] | None = None) -> Config:
    """Read a YAML config (or the defaults when ``path`` is None), apply overrides, check every key."""
    data = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"config file not found: {path}")
        data = yaml.safe_load(path.read_text()) or {}
    return config_from_dict(apply_overrides(data, overrides or []))
