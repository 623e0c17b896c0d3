import json
import subprocess
import sys

import torch

from minijepa import train as train_mod
from minijepa.evaluate import effective_rank, extract_features, feature_std, knn_classify, linear_probe, pixel_features
from minijepa.vit import vit_tiny


def blobs(n, d=16, classes=4, spread=0.3, seed=0):
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(classes, d, generator=g) * 2
    y = torch.arange(n) % classes
    return centres[y] + spread * torch.randn(n, d, generator=g), y


def test_probes_separate_easy_data_and_not_noise():
    x_all, y_all = blobs(600)
    tr, te = slice(0, 400), slice(400, 600)
    assert linear_probe(x_all[tr], y_all[tr], x_all[te], y_all[te]) > 0.95
    assert knn_classify(x_all[tr], y_all[tr], x_all[te], y_all[te]) > 0.95
    noise = torch.randn(600, 16, generator=torch.Generator().manual_seed(3))
    shuffled = y_all[torch.randperm(600, generator=torch.Generator().manual_seed(4))]
    assert linear_probe(noise[tr], shuffled[tr], noise[te], shuffled[te]) < 0.45  # chance is 0.25
    assert knn_classify(noise[tr], shuffled[tr], noise[te], shuffled[te]) < 0.45


def test_collapse_measures():
    g = torch.Generator().manual_seed(0)
    spread = torch.randn(512, 64, generator=g)
    collapsed = torch.randn(1, 64, generator=g).expand(512, 64) + 1e-4 * torch.randn(512, 64, generator=g)
    assert 0.8 < feature_std(spread) < 1.1
    assert feature_std(collapsed) < 0.01
    assert effective_rank(spread) > 40
    line = torch.randn(512, 1, generator=g) * torch.randn(1, 64, generator=g)
    assert effective_rank(line) < 1.5


def test_features_are_pooled_patch_tokens():
    model = vit_tiny(patch_size=8, image_size=32, depth=1).eval()
    x = torch.randn(5, 3, 32, 32)
    feats = extract_features(model, x, batch_size=2)
    torch.testing.assert_close(feats, model(x).mean(1))
    assert pixel_features(x, size=4).shape == (5, 3 * 16)


def test_evaluate_command(tmp_path):
    from test_train import tiny_config

    train_mod.train(tiny_config("optim.max_steps=4", "run.evaluate=false"), tmp_path, quiet=True)
    out = tmp_path / "eval.json"
    cmd = [sys.executable, "-m", "minijepa.evaluate", "--checkpoint", str(tmp_path / "checkpoint.pt"),
           "--num-images", "64", "--json", str(out)]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "linear probe / k-NN" in result.stdout and "random init" in result.stdout
    assert "I-JEPA (target encoder)" in result.stdout and "I-JEPA (context encoder)" in result.stdout
    report = json.loads(out.read_text())
    assert set(report["probes"]["pixels"]) >= {"shape", "count", "position", "size"}
    bad = subprocess.run([sys.executable, "-m", "minijepa.evaluate", "--checkpoint", str(tmp_path / "nope.pt")],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "checkpoint not found" in bad.stderr
