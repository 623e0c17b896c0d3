"""The paper's ablations at the course's scale: masking strategies, and targets in representation vs pixel space.

Each variant is the course's default run (configs/cpu_default.yaml) with one thing changed, trained with the
pretraining script and probed with the same protocol as its report (linear probe and k-NN on average-pooled
features of the target encoder, shapes data, four tasks). Results go to one JSON file that notebook 08 reads.

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
from minijepa.evaluate import effective_rank, extract_features, knn_classify, linear_probe  # noqa: E402
from minijepa.report import probe_sets  # noqa: E402
from minijepa.train import load_trained_model, train  # noqa: E402

ABLATIONS = yaml.safe_load((ROOT / "tools" / "ablations.yaml").read_text())
VARIANTS = ABLATIONS["variants"]  # name -> --set overrides of configs/cpu_default.yaml
PAPER = ABLATIONS["paper_top1"]


def probe_run(run_dir: Path, sets) -> dict:
    ijepa, cfg, state = load_trained_model(run_dir / "checkpoint.pt")
    train_x, train_y, test_x, test_y = sets
    f_train, f_test = extract_features(ijepa.target_encoder, train_x), extract_features(ijepa.target_encoder, test_x)
    probes = {task: {"linear_probe": linear_probe(f_train, train_y[task], f_test, test_y[task], epochs=200),
                     "knn": knn_classify(f_train, train_y[task], f_test, test_y[task])} for task in train_y}
    losses = [json.loads(line)["loss"] for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line]
    return {"probes": probes, "effective_rank": effective_rank(f_test), "steps": state["step"],
            "final_loss": sum(losses[-5:]) / len(losses[-5:])}


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
    results.setdefault("variants", {})
    extra = ([f"optim.epochs={args.epochs}"] if args.epochs else []) + args.overrides
    sets = None
    for name in names:
        overrides = VARIANTS[name] + extra + ["run.evaluate=false"]
        cfg = load_config(ROOT / "configs" / "cpu_default.yaml", overrides)
        run_dir = Path(args.runs) / name.split(" ")[0]
        start = time.perf_counter()
        train(cfg, run_dir, quiet=True)
        sets = sets or probe_sets(cfg)
        result = probe_run(run_dir, sets)
        result.update(overrides=overrides, minutes=(time.perf_counter() - start) / 60)
        results["variants"][name] = result
        chance = {t: float(torch.bincount(sets[3][t]).max()) / len(sets[3][t]) for t in sets[3]}
        results["meta"] = {"config": "configs/cpu_default.yaml", "epochs": cfg.optim.epochs, "chance": chance,
                           "paper_top1": PAPER, "command": " ".join(["python tools/run_ablations.py"] + ([f"--epochs {args.epochs}"] if args.epochs else [])
                                               + [f"--set {o}" for o in args.overrides])}
        out.write_text(json.dumps(results, indent=1))
        line = "  ".join(f"{t} {100 * v['linear_probe']:.1f}/{100 * v['knn']:.1f}" for t, v in result["probes"].items())
        print(f"{name:22s} {result['minutes']:.1f} min, loss {result['final_loss']:.3f}: {line}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
