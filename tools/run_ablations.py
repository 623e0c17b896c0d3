"""The paper's ablations at the course's scale: masking strategies, and targets in representation vs pixel space.

Each variant is the course's default run (configs/cpu_default.yaml) with one thing changed, trained with the
pretraining script and probed with the same protocol as its report (minijepa.evaluate.evaluate_encoders: the
validated linear probe and k-NN on both encoders, feature choice made on validation data, shapes data, four
tasks); the random-init and pixel baselines are probed once with the same protocol. Results go to one JSON
file that notebook 08 reads.

    python tools/run_ablations.py                         # all variants, ~6-7 min each on 2 idle CPU cores
    python tools/run_ablations.py --epochs 4              # half length: what assets/ablations/ holds (see its meta)
    python tools/run_ablations.py --only random block     # some variants

Runs are kept in runs/ablations/NAME/ (resumed if interrupted); the summary is written after every variant.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from minijepa.config import load_config  # noqa: E402
from minijepa.build import build_encoder, load_trained_model  # noqa: E402
from minijepa.evaluate import chance_levels, evaluate_encoders, probe_sets  # noqa: E402
from minijepa.train import train  # noqa: E402

ABLATIONS = yaml.safe_load((ROOT / "tools" / "ablations.yaml").read_text())
VARIANTS = ABLATIONS["variants"]  # name -> --set overrides of configs/cpu_default.yaml
PAPER = ABLATIONS["paper_top1"]
PROTOCOL = "minijepa.evaluate.evaluate_encoders (validated logistic probe, k-NN; last layer / last 4 chosen on validation)"


def plain_scores(results: dict) -> dict:
    """Per-task scores and the feature choice of one source (the per-choice details are dropped)."""
    return {k: v for k, v in results.items() if k != "choices"}


def probe_run(run_dir: Path, sets) -> dict:
    ijepa, cfg, state = load_trained_model(run_dir / "checkpoint.pt")
    results = evaluate_encoders({"target": ijepa.target_encoder, "context": ijepa.context_encoder}, sets, pixels=False)
    target = plain_scores(results["target"])
    losses = [json.loads(line)["loss"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()
              if line and "loss" in json.loads(line)]
    return {"probes": {t: v for t, v in target.items() if not t.startswith("_")}, "features": target["_features"],
            "probes_context": plain_scores(results["context"]), "effective_rank": target["_features"]["effective_rank"],
            "steps": state["step"], "final_loss": sum(losses[-5:]) / len(losses[-5:])}


def baselines(cfg, sets) -> dict:
    """The random-init encoder (the report's seed) and raw pixels under the same protocol."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.run.seed + 12345)
        random_encoder = build_encoder(cfg)
    results = evaluate_encoders({"random init": random_encoder}, sets)
    return {name: plain_scores(r) for name, r in results.items()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=None, help="override optim.epochs (default: the config's)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="extra override for every variant, e.g. --set model.depth=4")
    parser.add_argument("--only", nargs="*", default=None, help=f"variants to run, from {list(VARIANTS)}")
    parser.add_argument("--runs", default=str(ROOT / "runs" / "ablations"))
    parser.add_argument("--out", default=str(ROOT / "assets" / "ablations" / "results.json"))
    args = parser.parse_args(argv)
    names = args.only or list(VARIANTS)
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        parser.error(f"unknown variant(s) {unknown}; choose from {list(VARIANTS)}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    results = json.loads(out.read_text()) if out.exists() else {}
    if results.get("meta", {}).get("protocol") != PROTOCOL:  # never mix numbers of two protocols in one table
        results = {}
    results.setdefault("variants", {})
    extra = ([f"optim.epochs={args.epochs}"] if args.epochs else []) + args.overrides
    sets = None
    for name in names:
        overrides = VARIANTS[name] + extra + ["run.evaluate=false"]
        cfg = load_config(ROOT / "configs" / "cpu_default.yaml", overrides)
        run_dir = Path(args.runs) / name.split(" ")[0]
        start = time.perf_counter()
        train(cfg, run_dir, quiet=True)
        if sets is None:
            sets = probe_sets(cfg)
            results["baselines"] = baselines(cfg, sets)
        result = probe_run(run_dir, sets)
        result.update(overrides=overrides, minutes=(time.perf_counter() - start) / 60)
        results["variants"][name] = result
        chance = chance_levels(sets[3])
        results["meta"] = {"protocol": PROTOCOL, "config": "configs/cpu_default.yaml", "epochs": cfg.optim.epochs, "chance": chance,
                           "paper_top1": PAPER, "command": " ".join(["python tools/run_ablations.py"] + ([f"--epochs {args.epochs}"] if args.epochs else [])
                                               + [f"--set {o}" for o in args.overrides])}
        out.write_text(json.dumps(results, indent=1))
        line = "  ".join(f"{t} {100 * v['linear_probe']:.1f}/{100 * v['knn']:.1f}" for t, v in result["probes"].items())
        print(f"{name:22s} {result['minutes']:.1f} min, loss {result['final_loss']:.3f}: {line}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
