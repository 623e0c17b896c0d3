"""The target encoder: an exponential moving average (EMA) of the context encoder.

I-JEPA has no negative pairs and no reconstruction; what stops the trivial solution (every image mapped to
the same vector, which predicts itself perfectly) is an asymmetry: the targets come from a *slowly moving*
copy of the encoder that receives no gradients. After each optimiser step

    target <- m * target + (1 - m) * online,

with the momentum m rising linearly from 0.996 to 1.0 over training, so the target freezes at the end.
"""

from __future__ import annotations

import copy

import torch
import torch.nn as nn

__all__ = ["make_target_encoder", "ema_update", "momentum_schedule"]


def make_target_encoder(online: nn.Module) -> nn.Module:
    """A frozen copy of ``online``: same weights, ``requires_grad=False`` everywhere."""
    target = copy.deepcopy(online)
    target.requires_grad_(False)
    return target


@torch.no_grad()
def ema_update(target: nn.Module, online: nn.Module, momentum: float) -> None:
    """``target = momentum * target + (1 - momentum) * online`` for every parameter, in place.

    Floating-point buffers follow the same rule; other buffers (counters) are copied. ``torch._foreach_lerp_``
    updates all tensors in a few fused kernel calls instead of one Python iteration per parameter:
    lerp(t, o, w) = t + w * (o - t) = (1 - w) * t + w * o with w = 1 - momentum.
    """
    if not 0.0 <= momentum <= 1.0:
        raise ValueError(f"EMA momentum must be in [0, 1], got {momentum}")
    target_params = list(target.parameters())
    online_params = list(online.parameters())
    if len(target_params) != len(online_params):
        raise ValueError("target and online models have different numbers of parameters")
    if momentum == 1.0:
        return  # the target is frozen: nothing to do (and no rounding error)
    weight = 1.0 - momentum
    float_pairs = [(t, o) for t, o in zip(target_params, online_params) if t.is_floating_point()]
    float_pairs += [
        (t, o) for t, o in zip(target.buffers(), online.buffers()) if t.is_floating_point()
    ]
    if float_pairs:
        targets, onlines = zip(*float_pairs)
        torch._foreach_lerp_(list(targets), [o.detach() for o in onlines], weight)
    for t, o in zip(target.buffers(), online.buffers()):
        if not t.is_floating_point():
            t.copy_(o)


def momentum_schedule(step: int, total_steps: int, start: float = 0.996, end: float = 1.0) -> float:
    """Linear EMA momentum: ``start`` at step 0, ``end`` at ``total_steps`` (and after)."""
    if total_steps <= 0:
        raise ValueError(f"total_steps must be positive, got {total_steps}")
    progress = min(max(step / total_steps, 0.0), 1.0)
    return start + (end - start) * progress
