import math

import pytest
import torch
import torch.nn as nn

from minijepa.schedules import cosine, param_groups, set_hyperparameters, warmup_cosine


def test_warmup_cosine_paper_shape():
    total, warm = 300, 40
    lr = [warmup_cosine(s, total, warm, start=2e-4, peak=1e-3, final=1e-6) for s in range(total + 1)]
    assert lr[0] == pytest.approx(2e-4)
    assert lr[20] == pytest.approx(6e-4)  # linear in warm-up
    assert lr[warm] == pytest.approx(1e-3) and max(lr) == pytest.approx(1e-3)
    assert lr[total] == pytest.approx(1e-6)
    mid = warm + (total - warm) // 2
    assert lr[mid] == pytest.approx(1e-6 + (1e-3 - 1e-6) * 0.5, rel=1e-6)
    assert all(a >= b for a, b in zip(lr[warm:], lr[warm + 1:]))  # monotone decay after warm-up


def test_weight_decay_cosine_increase():
    wd = [cosine(s, 100, 0.04, 0.4) for s in range(101)]
    assert wd[0] == pytest.approx(0.04) and wd[100] == pytest.approx(0.4)
    assert wd[50] == pytest.approx(0.22)
    assert all(a <= b for a, b in zip(wd, wd[1:]))


def test_schedule_errors():
    with pytest.raises(ValueError, match="warmup_steps=20"):
        warmup_cosine(0, 10, 20, 0, 1, 0)
    with pytest.raises(ValueError, match="total_steps"):
        cosine(0, 0, 1, 0)


def test_param_groups_exclude_biases_and_norms():
    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(4, 4)
            self.norm = nn.LayerNorm(4)
            self.mask_token = nn.Parameter(torch.zeros(1, 1, 4))
            self.pos_embed = nn.Parameter(torch.zeros(1, 9, 4))  # learned positions

    groups = param_groups(M())
    decay = {id(p) for p in groups[0]["params"]}
    m = M()
    groups = param_groups(m)
    assert [p is m.lin.weight for p in groups[0]["params"]] == [True]
    assert len(groups[1]["params"]) == 5  # bias, norm weight, norm bias, mask token, positions
    opt = torch.optim.AdamW(groups, lr=1.0, weight_decay=0.1)
    set_hyperparameters(opt, lr=0.5, weight_decay=0.3)
    assert [g["lr"] for g in opt.param_groups] == [0.5, 0.5]
    assert [g["weight_decay"] for g in opt.param_groups] == [0.3, 0.0]
    assert math.isfinite(opt.param_groups[0]["lr"]) and decay
