"""The end-of-run report: loss and probe curves, mask examples, and frozen-feature probes against baselines.

Written into the run folder as report.json, report.png and masks.png, with a short summary printed. The
probes follow the one protocol of :mod:`minijepa.evaluate` (validated linear probe and k-NN, feature choice
made on validation data) for every source: the trained target (EMA) encoder and context encoder, the same
architecture at random initialisation, raw pixels, and, when one was made for this config, the supervised
ceiling (:mod:`minijepa.supervised`).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from . import data as data_lib
from .config import Config
from .evaluate import chance_levels, evaluate_encoders, find_ceiling, format_summary, probe_sets
from .ijepa import IJEPA
from .vit import VisionTransformer

__all__ = ["context_use", "probe_curves", "write_report", "read_metrics"]

ENCODER_NAMES = {"target": "I-JEPA (target encoder)", "context": "I-JEPA (context encoder)"}


def read_metrics(path: Path) -> tuple[list[dict], list[dict]]:
    """(training records, probe records) of a run's metrics.jsonl; probe records carry a "probe" key."""
    path = Path(path)
    if not path.exists():
        return [], []
    records = [json.loads(line) for line in path.read_text().splitlines() if line]
    return [r for r in records if "loss" in r], [r for r in records if "probe" in r]


def probe_curves(probes: list[dict], task: str) -> dict:
    """Best and last point of each encoder's linear-probe curve on ``task`` (validation split of the quick probe)."""
    curves = {}
    if not probes:
        return curves
    for key in probes[-1]["probe"]:
        points = [(r["step"], r["probe"][key][task]["linear_probe"]) for r in probes if key in r["probe"]]
        best_step, best = max(points, key=lambda p: (p[1], -p[0]))
        curves[ENCODER_NAMES.get(key, key)] = {"task": task, "best": best, "best_step": best_step,
                                                "last": points[-1][1], "last_step": points[-1][0]}
    return curves


@torch.no_grad()
def context_use(ijepa: IJEPA, images: torch.Tensor, mask_sampler, seed: int = 0, batch_size: int = 256) -> dict:
    """Does the predictor use the image? Held-out loss with each image's own context vs another image's.

    The other image's context keeps everything else equal (token count, positions, statistics). A predictor
    that ignores the context (e.g. because the targets are predictable from their positions alone) scores
    the same with both: ``ratio`` = swapped / own near 1. A working one: clearly above 1.
    """
    was_training = ijepa.training
    ijepa.eval()
    device = next(ijepa.parameters()).device
    g = torch.Generator().manual_seed(seed)
    own = swapped = 0.0
    for start in range(0, len(images), batch_size):
        x = images[start:start + batch_size].to(device)
        masks = mask_sampler.sample(len(x), generator=g).to(device)
        targets = ijepa.compute_targets(x, masks)  # (b, M, T, D)
        context = ijepa.context_encoder(x, keep=masks.context)  # (b, K, D)
        own += ((ijepa.predictor(context, masks.context, masks.targets) - targets) ** 2).mean().item() * len(x)
        other = context.roll(1, dims=0)  # image i gets image i-1's context tokens
        swapped += ((ijepa.predictor(other, masks.context, masks.targets) - targets) ** 2).mean().item() * len(x)
    ijepa.train(was_training)
    own, swapped = own / len(images), swapped / len(images)
    return {"own_context_loss": own, "other_context_loss": swapped, "ratio": swapped / max(own, 1e-12)}


def _plot_curves(ax, probes: list[dict], task: str, metric: str, chance: float | None) -> None:
    for key in probes[-1]["probe"]:
        steps = [r["step"] for r in probes if key in r["probe"]]
        values = [100 * r["probe"][key][task][metric] for r in probes if key in r["probe"]]
        ax.plot(steps, values, marker="o", ms=3, label=ENCODER_NAMES.get(key, key))
    first = probes[0]
    if first["step"] == 0 and "context" in first["probe"]:
        ax.axhline(100 * first["probe"]["context"][task][metric], color="C2", ls="--", lw=1, label="random init (step 0)")
    if "pixels" in first:
        ax.axhline(100 * first["pixels"][task][metric], color="C3", ls="--", lw=1, label="pixels")
    if chance is not None:
        ax.axhline(100 * chance, color="k", ls=":", lw=1, label="chance")
    ax.set_xlabel("step")
    ax.set_ylabel("top-1 (%)")
    ax.set_title(f"{'Linear probe' if metric == 'linear_probe' else 'k-NN'} during training: {task} (validation)")
    ax.legend(fontsize=7)


def write_report(cfg: Config, ijepa: IJEPA, random_encoder: VisionTransformer, out_dir: Path, mask_sampler,
                 quiet: bool = False) -> dict:
    """``random_encoder``: the same architecture with untrained weights, the probes' baseline."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .viz import plot_loss_curve, plot_masks, plot_probe_results

    out_dir = Path(out_dir)
    device = next(ijepa.parameters()).device
    sets = probe_sets(cfg)
    test_x, test_y = sets[2], sets[3]
    encoders = {ENCODER_NAMES["target"]: ijepa.target_encoder, ENCODER_NAMES["context"]: ijepa.context_encoder,
                "random init": random_encoder.to(device)}
    results = evaluate_encoders(encoders, sets)
    chance = chance_levels(test_y)
    ceiling, ceiling_note = find_ceiling(cfg, [out_dir / "supervised.json", cfg.run.ceiling])
    records, probes = read_metrics(out_dir / "metrics.jsonl")
    task = cfg.data.eval_task if cfg.data.eval_task in test_y else next(iter(test_y))
    curves = probe_curves(probes, task)

    # Figures: loss and probe curves on top, the final probes below; masks on test images.
    fig, axes = plt.subplot_mosaic([["loss", "curve_lin", "curve_knn"], ["lin", "lin", "knn"]], figsize=(16, 8))
    if records:
        plot_loss_curve([r["step"] for r in records], [r["loss"] for r in records], ax=axes["loss"], smooth=5)
    for metric, key in (("linear_probe", "curve_lin"), ("knn", "curve_knn")):
        if probes:
            _plot_curves(axes[key], probes, task, metric, chance.get(task))
        else:
            axes[key].set_axis_off()
    bars = {s: {t: v for t, v in r.items() if t in test_y} for s, r in results.items()}
    if ceiling is not None:
        bars["supervised ceiling"] = {t: v for t, v in ceiling["probes"]["supervised"].items() if t in test_y}
    plot_probe_results(bars, "linear_probe", ax=axes["lin"], chance=chance)
    plot_probe_results(bars, "knn", ax=axes["knn"], chance=chance)
    axes["lin"].set_title("Linear probe on frozen features (validated, test split)")
    axes["knn"].set_title("k-NN (k=20) on frozen features (test split)")
    fig.tight_layout()
    fig.savefig(out_dir / "report.png", dpi=80)
    plt.close(fig)

    g = torch.Generator().manual_seed(cfg.run.seed)
    images = data_lib.denormalize(test_x[:8])
    masks = mask_sampler.sample(len(images), generator=g)
    fig = plot_masks(images, masks, cfg.model.patch_size, title=f"{cfg.masks.strategy} masks ({cfg.masks.mode})")
    fig.savefig(out_dir / "masks.png", dpi=90)
    plt.close(fig)

    report = {
        "probes": results,
        "ceiling": ceiling,
        "ceiling_note": ceiling_note,
        "probe_curves": curves,
        "context_use": context_use(ijepa, test_x, mask_sampler, seed=cfg.run.seed),
        "chance": chance,
        "final_loss": records[-1]["loss"] if records else None,
        "steps": records[-1]["step"] if records else 0,
        "probe_seconds": sum(r.get("probe_seconds", 0.0) for r in probes),
        "config": cfg.model.__dict__ | {"masks": cfg.masks.strategy},
    }
    (out_dir / "report.json").write_text(json.dumps(report, indent=2, default=str))
    if not quiet:
        print(format_summary(report))
    return report
