"""The end-of-run report: loss curve, mask examples, and frozen-feature probes against two baselines.

Written into the run folder as report.json, report.png and masks.png, with a short summary printed.
The probes compare three feature sources with the same protocol: the trained target encoder, an encoder
with random initial weights (same architecture), and raw pixels.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from . import data as data_lib
from .config import Config
from .evaluate import effective_rank, extract_features, feature_std, knn_classify, linear_probe, pixel_features
from .ijepa import IJEPA
from .vit import VisionTransformer

__all__ = ["probe_sets", "probe_encoders", "context_use", "write_report"]


def _stack(dataset) -> torch.Tensor:
    return torch.stack([dataset[i][0] for i in range(len(dataset))])


def probe_sets(cfg: Config):
    """(train images, train labels, test images, test labels), labels a dict task -> (N,) LongTensor.

    Images are normalised and at the model's resolution (no crop).
    """
    d, size = cfg.data, cfg.model.image_size
    if d.dataset == "shapes":
        train = data_lib.ShapesDataset(d.num_eval_images * 2, image_size=size, seed=cfg.run.seed)
        test = data_lib.build_dataset("shapes", split="test", image_size=size, num_images=d.num_eval_images, seed=cfg.run.seed)
        return (data_lib.normalize(_stack(train)), dict(train.labels),
                data_lib.normalize(_stack(test)), dict(test.labels))
    transform = data_lib.eval_transform(size)
    train = data_lib.build_dataset(d.dataset, root=d.root, split="train", image_size=size, transform=transform)
    test = data_lib.build_dataset(d.dataset, root=d.root, split="test", image_size=size, transform=transform)
    limit = d.num_eval_images * 2
    g = torch.Generator().manual_seed(0)
    tr_idx = torch.randperm(len(train), generator=g)[:limit].tolist()
    te_idx = torch.randperm(len(test), generator=g)[:d.num_eval_images].tolist()
    tr = [train[i] for i in tr_idx]
    te = [test[i] for i in te_idx]
    return (torch.stack([x for x, _ in tr]), {"label": torch.tensor([y for _, y in tr])},
            torch.stack([x for x, _ in te]), {"label": torch.tensor([y for _, y in te])})


def probe_encoders(sources: dict, train_x, train_y: dict, test_x, test_y: dict, probe_epochs: int = 200) -> dict:
    """Linear probe and k-NN accuracy for every feature source and task: {source: {task: {...}}}."""
    results = {}
    for name, featurize in sources.items():
        f_train, f_test = featurize(train_x), featurize(test_x)
        results[name] = {
            task: {
                "linear_probe": linear_probe(f_train, train_y[task], f_test, test_y[task], epochs=probe_epochs),
                "knn": knn_classify(f_train, train_y[task], f_test, test_y[task]),
            }
            for task in train_y
        }
        results[name]["_features"] = {"std": feature_std(f_test), "effective_rank": effective_rank(f_test),
                                      "dim": f_test.shape[1]}
    return results


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


def write_report(cfg: Config, ijepa: IJEPA, random_encoder: VisionTransformer, out_dir: Path, mask_sampler,
                 quiet: bool = False) -> dict:
    """``random_encoder``: the same architecture with untrained weights, the probes' baseline."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .viz import plot_loss_curve, plot_masks, plot_probe_results

    out_dir = Path(out_dir)
    device = next(ijepa.parameters()).device
    train_x, train_y, test_x, test_y = probe_sets(cfg)

    random_encoder = random_encoder.to(device)
    sources = {
        "I-JEPA (target encoder)": lambda x: extract_features(ijepa.target_encoder, x),
        "random init": lambda x: extract_features(random_encoder, x),
        "pixels": lambda x: pixel_features(x),
    }
    results = probe_encoders(sources, train_x, train_y, test_x, test_y)
    chance = {t: float(torch.bincount(test_y[t]).max()) / len(test_y[t]) for t in test_y}

    metrics_path = out_dir / "metrics.jsonl"
    records = [json.loads(line) for line in metrics_path.read_text().splitlines() if line] if metrics_path.exists() else []

    # Figures: loss curve + probes, and masks on training images.
    fig, axes = plt.subplots(1, 3, figsize=(16, 3.8))
    if records:
        plot_loss_curve([r["step"] for r in records], [r["loss"] for r in records], ax=axes[0], smooth=5)
    plain = {s: {t: v for t, v in r.items() if not t.startswith("_")} for s, r in results.items()}
    plot_probe_results(plain, "linear_probe", ax=axes[1], chance=chance)
    plot_probe_results(plain, "knn", ax=axes[2], chance=chance)
    axes[1].set_title("Linear probe on frozen features")
    axes[2].set_title("k-NN (k=20) on frozen features")
    fig.tight_layout()
    fig.savefig(out_dir / "report.png", dpi=90)
    plt.close(fig)

    g = torch.Generator().manual_seed(cfg.run.seed)
    images = data_lib.denormalize(test_x[:8])
    masks = mask_sampler.sample(len(images), generator=g)
    fig = plot_masks(images, masks, cfg.model.patch_size, title=f"{cfg.masks.strategy} masks ({cfg.masks.mode})")
    fig.savefig(out_dir / "masks.png", dpi=90)
    plt.close(fig)

    report = {
        "probes": results,
        "context_use": context_use(ijepa, test_x, mask_sampler, seed=cfg.run.seed),
        "chance": chance,
        "final_loss": records[-1]["loss"] if records else None,
        "steps": records[-1]["step"] if records else 0,
        "config": cfg.model.__dict__ | {"masks": cfg.masks.strategy},
    }
    (out_dir / "report.json").write_text(json.dumps(report, indent=2, default=str))
    if not quiet:
        print(format_summary(report))
    return report


def format_summary(report: dict) -> str:
    results = report["probes"]
    tasks = [t for t in next(iter(results.values())) if not t.startswith("_")]
    lines = [f"final loss {report['final_loss']:.4f} after {report['steps']} steps" if report["final_loss"] is not None else "",
             "top-1 accuracy (%) on frozen features: linear probe / k-NN",
             f"{'features':<26}" + "".join(f"{t:>16}" for t in tasks)]
    for source, per_task in results.items():
        lines.append(f"{source:<26}" + "".join(
            f"{100 * per_task[t]['linear_probe']:>9.1f} /{100 * per_task[t]['knn']:>5.1f}" for t in tasks))
    lines.append(f"{'chance':<26}" + "".join(f"{100 * report['chance'][t]:>16.1f}" for t in tasks))
    if report.get("context_use"):
        c = report["context_use"]
        lines.append(f"predictor's held-out loss: {c['own_context_loss']:.3f} with the image's own context, "
                     f"{c['other_context_loss']:.3f} with another image's (x{c['ratio']:.2f}; ~1 = the context is ignored)")
    return "\n".join(lines)
