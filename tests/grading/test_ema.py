"""Graded tests: exercises/ema.py (ema_update, momentum_schedule)."""

import copy

import pytest
import torch
import torch.nn as nn

from minijepa.ema import ema_update as ref_ema_update
from minijepa.ema import momentum_schedule as ref_momentum_schedule

from .harness import assert_close, assert_number, build, fail, number


def network(seed: int) -> nn.Module:
    """Linear + BatchNorm (float buffers and an integer counter) + Linear, with seeded random state."""
    net = build(lambda: nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3), nn.Linear(3, 2)), seed)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for t in list(net.parameters()) + [net[1].running_mean, net[1].running_var]:
            t.copy_(torch.rand(t.shape, generator=g) + 0.5)
        net[1].num_batches_tracked.fill_(seed)
    return net


def state(net: nn.Module) -> dict:
    return {k: v.detach().clone() for k, v in net.state_dict().items()}


def compare(net: nn.Module, expected: dict, what: str, counters: bool = True) -> None:
    for key, value in state(net).items():
        if key.endswith("num_batches_tracked"):
            if not counters:
                continue
            if int(value) != int(expected[key]):
                fail(f"{what}: {key} is {int(value)}, expected {int(expected[key])}")
        else:
            assert_close(value, expected[key], f"{what}: {key}", atol=1e-6)


@pytest.mark.exercise("ema", "ema_update")
class TestEmaUpdate:
    @pytest.mark.points(2)
    def test_matches_reference(self, fn):
        """parameters and float buffers move to m*t + (1-m)*o; integer buffers are copied"""
        target, online = network(1), network(2)
        expected = copy.deepcopy(target)
        ref_ema_update(expected, online, 0.9)
        fn(target, online, 0.9)
        compare(target, state(expected), "after ema_update(momentum=0.9)")

    @pytest.mark.points(1)
    def test_momentum_one_and_zero(self, fn):
        """momentum 1 keeps the target's parameters and float buffers, momentum 0 copies the online network"""
        target, online = network(3), network(4)
        before = state(target)
        fn(target, online, 1.0)
        compare(target, before, "after ema_update(momentum=1)", counters=False)
        fn(target, online, 0.0)
        compare(target, state(online), "after ema_update(momentum=0)")

    @pytest.mark.points(1)
    def test_in_place_and_returns_none(self, fn):
        """the target's tensors are updated in place (same objects and storage); returns None"""
        target, online = network(5), network(6)
        tensors = [(t, t.data_ptr()) for t in list(target.parameters()) + list(target.buffers())]
        result = fn(target, online, 0.5)
        if result is not None:
            fail(f"ema_update should return None, got {type(result).__name__}")
        after = list(target.parameters()) + list(target.buffers())
        if any(a is not t or a.data_ptr() != ptr for a, (t, ptr) in zip(after, tensors)):
            fail("the target's tensors were replaced instead of updated in place")
        assert_close(next(target.parameters()), 0.5 * next(network(5).parameters()) + 0.5 * next(online.parameters()), "the first weight")

    @pytest.mark.points(1)
    def test_online_unchanged(self, fn):
        """the online network is not modified"""
        target, online = network(7), network(8)
        before = state(online)
        fn(target, online, 0.7)
        compare(online, before, "the online network")

    @pytest.mark.points(1)
    def test_target_that_requires_grad(self, fn):
        """works when the target's parameters require grad, and builds no autograd graph"""
        target, online = network(9), network(10)
        expected = copy.deepcopy(target)
        ref_ema_update(expected, online, 0.8)
        target.requires_grad_(True)
        fn(target, online, 0.8)
        for name, p in target.named_parameters():
            if p.grad_fn is not None or not p.is_leaf:
                fail(f"{name} became part of an autograd graph: update it under torch.no_grad()")
        compare(target, state(expected), "after ema_update(momentum=0.8)")


@pytest.mark.exercise("ema", "momentum_schedule")
class TestMomentumSchedule:
    @pytest.mark.points(2)
    def test_linear_from_start_to_end(self, fn):
        """start at step 0, end at total_steps, linear in between (defaults 0.996 -> 1.0)"""
        for step in (0, 25, 50, 99, 100):
            assert_number(fn(step, 100), ref_momentum_schedule(step, 100), f"momentum_schedule({step}, 100)")
        for step in (0, 3, 10):
            expected = ref_momentum_schedule(step, 10, 0.9, 0.99)
            assert_number(fn(step, 10, 0.9, 0.99), expected, f"momentum_schedule({step}, 10, 0.9, 0.99)")

    @pytest.mark.points(1)
    def test_stays_at_end_after_training(self, fn):
        """steps after total_steps keep the final momentum; the result is a Python float"""
        value = fn(150, 100)
        if not isinstance(value, float):
            fail(f"momentum_schedule should return a Python float, got {type(value).__name__}")
        assert_number(value, 1.0, "momentum_schedule(150, 100)")
        assert_number(fn(1000, 10, 0.99, 0.999), 0.999, "momentum_schedule(1000, 10, 0.99, 0.999)")
        number(value)
