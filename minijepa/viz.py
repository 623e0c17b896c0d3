"""Plotting helpers shared by the notebooks and the training report (matplotlib, no state kept)."""

from __future__ import annotations

import matplotlib

import numpy as np
import torch

from .masks import MaskBatch

__all__ = ["use_headless_backend", "show_image", "mask_overlay", "plot_masks", "plot_loss_curve", "plot_probe_results"]

CONTEXT_COLOUR = (0.12, 0.47, 0.71)  # blue
TARGET_COLOURS = [(0.84, 0.15, 0.16), (1.0, 0.5, 0.05), (0.17, 0.63, 0.17), (0.58, 0.4, 0.74),
                  (0.55, 0.34, 0.29), (0.89, 0.47, 0.76)]


def use_headless_backend() -> None:
    """Use the non-interactive Agg backend unless a notebook already chose one."""
    if matplotlib.get_backend().lower() not in ("agg", "module://matplotlib_inline.backend_inline"):
        matplotlib.use("Agg")


def _to_numpy_image(image: torch.Tensor) -> np.ndarray:
    """(3, H, W) tensor in [0, 1] -> (H, W, 3) array."""
    return image.detach().float().clamp(0, 1).permute(1, 2, 0).cpu().numpy()


def show_image(ax, image: torch.Tensor, title: str | None = None) -> None:
    ax.imshow(_to_numpy_image(image))
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=9)


def mask_overlay(image: torch.Tensor, masks: MaskBatch, i: int = 0, patch_size: int = 16, alpha: float = 0.55) -> np.ndarray:
    """Image (3, H, W) in [0, 1] with image i's context tinted blue and each target block its own colour.

    Patches that are neither context nor target are dimmed, so a reader sees what the encoder never sees.
    """
    img = _to_numpy_image(image).copy()
    h, w = masks.grid
    tint = np.zeros((h * w, 3))
    weight = np.zeros(h * w)
    tint[masks.context[i].cpu().numpy()] = CONTEXT_COLOUR
    weight[masks.context[i].cpu().numpy()] = alpha * 0.6
    for m in range(masks.targets.shape[1]):
        idx = masks.targets[i, m].cpu().numpy()
        tint[idx] = TARGET_COLOURS[m % len(TARGET_COLOURS)]
        weight[idx] = alpha
    unused = weight == 0
    tint = tint.reshape(h, w, 3).repeat(patch_size, 0).repeat(patch_size, 1)
    weight = weight.reshape(h, w, 1).repeat(patch_size, 0).repeat(patch_size, 1)
    unused = unused.reshape(h, w, 1).repeat(patch_size, 0).repeat(patch_size, 1)
    out = img * (1 - weight) + tint * weight
    return np.where(unused, img * 0.25, out)


def plot_masks(images: torch.Tensor, masks: MaskBatch, patch_size: int, max_images: int = 8, title: str | None = None):
    """A row of images with their context (blue) and target blocks (one colour each)."""
    import matplotlib.pyplot as plt

    n = min(max_images, len(images))
    fig, axes = plt.subplots(1, n, figsize=(2.0 * n, 2.3), squeeze=False)
    for i in range(n):
        ax = axes[0, i]
        ax.imshow(mask_overlay(images[i], masks, i, patch_size))
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"context {masks.context.shape[1]} / targets {masks.targets.shape[1]}x{masks.targets.shape[2]}", fontsize=7)
    fig.suptitle(title or "Masks: context (blue), target blocks (colours), unused (dark)", fontsize=10)
    fig.tight_layout()
    return fig


def plot_loss_curve(steps, losses, ax=None, label: str = "I-JEPA loss", smooth: int = 20):
    """Loss per step with a running mean; returns the axis."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3.2))
    steps, losses = np.asarray(steps), np.asarray(losses, dtype=float)
    ax.plot(steps, losses, alpha=0.3, lw=0.8, label=f"{label} (per step)")
    if len(losses) >= smooth:
        kernel = np.ones(smooth) / smooth
        ax.plot(steps[smooth - 1:], np.convolve(losses, kernel, mode="valid"), lw=1.8, label=f"running mean ({smooth})")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title("Training loss")
    ax.legend(fontsize=8)
    return ax


def plot_probe_results(results: dict, metric: str = "linear_probe", ax=None, chance: dict | None = None):
    """Grouped bars: accuracy per task (x) for each feature source (bars), e.g. I-JEPA / random init / pixels."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.2))
    sources = list(results)
    tasks = list(next(iter(results.values())))
    width = 0.8 / len(sources)
    x = np.arange(len(tasks))
    for j, source in enumerate(sources):
        values = [100 * results[source][t][metric] for t in tasks]
        ax.bar(x + (j - (len(sources) - 1) / 2) * width, values, width, label=source)
    if chance:
        for i, t in enumerate(tasks):
            ax.hlines(100 * chance[t], i - 0.4, i + 0.4, colors="k", linestyles="dotted", label="chance" if i == 0 else None)
    ax.set_xticks(x, tasks)
    ax.set_ylabel("top-1 accuracy (%)")
    ax.set_ylim(0, 100)
    ax.set_title(metric.replace("_", " "))
    ax.legend(fontsize=8)
    return ax
