"""What did the encoder learn? Frozen-feature evaluation: the one protocol of the course.

Freeze an encoder, average-pool its patch tokens into one vector per image, and ask two questions:
- **linear probe** (:func:`logistic_probe`): is the label a *linear* function of the features? Standardised
  features, L2-regularised multinomial logistic regression (L-BFGS, the objective of scikit-learn's
  ``LogisticRegression``, checked against it in the tests), the regularisation
  strength C chosen on a held-out 20 % of the training split, then refit on the whole training split and
  scored once on the test split (the protocol of CLIP's linear-probe evaluation).
- **k-NN** (:func:`knn_classify`): do images with the same label lie *close* to each other? Cosine
  similarity, k = 20, votes weighted exp(sim / 0.07) (DINO's protocol). No training, no scaling.

They see different things. A linear map of mean-pooled tokens cannot read *where* something is unless the
encoder has written position into the content of its tokens; a k-NN on raw pixels matches templates and reads
position easily (two images with an object in the same corner are close pixel by pixel), but cannot see
past colour and texture. So pixels can win k-NN on position and lose the linear probe on it, and a random
ViT, whose sin-cos positions leak into its tokens, can read position better than a trained one: none of this
is a verdict on a method by itself. Every number is compared with baselines under the same protocol and the
same feature choices: the encoder at random initialisation, raw pixels, chance, and a supervised ceiling
(:mod:`minijepa.supervised`).

Feature choices (the paper's protocol allows both): the mean of the last layer's tokens (``last``) and the
concatenation of the last 4 layers' means (``last4``); for pixels, images average-pooled to 16 x 16 or 8 x 8.
Each source's choice is made on the validation split, never on the test split, and reported.

Collapse measures watch for the failure mode of joint-embedding methods, every image mapped to (almost)
the same vector: ``feature_std`` is the mean over dimensions of the per-dimension standard deviation across
a batch; ``effective_rank`` is exp(entropy) of the normalised singular values (1 = all features on a line).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from . import data as data_lib
from .config import Config

__all__ = [
    "extract_features",
    "encoder_features",
    "pixel_features",
    "linear_probe",
    "logistic_probe",
    "fit_logistic_regression",
    "validation_split",
    "knn_classify",
    "feature_std",
    "effective_rank",
    "probe_sets",
    "quick_probe_sets",
    "chance_levels",
    "evaluate_sources",
    "evaluate_encoders",
    "quick_probe",
    "format_summary",
    "ceiling_fingerprint",
    "find_ceiling",
    "PROBE_CS",
]

# The grid of inverse L2 strengths C tried by the validated probe (on standardised features).
PROBE_CS = tuple(float(c) for c in np.logspace(-4, 2, 7))
QUICK_CS = (1e-3, 1e-2, 1e-1, 1.0)  # the probe curves during training: fewer fits, same protocol


@torch.no_grad()
def extract_features(encoder: nn.Module, images: torch.Tensor, batch_size: int = 256, layers: int = 1) -> torch.Tensor:
    """Average-pooled patch tokens of a frozen encoder: images (N, C, H, W) -> (N, layers * D).

    ``layers=1``: the last layer's tokens (through the final norm). ``layers=4``: the means of the last 4
    layers' tokens (each through the final norm), concatenated.
    """
    return encoder_features(encoder, images, batch_size, layers=(layers,))[f"last{layers}" if layers > 1 else "last"]


@torch.no_grad()
def encoder_features(encoder: nn.Module, images: torch.Tensor, batch_size: int = 256,
                     layers: tuple[int, ...] = (1, 4)) -> dict[str, torch.Tensor]:
    """Several feature choices from one pass: {"last": (N, D), "last4": (N, 4D)} (at most the encoder's depth)."""
    was_training = encoder.training
    encoder.eval()
    device = next(encoder.parameters()).device
    depth = len(encoder.blocks)
    layers = tuple(sorted({min(n, depth) for n in layers}))
    deepest = max(layers)
    chunks: dict[int, list[torch.Tensor]] = {n: [] for n in layers}
    for start in range(0, len(images), batch_size):
        x = images[start:start + batch_size].to(device)
        pooled = [t.mean(dim=1).float().cpu() for t in encoder.last_layers(x, deepest)]  # deepest x (b, D)
        for n in layers:
            chunks[n].append(torch.cat(pooled[-n:], dim=1))  # (b, n * D)
    encoder.train(was_training)
    return {("last" if n == 1 else f"last{n}"): torch.cat(chunks[n]) for n in layers}


def pixel_features(images: torch.Tensor, size: int = 16) -> torch.Tensor:
    """The raw-pixel baseline: images downsampled to size x size and flattened, (N, C*size*size)."""
    return F.adaptive_avg_pool2d(images.float(), size).flatten(1)


def _standardise(train: torch.Tensor, test: torch.Tensor):
    """Both sets scaled with the training set's per-feature mean and std (a constant feature stays 0)."""
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
    """Top-1 accuracy of a linear classifier trained on standardised frozen features (full-batch AdamW).

    The simple probe that exercise 15 builds (fixed hyperparameters, no validation split). It can be several
    points off the best linear classifier; the course's reports use the validated :func:`logistic_probe`.
    """
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


def fit_logistic_regression(x: torch.Tensor, y: torch.Tensor, num_classes: int, C: float,
                            init: torch.Tensor | None = None, max_iter: int = 200) -> torch.Tensor:
    """L2-regularised multinomial logistic regression by L-BFGS: the weights (D + 1, classes), bias last.

    Minimises the objective of scikit-learn's ``LogisticRegression(C=C)``: C * (sum of cross-entropies)
    + ||W||^2 / 2, the bias not penalised; written as a mean, that is mean CE + ||W||^2 / (2 C n). Convex, so
    L-BFGS reaches the same optimum as scikit-learn (``tests/test_probe_protocol.py`` checks it) in a
    fraction of the time (matrix products instead of scikit-learn's per-sample loss loop: 0.1-1 s instead of
    several seconds for 2048 x 768 features), which keeps the report and the probe curves cheap.
    ``init`` warm-starts from a previous solution (the next C of a sweep).
    """
    x = torch.cat([x, torch.ones(len(x), 1, dtype=x.dtype)], dim=1)  # (n, D + 1): a constant feature for the bias
    weights = (init.clone() if init is not None else torch.zeros(x.shape[1], num_classes, dtype=x.dtype)).requires_grad_(True)
    l2 = 1.0 / (C * len(x))
    optimizer = torch.optim.LBFGS([weights], lr=1, max_iter=max_iter, history_size=20, tolerance_grad=1e-7,
                                  tolerance_change=1e-10, line_search_fn="strong_wolfe")

    def objective():  # L-BFGS re-evaluates the objective during its line search
        optimizer.zero_grad()
        loss = F.cross_entropy(x @ weights, y) + 0.5 * l2 * weights[:-1].pow(2).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        optimizer.step(objective)
    return weights.detach()


def _accuracy(weights: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> float:
    logits = x @ weights[:-1] + weights[-1]  # (n, classes)
    return (logits.argmax(1) == y).double().mean().item()


def validation_split(y: torch.Tensor, fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(fit indices, held-out indices): ``fraction`` of every class held out (at least one where a class has 2+)."""
    g = torch.Generator().manual_seed(seed)
    fit, held = [], []
    for c in torch.unique(y):
        idx = torch.nonzero(y == c).flatten()
        idx = idx[torch.randperm(len(idx), generator=g)]
        n_held = min(len(idx) - 1, max(1, round(fraction * len(idx)))) if len(idx) > 1 else 0
        held.append(idx[:n_held])
        fit.append(idx[n_held:])
    return torch.cat(fit).sort().values, torch.cat(held).sort().values


def logistic_probe(
    train_x: torch.Tensor,
    train_y: torch.Tensor,
    test_x: torch.Tensor,
    test_y: torch.Tensor,
    Cs: tuple[float, ...] = PROBE_CS,
    val_fraction: float = 0.2,
    seed: int = 0,
    max_iter: int = 200,
    patience: int = 2,
) -> dict:
    """The validated linear probe: {"accuracy": test top-1, "C": chosen, "val_accuracy": at that C, "val_curve"}.

    1. Hold out ``val_fraction`` of the training split (stratified by label, seeded).
    2. Standardise with the statistics of the remaining part; for each C (ascending, warm-started), fit an
       L2-regularised multinomial logistic regression (:func:`fit_logistic_regression`), score the held-out part;
       stop once ``patience`` weaker C values in a row have not beaten the best (the validation curve of a
       regularisation sweep rises to one peak, then falls as the probe overfits).
    3. Take the C with the best validation accuracy (ties: the stronger regularisation), refit the
       standardisation and the classifier on the whole training split, and score the test split once.

    The protocol of CLIP's linear probes (scikit-learn's L-BFGS logistic regression, C swept on a validation
    split, then refit). A convex problem: for moderate C, L-BFGS reaches its optimum and the number measures
    the features, not a training schedule. For the weakest regularisation of the grid on nearly separable
    features, the optimum lies far out and the ``max_iter`` cap ends the fit first (as scikit-learn's
    ``max_iter`` does); the result is still deterministic, and the validation split decides whether such a
    fit is the one kept.
    """
    x, x_test = train_x.float(), test_x.float()  # float32: 4x faster L-BFGS than float64, same accuracy
    num_classes = int(max(train_y.max(), test_y.max())) + 1
    fit, val = validation_split(train_y, val_fraction, seed)
    Cs = tuple(sorted(float(c) for c in Cs))
    x_fit, x_val = _standardise(x[fit], x[val])
    scores, weights = [], None
    for C in Cs:
        weights = fit_logistic_regression(x_fit, train_y[fit], num_classes, C, init=weights, max_iter=max_iter)
        scores.append(_accuracy(weights, x_val, train_y[val]) if len(val) else 0.0)
        if len(scores) - 1 - int(np.argmax(scores)) >= patience:  # past the peak: weaker C only overfits more
            break
    best = int(np.argmax(scores))  # the first maximum: the smallest C (strongest regularisation) among ties
    x_all, x_test = _standardise(x, x_test)
    weights = fit_logistic_regression(x_all, train_y, num_classes, Cs[best], max_iter=max_iter)
    return {"accuracy": _accuracy(weights, x_test, test_y), "C": Cs[best], "val_accuracy": scores[best],
            "val_curve": dict(zip(Cs, scores))}


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


# ----------------------------------------------------------------------------------------------------------
# The protocol: which images, which feature choices, which baselines
# ----------------------------------------------------------------------------------------------------------


def _stack(dataset) -> torch.Tensor:
    return torch.stack([dataset[i][0] for i in range(len(dataset))])


def probe_sets(cfg: Config):
    """(train images, train labels, test images, test labels), labels a dict task -> (N,) LongTensor.

    Images are normalised and at the model's resolution (no crop). The embedded data: the first
    ``2 * data.num_eval_images`` images of the training stream (seen unlabelled in pretraining, as ImageNet's
    training images are in the paper's probe) and ``data.num_eval_images`` of the test stream (never seen).
    Other data sets: seeded random subsets of their train and test splits.
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


def quick_probe_sets(sets, num_fit: int = 512, num_val: int = 256):
    """A small fit / validation pair for the probe curves during training, from the *training* split only.

    Choosing "the best step" on these never looks at the test split that the final report scores.
    """
    train_x, train_y, _, _ = sets
    if len(train_x) < num_fit + num_val:
        num_fit = len(train_x) * 2 // 3
        num_val = len(train_x) - num_fit
    fit, val = slice(0, num_fit), slice(num_fit, num_fit + num_val)
    return (train_x[fit], {t: y[fit] for t, y in train_y.items()},
            train_x[val], {t: y[val] for t, y in train_y.items()})


def chance_levels(labels: dict) -> dict:
    """Accuracy of always answering the most frequent class, per task."""
    return {t: float(torch.bincount(y).max()) / len(y) for t, y in labels.items()}


def evaluate_sources(sources: dict, train_y: dict, test_y: dict, Cs=PROBE_CS, k: int = 20) -> dict:
    """Linear probe and k-NN for every source, feature choice and task.

    ``sources``: {name: {choice: (train features, test features)}}. Each source's feature choice is the one
    with the best mean *validation* accuracy of the linear probe over the tasks; its scores are the source's
    top-level entries, so ``results[name][task]["linear_probe"]`` is what a table shows. Every choice's
    scores stay under ``results[name]["choices"]``.
    """
    results = {}
    for name, choices in sources.items():
        per_choice = {}
        for choice, (f_train, f_test) in choices.items():
            per_task = {}
            for task in train_y:
                probe = logistic_probe(f_train, train_y[task], f_test, test_y[task], Cs=Cs)
                per_task[task] = {"linear_probe": probe["accuracy"], "knn": knn_classify(f_train, train_y[task], f_test, test_y[task], k=k),
                                  "C": probe["C"], "val_accuracy": probe["val_accuracy"]}
            per_choice[choice] = per_task
        chosen = max(per_choice, key=lambda c: np.mean([v["val_accuracy"] for v in per_choice[c].values()]))
        f_test = choices[chosen][1]
        results[name] = dict(per_choice[chosen])
        results[name]["_features"] = {"choice": chosen, "std": feature_std(f_test), "effective_rank": effective_rank(f_test),
                                      "dim": f_test.shape[1]}
        results[name]["choices"] = per_choice
    return results


def feature_name(choice: str) -> str:
    """"last" -> "last layer", "last4" -> "last 4 layers", "pixels16" -> "16x16 pixels"."""
    if choice == "last":
        return "last layer"
    if choice.startswith("last"):
        return f"last {choice[4:]} layers"
    if choice.startswith("pixels"):
        return f"{choice[6:]}x{choice[6:]} pixels"
    return choice


def evaluate_encoders(encoders: dict, sets, pixels: bool = True, layers: tuple[int, ...] = (1, 4), Cs=PROBE_CS) -> dict:
    """The course's protocol on frozen encoders ({name: encoder}) and, with ``pixels``, the raw-pixel baseline.

    Every encoder gets the same feature choices (``layers``: last layer, last 4 layers) and pixels two sizes;
    each source's choice is made on validation data (:func:`evaluate_sources`).
    """
    train_x, train_y, test_x, test_y = sets
    sources = {}
    for name, encoder in encoders.items():
        tr, te = encoder_features(encoder, train_x, layers=layers), encoder_features(encoder, test_x, layers=layers)
        sources[name] = {choice: (tr[choice], te[choice]) for choice in tr}
    if pixels:
        sources["pixels"] = {f"pixels{s}": (pixel_features(train_x, s), pixel_features(test_x, s)) for s in (16, 8)}
    return evaluate_sources(sources, train_y, test_y, Cs=Cs)


def _quick_scores(f_fit, fit_y: dict, f_val, val_y: dict) -> dict:
    return {t: {"linear_probe": logistic_probe(f_fit, fit_y[t], f_val, val_y[t], Cs=QUICK_CS)["accuracy"],
                "knn": knn_classify(f_fit, fit_y[t], f_val, val_y[t])} for t in fit_y}


def quick_probe(encoders: dict, quick_sets, pixels: bool = False) -> dict:
    """One point of the probe curves: {name: {task: {"linear_probe", "knn"}}}, last-layer features.

    The report's protocol (validated logistic regression on a smaller C grid, k-NN) on a small fit /
    validation pair from the training split (:func:`quick_probe_sets`): a few seconds. ``pixels`` adds the
    raw-pixel level (16 x 16) under the key "pixels".
    """
    fit_x, fit_y, val_x, val_y = quick_sets
    out = {name: _quick_scores(extract_features(e, fit_x), fit_y, extract_features(e, val_x), val_y)
           for name, e in encoders.items()}
    if pixels:
        out["pixels"] = _quick_scores(pixel_features(fit_x), fit_y, pixel_features(val_x), val_y)
    return out


def ceiling_fingerprint(cfg: Config) -> dict:
    """What a supervised ceiling must share with a run to stand beside it: encoder, data, batch, steps."""
    encoder_keys = ("encoder", "image_size", "patch_size", "depth", "embed_dim", "num_heads", "drop_path_rate",
                    "patch_init", "pos_embed", "qk_norm", "parallel_blocks", "qkv_bias", "norm_bias")
    data = {"dataset": cfg.data.dataset, "root": cfg.data.root, "num_images": cfg.data.num_images,
            "num_eval_images": cfg.data.num_eval_images, "crop_scale": list(cfg.data.crop_scale)}
    if cfg.data.dataset == "shapes":
        data["shapes_version"] = data_lib.data_version(cfg.data.dataset)  # the embedded images are code
    return {
        "model": {k: getattr(cfg.model, k) for k in encoder_keys},
        "data": data,
        "optim": {"batch_size": cfg.optim.batch_size, "epochs": cfg.optim.epochs, "max_steps": cfg.optim.max_steps},
    }


def find_ceiling(cfg: Config, paths) -> tuple[dict | None, str]:
    """(the first supervised-ceiling result among ``paths`` made for this config, or None; a note saying why)."""
    want = json.loads(json.dumps(ceiling_fingerprint(cfg)))
    tried = []
    for path in paths:
        if path is None or not Path(path).is_file():
            continue
        result = json.loads(Path(path).read_text())
        if result.get("fingerprint") == want:
            return result, f"supervised ceiling from {path}"
        tried.append(str(path))
    command = "python -m minijepa.supervised --config CONFIG [--set ...] --out FILE, then run.ceiling=FILE"
    if tried:
        return None, f"no supervised ceiling for this config ({', '.join(tried)} belong(s) to another); {command}"
    return None, f"no supervised ceiling for this config; {command}"


def format_summary(report: dict) -> str:
    """The report's table: one row per feature source (its feature choice in brackets), linear / k-NN per task."""
    results = dict(report["probes"])
    if report.get("ceiling"):
        results["supervised ceiling"] = report["ceiling"]["probes"]["supervised"]
    tasks = [t for t in next(iter(results.values())) if not t.startswith("_") and t != "choices"]
    width = 44
    lines = []
    if report.get("final_loss") is not None:
        lines.append(f"final loss {report['final_loss']:.4f} after {report['steps']} steps")
    lines += ["top-1 accuracy (%) on the test split, frozen features: linear probe / k-NN",
              f"{'features [choice, made on validation]':<{width}}" + "".join(f"{t:>16}" for t in tasks)]
    for source, per_task in results.items():
        choice = per_task.get("_features", {}).get("choice")
        label = f"{source} [{feature_name(choice)}]" if choice else source
        lines.append(f"{label:<{width}}" + "".join(
            f"{100 * per_task[t]['linear_probe']:>9.1f} /{100 * per_task[t]['knn']:>5.1f}" for t in tasks))
    lines.append(f"{'chance (majority class)':<{width}}" + "".join(f"{100 * report['chance'][t]:>16.1f}" for t in tasks))
    if report.get("ceiling") is None and report.get("ceiling_note"):
        lines.append(report["ceiling_note"])
    for name, curve in (report.get("probe_curves") or {}).items():
        lines.append(f"probe curve, {name}, {curve['task']} (linear, validation): best {100 * curve['best']:.1f} % at step "
                     f"{curve['best_step']}, last {100 * curve['last']:.1f} % at step {curve['last_step']}")
    if report.get("context_use"):
        c = report["context_use"]
        lines.append(f"predictor's held-out loss: {c['own_context_loss']:.3f} with the image's own context, "
                     f"{c['other_context_loss']:.3f} with another image's (x{c['ratio']:.2f}; ~1 = the context is ignored)")
    return "\n".join(line for line in lines if line)


# ----------------------------------------------------------------------------------------------------------
# Command line: python -m minijepa.evaluate --checkpoint runs/cpu_default/checkpoint.pt [--data ...]
# ----------------------------------------------------------------------------------------------------------


def main(argv=None) -> int:
    """The command line; user errors print one line and exit 2 (minijepa.errors)."""
    from .errors import run_command

    return run_command(_main, argv)


def _main(argv=None) -> int:
    from .build import build_encoder, load_trained_model
    from .config import apply_overrides, config_from_dict

    p = argparse.ArgumentParser(prog="python -m minijepa.evaluate",
                                description="Validated linear probe and k-NN on frozen features, with baselines.")
    p.add_argument("--checkpoint", required=True, help="checkpoint.pt written by minijepa.train")
    p.add_argument("--data", default=None, help="shapes, imagefolder, cifar10 or stl10 (default: the run's dataset)")
    p.add_argument("--root", default=None, help="folder of the dataset (imagefolder, cifar10, stl10)")
    p.add_argument("--encoder", default="both", choices=["target", "context", "both"], help="which encoder(s) to evaluate")
    p.add_argument("--num-images", type=int, default=None, help="test images (training images: twice as many)")
    p.add_argument("--json", default=None, help="also write the results to this JSON file")
    args = p.parse_args(argv)
    if args.num_images is not None and args.num_images < 1:
        p.error(f"--num-images={args.num_images}: must be >= 1")
    path = Path(args.checkpoint)
    ijepa, _, state = load_trained_model(path)
    sets = []
    if args.data:
        sets.append(f"data.dataset={args.data}")
    if args.root:
        sets.append(f"data.root={args.root}")
    if args.num_images:
        sets.append(f"data.num_eval_images={args.num_images}")
    cfg = config_from_dict(apply_overrides(state["config"], sets))
    encoders = {}
    if args.encoder in ("target", "both"):
        encoders["I-JEPA (target encoder)"] = ijepa.target_encoder
    if args.encoder in ("context", "both"):
        encoders["I-JEPA (context encoder)"] = ijepa.context_encoder
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.run.seed + 12345)  # the same random-init baseline as the end-of-run report
        encoders["random init"] = build_encoder(cfg)
    data = probe_sets(cfg)
    results = evaluate_encoders(encoders, data)
    report = {"probes": results, "chance": chance_levels(data[3]), "final_loss": None, "steps": state.get("step", 0),
              "checkpoint": str(path), "data": cfg.data.dataset}
    print(format_summary(report))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
