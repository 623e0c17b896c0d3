"""What did the encoder learn? Frozen-feature evaluation and collapse measures.

The paper's protocol: freeze the (target) encoder, average-pool its patch tokens into one vector per image,
and fit a *linear* classifier on top (linear probe). A k-nearest-neighbour classifier on the same features
needs no training at all. Both are compared with the same protocol on a randomly initialised encoder and
on raw pixels, so a number means something only next to its baselines.

Collapse measures watch for the failure mode of joint-embedding methods: every image mapped to (almost)
the same vector. ``feature_std`` is the mean over dimensions of the per-dimension standard deviation across
a batch; ``effective_rank`` is exp(entropy) of the normalised singular values (1 = all features on a line).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = [
    "extract_features",
    "pixel_features",
    "linear_probe",
    "knn_classify",
    "feature_std",
    "effective_rank",
    "evaluate_features",
]


@torch.no_grad()
def extract_features(encoder: nn.Module, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Average-pooled patch tokens of a frozen encoder: images (N, C, H, W) -> (N, D)."""
    was_training = encoder.training
    encoder.eval()
    device = next(encoder.parameters()).device
    feats = []
    for start in range(0, len(images), batch_size):
        x = images[start:start + batch_size].to(device)
        feats.append(encoder(x).mean(dim=1).float().cpu())  # (b, N, D) -> (b, D)
    encoder.train(was_training)
    return torch.cat(feats)


def pixel_features(images: torch.Tensor, size: int = 16) -> torch.Tensor:
    """The raw-pixel baseline: images downsampled to size x size and flattened, (N, C*size*size)."""
    return F.adaptive_avg_pool2d(images.float(), size).flatten(1)


def _standardise(train: torch.Tensor, test: torch.Tensor):
    mean, std = train.mean(0, keepdim=True), train.std(0, keepdim=True) + 1e-6
    return (train - mean) / std, (test - mean) / std


def linear_probe(
    train_x: torch.Tensor,
    train_y: torch.Tensor,
    test_x: torch.Tensor,
    test_y: torch.Tensor,
    epochs: int = 100,
    lr: float = 1e-2,
    weight_decay: float = 1e-4,
    seed: int = 0,
) -> float:
    """Top-1 accuracy of a linear classifier trained on standardised frozen features (full-batch AdamW)."""
    train_x, test_x = _standardise(train_x.float(), test_x.float())
    num_classes = int(max(train_y.max(), test_y.max())) + 1
    g = torch.Generator().manual_seed(seed)
    weight = (torch.randn(train_x.shape[1], num_classes, generator=g) * 0.01).requires_grad_(True)
    bias = torch.zeros(num_classes, requires_grad=True)
    opt = torch.optim.AdamW([weight, bias], lr=lr, weight_decay=weight_decay)
    for _ in range(epochs):
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(train_x @ weight + bias, train_y).backward()
        opt.step()
    with torch.no_grad():
        return ((test_x @ weight + bias).argmax(1) == test_y).float().mean().item()


@torch.no_grad()
def knn_classify(
    train_x: torch.Tensor,
    train_y: torch.Tensor,
    test_x: torch.Tensor,
    test_y: torch.Tensor,
    k: int = 20,
    temperature: float = 0.07,
) -> float:
    """Top-1 accuracy of a weighted k-NN vote on cosine similarity (weights exp(sim / T), as in DINO)."""
    train_x = F.normalize(train_x.float(), dim=1)
    test_x = F.normalize(test_x.float(), dim=1)
    num_classes = int(max(train_y.max(), test_y.max())) + 1
    k = min(k, len(train_x))
    sims, idx = (test_x @ train_x.T).topk(k, dim=1)  # (n_test, k)
    votes = torch.zeros(len(test_x), num_classes)
    votes.scatter_add_(1, train_y[idx], (sims / temperature).exp())
    return (votes.argmax(1) == test_y).float().mean().item()


@torch.no_grad()
def feature_std(features: torch.Tensor) -> float:
    """Spread of features across samples: 1 when spread evenly in all directions, 0 when collapsed.

    Each feature vector is rescaled to norm sqrt(D) (so a layer-normed token is unchanged), then the std
    across samples is averaged over the D dimensions. Width-free, so one threshold fits every model.
    """
    z = features.float().flatten(1)
    z = F.normalize(z, dim=1) * z.shape[1] ** 0.5
    return z.std(dim=0).mean().item()


@torch.no_grad()
def effective_rank(features: torch.Tensor) -> float:
    """exp(entropy of the normalised singular values) of the centred (N, D) feature matrix, in [1, min(N, D)]."""
    z = features.float().flatten(1)
    z = z - z.mean(0, keepdim=True)
    s = torch.linalg.svdvals(z)
    p = s / s.sum().clamp_min(1e-12)
    entropy = -(p * (p + 1e-12).log()).sum()
    return entropy.exp().item()


def evaluate_features(train_x, train_y, test_x, test_y, probe_epochs: int = 100, k: int = 20) -> dict:
    return {
        "linear_probe": linear_probe(train_x, train_y, test_x, test_y, epochs=probe_epochs),
        "knn": knn_classify(train_x, train_y, test_x, test_y, k=k),
    }


# ----------------------------------------------------------------------------------------------------------
# Command line: python -m minijepa.evaluate --checkpoint runs/cpu_default/checkpoint.pt [--data ...]
# ----------------------------------------------------------------------------------------------------------


def main(argv=None) -> int:
    from .config import apply_overrides, config_from_dict
    from .report import format_summary, probe_encoders, probe_sets
    from .train import build_encoder, load_trained_model

    p = argparse.ArgumentParser(prog="python -m minijepa.evaluate", description="Linear probe and k-NN on frozen features.")
    p.add_argument("--checkpoint", required=True, help="checkpoint.pt written by minijepa.train")
    p.add_argument("--data", default=None, help="shapes, imagefolder, cifar10 or stl10 (default: the run's dataset)")
    p.add_argument("--root", default=None, help="folder of the dataset (imagefolder, cifar10, stl10)")
    p.add_argument("--encoder", default="target", choices=["target", "context"], help="which encoder to evaluate")
    p.add_argument("--num-images", type=int, default=None, help="test images (training images: twice as many)")
    p.add_argument("--json", default=None, help="also write the results to this JSON file")
    args = p.parse_args(argv)
    try:
        path = Path(args.checkpoint)
        ijepa, run_cfg, state = load_trained_model(path)
        sets = []
        if args.data:
            sets.append(f"data.dataset={args.data}")
        if args.root:
            sets.append(f"data.root={args.root}")
        if args.num_images:
            sets.append(f"data.num_eval_images={args.num_images}")
        cfg = config_from_dict(apply_overrides(state["config"], sets))
        encoder = ijepa.target_encoder if args.encoder == "target" else ijepa.context_encoder
        torch.manual_seed(cfg.run.seed + 12345)
        random_encoder = build_encoder(cfg)
        train_x, train_y, test_x, test_y = probe_sets(cfg)
        sources = {
            f"I-JEPA ({args.encoder} encoder)": lambda x: extract_features(encoder, x),
            "random init": lambda x: extract_features(random_encoder, x),
            "pixels": pixel_features,
        }
        results = probe_encoders(sources, train_x, train_y, test_x, test_y)
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    chance = {t: float(torch.bincount(test_y[t]).max()) / len(test_y[t]) for t in test_y}
    report = {"probes": results, "chance": chance, "final_loss": None, "steps": state.get("step", 0),
              "checkpoint": str(path), "data": cfg.data.dataset}
    print(format_summary(report))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
