"""The paper's ablations at the course's scale: masking strategies, and targets in representation vs pixel space.

A sweep (``tools/sweep.py``) over ``tools/ablations.yaml``: each variant is the course's default run
(configs/cpu_default.yaml) with one thing changed, at half its length, for two seeds. Every run is trained by
the pretraining script and probed with the report's protocol (minijepa.evaluate.evaluate_encoders: the
validated linear probe and k-NN on both encoders, feature choice made on validation data, four labels); the
random-init and pixel baselines are probed once per seed with the same protocol. Every run, failures
included, is a line of ``assets/ablations/results.jsonl`` (an interrupted call resumes there); the summary
over seeds that notebook 08 reads is ``assets/ablations/results.json``.

    python tools/run_ablations.py                         # every run not yet recorded (~5 min each on 2 cores)
    python tools/run_ablations.py --seeds 0 1 2           # one more seed
    python tools/run_ablations.py --only random block     # some variants
    python tools/run_ablations.py --summary               # only rewrite results.json from the records

An ordering of the paper (``multi-block > random``, ...) counts as reproduced when the mean gap between the
two variants is larger than the spread (max - min over seeds) of either of them; see :func:`ordering`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

import sweep  # noqa: E402

SPEC = ROOT / "tools" / "ablations.yaml"
ABLATIONS = yaml.safe_load(SPEC.read_text())
VARIANTS = ABLATIONS["runs"]  # name -> --set overrides of configs/cpu_default.yaml
PAPER = ABLATIONS["paper_top1"]
ORDERINGS = [("multi-block", "rasterized"), ("multi-block", "block"), ("multi-block", "random"),
             ("multi-block", "pixel targets")]  # the paper's: the first of each pair is ahead
PROTOCOL = "minijepa.evaluate.evaluate_encoders (validated logistic probe, k-NN; last layer / last 4 chosen on validation)"
RECORDS = ROOT / "assets" / "ablations" / "results.jsonl"
SUMMARY = ROOT / "assets" / "ablations" / "results.json"


def _per_task(probes: dict, key: str) -> dict:
    return {t: v[key] for t, v in probes.items() if not t.startswith("_")}


def summarize(records: list[dict], extra: list[str] = ()) -> dict:
    """Per variant, the per-seed scores of its successful runs (those with the spec's overrides + ``extra``)."""
    baselines = {r["key"]: r for r in records if r["kind"] == "baseline"}
    variants, chance = {}, None
    for name in VARIANTS:
        full = sweep.run_overrides(ABLATIONS, name, extra)
        group = [r for r in records if r["kind"] == "run" and r["name"] == name and r["overrides"] == full]
        ok = sorted((r for r in group if r["status"] == "ok"), key=lambda r: r["seed"])
        if not group:
            continue
        entry = {"overrides": full, "seeds": [r["seed"] for r in ok], "failed": [
            {"seed": r["seed"], "error": r.get("error")} for r in group if r["status"] != "ok"]}
        if ok:
            entry.update(
                steps=ok[0]["steps"],
                minutes=statistics.fmean(r["minutes"] for r in ok),
                final_loss=[r["final_loss"] for r in ok],
                context_use=[r["context_use"] for r in ok],
                rank=[[r["rank_start"], r["rank_end"]] for r in ok],
                encoders={enc: {metric: [_per_task(r["probes"][enc], metric) for r in ok]
                                for metric in ("linear_probe", "knn", "val_accuracy")}
                          for enc in ok[0]["probes"]},
                features={enc: [r["probes"][enc]["_features"]["choice"] for r in ok] for enc in ok[0]["probes"]},
                baselines=[{src: {metric: _per_task(p, metric) for metric in ("linear_probe", "knn")}
                            for src, p in baselines[r["baseline_key"]]["probes"].items()}
                           for r in ok if r["baseline_key"] in baselines],  # per seed: random init, pixels
            )
            chance = chance or baselines.get(ok[0]["baseline_key"], {}).get("chance")
        variants[name] = entry
    return {"variants": variants, "chance": chance, "paper_top1": PAPER, "orderings": ORDERINGS,
            "meta": {"protocol": PROTOCOL, "config": ABLATIONS["base"], "sweep": "tools/ablations.yaml",
                     "common": list(ABLATIONS.get("common", [])) + list(extra), "records": "assets/ablations/results.jsonl",
                     "command": " ".join(["python tools/run_ablations.py"] + [f"--set {o}" for o in extra])}}


def seed_scores(variant: dict, task: str | None = None) -> list[float]:
    """Test accuracy per seed of the run's better encoder, chosen on *validation* accuracy.

    ``task`` None: the mean over the labels (the encoder chosen on the mean validation accuracy).
    """
    out = []
    for i in range(len(variant["seeds"])):
        def score(enc, metric):
            values = variant["encoders"][enc][metric][i]
            return values[task] if task else statistics.fmean(values.values())
        best = max(variant["encoders"], key=lambda enc: score(enc, "val_accuracy"))
        out.append(score(best, "linear_probe"))
    return out


def ordering(summary: dict, a: str, b: str, task: str | None = "shape") -> dict:
    """Is ``a`` ahead of ``b`` by more than the spread between seeds of either?"""
    sa, sb = seed_scores(summary["variants"][a], task), seed_scores(summary["variants"][b], task)
    gap = statistics.fmean(sa) - statistics.fmean(sb)
    spread = max(max(sa) - min(sa), max(sb) - min(sb))
    if len(sa) < 2 or len(sb) < 2:
        verdict = "one seed: no verdict"
    elif abs(gap) <= spread:
        verdict = "within the seeds' spread"
    else:
        verdict = "yes" if gap > 0 else "no (reversed)"
    return {"a": a, "b": b, "task": task or "mean", "gap": gap, "spread": spread, "verdict": verdict,
            "a_scores": sa, "b_scores": sb}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", default=None, help=f"variants to run, from {list(VARIANTS)}")
    parser.add_argument("--seeds", nargs="*", type=int, default=None, help="seeds (default: tools/ablations.yaml's)")
    parser.add_argument("--set", dest="extra", action="append", default=[], metavar="KEY=VALUE",
                        help="one more override for every variant, e.g. --set optim.epochs=8")
    parser.add_argument("--summary", action="store_true", help="only rewrite the summary from the records")
    parser.add_argument("--runs", default=str(ROOT / "runs" / "ablations"))
    parser.add_argument("--out", default=str(RECORDS), help="the records (one JSON line per run)")
    parser.add_argument("--summary-out", default=str(SUMMARY), help="the summary over seeds (notebook 08)")
    args = parser.parse_args(argv)
    if not args.summary:
        sweep_args = [str(SPEC), "--out", args.out, "--runs", args.runs] + [f"--set={o}" for o in args.extra]
        sweep_args += (["--only", *args.only] if args.only else []) + (
            ["--seeds", *map(str, args.seeds)] if args.seeds is not None else [])
        if sweep.main(sweep_args) != 0:
            return 1
    summary = summarize(sweep.read_records(Path(args.out)), args.extra)
    out = Path(args.summary_out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=1))
    print(f"summary over seeds: {out}")
    for a, b in ORDERINGS:
        if a in summary["variants"] and b in summary["variants"] and summary["variants"][b]["seeds"]:
            for task in ("shape", None):
                o = ordering(summary, a, b, task)
                print(f"  {a} > {b} ({o['task']}): gap {100 * o['gap']:+.1f} points, spread {100 * o['spread']:.1f}: "
                      f"{o['verdict']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
