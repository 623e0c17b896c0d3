"""How fast are the mask samplers? ``python benchmarks/bench_masks.py [--quick]``

Times one collate call (``sampler(batch)``: default_collate of 128 items plus the masks) per batch of 128,
on the paper's 14 x 14 grid (224 px, patch 16) and the course's 8 x 8 grid (32 px, patch 4), and prints
the median over repeats in ms per batch and masks (images) per second.

Runs single-threaded: a collate_fn runs inside DataLoader workers, where PyTorch uses one thread.

Set IJEPA_REPO to a checkout of facebookresearch/ijepa to time its MaskCollator side by side, e.g.

    mkdir /tmp/ijepa && git -C <mirror of ijepa> archive HEAD | tar -x -C /tmp/ijepa
    IJEPA_REPO=/tmp/ijepa python benchmarks/bench_masks.py

The official collator loops forever on batches that draw a target block of <= min_keep patches (about
half of them on the 8 x 8 grid). We time it only on the batches it finishes: its block sizes come from
a generator seeded with its batch counter, so we peek at the next size and skip the hanging ones.
Our reference mode raises RuntimeError on those batches; they are skipped too (and counted).

``--quick`` times 5 calls per row instead of 50 (a smoke test, not a measurement).
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import time
import warnings
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # runnable as a script from anywhere
    sys.path.insert(0, str(ROOT))

from minijepa.masks import BlockMasks, MultiBlockMasks, RandomMasks, RasterizedMasks  # noqa: E402

BATCH = 128
REPEATS = 50  # timed calls per row; we report the median
PAPER = dict(num_targets=4, target_scale=(0.15, 0.2), target_aspect_ratio=(0.75, 1.5),
             context_scale=(0.85, 1.0), min_keep=10)  # fmt: skip


def median_ms(call, repeats: int = REPEATS, warmup: int = 3) -> tuple[float, int]:
    """Median wall time of ``call()`` in ms over ``repeats`` successful calls, and the number of skips.

    ``call`` returns False for a batch it skipped (not timed)."""
    times, skipped = [], 0
    while len(times) < repeats + warmup:
        start = time.perf_counter()
        ok = call()
        elapsed = time.perf_counter() - start
        if ok is False:
            skipped += 1
        else:
            times.append(elapsed)
    return 1e3 * statistics.median(times[warmup:]), skipped


def ours(sampler, batch):
    def call():
        try:
            sampler(batch)
        except RuntimeError:  # reference mode where the official code would hang
            return False
        return True

    return call


def official(collator, batch):
    """Time the official MaskCollator on the batches it finishes (see the module docstring)."""

    def call():
        g = torch.Generator().manual_seed(collator._itr_counter.value + 1)  # the seed its next call uses
        h, w = collator._sample_block_size(g, collator.pred_mask_scale, collator.aspect_ratio)
        if h * w <= collator.min_keep:  # would loop forever: skip this batch
            collator.step()
            return False
        collator(batch)
        return True

    return call


def load_official():
    repo = os.environ.get("IJEPA_REPO")
    if not repo:
        return None, "IJEPA_REPO not set: official MaskCollator not timed"
    sys.path.insert(0, repo)
    try:
        from src.masks.multiblock import MaskCollator
    except ImportError as error:
        return None, f"could not import src.masks.multiblock from IJEPA_REPO={repo}: {error}"
    logging.disable(logging.WARNING)  # its "Valid mask not found" warnings would flood the output
    return MaskCollator, f"official MaskCollator from {repo}"


def main(argv=None) -> list[dict]:
    """Print the table; return its rows as dicts (for benchmarks/run_all.py)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="5 calls per row: a smoke test, not a measurement")
    args = parser.parse_args(argv)
    repeats = 5 if args.quick else REPEATS
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    warnings.simplefilter("ignore", RuntimeWarning)  # reference mode warns on the 8 x 8 grid
    MaskCollator, note = load_official()
    batch = [torch.zeros(()) for _ in range(BATCH)]  # the same tiny items for every collator

    rows = []  # (name, grid, sampler, official collator or None)
    for grid, pixels, patch in ((14, 224, 16), (8, 32, 4)):
        collator = None
        if MaskCollator is not None:
            collator = MaskCollator(
                input_size=(pixels, pixels), patch_size=patch, enc_mask_scale=PAPER["context_scale"],
                pred_mask_scale=PAPER["target_scale"], aspect_ratio=PAPER["target_aspect_ratio"],
                nenc=1, npred=PAPER["num_targets"], min_keep=PAPER["min_keep"], allow_overlap=False,
            )  # fmt: skip
        for mode in ("unbiased", "reference"):
            rows.append((f"MultiBlockMasks {mode}", grid, MultiBlockMasks(grid, mode=mode, **PAPER), collator))
        rows.append(("RandomMasks", grid, RandomMasks(grid), None))
        rows.append(("BlockMasks", grid, BlockMasks(grid), None))
        rows.append(("RasterizedMasks", grid, RasterizedMasks(grid), None))

    print(f"torch {torch.__version__}, 1 thread, batch {BATCH}, median of {repeats} calls; {note}\n")
    header = f"{'sampler':<27}{'grid':>6}{'ms/batch':>10}{'masks/s':>10}{'skipped':>9}"
    header += f"{'official ms':>13}{'skipped':>9}{'speed-up':>10}"
    print(header)
    print("-" * len(header))
    official_ms = {}  # grid -> (ms, skipped), timed once per grid
    results = []
    for name, grid, sampler, collator in rows:
        ms, skipped = median_ms(ours(sampler, batch), repeats=repeats)
        result = {"sampler": name, "grid": f"{grid}x{grid}", "ms": ms, "masks/s": BATCH / ms * 1e3}
        line = f"{name:<27}{f'{grid}x{grid}':>6}{ms:>10.2f}{BATCH / ms * 1e3:>10.0f}{skipped:>9}"
        if collator is not None:
            if grid not in official_ms:
                official_ms[grid] = median_ms(official(collator, batch), repeats=max(repeats // 2, 3))
            ref_ms, ref_skipped = official_ms[grid]
            line += f"{ref_ms:>13.2f}{ref_skipped:>9}{ref_ms / ms:>9.1f}x"
            result.update({"official ms": ref_ms, "speed-up": ref_ms / ms})
        print(line)
        results.append(result)
    print("\nspeed-up = official ms / our ms (same paper settings, same default_collate work).")
    torch.set_num_threads(threads)
    return results


if __name__ == "__main__":
    main()
