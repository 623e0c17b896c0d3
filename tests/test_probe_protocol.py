"""The course's evaluation protocol: the validated linear probe against scikit-learn, feature choices made on
validation data, probe curves during training, and the supervised ceiling."""

import json
import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch

from minijepa import train as train_mod
from minijepa.config import load_config
from minijepa.evaluate import (PROBE_CS, ceiling_fingerprint, encoder_features, evaluate_sources, extract_features,
                               find_ceiling, fit_logistic_regression, logistic_probe, pixel_features, probe_sets,
                               validation_split)
from minijepa.vit import vit_tiny

from test_train import ROOT, tiny_config


def linear_labels(n=800, d=24, classes=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g)
    y = (x @ torch.randn(d, classes, generator=g)).argmax(1)  # the label is an exact linear function of x
    return x, y


def test_probe_reads_an_exactly_linear_label():
    x, y = linear_labels(2000, 16)
    result = logistic_probe(x[:1500], y[:1500], x[1500:], y[1500:])
    assert result["accuracy"] >= 0.95
    assert result["C"] >= 1.0  # a separable problem: the validation split asks for weak regularisation


def test_probe_stays_at_chance_on_random_features():
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(1000, 64, generator=g), torch.randint(0, 4, (1000,), generator=g)
    result = logistic_probe(x[:700], y[:700], x[700:], y[700:])
    assert result["accuracy"] < 0.25 + 0.08
    assert result["C"] <= 1e-2  # nothing to learn: the validation split picks strong regularisation


def test_validation_split_is_stratified_and_disjoint():
    y = torch.arange(500) % 5
    fit, val = validation_split(y, 0.2, seed=0)
    assert len(set(fit.tolist()) & set(val.tolist())) == 0 and len(fit) + len(val) == 500
    assert torch.bincount(y[val]).tolist() == [20] * 5
    assert torch.equal(validation_split(y, 0.2, seed=0)[1], val)


def test_solver_reaches_scikit_learns_optimum():
    from sklearn.linear_model import LogisticRegression

    x, y = linear_labels(600, 16, seed=2)
    x = x + 0.8 * torch.randn(x.shape, generator=torch.Generator().manual_seed(3))  # not separable
    x = x.double()
    for C in (1e-2, 1.0):
        ours = fit_logistic_regression(x, y, 4, C, max_iter=500)
        ref = LogisticRegression(C=C, max_iter=5000, tol=1e-10).fit(x.numpy(), y.numpy())
        # Multinomial weights are defined up to a constant per feature: compare centred over classes.
        w_ours = ours[:-1] - ours[:-1].mean(1, keepdim=True)
        w_ref = torch.from_numpy(ref.coef_.T) - torch.from_numpy(ref.coef_.T).mean(1, keepdim=True)
        torch.testing.assert_close(w_ours, w_ref, atol=2e-3, rtol=1e-2)


@pytest.fixture(scope="module")
def default_sets():
    return probe_sets(load_config(ROOT / "configs" / "cpu_default.yaml"))


def test_agrees_with_scikit_learn_validated_probe_on_default_pixels(default_sets):
    """The CLIP-style protocol written with scikit-learn (same split, same C grid): within 3 points per label."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    train_x, train_y, test_x, test_y = default_sets
    f_train, f_test = pixel_features(train_x, 8).numpy(), pixel_features(test_x, 8).numpy()
    for task in train_y:
        y, y_test = train_y[task].numpy(), test_y[task].numpy()
        fit, val = (i.numpy() for i in validation_split(train_y[task], 0.2, seed=0))
        scores = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for C in PROBE_CS:
                model = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=1000))
                scores.append(model.fit(f_train[fit], y[fit]).score(f_train[val], y[val]))
                if len(scores) - 1 - int(np.argmax(scores)) >= 2:  # the protocol's stop past the validation peak
                    break
            best = PROBE_CS[int(np.argmax(scores))]
            reference = make_pipeline(StandardScaler(), LogisticRegression(C=best, max_iter=1000)).fit(f_train, y)
        ours = logistic_probe(torch.from_numpy(f_train), train_y[task], torch.from_numpy(f_test), test_y[task])
        assert abs(ours["accuracy"] - reference.score(f_test, y_test)) <= 0.03, task


def test_feature_choice_is_made_on_validation_data():
    x, y = linear_labels(600, 8, seed=4)
    noise = torch.randn(600, 8, generator=torch.Generator().manual_seed(5))
    sources = {"encoder": {"last": (noise[:400], noise[400:]), "last4": (x[:400], x[400:])}}
    results = evaluate_sources(sources, {"label": y[:400]}, {"label": y[400:]})
    assert results["encoder"]["_features"]["choice"] == "last4"
    assert results["encoder"]["label"]["linear_probe"] == results["encoder"]["choices"]["last4"]["label"]["linear_probe"]
    assert results["encoder"]["choices"]["last"]["label"]["linear_probe"] < 0.45


def test_last_layers_end_with_the_output():
    model = vit_tiny(patch_size=8, image_size=32, depth=3).eval()
    x = torch.randn(4, 3, 32, 32)
    layers = model.last_layers(x, 3)
    assert len(layers) == 3
    torch.testing.assert_close(layers[-1], model(x))
    feats = encoder_features(model, x, layers=(1, 4))  # 4 > depth: all 3 layers
    assert set(feats) == {"last", "last3"} and feats["last3"].shape == (4, 3 * 192)
    torch.testing.assert_close(feats["last"], extract_features(model, x))
    torch.testing.assert_close(feats["last3"][:, -192:], feats["last"])
    with pytest.raises(ValueError, match="n=4"):
        model.last_layers(x, 4)


def test_probe_curves_are_logged_and_reported(tmp_path):
    summary = train_mod.train(tiny_config("optim.epochs=2", "run.probe_every=6"), tmp_path, quiet=True)
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    probes = [r for r in records if "probe" in r]
    assert [r["step"] for r in probes] == [0, 6, 12, 16]
    assert set(probes[0]) >= {"pixels", "probe_seconds"} and set(probes[0]["probe"]) == {"target", "context"}
    assert probes[0]["probe"]["target"] == probes[0]["probe"]["context"]  # step 0: both are the initial weights
    assert all(0 <= s["linear_probe"] <= 1 for r in probes for e in r["probe"].values() for s in e.values())
    report = summary["report"]
    assert set(report["probes"]) == {"I-JEPA (target encoder)", "I-JEPA (context encoder)", "random init", "pixels"}
    curve = report["probe_curves"]["I-JEPA (context encoder)"]
    assert curve["last_step"] == 16 and curve["best"] >= curve["last"]
    assert report["ceiling"] is None and "no supervised ceiling" in report["ceiling_note"]


def test_probes_do_not_change_the_run(tmp_path):
    with_probes = train_mod.train(tiny_config("run.probe_every=4", "run.evaluate=false"), tmp_path / "a", quiet=True)
    without = train_mod.train(tiny_config("run.evaluate=false"), tmp_path / "b", quiet=True)
    a = torch.load(tmp_path / "a" / "checkpoint.pt", weights_only=False)["model"]
    b = torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=False)["model"]
    assert with_probes["steps"] == without["steps"] and all(torch.equal(a[k], b[k]) for k in a)


def test_supervised_ceiling_command_and_its_place_in_the_report(tmp_path):
    from test_train import TINY

    out = tmp_path / "run" / "supervised.json"
    sets = [a for kv in TINY + ["optim.epochs=1"] for a in ("--set", kv)]
    cmd = [sys.executable, "-m", "minijepa.supervised", "--config", str(ROOT / "configs" / "cpu_default.yaml"), *sets, "--out", str(out)]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    ceiling = json.loads(out.read_text())
    cfg = tiny_config("optim.epochs=1")
    assert ceiling["fingerprint"] == json.loads(json.dumps(ceiling_fingerprint(cfg)))
    assert set(ceiling["heads"]) == {"shape", "count", "position", "size"} and ceiling["steps"] == 8
    assert set(ceiling["probes"]["supervised"]) >= {"shape", "count", "position", "size"}
    found, note = find_ceiling(cfg, [out])
    assert found is not None and str(out) in note
    other, note = find_ceiling(tiny_config("optim.epochs=2"), [out])
    assert other is None and "belong(s) to another" in note
    # ...nor for a run on another version of the embedded images (same config, other pixels)
    import minijepa.data as data_lib

    version = data_lib.ShapesDataset.VERSION
    try:
        data_lib.ShapesDataset.VERSION = version + 1
        assert find_ceiling(cfg, [out])[0] is None
    finally:
        data_lib.ShapesDataset.VERSION = version
    assert ceiling["fingerprint"]["data"]["shapes_version"] == version
    report = train_mod.train(cfg, tmp_path / "run", quiet=True)["report"]  # the run folder holds the ceiling
    assert report["ceiling"]["fingerprint"] == ceiling["fingerprint"]
    from minijepa.evaluate import format_summary

    assert "supervised ceiling" in format_summary(report)


def test_supervised_ceiling_learns_an_easy_image_folder(tmp_path):
    """The ImageFolder path of the ceiling (seeded crops, labels from the folders) learns a label any model can:
    one noisy colour per class. A real data set whose ceiling stays at chance is then the data's fault."""
    import numpy as np
    from PIL import Image

    from minijepa.supervised import main as supervised_main
    from test_train import TINY

    rng = np.random.default_rng(0)
    colours = rng.integers(0, 256, (4, 3))
    for split, n in (("train", 128), ("test", 64)):
        for i in range(n):
            folder = tmp_path / "data" / split / f"class{i % 4}"
            folder.mkdir(parents=True, exist_ok=True)
            pixels = np.clip(colours[i % 4] + rng.normal(0, 20, (48, 48, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(folder / f"{i}.png")
    out = tmp_path / "supervised.json"
    sets = TINY + ["data.dataset=imagefolder", f"data.root={tmp_path / 'data'}", "optim.epochs=4", "data.num_eval_images=32"]
    args = ["--config", str(ROOT / "configs" / "cpu_default.yaml"), "--out", str(out)]
    assert supervised_main(args + [a for s in sets for a in ("--set", s)]) == 0
    result = json.loads(out.read_text())
    assert result["heads"]["label"] >= 0.9 and result["probes"]["supervised"]["label"]["linear_probe"] >= 0.9


def test_ceiling_attempt_flips_are_exact_samples_of_the_data():
    # tools/ceiling_attempts.py "flip": a mirrored image with its position label mirrored, other labels kept.
    import importlib.util

    from minijepa import supervised
    from minijepa.data import ShapesDataset

    spec = importlib.util.spec_from_file_location("ceiling_attempts", ROOT / "tools" / "ceiling_attempts.py")
    attempts = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(attempts)
    shapes = ShapesDataset(16, image_size=32, seed=0)
    plain, flipped = supervised._WholeImages(shapes), attempts._FlippedWholeImages(shapes)
    seen = set()
    for index in range(16):
        (x, y), (fx, fy) = plain[(index, 0, 0)], flipped[(index, 0, 0)]
        mirrored = not torch.equal(x, fx)
        seen.add(mirrored)
        if mirrored:
            assert torch.equal(fx, x.flip(-1)) and fy["position"] == y["position"] ^ 1
            # and the mirrored label is what the mirrored pixels say: the largest object changed sides
            mask = shapes.object_masks(index)[0].flip(-1)  # (S, S) coverage of the largest object, mirrored
            centre_x = (mask * torch.arange(32.0)).sum() / mask.sum()
            assert (centre_x > 16) == (fy["position"] % 2 == 1)  # 1, 3: a right quadrant
        else:
            assert fy == y
        assert {t: fy[t] for t in ("shape", "count", "size")} == {t: y[t] for t in ("shape", "count", "size")}
    assert seen == {True, False}  # about half of the images are flipped


def test_ceiling_attempt_data_changes_draw_what_they_name_and_are_undone():
    # "other-size-S+max-count-N" draws other images (version 1 of the data: other-size-0.13+max-count-4),
    # with as many count classes as the scenes can hold; leaving the attempt restores the shipped data.
    import importlib.util

    import minijepa.data as data_lib
    from minijepa.data import ShapesDataset

    spec = importlib.util.spec_from_file_location("ceiling_attempts", ROOT / "tools" / "ceiling_attempts.py")
    attempts = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(attempts)
    shipped = ShapesDataset(256, image_size=32, seed=0)
    with attempts._attempt("other-size-0.13+max-count-4") as overrides:
        assert overrides == [] and ShapesDataset.num_classes("count") == 4
        other = ShapesDataset(256, image_size=32, seed=0)
        assert set(other.labels["count"].tolist()) == {0, 1, 2, 3}
        sizes = other.scenes["size"][:, 1:][other.scenes["present"][:, 1:]]  # the smaller objects' sizes
        assert (sizes - 0.13).abs().max() <= 0.0041
    again = ShapesDataset(256, image_size=32, seed=0)
    assert ShapesDataset.num_classes("count") == data_lib._MAX_OBJECTS  # the shipped data's classes again
    assert torch.equal(again.images, shipped.images) and not torch.equal(other.images, shipped.images)
