"""tools/run_ablations.py: the summary over seeds and the verdicts of the paper's orderings."""

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

import run_ablations  # noqa: E402
from minijepa.config import load_config  # noqa: E402

TASKS = ("shape", "count")


def _probes(shape, val, other=0.5):
    per_task = {"shape": {"linear_probe": shape, "knn": shape - 0.1, "val_accuracy": val, "C": 1.0},
                "count": {"linear_probe": other, "knn": other, "val_accuracy": other, "C": 1.0}}
    return per_task | {"_features": {"choice": "last layer", "effective_rank": 10.0}}


def _run(name, seed, target, context, target_val=0.3, context_val=0.2, status="ok"):
    record = {"kind": "run", "name": name, "seed": seed, "status": status,
              "overrides": list(run_ablations.ABLATIONS["common"]) + list(run_ablations.VARIANTS[name])}
    if status != "ok":
        return record | {"error": "NonFiniteLossError: step 3"}
    return record | {"steps": 256, "minutes": 4.0, "final_loss": 0.3, "context_use": 1.2, "rank_start": 16.0,
                     "rank_end": 30.0, "baseline_key": f"seed {seed}",
                     "probes": {"target": _probes(target, target_val), "context": _probes(context, context_val)}}


def _baseline(seed):
    probes = {src: {t: {"linear_probe": 0.3, "knn": 0.25} for t in TASKS} for src in ("random init", "pixels")}
    return {"kind": "baseline", "key": f"seed {seed}", "probes": probes, "chance": {"shape": 0.26, "count": 0.27}}


def test_spec_variants_are_valid_configs():
    """Every variant of tools/ablations.yaml is a loadable change of the default config."""
    base = ROOT / run_ablations.ABLATIONS["base"]
    for name, overrides in run_ablations.VARIANTS.items():
        cfg = load_config(base, list(run_ablations.ABLATIONS["common"]) + list(overrides))
        assert cfg.optim.epochs == 4, name
    assert len(run_ablations.ABLATIONS["seeds"]) >= 2  # the orderings need a spread between seeds
    assert all(a in run_ablations.VARIANTS and b in run_ablations.VARIANTS for a, b in run_ablations.ORDERINGS)


def test_summary_and_orderings():
    records = [_baseline(0), _baseline(1),
               # multi-block: target better on validation -> its test score counts (0.60, 0.62)
               _run("multi-block", 0, 0.60, 0.10), _run("multi-block", 1, 0.62, 0.10),
               # random: context better on validation (0.5 > 0.3) -> 0.40, 0.44
               _run("random", 0, 0.99, 0.40, context_val=0.5), _run("random", 1, 0.99, 0.44, context_val=0.5),
               # block: a gap of 1 point and a spread of 4: a tie
               _run("block", 0, 0.57, 0.0), _run("block", 1, 0.65, 0.0),
               # rasterized: one seed failed
               _run("rasterized", 0, 0.50, 0.0), _run("rasterized", 1, 0, 0, status="failed"),
               # a run with other overrides (another sweep) is not mixed in
               _run("random", 2, 0.0, 0.0) | {"overrides": ["optim.epochs=1"]}]
    summary = run_ablations.summarize(records)
    variants = summary["variants"]
    assert set(variants) == {"multi-block", "random", "block", "rasterized"}
    assert variants["random"]["seeds"] == [0, 1] and len(variants["random"]["baselines"]) == 2
    assert variants["rasterized"]["seeds"] == [0] and variants["rasterized"]["failed"][0]["seed"] == 1
    assert run_ablations.seed_scores(variants["multi-block"], "shape") == [0.60, 0.62]
    assert run_ablations.seed_scores(variants["random"], "shape") == [0.40, 0.44]  # chosen on validation
    assert summary["chance"]["shape"] == 0.26
    yes = run_ablations.ordering(summary, "multi-block", "random")
    assert yes["verdict"] == "yes" and yes["gap"] == pytest.approx(0.19) and yes["spread"] == pytest.approx(0.04)
    reversed_ = run_ablations.ordering(summary, "random", "multi-block")
    assert reversed_["verdict"] == "no (reversed)"
    assert run_ablations.ordering(summary, "multi-block", "block")["verdict"] == "within the seeds' spread"
    assert run_ablations.ordering(summary, "multi-block", "rasterized")["verdict"] == "one seed: no verdict"
    mean = run_ablations.ordering(summary, "multi-block", "random", task=None)
    assert mean["task"] == "mean" and mean["a_scores"] == pytest.approx([0.55, 0.56])
