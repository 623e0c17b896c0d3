"""Optimisation schedules of the I-JEPA recipe and the AdamW parameter groups they act on.

- learning rate: linear warm-up from ``start`` to ``peak``, then a cosine decay to ``final``
  (paper: 2e-4 -> 1e-3 over 40 epochs, then -> 1e-6);
- weight decay: a cosine *increase* from 0.04 to 0.4, applied to weight matrices only (biases, norms and
  the mask token and learned position embeddings are not decayed: shrinking them towards zero has no
  regularising meaning).
Schedules are plain functions of the step, so resuming a run only needs the step number.
"""

from __future__ import annotations

import math

import torch.nn as nn

__all__ = ["warmup_cosine", "cosine", "param_groups", "set_hyperparameters"]


def _check_step(step: int, total_steps: int) -> None:
    if total_steps <= 0:
        raise ValueError(f"total_steps must be positive, got {total_steps}")
    if step < 0:
        raise ValueError(f"step must be >= 0, got {step}")


def cosine(step: int, total_steps: int, start: float, final: float) -> float:
    """Half a cosine from ``start`` (step 0) to ``final`` (step ``total_steps`` and after)."""
    _check_step(step, total_steps)
    progress = min(step / total_steps, 1.0)
    return final + (start - final) * 0.5 * (1.0 + math.cos(math.pi * progress))


def warmup_cosine(
    step: int, total_steps: int, warmup_steps: int, start: float, peak: float, final: float
) -> float:
    """Linear warm-up ``start -> peak`` over ``warmup_steps``, then cosine ``peak -> final`` by ``total_steps``."""
    _check_step(step, total_steps)
    if not 0 <= warmup_steps <= total_steps:
        raise ValueError(f"warmup_steps={warmup_steps} must be between 0 and total_steps={total_steps}")
    if step < warmup_steps:
        return start + (peak - start) * step / warmup_steps
    if warmup_steps == total_steps:
        return peak
    return cosine(step - warmup_steps, total_steps - warmup_steps, peak, final)


def param_groups(*modules: nn.Module) -> list[dict]:
    """Two AdamW groups: weights that are decayed, and biases / norms / tokens / positions that are not."""
    decay, no_decay = [], []
    for module in modules:
        for name, p in module.named_parameters():
            if not p.requires_grad:
                continue
            skip = p.ndim <= 1 or name.endswith(".bias") or "token" in name or name.split(".")[-1] == "pos_embed"
            (no_decay if skip else decay).append(p)
    return [
        {"params": decay, "apply_weight_decay": True},
        {"params": no_decay, "apply_weight_decay": False, "weight_decay": 0.0},
    ]


def set_hyperparameters(optimizer, lr: float, weight_decay: float) -> None:
    """Write this step's learning rate into every group and weight decay into the decayed groups."""
    for group in optimizer.param_groups:
        group["lr"] = lr
        if group.get("apply_weight_decay", True):
            group["weight_decay"] = weight_decay
