"""User errors, faults and signals: a clear one-line message and exit code 2, nothing written from bad input,
never a checkpoint of broken weights, and SIGTERM / SIGINT stop a run with a checkpoint (minijepa.errors)."""

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from minijepa import data as data_lib
from minijepa import train as train_mod
from minijepa.config import CHOICES, load_config
from minijepa.errors import UserError

from test_train import TINY, assert_same_weights, cli, final_weights, tiny_config

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = ROOT / "configs" / "cpu_default.yaml"

BAD_VALUES = [  # (override, what the message must name)
    ("optim.lr=0", "optim.lr=0"), ("optim.lr_start=-1e-4", "optim.lr_start=-0.0001"),
    ("optim.grad_clip=-1", "optim.grad_clip=-1"), ("optim.epochs=0", "optim.epochs=0"),
    ("optim.batch_size=-16", "optim.batch_size=-16"), ("optim.batch_size=0", "optim.batch_size=0"),
    ("optim.batch_size=5000", "optim.batch_size=5000"), ("run.checkpoint_every=0", "run.checkpoint_every=0"),
    ("run.threads=-1", "run.threads=-1"), ("optim.warmup_epochs=-1", "optim.warmup_epochs=-1"),
    ("optim.warmup_epochs=9", "optim.warmup_epochs=9"), ("optim.ema=[1.5, 1.0]", "optim.ema=[1.5, 1.0]"),
    ("optim.lr=.nan", "optim.lr"), ("optim.lr=.inf", "optim.lr"), ("optim.weight_decay=[0.04, -1]", "optim.weight_decay"),
    ("optim.betas=[0.9, 1.0]", "optim.betas"), ("optim.max_steps=0", "optim.max_steps=0"),
    ("model.image_size=60", "model.image_size=60"), ("model.patch_size=0", "model.patch_size=0"),
    ("model.depth=0", "model.depth=0"), ("model.embed_dim=100", "model.embed_dim=100"),
    ("model.drop_path_rate=1.0", "model.drop_path_rate=1.0"), ("model.vc_weight=-0.1", "model.vc_weight=-0.1"),
    ("model.sigreg_weight=-1", "model.sigreg_weight=-1"), ("model.sigreg_directions=0", "model.sigreg_directions=0"),
    ("model.predictor_heads=5", "model.predictor_dim=96"), ("model.loss=l3", "model.loss='l3'"),
    ("masks.num_targets=0", "masks.num_targets=0"), ("masks.target_scale=[0.3, 0.1]", "masks.target_scale=[0.3, 0.1]"),
    ("masks.context_scale=[0.5, 1.5]", "masks.context_scale"), ("masks.min_keep=65", "masks.min_keep=65"),
    ("masks.random_ratio=1", "masks.random_ratio=1"), ("masks.block_scale=0", "masks.block_scale=0"),
    ("data.crop_scale=[0, 1]", "data.crop_scale=[0.0, 1.0]"), ("data.num_images=0", "data.num_images=0"),
    ("data.num_workers=-1", "data.num_workers=-1"), ("data.dataset=imagefolder", "data.root=None"),
    ("data.eval_task=colour", "data.eval_task='colour'"), ("run.device=gpu", "run.device='gpu'"),
    ("run.log_every=0", "run.log_every=0"), ("run.probe_every=-1", "run.probe_every=-1"),
    ("run.seed=-1", "run.seed=-1"), ("run.precision=fp16", "run.precision='fp16'"),
    ("optim.lr=[1, 2]", "optim.lr"), ("optim.ema=0.99", "optim.ema"), ("model.depth=2.5", "model.depth"),
]


@pytest.mark.parametrize("override, named", BAD_VALUES)
def test_every_bad_value_is_a_user_error_naming_key_and_value(override, named):
    with pytest.raises(UserError) as error:
        load_config(DEFAULT, [override])
    assert named in str(error.value), str(error.value)


def test_shipped_configs_are_valid_and_choices_match_the_modules():
    for path in sorted((ROOT / "configs").glob("*.yaml")):
        load_config(path)
    from minijepa.vit import VIT_PRESETS

    assert set(CHOICES["model.encoder"]) == set(VIT_PRESETS)
    assert tuple(CHOICES["data.dataset"]) == data_lib.DATASETS
    assert tuple(CHOICES["data.eval_task"]) == data_lib.ShapesDataset.TASKS


@pytest.mark.parametrize("text, named", [
    ("model:\n  depth: [2\n", "is not valid YAML (line 3"),  # YAML syntax error
    ("- model\n- masks\n", "got a list"),  # a list at the top level
    ("model: 3\n", "model: expected a mapping"),
])
def test_bad_yaml_files_name_the_file(tmp_path, text, named):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(UserError) as error:
        load_config(path)
    assert named in str(error.value)
    assert str(path) in str(error.value) or text.startswith("model: 3")


def test_bad_set_value_is_a_user_error():
    with pytest.raises(UserError, match="--set optim.lr="):
        load_config(DEFAULT, ["optim.lr=[1, 2"])


def _digest(folder: Path) -> dict:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


def _run_cli(args, timeout=120):
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT)


def _assert_user_error(result, *named):
    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines and lines[-1].startswith("error: ") and len(lines) == 1, result.stderr
    for text in named:
        assert text in result.stderr, (text, result.stderr)


def test_command_line_errors_exit_2_without_traceback_and_leave_the_run_folder_alone(tmp_path):
    run = tmp_path / "run"
    train_mod.train(tiny_config("optim.max_steps=2", "run.evaluate=false"), run, quiet=True)
    before = _digest(run)
    # A bad value for a run that has a good checkpoint: refused before anything is touched.
    _assert_user_error(subprocess.run(cli(run, "optim.lr=0"), capture_output=True, text=True, timeout=120), "optim.lr=0")
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("optim:\n  lr: [0.1\n")
    _assert_user_error(_run_cli(["minijepa.train", "--config", str(bad_yaml), "--out", str(run)]), str(bad_yaml))
    assert _digest(run) == before
    # --out naming a file
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    _assert_user_error(subprocess.run(cli(a_file), capture_output=True, text=True, timeout=120), str(a_file))
    # A truncated checkpoint is named, and kept as it is.
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "checkpoint.pt").write_bytes((run / "checkpoint.pt").read_bytes()[:5000])
    kept = _digest(broken)
    _assert_user_error(subprocess.run(cli(broken), capture_output=True, text=True, timeout=120),
                       str(broken / "checkpoint.pt"))
    assert _digest(broken) == kept
    # A torch file that is not a training checkpoint, for train and for evaluate
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    torch.save({"weights": torch.zeros(2)}, foreign / "checkpoint.pt")
    _assert_user_error(subprocess.run(cli(foreign), capture_output=True, text=True, timeout=120), "not a minijepa")
    _assert_user_error(_run_cli(["minijepa.evaluate", "--checkpoint", str(foreign / "checkpoint.pt")]), "not a minijepa")
    _assert_user_error(_run_cli(["minijepa.evaluate", "--checkpoint", str(tmp_path / "nothing.pt")]), "not found")
    _assert_user_error(_run_cli(["minijepa.explorer_pages", "--only", "attention", "--out", str(tmp_path / "pages"),
                                 "--checkpoint", str(foreign / "checkpoint.pt")]), "not a minijepa")
    if not torch.cuda.is_available():
        _assert_user_error(subprocess.run(cli(tmp_path / "gpu", "run.device=cuda"), capture_output=True, text=True,
                                          timeout=120), "run.device='cuda'")
    assert not (tmp_path / "gpu").exists()


def _write_folder(root: Path, splits: dict) -> None:
    for split, classes in splits.items():
        for label, colour in classes.items():
            (root / split / label).mkdir(parents=True)
            for i in range(4):
                Image.new("RGB", (16, 16), colour).save(root / split / label / f"{i}.png")


def test_imagefolder_labels_agree_between_splits(tmp_path, capsys):
    _write_folder(tmp_path, {"train": {"a": (255, 0, 0), "b": (0, 255, 0), "c": (0, 0, 255)},
                             "test": {"b": (0, 255, 0), "c": (0, 0, 255)}})
    train = data_lib.build_dataset("imagefolder", root=str(tmp_path), split="train", image_size=16)
    test = data_lib.build_dataset("imagefolder", root=str(tmp_path), split="test", image_size=16)
    assert train.classes == test.classes == ["a", "b", "c"]
    assert sorted(set(test.targets)) == [1, 2]  # b and c keep the training split's numbers
    assert "no images of class(es) ['a']" in capsys.readouterr().err
    (tmp_path / "test" / "d").mkdir()
    Image.new("RGB", (16, 16)).save(tmp_path / "test" / "d" / "0.png")
    with pytest.raises(UserError, match=r"class folder\(s\) \['d'\]"):
        data_lib.build_dataset("imagefolder", root=str(tmp_path), split="test", image_size=16)


def test_a_corrupt_image_is_a_user_error_naming_it(tmp_path):
    _write_folder(tmp_path, {"train": {"a": (255, 0, 0)}})
    bad = tmp_path / "train" / "a" / "1.png"
    bad.write_bytes(bad.read_bytes()[:40])
    dataset = data_lib.build_dataset("imagefolder", root=str(tmp_path), split="train", image_size=16)
    with pytest.raises(UserError, match=str(bad)):
        [dataset[i] for i in range(len(dataset))]


def _twins():
    """(name, PIL image of that mode, its 8-bit RGB twin) for every mode PIL reads from common files."""
    rng = np.random.default_rng(0)
    grey8 = rng.integers(0, 256, (8, 8)).astype(np.uint8)
    rgb8 = rng.integers(0, 256, (8, 8, 3)).astype(np.uint8)
    rgb_of_grey = Image.fromarray(grey8).convert("RGB")
    grey16 = grey8.astype(np.uint16) * 257  # the same levels at 16 bits
    palette = Image.fromarray(rgb8).quantize(16)
    yield "16-bit grey (I;16)", Image.fromarray(grey16), rgb_of_grey
    yield "32-bit grey (I) holding 16-bit values", Image.fromarray(grey16.astype(np.int32)), rgb_of_grey
    yield "float grey (F)", Image.fromarray(grey8.astype(np.float32) / 255), rgb_of_grey
    yield "8-bit grey (L)", Image.fromarray(grey8), rgb_of_grey
    yield "palette (P)", palette, palette.convert("RGB")
    yield "1-bit", Image.fromarray(grey8 > 127).convert("1"), Image.fromarray(((grey8 > 127) * 255).astype(np.uint8)).convert("RGB")
    yield "CMYK", Image.fromarray(rgb8).convert("CMYK"), Image.fromarray(rgb8).convert("CMYK").convert("RGB")
    opaque = np.dstack([rgb8, np.full((8, 8), 255, np.uint8)])
    yield "RGBA, opaque", Image.fromarray(opaque), Image.fromarray(rgb8)
    clear = np.dstack([rgb8, np.zeros((8, 8), np.uint8)])
    yield "RGBA, transparent", Image.fromarray(clear), Image.new("RGB", (8, 8))
    yield "grey + alpha (LA)", Image.fromarray(np.dstack([grey8, np.full((8, 8), 255, np.uint8)])), rgb_of_grey


@pytest.mark.parametrize("name, image, twin", list(_twins()), ids=[t[0] for t in _twins()])
def test_every_image_mode_reads_on_the_scale_of_its_8_bit_twin(tmp_path, name, image, twin):
    path = tmp_path / ("image.tiff" if image.mode in ("F", "I", "CMYK") else "image.png")
    image.save(path)
    got = np.asarray(data_lib._checked_loader(str(path)), dtype=np.int16)
    want = np.asarray(twin, dtype=np.int16)
    assert got.shape == want.shape == (8, 8, 3)
    assert np.abs(got - want).max() <= 1, name


def test_a_checkpoint_is_never_written_from_non_finite_weights(tmp_path):
    """With a huge learning rate an update can turn the weights to NaN while the loss was still finite."""
    with pytest.raises(train_mod.NonFiniteLossError) as error:
        train_mod.train(tiny_config("optim.lr=1e3", "optim.lr_start=1e3", "run.checkpoint_every=1", "run.evaluate=false"),
                        tmp_path, quiet=True)
    message = str(error.value)
    if (tmp_path / "checkpoint.pt").exists():
        state = torch.load(tmp_path / "checkpoint.pt", map_location="cpu", weights_only=False)
        tensors = list(state["model"].values()) + [v for s in state["optimizer"]["state"].values() for v in s.values()]
        assert all(torch.isfinite(t).all() for t in tensors if torch.is_tensor(t) and t.is_floating_point())
        assert f"(step {state['step']})" in message
    else:
        assert "no checkpoint has been written yet" in message


def test_non_finite_tensors_names_the_broken_ones():
    cfg = tiny_config()
    ijepa = train_mod.build_model(cfg)
    optimizer = train_mod.build_optimizer(ijepa, cfg, torch.device("cpu"))
    assert train_mod.non_finite_tensors(ijepa, optimizer) == []
    with torch.no_grad():
        ijepa.predictor.mask_token.fill_(float("inf"))
    assert train_mod.non_finite_tensors(ijepa, optimizer) == ["model.predictor.mask_token"]


def _wait_for_step(metrics: Path, proc, step: int, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        if metrics.exists() and f'"step": {step},' in metrics.read_text():
            return
        time.sleep(0.01)
    raise AssertionError("the run ended or stalled before the signal could be sent")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_the_run_with_a_checkpoint_and_it_resumes_exactly(tmp_path, signum):
    extra = ["optim.epochs=6", "run.evaluate=false", "run.checkpoint_every=1000", "run.log_every=1"]
    stopped = tmp_path / "stopped"
    proc = subprocess.Popen(cli(stopped, *extra), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _wait_for_step(stopped / "metrics.jsonl", proc, 5)
    proc.send_signal(signum)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signum, stderr
    assert f"stopped by {signal.Signals(signum).name} after step" in stderr and "Traceback" not in stderr
    step = torch.load(stopped / "checkpoint.pt", map_location="cpu", weights_only=False)["step"]
    assert 5 <= step < 48  # checkpoint_every=1000: this checkpoint was written because of the signal
    if signum == signal.SIGTERM:
        subprocess.run(cli(stopped, *extra), check=True, capture_output=True, timeout=300)
        straight = tmp_path / "straight"
        subprocess.run(cli(straight, *extra), check=True, capture_output=True, timeout=300)
        assert_same_weights(final_weights(straight), final_weights(stopped))


def test_a_data_loader_workers_error_is_reported_on_one_line():
    from minijepa.errors import one_line

    worker = UserError("Caught UserError in DataLoader worker process 0.\nOriginal Traceback (most recent call last):\n"
                       '  File "x.py", line 1, in <module>\nminijepa.errors.UserError: cannot read image file a.png: broken')
    assert one_line(worker) == "cannot read image file a.png: broken"
    assert one_line(UserError("optim.lr=0: must be > 0")) == "optim.lr=0: must be > 0"


def test_a_second_sigint_does_what_it_would_have_done_without_the_handler():
    # Python's own Ctrl-C handler first, whatever this process inherited (a shell without job control starts
    # background commands with SIGINT ignored, and then Python installs no handler of its own).
    inherited = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        signals = train_mod.StopSignals().install()
        try:
            signals.handle(signal.SIGINT, None)  # the first asks the loop to stop after its step
            assert signals.received == signal.SIGINT
            with pytest.raises(KeyboardInterrupt):  # the second: Python's own Ctrl-C
                signals.handle(signal.SIGINT, None)
        finally:
            signals.restore()
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, inherited)
