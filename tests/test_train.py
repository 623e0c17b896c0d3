"""The pretraining script: end-to-end run, exact resume after SIGKILL, DDP = single process, faults."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from minijepa import train as train_mod
from minijepa.config import config_from_dict
from minijepa.errors import UserError
from minijepa.masks import MaskBatch

ROOT = Path(__file__).resolve().parents[1]

TINY = [
    "model.encoder=tiny", "model.depth=2", "model.embed_dim=48", "model.num_heads=3",
    "model.image_size=48", "model.patch_size=8", "model.predictor_dim=24", "model.predictor_depth=2",
    "masks.min_keep=4", "data.num_images=128", "data.num_eval_images=64",
    "optim.batch_size=16", "optim.epochs=3", "run.log_every=2", "run.checkpoint_every=4", "run.threads=1",
    "run.device=cpu",
]


def tiny_config(*extra):
    from minijepa.config import apply_overrides

    return config_from_dict(apply_overrides({}, TINY + list(extra)))


def cli(out, *extra, module="minijepa.train"):
    sets = [a for kv in TINY + list(extra) for a in ("--set", kv)]
    return [sys.executable, "-m", module, "--config", str(ROOT / "configs" / "cpu_default.yaml"), "--out", str(out), *sets]


def final_weights(out):
    return torch.load(Path(out) / "checkpoint.pt", map_location="cpu", weights_only=False)["model"]


def assert_same_weights(a, b, atol=0.0):
    assert a.keys() == b.keys()
    for k in a:
        if atol == 0.0:
            assert torch.equal(a[k], b[k]), k
        else:
            torch.testing.assert_close(a[k], b[k], atol=atol, rtol=1e-4, msg=k)


def test_end_to_end_run_writes_checkpoint_metrics_and_report(tmp_path):
    summary = train_mod.train(tiny_config("optim.epochs=2"), tmp_path, quiet=True)
    assert summary["steps"] == 16
    for name in ("checkpoint.pt", "metrics.jsonl", "config.yaml", "report.json", "report.png", "masks.png"):
        assert (tmp_path / name).is_file(), name
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == list(range(2, 17, 2))
    assert all(set(r) >= {"loss", "lr", "momentum", "images_per_s", "target_std", "target_image_std", "target_rank"} for r in records)
    assert records[-1]["momentum"] > records[0]["momentum"]
    report = json.loads((tmp_path / "report.json").read_text())
    assert set(report["probes"]) == {"I-JEPA (target encoder)", "I-JEPA (context encoder)", "random init", "pixels"}
    use = report["context_use"]
    assert use["own_context_loss"] > 0 and use["ratio"] == pytest.approx(use["other_context_loss"] / use["own_context_loss"])
    for per_task in report["probes"].values():
        for task, scores in per_task.items():
            if not task.startswith("_") and task != "choices":
                assert 0.0 <= scores["linear_probe"] <= 1.0 and 0.0 <= scores["knn"] <= 1.0
    ckpt = torch.load(tmp_path / "checkpoint.pt", map_location="cpu", weights_only=False)
    assert ckpt["step"] == 16 and set(ckpt) >= {"model", "optimizer", "rng", "config", "epoch", "batch_in_epoch"}


def test_sigkill_then_resume_gives_the_same_weights(tmp_path):
    extra = ["model.drop_path_rate=0.1", "optim.epochs=6", "run.evaluate=false", "run.checkpoint_every=3"]
    straight = tmp_path / "straight"
    subprocess.run(cli(straight, *extra), check=True, capture_output=True, timeout=300)

    killed = tmp_path / "killed"
    proc = subprocess.Popen(cli(killed, *extra), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ckpt = killed / "checkpoint.pt"
    deadline = time.time() + 120
    while not ckpt.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    step_at_kill = torch.load(ckpt, map_location="cpu", weights_only=False)["step"]
    assert step_at_kill < 48
    # The killed run may have logged past its checkpoint; resuming drops those lines.
    resumed = subprocess.run(cli(killed, *extra), check=True, capture_output=True, text=True, timeout=300)
    assert f"resumed from {ckpt} at step {step_at_kill}" in resumed.stdout
    assert_same_weights(final_weights(straight), final_weights(killed))
    records = [json.loads(line) for line in (killed / "metrics.jsonl").read_text().splitlines()]
    steps = [r["step"] for r in records if "loss" in r]
    assert steps == sorted(set(steps)) and steps[-1] == 48
    assert [r["step"] for r in records if "probe" in r] == [0, 48]  # probe curves: no point lost or repeated


def test_two_process_ddp_matches_single_process(tmp_path):
    extra = ["optim.epochs=1", "run.evaluate=false", "optim.batch_size=16", "model.vc_weight=0.1",
             "model.sigreg_weight=0.05"]  # batch statistics over the global batch; SIGReg's directions alike on both
    single = tmp_path / "single"
    subprocess.run(cli(single, *extra), check=True, capture_output=True, timeout=300)
    ddp = tmp_path / "ddp"
    cmd = cli(ddp, *extra)
    cmd[1:3] = ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "minijepa.train"]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert_same_weights(final_weights(single), final_weights(ddp), atol=1e-5)
    # Rank 0 alone wrote the metrics, with the loss averaged over both processes.
    single_losses = [r["loss"] for r in map(json.loads, (single / "metrics.jsonl").read_text().splitlines()) if "loss" in r]
    ddp_losses = [r["loss"] for r in map(json.loads, (ddp / "metrics.jsonl").read_text().splitlines()) if "loss" in r]
    assert len(single_losses) > 2
    assert ddp_losses == pytest.approx(single_losses, rel=1e-4)


def test_script_optimizer_is_fused_adamw_and_matches_the_loop():
    """The script's AdamW is PyTorch's fused kernel where available (CPU since torch 2.4): the same update as the
    per-parameter loop (to float rounding), two parameter groups, weight decay only on the weights."""
    cfg = tiny_config()
    torch.manual_seed(0)
    a, b = train_mod.build_model(cfg), train_mod.build_model(cfg)
    b.load_state_dict(a.state_dict())
    fused = train_mod.build_optimizer(a, cfg, torch.device("cpu"))
    assert fused.defaults["fused"] == train_mod.fused_adamw_available(torch.device("cpu"))
    if tuple(int(v) for v in torch.__version__.split(".")[:2]) >= (2, 4):
        assert fused.defaults["fused"]
    loop = torch.optim.AdamW(train_mod.param_groups(*b.trainable_modules()), lr=cfg.optim.lr, betas=cfg.optim.betas,
                             foreach=False)  # fmt: skip
    assert [len(g["params"]) for g in fused.param_groups] == [len(g["params"]) for g in loop.param_groups]
    masks = MaskBatch(torch.arange(10).expand(4, 10), torch.arange(20, 24).reshape(1, 1, 4).expand(4, 1, 4), (6, 6))
    images = torch.randn(4, 3, 48, 48, generator=torch.Generator().manual_seed(1))
    hp = train_mod.StepHyperparameters(lr=1e-3, weight_decay=0.04, momentum=0.996)
    start = {k: v.clone() for k, v in a.state_dict().items()}
    for _ in range(3):
        train_mod.train_step(a, a, fused, images, masks, hp)
        train_mod.train_step(b, b, loop, images, masks, hp)
    assert_same_weights(a.state_dict(), b.state_dict(), atol=1e-5)
    assert not torch.equal(start["predictor.embed.weight"], a.state_dict()["predictor.embed.weight"])  # it trained


def test_nonfinite_loss_stops_before_touching_the_weights():
    cfg = tiny_config()
    ijepa = train_mod.build_model(cfg)
    opt = torch.optim.AdamW(ijepa.parameters(), lr=1e-3)
    before = {k: v.clone() for k, v in ijepa.state_dict().items()}
    images = torch.full((2, 3, 48, 48), float("nan"))
    masks = MaskBatch(torch.arange(10).expand(2, 10), torch.arange(20, 24).reshape(1, 1, 4).expand(2, 1, 4), (6, 6))
    hp = train_mod.StepHyperparameters(lr=1e-3, weight_decay=0.04, momentum=0.996)
    with pytest.raises(train_mod.NonFiniteLossError, match="non-finite loss"):
        train_mod.train_step(ijepa, ijepa, opt, images, masks, hp)
    assert all(torch.equal(before[k], v) for k, v in ijepa.state_dict().items())


def test_nonfinite_loss_in_a_run_keeps_last_good_checkpoint(tmp_path, monkeypatch):
    real_step = train_mod.train_step
    calls = {"n": 0}

    def failing_step(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 7:
            raise train_mod.NonFiniteLossError("non-finite loss nan")
        return real_step(*args, **kwargs)

    monkeypatch.setattr(train_mod, "train_step", failing_step)
    with pytest.raises(train_mod.NonFiniteLossError, match="step 6: .*last good checkpoint"):
        train_mod.train(tiny_config("run.evaluate=false"), tmp_path, quiet=True)
    state = torch.load(tmp_path / "checkpoint.pt", map_location="cpu", weights_only=False)
    assert state["step"] == 4
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())


def test_resume_refuses_a_checkpoint_trained_on_other_embedded_images(tmp_path, monkeypatch):
    # The embedded images are code: after a new data version the same config draws other images, and
    # resuming an old checkpoint would mix the two (and report an encoder trained on the old ones).
    import minijepa.data as data_lib

    cfg = tiny_config("optim.max_steps=2", "run.evaluate=false")
    train_mod.train(cfg, tmp_path, quiet=True)
    path = tmp_path / "checkpoint.pt"
    state = torch.load(path, map_location="cpu", weights_only=False)
    assert state["data_version"] == data_lib.ShapesDataset.VERSION
    monkeypatch.setattr(data_lib.ShapesDataset, "VERSION", state["data_version"] + 1)
    with pytest.raises(UserError, match=f"version {state['data_version']} of the embedded images .* draws version "
                                        f"{state['data_version'] + 1}.*--no-resume"):
        train_mod.train(cfg, tmp_path, quiet=True)
    train_mod.train(cfg, tmp_path, resume=False, quiet=True)  # starting over is allowed
    # A checkpoint from before data versions was trained on version 1.
    state = torch.load(path, map_location="cpu", weights_only=False)
    del state["data_version"]
    torch.save(state, path)
    monkeypatch.setattr(data_lib.ShapesDataset, "VERSION", 1)
    train_mod.train(cfg, tmp_path, quiet=True)  # resumes (nothing left to do)
    monkeypatch.setattr(data_lib.ShapesDataset, "VERSION", 2)
    with pytest.raises(UserError, match="version 1 of the embedded images"):
        train_mod.train(cfg, tmp_path, quiet=True)


def test_clear_errors(tmp_path):
    train_mod.train(tiny_config("optim.max_steps=2", "run.evaluate=false"), tmp_path, quiet=True)
    with pytest.raises(ValueError, match="different model"):
        train_mod.train(tiny_config("model.embed_dim=24", "run.evaluate=false"), tmp_path, quiet=True)
    with pytest.raises(FileNotFoundError, match="no_such_folder"):
        train_mod.train(tiny_config("data.dataset=imagefolder", f"data.root={tmp_path / 'no_such_folder'}"), tmp_path / "x", quiet=True)
    with pytest.raises(ValueError, match="masks.strategy='blocks'"):
        train_mod.train(tiny_config("masks.strategy=blocks"), tmp_path / "y", quiet=True)
    result = subprocess.run(cli(tmp_path / "z", "optim.lrr=1"), capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "unknown config key optim.lrr" in result.stderr
