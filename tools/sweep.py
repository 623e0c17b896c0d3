"""Run a sweep of pretraining runs and record every one of them, failures included, in one results file.

A sweep is a YAML file (see tools/sweeps/): a base config, overrides shared by all runs (usually a shorter
budget), the seeds, and the runs, each a name and its ``--set`` overrides::

    base: configs/cpu_default.yaml
    common: [optim.epochs=4]
    seeds: [0]
    runs:
      default: []
      ema-0.99: ["optim.ema=[0.99, 0.999]"]

    python tools/sweep.py tools/sweeps/levers.yaml               # every run not yet recorded
    python tools/sweep.py tools/sweeps/levers.yaml --only default ema-0.99 --seeds 0 1
    python tools/sweep.py tools/sweeps/levers.yaml --table       # the table, ranked on validation accuracy
    python tools/sweep.py tools/sweeps/levers.yaml --table --markdown --out assets/sweeps/levers_data_v1.jsonl
    python tools/sweep.py tools/sweeps/levers.yaml --set optim.epochs=8 --out assets/sweeps/levers-8.jsonl

Each run trains with the pretraining script's own loop (``minijepa.train.train``), then both encoders are
probed with the report's protocol (``minijepa.evaluate.evaluate_encoders``: validated linear probe and k-NN,
last layer / last 4 chosen on validation), plus the predictor's context check and the effective rank of the
target features at the start and the end of training. The random-init encoder and raw pixels are probed once
per model/data set-up with the same protocol and stored in the same file. One JSON line per run is appended
to ``assets/sweeps/<sweep name>.jsonl`` as soon as the run ends; a run already recorded (same name, seed and
overrides) is skipped, so an interrupted sweep continues where it stopped.

Settings are ranked on the probe's *validation* accuracy (a split of the probe's training images); the test
accuracy is recorded beside it and is what the course reports once a setting is chosen.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
import traceback
from pathlib import Path

import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from minijepa.build import build_encoder, build_mask_sampler, load_trained_model, read_checkpoint  # noqa: E402
from minijepa.config import config_to_dict, load_config  # noqa: E402
from minijepa.evaluate import ceiling_fingerprint, chance_levels, evaluate_encoders, probe_sets  # noqa: E402
from minijepa.report import context_use, read_metrics  # noqa: E402
from minijepa.data import ShapesDataset  # noqa: E402
from minijepa.train import CHECKPOINT, NonFiniteLossError, train, trained_data_version  # noqa: E402


def plain_scores(results: dict) -> dict:
    """Per-task scores and the feature choice of one source (the per-choice details are dropped)."""
    return {k: v for k, v in results.items() if k != "choices"}


def baselines(cfg, sets) -> dict:
    """The random-init encoder (seeded from the run's seed) and raw pixels, under the runs' protocol."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.run.seed + 12345)
        random_encoder = build_encoder(cfg)
    results = evaluate_encoders({"random init": random_encoder}, sets)
    return {name: plain_scores(r) for name, r in results.items()}


def baseline_key(cfg) -> str:
    """Runs whose encoder architecture, data and seed agree share one random-init / pixels baseline."""
    fingerprint = ceiling_fingerprint(cfg)  # the encoder and data a supervised ceiling must share, too
    return json.dumps({"model": fingerprint["model"], "data": fingerprint["data"], "seed": cfg.run.seed}, sort_keys=True)


def same_data(record_key: str, key: str) -> bool:
    """Whether a recorded baseline key names the same encoder, data and seed as ``key``.

    Keys recorded before the embedded data set had a version (``shapes_version``) were made on its version 1.
    """
    recorded = json.loads(record_key)
    if recorded["data"].get("dataset") == "shapes":
        recorded["data"].setdefault("shapes_version", 1)
    return recorded == json.loads(key)


def run_overrides(spec: dict, name: str, extra: list[str] = ()) -> list[str]:
    """The ``--set`` overrides of run ``name``: the sweep's common ones, the run's own, then ``extra``."""
    return list(spec.get("common", [])) + list(spec["runs"][name] or []) + list(extra)


def _commit() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def set_aside_if_stale(run_dir: Path) -> Path | None:
    """A run folder whose checkpoint was trained on another version of the embedded images is renamed
    (``<run>.data_v<N>``, kept, never resumed), so the run starts over on the current images."""
    path = run_dir / CHECKPOINT
    if not path.exists():
        return None
    version = trained_data_version(read_checkpoint(path))
    if version is None or version == ShapesDataset.VERSION:
        return None
    aside = run_dir.with_name(f"{run_dir.name}.data_v{version}")
    n = 1
    while aside.exists():
        n += 1
        aside = run_dir.with_name(f"{run_dir.name}.data_v{version}.{n}")
    run_dir.rename(aside)
    print(f"{run_dir} was trained on version {version} of the embedded images: moved to {aside.name}", flush=True)
    return aside


def run_one(name: str, seed: int, overrides: list[str], base: Path, run_dir: Path) -> dict:
    """Train and probe one run; never raises for a failed run: the record says what went wrong."""
    record = {"kind": "run", "name": name, "seed": seed, "overrides": overrides, "commit": _commit()}
    start = time.perf_counter()
    try:
        cfg = load_config(base, overrides + [f"run.seed={seed}", "run.evaluate=false"])
        record["config"] = config_to_dict(cfg)
        train(cfg, run_dir, resume=True, quiet=True)
        record["train_minutes"] = (time.perf_counter() - start) / 60
        ijepa, cfg, state = load_trained_model(run_dir / "checkpoint.pt")
        probe_start = time.perf_counter()
        sets = probe_sets(cfg)
        results = evaluate_encoders({"target": ijepa.target_encoder, "context": ijepa.context_encoder}, sets,
                                    pixels=False)
        records, probes = read_metrics(run_dir / "metrics.jsonl")
        mask_sampler = build_mask_sampler(cfg, ijepa.context_encoder.grid)
        record.update(
            status="ok",
            steps=state["step"],
            final_loss=statistics.fmean(r["loss"] for r in records[-5:]),
            rank_start=records[0]["target_rank"], rank_end=records[-1]["target_rank"],
            probes={k: plain_scores(v) for k, v in results.items()},
            context_use=context_use(ijepa, sets[2], mask_sampler, seed=cfg.run.seed)["ratio"],
            probe_curve=[{"step": p["step"], **{enc: {t: v["linear_probe"] for t, v in p["probe"][enc].items()}
                                                 for enc in p["probe"]}} for p in probes],
            probe_minutes=(time.perf_counter() - probe_start) / 60,
            baseline_key=baseline_key(cfg),
        )
    except (NonFiniteLossError, ValueError, RuntimeError, FileNotFoundError) as e:
        record.update(status="failed", error=f"{type(e).__name__}: {e}", traceback=traceback.format_exc()[-2000:])
    record["minutes"] = (time.perf_counter() - start) / 60
    return record


def read_records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def best_encoder(record: dict, task: str) -> str:
    """The encoder with the higher *validation* accuracy on ``task`` (never chosen on the test split)."""
    return max(record["probes"], key=lambda enc: record["probes"][enc][task]["val_accuracy"])


def table(records: list[dict], task: str = "shape") -> str:
    """One row per run name: seeds, validation and test accuracy of the better encoder (mean and spread)."""
    runs = [r for r in records if r["kind"] == "run"]
    base = {r["key"]: r for r in records if r["kind"] == "baseline"}
    rows, names = [], list(dict.fromkeys(r["name"] for r in runs))
    header = (f"{'run':28s} {'seeds':>5s} {'min':>5s} {'val ' + task:>12s} {'test ' + task:>12s} {'kNN':>6s} "
              f"{'rand':>6s} {'pix':>6s} {'ctx':>5s} {'rank':>11s}  other labels (test, better encoder)")
    for name in names:
        group = [r for r in runs if r["name"] == name]
        ok = [r for r in group if r["status"] == "ok"]
        if not ok:
            last = group[-1]
            rows.append((-1.0, f"{name:28s} {len(group):5d}  {last['status'].upper()}: {last.get('error', '?')[:90]}"))
            continue
        enc = [best_encoder(r, task) for r in ok]
        val = [100 * r["probes"][e][task]["val_accuracy"] for r, e in zip(ok, enc)]
        test = [100 * r["probes"][e][task]["linear_probe"] for r, e in zip(ok, enc)]
        knn = [100 * r["probes"][e][task]["knn"] for r, e in zip(ok, enc)]
        b = base.get(ok[0]["baseline_key"], {}).get("probes", {})
        rand = 100 * b.get("random init", {}).get(task, {}).get("linear_probe", float("nan"))
        pix = 100 * b.get("pixels", {}).get(task, {}).get("linear_probe", float("nan"))

        def spread(xs):
            return f"{statistics.fmean(xs):5.1f}" + (f"±{(max(xs) - min(xs)) / 2:4.1f}" if len(xs) > 1 else "      ")

        others = "  ".join(f"{t[:3]} {statistics.fmean(100 * r['probes'][e][t]['linear_probe'] for r, e in zip(ok, enc)):.1f}"
                           for t in ok[0]["probes"][enc[0]] if not t.startswith("_") and t != task)
        failed = f" ({len(group) - len(ok)} failed)" if len(group) > len(ok) else ""
        rows.append((statistics.fmean(val),
                     f"{name:28s} {len(ok):5d} {statistics.fmean(r['minutes'] for r in ok):5.1f} {spread(val):>12s} "
                     f"{spread(test):>12s} {statistics.fmean(knn):6.1f} {rand:6.1f} {pix:6.1f} "
                     f"{statistics.fmean(r['context_use'] for r in ok):5.2f} "
                     f"{statistics.fmean(r['rank_start'] for r in ok):5.1f}>{statistics.fmean(r['rank_end'] for r in ok):<5.1f}"
                     f"  {others} [{'/'.join(sorted(set(enc)))}]{failed}"))
    rows.sort(key=lambda row: -row[0])
    return "\n".join([header] + [row for _, row in rows])


def markdown_table(records: list[dict], runs: dict, task: str = "shape") -> str:
    """The README's table: one row per run of the sweep file, in its order, its overrides as the label.

    Columns: seeds, validation and test accuracy on ``task`` of the encoder better on ``task``'s validation
    split (marked *target* when that is the target encoder), the other labels' test accuracy, the context
    check and the effective rank at the first / last logged step; ± is half the range over seeds. The
    random-init and pixel rows come from the baseline the first successful run was compared with.
    """
    def cell(xs):
        return f"{statistics.fmean(xs):.1f}" + (f" ± {(max(xs) - min(xs)) / 2:.1f}" if len(xs) > 1 else "")

    ok = [r for r in records if r["kind"] == "run" and r["status"] == "ok"]
    others = [t for t in (ok[0]["probes"]["context"] if ok else {}) if not t.startswith("_") and t != task]
    lines = [f"| run | seeds | {task}, validation | {task}, test | " + " | ".join(others)
             + " | context use | effective rank |", "|---" * (6 + len(others)) + "|"]
    for name, overrides in runs.items():
        group = [r for r in ok if r["name"] == name]
        label = ", ".join(f"`{o}`" for o in overrides) or "none"
        if not group:
            failed = [r for r in records if r["kind"] == "run" and r["name"] == name]
            what = f"failed: {failed[-1].get('error', '?')[:60]}" if failed else "not run"
            lines.append(f"| {label} | 0 | {what}{' |' * (4 + len(others))}")
            continue
        enc = [best_encoder(r, task) for r in group]
        if set(enc) == {"target"}:
            label += " (*target*)"
        scores = [cell([100 * r["probes"][e][t]["linear_probe"] for r, e in zip(group, enc)]) for t in others]
        lines.append(f"| {label} | {len(group)} | {cell([100 * r['probes'][e][task]['val_accuracy'] for r, e in zip(group, enc)])} | "
                     f"{cell([100 * r['probes'][e][task]['linear_probe'] for r, e in zip(group, enc)])} | " + " | ".join(scores)
                     + f" | x{statistics.fmean(r['context_use'] for r in group):.2f} | "
                     f"{statistics.fmean(r['rank_start'] for r in group):.0f} -> {statistics.fmean(r['rank_end'] for r in group):.0f} |")
    base = {r["key"]: r for r in records if r["kind"] == "baseline"}
    if ok and ok[0]["baseline_key"] in base:
        for source, probes in base[ok[0]["baseline_key"]]["probes"].items():
            lines.append(f"| {source} (same probe) | | {100 * probes[task]['val_accuracy']:.1f} | "
                         f"{100 * probes[task]['linear_probe']:.1f} | "
                         + " | ".join(f"{100 * probes[t]['linear_probe']:.1f}" for t in others) + " | | |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep", help="sweep YAML (tools/sweeps/*.yaml)")
    parser.add_argument("--only", nargs="*", default=None, help="run names to run (default: all)")
    parser.add_argument("--seeds", nargs="*", type=int, default=None, help="seeds (default: the sweep's)")
    parser.add_argument("--table", action="store_true", help="print the table of recorded runs and stop")
    parser.add_argument("--markdown", action="store_true", help="with --table: the README's Markdown table")
    parser.add_argument("--task", default="shape", help="label the table ranks on (default: shape)")
    parser.add_argument("--out", default=None, help="results file (default assets/sweeps/<sweep name>.jsonl)")
    parser.add_argument("--runs", default=None, help="run folders (default runs/sweeps/<sweep name>/)")
    parser.add_argument("--set", dest="extra", action="append", default=[], metavar="KEY=VALUE",
                        help="one more override for every run, after the sweep's (recorded with the run)")
    args = parser.parse_args(argv)
    spec_path = Path(args.sweep)
    spec = yaml.safe_load(spec_path.read_text())
    runs = spec["runs"]
    out = Path(args.out or ROOT / "assets" / "sweeps" / f"{spec_path.stem}.jsonl")
    run_root = Path(args.runs or ROOT / "runs" / "sweeps" / spec_path.stem)
    if args.table:
        records = read_records(out)
        print(markdown_table(records, runs, args.task) if args.markdown else table(records, args.task))
        return 0
    names = args.only or list(runs)
    unknown = [n for n in names if n not in runs]
    if unknown:
        parser.error(f"unknown run(s) {unknown}; the sweep has {list(runs)}")
    base = ROOT / spec["base"]
    out.parent.mkdir(parents=True, exist_ok=True)
    for seed in args.seeds if args.seeds is not None else spec.get("seeds", [0]):
        for name in names:
            overrides = run_overrides(spec, name, args.extra)
            try:
                want = baseline_key(load_config(base, overrides + [f"run.seed={seed}"]))
            except Exception:  # a bad config: run_one records the failure
                want = None
            done = [r for r in read_records(out) if r["kind"] == "run" and r["name"] == name and r["seed"] == seed
                    and r["overrides"] == overrides and r["status"] == "ok"
                    and want is not None and same_data(r.get("baseline_key", want), want)]  # not other images
            if done:
                continue
            run_dir = run_root / f"{name}-s{seed}"
            set_aside_if_stale(run_dir)
            record = run_one(name, seed, overrides, base, run_dir)
            record["sweep"] = spec_path.stem
            if record["status"] == "ok":
                keys = {r["key"] for r in read_records(out) if r["kind"] == "baseline"}
                if record["baseline_key"] not in keys:
                    cfg = load_config(base, overrides + [f"run.seed={seed}"])
                    sets = probe_sets(cfg)
                    with out.open("a") as f:
                        f.write(json.dumps({"kind": "baseline", "key": record["baseline_key"],
                                            "probes": baselines(cfg, sets), "chance": chance_levels(sets[3])}) + "\n")
            with out.open("a") as f:
                f.write(json.dumps(record) + "\n")
            if record["status"] == "ok":
                e = best_encoder(record, args.task)
                p = record["probes"][e][args.task]
                print(f"{name} seed {seed}: {record['minutes']:.1f} min, loss {record['final_loss']:.3f}, {args.task} "
                      f"val {100 * p['val_accuracy']:.1f} test {100 * p['linear_probe']:.1f} ({e}), "
                      f"context use x{record['context_use']:.2f}, rank {record['rank_start']:.1f}->{record['rank_end']:.1f}",
                      flush=True)
            else:
                print(f"{name} seed {seed}: FAILED {record['error']}", flush=True)
    print(table(read_records(out), args.task))
    return 0


if __name__ == "__main__":
    sys.exit(main())
