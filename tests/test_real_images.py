"""tools/real_image_check.py: the real-image folder (digits on flat and photographed backgrounds) and the check."""

import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

import real_image_check  # noqa: E402
from test_train import TINY  # noqa: E402


def _images(root, split):
    return {p.relative_to(root / split): np.asarray(Image.open(p)) for p in sorted((root / split).glob("*/*.png"))}


def test_folder_is_deterministic_labelled_and_split_by_scan(tmp_path):
    a = real_image_check.write_folder(tmp_path / "a", num_train=60, num_test=20)
    b = real_image_check.write_folder(tmp_path / "b", num_train=60, num_test=20)
    train, test = _images(a, "train"), _images(a, "test")
    assert len(train) == 60 and len(test) == 20
    assert all(np.array_equal(x, _images(b, "train")[k]) for k, x in train.items())  # same seed, same pixels
    assert {k.parts[0] for k in train} <= {str(d) for d in range(10)} and len({k.parts[0] for k in train}) >= 8
    assert all(x.shape == (64, 64, 3) and x.dtype == np.uint8 for x in train.values())
    kinds = [k.name.split("_")[0] for k in train]
    assert kinds.count("flat") == kinds.count("textured") == 30
    pools = real_image_check.digit_split(1797)
    assert not set(pools["train"]) & set(pools["test"]) and len(pools["test"]) == real_image_check.TEST_DIGITS
    for key, x in train.items():
        corners = [x[0, 0], x[0, -1], x[-1, 0], x[-1, -1]]
        same = sum(np.array_equal(c, corners[0]) for c in corners)
        if key.name.startswith("flat"):
            # one light colour everywhere except the digit, which is painted in a darker one
            background = np.median(x.reshape(-1, 3), axis=0)
            far = np.abs(x.astype(float) - background).sum(-1) > 60
            assert 0.02 < far.mean() < 0.5, key
            assert x[far].mean() < background.mean() - 60 and background.min() >= 255 * real_image_check.LIGHT - 1, key
        else:
            assert same < 4 or x.std() > 5, key  # a photograph: not one flat colour
    # A second call with the same parameters keeps the folder as it is.
    stamp = (a / "manifest.json").stat().st_mtime_ns
    real_image_check.write_folder(a, num_train=60, num_test=20)
    assert (a / "manifest.json").stat().st_mtime_ns == stamp


def test_check_trains_and_reports_context_use_by_background(tmp_path):
    out = tmp_path / "run"
    sets = [f"--set={o}" for o in TINY + ["optim.epochs=1", "model.image_size=64", "run.probe_every=0"]]
    assert real_image_check.main(["--data", str(tmp_path / "digits"), "--out", str(out), "--num-train", "64",
                                  "--num-test", "48"] + sets) == 0
    result = json.loads((out / "real_check.json").read_text())
    assert set(result["context_use_by_background"]) == {"flat", "textured"}
    assert all(v["ratio"] > 0 for v in result["context_use_by_background"].values())
    assert result["images"]["num_train"] == 64
    report = result["report"]
    assert set(report["probes"]) == {"I-JEPA (target encoder)", "I-JEPA (context encoder)", "random init", "pixels"}
    assert all(0 <= report["probes"][src]["label"]["linear_probe"] <= 1 for src in report["probes"])
    assert set(report["chance"]) == {"label"} and report["steps"] == 4
