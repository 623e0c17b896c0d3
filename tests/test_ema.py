import pytest
import torch
import torch.nn as nn

from minijepa.ema import ema_update, make_target_encoder, momentum_schedule


def nets():
    torch.manual_seed(0)
    online = nn.Sequential(nn.Linear(4, 8), nn.LayerNorm(8), nn.Linear(8, 2))
    target = make_target_encoder(online)
    with torch.no_grad():
        for p in online.parameters():
            p.add_(torch.randn_like(p))
    return online, target


def test_target_is_frozen_copy():
    online = nn.Linear(3, 3)
    target = make_target_encoder(online)
    assert all(not p.requires_grad for p in target.parameters())
    assert all(torch.equal(a, b) for a, b in zip(online.parameters(), target.parameters()))
    assert target.weight.data_ptr() != online.weight.data_ptr()


def test_momentum_one_keeps_target_and_zero_copies_online():
    online, target = nets()
    before = [p.clone() for p in target.parameters()]
    ema_update(target, online, 1.0)
    assert all(torch.equal(a, b) for a, b in zip(before, target.parameters()))
    ema_update(target, online, 0.0)
    assert all(torch.equal(a, b) for a, b in zip(online.parameters(), target.parameters()))


def test_update_formula():
    online, target = nets()
    expected = [0.9 * t + 0.1 * o for t, o in zip(target.parameters(), online.parameters())]
    ema_update(target, online, 0.9)
    for e, t in zip(expected, target.parameters()):
        torch.testing.assert_close(t, e)


def test_buffers_follow():
    online, target = nn.BatchNorm1d(3), None
    online.running_mean.fill_(1.0)
    online.num_batches_tracked.fill_(7)
    target = make_target_encoder(nn.BatchNorm1d(3))
    ema_update(target, online, 0.5)
    torch.testing.assert_close(target.running_mean, torch.full((3,), 0.5))
    assert target.num_batches_tracked.item() == 7


def test_momentum_schedule_linear():
    assert momentum_schedule(0, 100) == pytest.approx(0.996)
    assert momentum_schedule(50, 100) == pytest.approx(0.998)
    assert momentum_schedule(100, 100) == pytest.approx(1.0)
    assert momentum_schedule(150, 100) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="momentum"):
        ema_update(nn.Linear(1, 1), nn.Linear(1, 1), 1.5)
