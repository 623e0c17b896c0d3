"""Every benchmark, then one summary table against the targets: ``python benchmarks/run_all.py [--quick]``
(or ``make bench``).

Runs benchmarks/bench_masks.py (mask samplers) and benchmarks/bench_train.py (training step, MFU, where the
time goes), each printing its own table, then a summary: ours against the official I-JEPA code, with the
project's speed targets (mask sampler >= 10x; training step >= 1.3x on the course config and >= 1.2x on the
paper's shape, float32, CPU, 2 threads). The official columns need IJEPA_REPO (a checkout of
facebookresearch/ijepa); without it they are skipped.

Options other than ``--quick``, ``--only`` and ``--json`` go to bench_train.py (e.g. ``--threads 1``,
``--no-memory``, ``--settings course``, ``--steps 50``); see ``python benchmarks/bench_train.py --help``.
``--quick`` runs both on tiny sizes for a few steps: a smoke test, whose numbers mean nothing.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench_masks  # noqa: E402
import bench_train  # noqa: E402

# (what, minimum ratio ours / official)
TARGETS = {
    ("masks", "14x14"): 10.0,
    ("masks", "8x8"): 10.0,
    ("train", "course"): 1.3,
    ("train", "paper"): 1.2,
}


def summary_rows(masks: list[dict], train: list[dict]) -> list[list[str]]:
    rows = []
    for r in masks:
        if r["sampler"] != "MultiBlockMasks unbiased":
            continue
        target = TARGETS.get(("masks", r["grid"]))
        ratio = r.get("speed-up")
        rows.append(["masks", f"multi-block sampler {r['grid']}, ms/batch of 128", f"{r['ms']:.2f}",
                     f"{r['official ms']:.2f}" if ratio else "-", f"{ratio:.1f}x" if ratio else "-",
                     f">= {target:g}x" if target else "", verdict(ratio, target)])  # fmt: skip
    by_key = {(r["setting"], r["row"]): r for r in train}
    for setting in dict.fromkeys(r["setting"] for r in train):
        ours, official = by_key.get((setting, "ours")), by_key.get((setting, "official"))
        if ours is None:
            continue
        ratio = ours.get("vs official")  # median of per-round ratios (bench_train.py)
        target = TARGETS.get(("train", setting))
        rows.append(["train", f"{setting}: images/s (same masks)", f"{ours['img/s']:.1f}",
                     f"{official['img/s']:.1f}" if official else "-",
                     f"{ratio:.2f}x [{ours['ratio IQR']}]" if ratio else "-",
                     f">= {target:g}x" if target else "", verdict(ratio, target)])  # fmt: skip
        rows.append(["train", f"{setting}: MFU", f"{100 * ours['MFU']:.1f}%",
                     f"{100 * official['MFU']:.1f}%" if official else "-", "", "", ""])  # fmt: skip
        for label, what in (("ours, AdamW loop", "ours with the AdamW loop"),
                            ("ours, compiled", "ours, torch.compile"),
                            ("ours, own masks", "ours with its own (unbiased) masks")):
            row = by_key.get((setting, label))
            if row:
                ratio = row.get("vs official")
                rows.append(["train", f"{setting}: images/s, {what}", f"{row['img/s']:.1f}", "",
                             f"{ratio:.2f}x [{row['ratio IQR']}]" if ratio else "", "", ""])  # fmt: skip
    return rows


QUICK = False


def verdict(ratio, target) -> str:
    if not ratio or not target:
        return ""
    if QUICK:
        return "(quick)"
    return "met" if ratio >= target else "NOT met"


def print_summary(rows: list[list[str]]) -> None:
    header = ["bench", "what", "ours", "official", "ratio", "target", ""]
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(header)]
    line = "  ".join(h.ljust(w) if i < 2 else h.rjust(w) for i, (h, w) in enumerate(zip(header, widths)))
    print(line)
    print("-" * len(line))
    for r in rows:
        print("  ".join(v.ljust(w) if i < 2 else v.rjust(w) for i, (v, w) in enumerate(zip(r, widths))))


def main(argv=None) -> int:
    global QUICK
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, few repeats: a smoke test")
    parser.add_argument("--only", default="masks,train", help="comma-separated: masks, train")
    parser.add_argument("--json", default=None, help="write all results to this JSON file")
    args, train_args = parser.parse_known_args(argv)
    QUICK = args.quick
    quick = ["--quick"] if args.quick else []
    only = set(args.only.split(","))
    masks, train = [], []
    if "masks" in only:
        print("=" * 30 + " mask samplers (benchmarks/bench_masks.py) " + "=" * 30, flush=True)
        masks = bench_masks.main(quick)
        print()
    if "train" in only:
        print("=" * 30 + " training step (benchmarks/bench_train.py) " + "=" * 30, flush=True)
        train = bench_train.main(quick + train_args)
        print()
    print("=" * 30 + " summary: ours vs the official code" + (" (--quick: not a measurement)" if args.quick else "")
          + " " + "=" * 30)  # fmt: skip
    print_summary(summary_rows(masks, train))
    if args.json:
        Path(args.json).write_text(json.dumps({"masks": masks, "train": train}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
