"""Write notebooks/00-05 from the Python sources in this file (and optionally execute them).

The notebooks are generated so that they stay editable as text: every notebook below is one string in
"percent" format (a line ``# %%`` starts a code cell, ``# %% [markdown]`` a markdown cell), and the first
cell of every notebook is the shared set-up cell ``SETUP``.

    python tools/build_notebooks.py                 # write the notebooks, without outputs
    python tools/build_notebooks.py --execute       # write, execute (with a cell timeout) and save outputs
    python tools/build_notebooks.py --execute 03    # only notebooks whose name starts with 03

Executed notebooks are cleaned before saving: no widget state (``metadata.widgets``), no execution
timestamps, kernelspec python3, and a widget's output is replaced by a one-line note (its live view needs a
running kernel anyway).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"

# The course repository, cloned by the set-up cell on a hosted notebook service only.
REPO_URL = "https://github.com/minijepa/minijepa.git"

SETUP = f'''# Set-up, run me first. In a checkout of the course this only puts the repository root on sys.path, so that
# `import exercises` finds your exercise files (the package itself is installed in the project's .venv).
# On a hosted notebook service without the course, it clones the repository and installs it, once.
import importlib.util, os, subprocess, sys
from pathlib import Path

REPO_URL = os.environ.get("MINIJEPA_REPO", "{REPO_URL}")


def find_course_root():
    for folder in (Path.cwd(), *Path.cwd().parents, Path.cwd() / "minijepa-course"):
        if (folder / "minijepa" / "__init__.py").is_file() and (folder / "pyproject.toml").is_file():
            return folder
    return None


ROOT = find_course_root()
if ROOT is None and importlib.util.find_spec("minijepa") is None:  # hosted service, nothing installed yet
    ROOT = Path.cwd() / "minijepa-course"
    subprocess.run(["git", "clone", "--depth", "1", REPO_URL, str(ROOT)], check=True)
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "-e", f"{{ROOT}}[course,test]"], check=True)
if ROOT is not None and str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))'''

EXERCISE_HELPER = '''# The notebooks call your exercise functions through this helper: it prints whether yours works and
# otherwise hands back the package's version, so the notebook always runs to the end.
try:
    from exercises.check import student_or_reference
except ImportError:  # only the package is installed (no exercises/ folder next to it)
    def student_or_reference(module_name, function_name, reference, check=None):
        print(f"exercises/{module_name}.py is not available: using the reference {function_name}")
        return reference'''

PLOT_STYLE = '''plt.rcParams.update({"figure.dpi": 72, "savefig.dpi": 72, "font.size": 9, "axes.titlesize": 10})
# One thread: the models here are small, and a single thread stays fast when other jobs (tests run in
# parallel, say) share the CPU, where several threads per process would wait on each other.
torch.set_num_threads(1)
_ = torch.manual_seed(0)'''


# =====================================================================================================
# 00 The big picture
# =====================================================================================================

NB00 = r'''
# %% [markdown]
# # 00 · The big picture: learning by predicting in representation space
#
# This course builds **I-JEPA** (Assran et al., CVPR 2023) from scratch: a way to train a Vision
# Transformer on unlabelled images by hiding parts of an image and predicting *what the hidden parts mean*
# rather than what they look like.
#
# **Learning goals.** After this notebook you can
# 1. tell apart the three families of self-supervised methods: joint-embedding, generative, and
#    joint-embedding *predictive* architectures, and name the weak spot of each;
# 2. say what I-JEPA predicts, from what, and why it predicts in representation space;
# 3. follow one batch through the package's model (`minijepa.IJEPA`) and read the shape of every tensor;
# 4. find your way around the course (notebooks 00-09, exercises) and the package (`minijepa/`).

# %%
%%SETUP%%

# %%
import importlib

import matplotlib.pyplot as plt
import torch

import minijepa as mj
from minijepa.data import load_photos, normalize
from minijepa.masks import MultiBlockMasks
from minijepa.viz import mask_overlay

%%STYLE%%

# %% [markdown]
# ## 1. Three ways to learn from images without labels
#
# Self-supervised learning invents its own prediction task from the data, trains a network on it, and
# keeps the network's *representations* for later tasks (classification, detection, counting...). Three
# families differ in what is compared with what:
#
# * **Joint-embedding** (contrastive methods, DINO, BYOL...): two *views* of the same image (crops, colour
#   changes) go through encoders, and their embeddings are pulled together. It gives very semantic features,
#   but two things can go wrong. The encoder can make *every* image look the same (**collapse**: the two
#   embeddings then agree perfectly, for free), so these methods need negatives, a momentum teacher, or a
#   regulariser. And the views are made by hand-crafted augmentations, which bake in assumptions
#   (invariance to colour, say) that some downstream tasks do not share.
# * **Generative** (masked auto-encoders such as MAE): hide part of an image and *reconstruct the pixels*.
#   Nothing can collapse, since the target is the image itself. But every detail of the pixels counts
#   in the loss, including what cannot be guessed (the exact fur texture, sensor noise), so capacity goes into
#   low-level detail and the features need fine-tuning to become semantic.
# * **Joint-embedding predictive** (JEPA): encode the visible part, and let a *predictor* guess the
#   **embedding** of the hidden part, as produced by a second encoder. It keeps the "fill in the blank"
#   task of generative methods (no augmentations needed) but the blank is filled in representation space,
#   where unpredictable detail can be dropped. Collapse is possible again, and is prevented by an asymmetry
#   between the two encoders (notebook 05).
#
# The sketch below draws the three side by side. The letters follow the paper: `x` is what the network is
# given, `y` what it must account for, `s_x` and `s_y` their representations, and `z` the extra
# information the predictor needs (for I-JEPA: *where* the hidden block is).

# %%
from matplotlib.patches import Patch

TRAINED, TARGET, LOSS = "#9ecae1", "#fdd0a2", "#e5f5e0"


def box(ax, x, y, text, colour="white"):
    ax.text(x, y, text, ha="center", va="center", fontsize=9,
            bbox=dict(boxstyle="round,pad=0.35", fc=colour, ec="0.3"))


def arrow(ax, start, end):
    ax.annotate("", xy=end, xytext=start, arrowprops=dict(arrowstyle="->", color="0.3", lw=1.2))


fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
for ax in axes:
    ax.set_xlim(0, 10)
    ax.set_ylim(0, 10)
    ax.axis("off")

ax = axes[0]  # joint-embedding
box(ax, 2.5, 1, "x  (view 1)"); box(ax, 7.5, 1, "y  (view 2)")
box(ax, 2.5, 4.2, "x-encoder", TRAINED); box(ax, 7.5, 4.2, "y-encoder", TRAINED)
box(ax, 5, 8.2, "D(s_x, s_y)\nsimilar views, similar embeddings", LOSS)
for x in (2.5, 7.5):
    arrow(ax, (x, 1.6), (x, 3.6))
    arrow(ax, (x, 4.8), (5 + (x - 5) * 0.5, 7.4))
ax.set_title("(a) joint-embedding")

ax = axes[1]  # generative
box(ax, 2.5, 1, "x  (masked image)"); box(ax, 7.5, 1, "y  (the hidden pixels)")
box(ax, 2.5, 3.6, "x-encoder", TRAINED); box(ax, 2.5, 6.0, "decoder  (+ z)", TRAINED)
box(ax, 5, 8.7, "D(y_hat, y) in pixel space", LOSS)
arrow(ax, (2.5, 1.6), (2.5, 3.0)); arrow(ax, (2.5, 4.2), (2.5, 5.4))
arrow(ax, (2.5, 6.6), (4.0, 8.1)); arrow(ax, (7.5, 1.6), (6.2, 8.1))
ax.set_title("(b) generative (e.g. MAE)")

ax = axes[2]  # joint-embedding predictive
box(ax, 2.5, 1, "x  (context block)"); box(ax, 7.5, 1, "y  (whole image)")
box(ax, 2.5, 3.6, "context encoder", TRAINED); box(ax, 7.5, 3.6, "target encoder", TARGET)
box(ax, 2.5, 6.0, "predictor  (+ z: where)", TRAINED)
box(ax, 5, 8.7, "D(s_y_hat, s_y) in representation space", LOSS)
arrow(ax, (2.5, 1.6), (2.5, 3.0)); arrow(ax, (2.5, 4.2), (2.5, 5.4))
arrow(ax, (2.5, 6.6), (4.0, 8.1)); arrow(ax, (7.5, 1.6), (7.5, 3.0)); arrow(ax, (7.5, 4.2), (6.2, 8.1))
ax.set_title("(c) joint-embedding predictive (I-JEPA)")

fig.legend(handles=[Patch(fc=TRAINED, ec="0.3", label="trained by gradient descent"),
                    Patch(fc=TARGET, ec="0.3", label="moving average of the context encoder (no gradients)"),
                    Patch(fc=LOSS, ec="0.3", label="what the loss compares")],
           loc="lower center", ncol=3, fontsize=8, frameon=False)
fig.suptitle("Three families of self-supervised learning", fontsize=11)
fig.tight_layout(rect=(0, 0.07, 1, 1))
plt.show()

# %% [markdown]
# ## 2. I-JEPA on one image
#
# I-JEPA turns the predictive idea into a concrete recipe for Vision Transformers:
#
# 1. cut the image into a grid of patches (notebook 01);
# 2. choose **M = 4 target blocks** (each about 15-20 % of the image) and one large **context block**
#    (85-100 % of the image), then remove the target patches from the context so that the answer is never
#    visible (notebook 03);
# 3. the **target encoder** sees the *whole* image; its outputs at the target patches are what must be
#    predicted (notebook 05);
# 4. the **context encoder** sees only the context patches (notebook 02);
# 5. the **predictor**, a narrow ViT, receives the context tokens plus, for every target patch, a mask
#    token that says *where* that patch is, and outputs one vector per target patch (notebook 04);
# 6. the loss is the squared distance between predictions and targets; only the context encoder and the
#    predictor get gradients, and the target encoder slowly follows the context encoder (an exponential
#    moving average).
#
# Here are the masks the package draws for a real photograph (scikit-image's cat, at 224 x 224 pixels
# with 16-pixel patches, the paper's setting):

# %%
photos = load_photos(image_size=224)
cat = photos["chelsea"]  # (3, 224, 224) in [0, 1]
sampler = MultiBlockMasks(grid=(14, 14), num_targets=4, seed=0)
masks = sampler.sample(1, torch.Generator().manual_seed(3))
context, targets = masks.context[0], masks.targets[0]  # (K,), (M, T)
print(f"context: {len(context)} of 196 patches; targets: {targets.shape[0]} blocks of {targets.shape[1]} patches")

# the answer is never visible: no target patch is in the context
assert not torch.isin(targets.flatten(), context).any()
assert targets.shape[0] == 4 and len(context) > 0


def only(image, indices, patch=16, grid=14):
    """The image with every patch outside ``indices`` greyed out."""
    keep = torch.zeros(grid * grid, dtype=torch.bool)
    keep[indices] = True
    keep = keep.reshape(grid, grid).repeat_interleave(patch, 0).repeat_interleave(patch, 1)
    return torch.where(keep, image, torch.full_like(image, 0.5)).permute(1, 2, 0)


fig, axes = plt.subplots(1, 4, figsize=(12, 3.3))
panels = [
    (cat.permute(1, 2, 0), "the photograph (target encoder's input)"),
    (mask_overlay(cat, masks, 0, patch_size=16), "context (blue) and 4 target blocks"),
    (only(cat, context), "what the context encoder sees"),
    (only(cat, targets.flatten()), "where the predictor must answer"),
]
for ax, (image, title) in zip(axes, panels):
    ax.imshow(image)
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("x (pixels)")
axes[0].set_ylabel("y (pixels)")
fig.suptitle("One I-JEPA training example", fontsize=11)
fig.tight_layout()
plt.show()

# %% [markdown]
# ## 3. One batch through the model
#
# The package puts these pieces together in `minijepa.IJEPA`. Let us push a batch of four photographs
# through a small model and look at the shape of every tensor. Letters: B images, N patches, K context
# patches, M target blocks, T patches per target block, D width.

# %%
torch.manual_seed(0)
images = normalize(torch.stack(list(photos.values())[:4]))  # (B, 3, 224, 224), ImageNet-normalised
encoder = mj.vit_tiny(patch_size=16, image_size=224, depth=4)  # a 4-layer ViT-Tiny, width D = 192
predictor = mj.Predictor(encoder.grid, encoder.embed_dim, predictor_dim=96, depth=2, num_heads=3)
model = mj.IJEPA(encoder, predictor)

masks = MultiBlockMasks(encoder.grid, seed=0).sample(len(images), torch.Generator().manual_seed(0))
out = model(images, masks)
B, M, T = masks.targets.shape
K, D = masks.context.shape[1], encoder.embed_dim
for name, tensor in [("images", images), ("masks.context", masks.context), ("masks.targets", masks.targets),
                     ("context tokens", out.context), ("targets", out.targets),
                     ("predictions", out.predictions), ("loss", out.loss)]:
    print(f"{name:15s} {str(tuple(tensor.shape)):22s} {tensor.dtype}")

assert out.context.shape == (B, K, D)  # the context encoder ran on K tokens only
assert out.targets.shape == out.predictions.shape == (B, M, T, D)
assert out.loss.dim() == 0 and out.loss.item() > 0

# %% [markdown]
# Only the context encoder and the predictor learn by gradient descent. The target encoder is a copy that
# never receives gradients; after every optimiser step it moves a little towards the context encoder
# (`model.update_target(momentum)`).

# %%
out.loss.backward()
assert all(p.grad is None for p in model.target_encoder.parameters())  # no gradient reaches the targets
assert all(p.grad is not None for p in model.context_encoder.parameters())
assert all(p.grad is not None for p in model.predictor.parameters())

before = [p.clone() for p in model.target_encoder.parameters()]
with torch.no_grad():  # pretend an optimiser step changed the context encoder
    for p in model.context_encoder.parameters():
        p.add_(0.01)
model.update_target(momentum=0.996)
moved = [(p - q).abs().max().item() for p, q in zip(model.target_encoder.parameters(), before)]
print(f"the target encoder moved by at most {max(moved):.1e} (0.4 % of the 0.01 step)")
assert abs(max(moved) - 0.004 * 0.01) < 1e-6

# %% [markdown]
# ## 4. Why representation space?
#
# The same model can be asked to predict pixels instead: `target="pixels"` makes the target of every
# target patch its (normalised) pixel values, the generative baseline of the paper's ablation. Compare
# what the predictor must produce in the two cases.

# %%
pixel_predictor = mj.Predictor(encoder.grid, encoder.embed_dim, predictor_dim=96, depth=2, num_heads=3,
                               out_dim=16 * 16 * 3)
pixel_model = mj.IJEPA(encoder, pixel_predictor, target="pixels")
pixel_targets = pixel_model.compute_targets(images, masks)  # (B, M, T, P*P*3)
repr_targets = model.compute_targets(images, masks)  # (B, M, T, D)
print("pixel targets         ", tuple(pixel_targets.shape))
print("representation targets", tuple(repr_targets.shape))
assert pixel_targets.shape[-1] == 768 and repr_targets.shape[-1] == 192

block = masks.targets[0, 0]  # (T,) patch indices of image 0, block 0
rows, cols = block // 14, block % 14
r0, r1, c0, c1 = rows.min().item(), rows.max().item() + 1, cols.min().item(), cols.max().item() + 1
fig, axes = plt.subplots(1, 2, figsize=(10, 3.3), gridspec_kw=dict(width_ratios=[1, 2]))
axes[0].imshow(list(photos.values())[0][:, 16 * r0:16 * r1, 16 * c0:16 * c1].permute(1, 2, 0))
axes[0].set_title(f"pixel target: these {T} patches,\nexactly ({T} x 768 values)", fontsize=9)
axes[0].set_xlabel("x (pixels)")
axes[0].set_ylabel("y (pixels)")
im = axes[1].imshow(repr_targets[0, 0].numpy(), aspect="auto", cmap="coolwarm")
axes[1].set_title(f"representation target of the same block: {T} x 192 features\n"
                  "(layer-normed output of the target encoder, here still random)", fontsize=9)
axes[1].set_xlabel("feature")
axes[1].set_ylabel("target patch")
fig.colorbar(im, ax=axes[1], label="value")
fig.tight_layout()
plt.show()

# %% [markdown]
# The pixel target asks for every value of every pixel, guessable or not. The representation target is
# whatever the target encoder keeps about those patches, *in the context of the whole image*: as training
# goes on, the encoder is free to keep what can be predicted from the rest of the image ("an ear, about
# here") and to drop what cannot (the exact fur pattern). This is the paper's explanation of its main
# ablation below: the same recipe predicting pixels learns much weaker features. It is also cheaper: no
# pixel decoder, and no hand-made augmentations, only masks.
#
# The figures below are the paper's headline numbers (ImageNet-1k linear probe, frozen features), and its
# ablation of the prediction target. Our models are tiny and train for minutes, so we do not try to
# reproduce these; notebooks 06-08 reproduce the *comparisons* at small scale.

# %%
results = {  # (method, model, pretraining epochs, top-1 %)
    "I-JEPA": [("ViT-B/16", 600, 72.9), ("ViT-L/16", 600, 77.5), ("ViT-H/14", 300, 79.3), ("ViT-H/16 448px", 300, 81.1)],
    "MAE": [("ViT-H/14", 1600, 77.2)],
    "data2vec": [("ViT-L/16", 1600, 77.3)],
}
fig, axes = plt.subplots(1, 2, figsize=(11, 3.6), gridspec_kw=dict(width_ratios=[3, 2]))
for (method, rows), marker in zip(results.items(), "osD"):
    epochs = [r[1] for r in rows]
    top1 = [r[2] for r in rows]
    axes[0].scatter(epochs, top1, marker=marker, s=40, label=method)
    for name, e, t in rows:
        offset = {"MAE": (8, -10), "data2vec": (8, 4)}.get(method, (6, -3))
        axes[0].annotate(name, (e, t), textcoords="offset points", xytext=offset, fontsize=7)
axes[0].set_xlabel("pretraining epochs")
axes[0].set_ylabel("ImageNet linear probe top-1 (%)")
axes[0].set_xlim(0, 2000)
axes[0].set_title("Paper: better features with fewer epochs")
axes[0].legend(fontsize=8)

bars = axes[1].bar(["representations\n(I-JEPA)", "pixels"], [66.9, 40.7], color=["tab:blue", "tab:gray"],
                   label="ViT-L/16, 1% of ImageNet labels")
axes[1].bar_label(bars, fmt="%.1f")
axes[1].set_ylabel("top-1 (%)")
axes[1].set_ylim(0, 80)
axes[1].set_title("Paper's ablation: what to predict")
axes[1].legend(fontsize=8, loc="upper right")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## 5. A map of the course and of the package
#
# | notebook | builds | package module | exercises (`exercises/`) |
# |---|---|---|---|
# | 00 the big picture | the families, one batch end to end | `ijepa` | none |
# | 01 images as sequences | patches, patch embedding, 2-D sin-cos positions | `patches` | `patches.py`: patchify, unpatchify, sincos_2d |
# | 02 attention and the ViT | attention, multi-head, block, ViT, timm parity, attention maps | `vit`, `explorers` | `attention.py`: attention_weights, attention, block_forward |
# | 03 multi-block masking | target and context blocks, statistics, the reference code's biases, mask explorer | `masks`, `explorers` | `masks.py`: sample_block, multiblock_masks, gather_tokens |
# | 04 the predictor | mask tokens and positions, why it is narrow | `predictor` | `predictor.py`: predictor_forward |
# | 05 target encoder and collapse | EMA and its schedule, a collapse experiment | `ema`, `evaluate` | `ema.py`: ema_update, momentum_schedule |
# | 06 training on a CPU | the loss, schedules, the training step | `losses`, `schedules`, `train` | `losses.py`, `schedules.py` |
# | 07 what did it learn | probes, k-NN, attention, PCA of patch features | `evaluate` | `probe.py`: linear_probe |
# | 08 the paper's ablations | masking strategies, targets, predictor size | `masks`, `ijepa` | |
# | 09 scaling up | torchrun, DDP, bf16, `torch.compile`, checkpoints | `train` | |
#
# Every idea of the paper lives in one module named after it. The cell below lists them with the first
# line of each module's documentation, so the map cannot go stale.

# %%
modules = ["patches", "vit", "masks", "predictor", "ema", "losses", "schedules", "ijepa", "data", "batches",
           "evaluate", "config", "train", "report", "viz", "explorers", "pretrained"]
for name in modules:
    module = importlib.import_module(f"minijepa.{name}")
    assert module.__doc__, f"minijepa.{name} has no docstring"
    print(f"minijepa.{name:10s} {module.__doc__.strip().splitlines()[0]}")

# %% [markdown]
# ## Summary
#
# * Joint-embedding methods compare embeddings of two hand-made views (semantic, but collapse-prone and
#   augmentation-dependent); generative methods reconstruct pixels (no collapse, but they model every
#   detail); a JEPA predicts the *embedding* of a hidden part from a visible part.
# * I-JEPA: context block -> context encoder -> predictor (+ target positions) -> predicted embeddings of
#   M target blocks, compared with the target encoder's embeddings of the whole image, gathered at those
#   blocks. Only the context encoder and the predictor are trained by gradients; the target encoder is a
#   moving average.
# * In the package: `IJEPA(encoder, predictor)` returns the loss, predictions (B, M, T, D), targets and
#   context tokens for one batch.
#
# ## Self-check
#
# 1. Why can a joint-embedding method collapse, while a pixel-reconstruction method cannot?
# 2. In I-JEPA, which network sees the whole image, which sees only the context, and which one receives
#    the target positions?
# 3. What would change in the model if it predicted pixels instead of representations?
# 4. I-JEPA uses no colour jitter or flips. Where do its two "views" come from?
#
# <details><summary>Answers</summary>
#
# 1. In a joint-embedding method both sides of the loss are produced by the networks being trained, so
#    mapping every input to the same vector makes the loss zero. A reconstruction target is the data
#    itself, which the network cannot change.
# 2. The target encoder sees the whole image; the context encoder sees only the context patches; the
#    predictor receives the context tokens and, through its mask tokens, the positions of the target
#    patches.
# 3. The target becomes the normalised pixels of each target patch (P x P x 3 values), so the predictor's
#    output width changes and the target encoder is no longer needed. In the paper this cut the 1 % ImageNet
#    probe from 66.9 % to 40.7 % (ViT-L/16).
# 4. From masking: the context block and the target blocks are two different parts of the same image.
#
# </details>
#
# **Exercises.** None for this notebook. From notebook 01 on, each notebook calls your functions from
# `exercises/` (start with `exercises/patches.py`) and tells you whether they work; until they do, it
# continues with the package's version.
'''


# =====================================================================================================
# 01 Images as sequences
# =====================================================================================================

NB01 = r'''
# %% [markdown]
# # 01 · Images as sequences: patches, patch embedding, positions
#
# A Transformer reads a *sequence* of vectors. This notebook turns an image into one, the way the
# Vision Transformer (ViT) does and I-JEPA inherits. Package module: `minijepa/patches.py`.
#
# **Learning goals.** After this notebook you can
# 1. cut an image into a sequence of flattened patches and put it back together (`patchify`, `unpatchify`),
#    and say how the number of patches depends on the patch size;
# 2. explain why the patch embedding, a convolution with stride equal to its kernel, is one linear map
#    applied to every patch;
# 3. explain why a Transformer needs position embeddings, build the fixed 2-D sin-cos table that I-JEPA uses,
#    and read its similarity map.

# %%
%%SETUP%%

# %%
import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F

from minijepa import patches as reference
from minijepa.data import ShapesDataset, load_photo
from minijepa.patches import PatchEmbed, sincos_1d
from minijepa.vit import Block

%%STYLE%%

# %%
%%EXERCISES%%

# %% [markdown]
# ## 1. Cutting an image into patches
#
# A ViT with patch size P cuts an image of H·P x W·P pixels into an H x W grid of P x P patches, reads them
# row by row (raster order), and flattens each one into a vector of P·P·C numbers. A batch of images
# (B, C, H·P, W·P) becomes a batch of sequences (B, N, P·P·C) with N = H·W. The patch vector lists the
# pixels row by row with the three colour values of a pixel next to each other ("channels last"), the
# layout of the MAE and I-JEPA code.
#
# **Your turn:** implement `patchify` and `unpatchify` in `exercises/patches.py`. The next cell uses yours
# if it passes a quick check, and otherwise continues with the package's version.

# %%
x_check = torch.randn(2, 3, 32, 48)
patchify = student_or_reference(
    "patches", "patchify", reference.patchify,
    check=lambda f: torch.testing.assert_close(f(x_check, 8), reference.patchify(x_check, 8)),
)
unpatchify = student_or_reference(
    "patches", "unpatchify", reference.unpatchify,
    check=lambda f: torch.testing.assert_close(f(reference.patchify(x_check, 8), 8, (4, 6)), x_check),
)

# %% [markdown]
# Let us cut a real photograph (scikit-image's astronaut, 224 x 224) into 16 x 16 patches, the setting of
# ViT-B/16 and of most of the paper.

# %%
P = 16
photo = load_photo("astronaut", image_size=224)  # (3, 224, 224) in [0, 1]
patches = patchify(photo[None], P)  # (1, N, P*P*3)
H = W = 224 // P
print("image", tuple(photo.shape), "-> patches", tuple(patches.shape))
assert patches.shape == (1, H * W, P * P * 3) == (1, 196, 768)

# patch k is the crop at grid row k // W, column k % W, flattened with channels last
k = 3 * W + 5
row, col = divmod(k, W)
crop = photo[:, row * P:(row + 1) * P, col * P:(col + 1) * P]  # (3, P, P)
assert torch.equal(patches[0, k], crop.permute(1, 2, 0).reshape(-1))

# unpatchify is the exact inverse
assert torch.equal(unpatchify(patches, P, (H, W)), photo[None])

# %%
gap = 3
mosaic = np.ones((H * (P + gap), W * (P + gap), 3))
for n in range(H * W):
    r, c = divmod(n, W)
    mosaic[r * (P + gap):r * (P + gap) + P, c * (P + gap):c * (P + gap) + P] = \
        patches[0, n].reshape(P, P, 3).numpy()
strip = np.concatenate([np.pad(patches[0, n].reshape(P, P, 3).numpy(), ((0, 0), (0, 2), (0, 0)), constant_values=1)
                        for n in range(24, 44)], axis=1)

fig = plt.figure(figsize=(12, 4.6))
ax = fig.add_subplot(1, 3, 1)
ax.imshow(photo.permute(1, 2, 0))
ax.set_title("the image (224 x 224)")
ax.set_xlabel("x (pixels)")
ax.set_ylabel("y (pixels)")
ax = fig.add_subplot(1, 3, 2)
ax.imshow(mosaic)
ax.set_title(f"cut into {H} x {W} = {H * W} patches of {P} x {P}")
ax.set_xlabel("grid column")
ax.set_ylabel("grid row")
ax.set_xticks([(c + 0.5) * (P + gap) for c in range(0, W, 3)], range(0, W, 3))
ax.set_yticks([(r + 0.5) * (P + gap) for r in range(0, H, 3)], range(0, H, 3))
ax = fig.add_subplot(1, 3, 3)
vector = patches[0, k].reshape(P * P, 3).numpy()  # (P*P, 3): pixel by pixel, R G B
for c, colour in enumerate(["red", "green", "blue"]):
    ax.plot(vector[:48, c], color=colour, label=f"{colour} channel")
ax.set_title(f"patch {k} (row {row}, column {col}) as a vector: first 48 pixels", fontsize=9)
ax.set_xlabel("pixel index inside the patch (row by row)")
ax.set_ylabel("value")
ax.legend(fontsize=8)
fig.tight_layout()
plt.show()

fig, ax = plt.subplots(figsize=(12, 1.4))
ax.imshow(strip)
ax.set_title("the sequence the Transformer reads: patches 24-43 (row 1 from column 10, then row 2 ...)")
ax.set_xticks([(i + 0.5) * (P + 2) for i in range(20)], range(24, 44), fontsize=7)
ax.set_xlabel("position in the sequence")
ax.set_yticks([])
plt.show()

# %% [markdown]
# ### How long is the sequence?
#
# N = (image side / P)², and self-attention compares every token with every other one, so its cost grows
# with N². Halving the patch size multiplies N by 4 and the attention cost by 16. That is why ViT-H/14
# (N = 256 at 224 pixels) is much more expensive than ViT-H/16 (N = 196), and why this course trains at
# 64 pixels with 8-pixel patches (N = 64) on a CPU.

# %%
sizes = [4, 7, 8, 14, 16, 28, 32]
N = np.array([(224 // p) ** 2 for p in sizes])
assert N[sizes.index(14)] == 256 and N[sizes.index(16)] == 196
fig, ax = plt.subplots(figsize=(6, 3.2))
ax.plot(sizes, N, "o-", label="N, tokens per image")
ax.plot(sizes, N.astype(float) ** 2, "s--", label="N², attention scores per head")
ax.set_yscale("log")
ax.set_xlabel("patch size P (pixels), image 224 x 224")
ax.set_ylabel("count (log scale)")
ax.set_title("Smaller patches: longer sequences, quadratically more attention")
ax.legend()
plt.show()

# %% [markdown]
# ## 2. The patch embedding is one linear map per patch
#
# Each flattened patch (P·P·C numbers) is mapped to the model width D by the same linear layer:
# `token = W · patch + b` with W of shape (D, P·P·C). The package writes it as a convolution with
# kernel size P and stride P (`minijepa.patches.PatchEmbed`), which is the same computation: a stride
# equal to the kernel means the kernel visits each patch exactly once, without overlap, and a convolution
# at one position is a dot product between the kernel and the pixels under it. Let us check that the two
# agree, using your `patchify` for the linear version.

# %%
torch.manual_seed(0)
embed = PatchEmbed(patch_size=P, in_chans=3, embed_dim=192)
images = photo[None]  # (1, 3, 224, 224)
tokens_conv = embed(images)  # (1, N, D): the convolution, then (B, D, H, W) -> (B, N, D)

# the conv kernel (D, C, P, P) rearranged into the (p1 p2 c) order of a patch vector: (D, P*P*C)
weight = embed.proj.weight.permute(0, 2, 3, 1).reshape(192, -1)
tokens_linear = patchify(images, P) @ weight.T + embed.proj.bias  # (1, N, D)
print("conv:", tuple(tokens_conv.shape), " linear:", tuple(tokens_linear.shape))
torch.testing.assert_close(tokens_conv, tokens_linear, rtol=1e-4, atol=1e-5)
assert sum(p.numel() for p in embed.parameters()) == P * P * 3 * 192 + 192

# %% [markdown]
# ## 3. Why positions are needed
#
# Attention treats its input as a *set*: shuffle the tokens and every output is shuffled the same way,
# but otherwise unchanged (it is permutation-*equivariant*). Without extra information, a ViT could not
# tell a photograph from the same patches in random order. The check below shuffles the tokens entering
# a Transformer block.

# %%
torch.manual_seed(0)
block = Block(dim=192, num_heads=3).eval()
perm = torch.randperm(tokens_conv.shape[1])
with torch.no_grad():
    out = block(tokens_conv)
    out_shuffled = block(tokens_conv[:, perm])
torch.testing.assert_close(out_shuffled, out[:, perm], rtol=1e-4, atol=1e-5)
print("shuffling the input only shuffles the output: the block has no idea where a patch was")

# %% [markdown]
# The cure is to add a **position embedding** to each token before the first block. The ViT paper learns
# one vector per position; I-JEPA (following MAE) uses a *fixed* table of sines and cosines, which has no
# parameters and can be recomputed for any grid size.
#
# **In one dimension:** position x gets the vector [sin(x·w_0) ... sin(x·w_{d-1}), cos(x·w_0) ...
# cos(x·w_{d-1})], with frequencies w_k = 10000^(-k/d) falling geometrically from 1 to about 1/10000. Fast
# channels tell neighbours apart; slow channels vary smoothly over the whole image. A useful property: the
# dot product of two such vectors is Σ_k cos((x - x')·w_k), which depends only on the *offset* x - x'.
#
# **In two dimensions:** use half of the D channels for the column and half for the row:
# pe(row y, column x) = [1-D embedding of x (D/2 channels), 1-D embedding of y (D/2 channels)]. The column
# comes first, as in the official code, so that checkpoints load unchanged.
#
# **Your turn:** implement `sincos_2d` in `exercises/patches.py`.

# %%
sincos_2d = student_or_reference(
    "patches", "sincos_2d", reference.sincos_2d,
    check=lambda f: torch.testing.assert_close(f(64, (3, 5)), reference.sincos_2d(64, (3, 5))),
)

# %%
D = 192
pe = sincos_2d(D, (H, W))  # (N, D)
print("position table", tuple(pe.shape))
assert pe.shape == (H * W, D) and pe.abs().max() <= 1
torch.testing.assert_close(pe, reference.sincos_2d(D, (H, W)))
assert len(torch.unique(pe, dim=0)) == H * W  # every position gets its own vector
# first half: the column only; second half: the row only
assert torch.equal(pe[0 * W + 4, :D // 2], pe[7 * W + 4, :D // 2])  # same column, different rows
assert torch.equal(pe[3 * W + 0, D // 2:], pe[3 * W + 9, D // 2:])  # same row, different columns
# each half has the same norm everywhere (sin² + cos² = 1 per frequency)
torch.testing.assert_close(pe.norm(dim=1), torch.full((H * W,), (D / 2) ** 0.5))
# the dot product of two 1-D embeddings depends only on the offset
e = sincos_1d(96, torch.arange(20))
torch.testing.assert_close(e[2] @ e[5], e[10] @ e[13])

# %%
fig, axes = plt.subplots(1, 2, figsize=(12, 3.4), gridspec_kw=dict(width_ratios=[3, 2]))
im = axes[0].imshow(pe.T.numpy(), aspect="auto", cmap="RdBu_r", vmin=-1, vmax=1)
axes[0].axhline(D // 2 - 0.5, color="k", lw=1)
axes[0].set_title("2-D sin-cos table: channels 0-95 encode the column, 96-191 the row")
axes[0].set_xlabel("patch index n (raster order)")
axes[0].set_ylabel("channel")
fig.colorbar(im, ax=axes[0])
xs = torch.linspace(0, 13, 200)
curve = sincos_1d(96, xs)  # (200, 96)
for k in (0, 8, 16, 32):
    axes[1].plot(xs, curve[:, k], label=f"sin, channel {k} (w = {10000 ** (-k / 48):.3f})")
axes[1].set_title("a few 1-D channels along one axis")
axes[1].set_xlabel("column x")
axes[1].set_ylabel("value")
axes[1].legend(fontsize=7, loc="lower left")
fig.tight_layout()
plt.show()

# %% [markdown]
# ### The position similarity map
#
# The ViT paper shows, for every patch, the cosine similarity between its position embedding and the
# embeddings of all other patches. Each small square below belongs to one query patch of the 14 x 14 grid
# (every second row and column, to keep the squares readable); inside it, the 14 x 14 pixels show how
# similar the other positions are to it. A bright spot sits on the patch
# itself and fades with distance along rows and columns: the table encodes the 2-D layout without ever
# being trained.

# %%
cos = F.normalize(pe, dim=1) @ F.normalize(pe, dim=1).T  # (N, N)
tiles = cos.reshape(H, W, H, W).numpy()  # [query row, query col, other row, other col]
shown = range(0, H, 2)  # every second row and column of queries, so that each tile is large enough to read
pad = 2
mosaic = np.full((len(shown) * (H + pad), len(shown) * (W + pad)), np.nan)
for i, r in enumerate(shown):
    for j, c in enumerate(shown):
        mosaic[i * (H + pad):i * (H + pad) + H, j * (W + pad):j * (W + pad) + W] = tiles[r, c]
dist = torch.cdist(*(2 * [torch.stack(torch.meshgrid(torch.arange(H), torch.arange(W), indexing="ij"), -1)
                        .reshape(-1, 2).float()]))  # (N, N) grid distances

fig, axes = plt.subplots(1, 2, figsize=(12, 5.2), gridspec_kw=dict(width_ratios=[3, 2]))
im = axes[0].imshow(mosaic, cmap="viridis")
axes[0].set_title("cosine similarity of a position embedding with all others\n(one tile per query patch, every second row and column)", fontsize=9)
axes[0].set_xticks([(j + 0.5) * (W + pad) for j in range(len(shown))], shown)
axes[0].set_yticks([(i + 0.5) * (H + pad) for i in range(len(shown))], shown)
axes[0].set_xlabel("input patch column")
axes[0].set_ylabel("input patch row")
fig.colorbar(im, ax=axes[0], fraction=0.046, label="cosine similarity")
axes[1].scatter(dist.flatten(), cos.flatten(), s=2, alpha=0.2, label="one pair of patches")
d_int = dist.round()
means = [cos[d_int == d].mean() for d in range(int(d_int.max()) + 1)]
axes[1].plot(range(len(means)), means, "r-", lw=2, label="mean per distance")
axes[1].set_xlabel("distance between the patches (in patches)")
axes[1].set_ylabel("cosine similarity")
axes[1].set_title("nearby positions have similar embeddings")
axes[1].legend(fontsize=8)
fig.tight_layout()
plt.show()

assert torch.equal(cos.argmax(dim=1), torch.arange(H * W))  # every position is most similar to itself
assert all(a > b for a, b in zip(means[:6], means[1:7]))  # similarity falls with distance nearby
assert np.corrcoef(dist.flatten(), cos.flatten())[0, 1] < -0.5

# %% [markdown]
# Because the table is a formula, a ViT built for one grid can be fed another: the package's encoder
# recomputes positions for a new image size on the fly (`VisionTransformer.position_embeddings`).

# %%
wide = sincos_2d(D, (7, 10))
assert wide.shape == (70, D) and torch.equal(wide[:10, :D // 2], pe[:10, :D // 2])  # same columns, same codes

# %% [markdown]
# ## 4. The course's own images
#
# The notebooks that train (06-08) use the package's embedded dataset, `ShapesDataset`: coloured shapes on
# textured backgrounds, drawn in code (nothing to download), with labels for probing. At 64 pixels with
# 8-pixel patches an image is a sequence of 8 x 8 = 64 tokens of 8·8·3 = 192 numbers.

# %%
shapes = ShapesDataset(num_images=6, image_size=64, seed=0)
batch = torch.stack([shapes[i][0] for i in range(6)])  # (6, 3, 64, 64)
seq = patchify(batch, 8)
assert seq.shape == (6, 64, 192)
assert torch.equal(unpatchify(seq, 8, 8), batch)

fig, axes = plt.subplots(1, 6, figsize=(12, 2.4))
for i, ax in enumerate(axes):
    ax.imshow(batch[i].permute(1, 2, 0))
    for k in range(1, 8):
        ax.axhline(8 * k - 0.5, color="w", lw=0.4)
        ax.axvline(8 * k - 0.5, color="w", lw=0.4)
    ax.set_title(f"{shapes.classes[shapes[i][1]]}", fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
axes[0].set_ylabel("8 x 8 patches")
fig.suptitle("ShapesDataset at 64 px with the 8-pixel patch grid (title: shape of the largest object)", fontsize=10)
fig.tight_layout()
plt.show()

# %% [markdown]
# ## Summary
#
# * `patchify`: (B, C, H·P, W·P) -> (B, N, P·P·C), raster order, channels last; `unpatchify` inverts it
#   exactly. N = H·W grows as 1/P², attention cost as 1/P⁴.
# * The patch embedding is one linear map (D x P·P·C) applied to every patch; a convolution with
#   kernel = stride = P computes exactly that.
# * Attention is permutation-equivariant, so tokens carry a position embedding. I-JEPA's is a fixed 2-D
#   sin-cos table: half the channels encode the column, half the row; nearby positions get similar vectors.
#
# ## Self-check
#
# 1. An image of 96 x 160 pixels with patch size 16: what is the shape of `patchify`'s output for a batch
#    of 8?
# 2. Why is a convolution with kernel 16 and stride 16 a linear map per patch, but one with kernel 16 and
#    stride 8 is not "one linear map per patch" any more?
# 3. If you removed the position embeddings, what could a ViT still learn about an image, and what not?
# 4. In the similarity map, why does the bright spot of a patch spread along its row and its column (a
#    cross) rather than as a round blob?
#
# <details><summary>Answers</summary>
#
# 1. The grid is 6 x 10 = 60 patches of 16·16·3 = 768 numbers: (8, 60, 768).
# 2. With stride 8 the kernel visits overlapping windows: every pixel belongs to up to four windows, so the
#    tokens are no longer a partition of the image into patches (it is still linear, but not per patch).
# 3. It could still learn *what* is in the image (a bag of patches: colours, textures, parts), but not
#    *where* anything is or how parts are arranged, so shape and layout would be lost.
# 4. Half of the channels depend only on the column and half only on the row. Two patches in the same row
#    share the whole row half, so they are fairly similar even when their columns are far apart.
#
# </details>
#
# **Exercises:** `exercises/patches.py` (`patchify`, `unpatchify`, `sincos_2d`). Re-run the cells that
# call `student_or_reference` after editing the file; the graded tests are in `tests/grading/`.
'''


# =====================================================================================================
# 02 Attention and the ViT
# =====================================================================================================

NB02 = r'''
# %% [markdown]
# # 02 · Attention and the Vision Transformer
#
# The context encoder, the target encoder and the predictor of I-JEPA are all Vision Transformers. This
# notebook builds one from its smallest piece, checks it against an independent implementation (timm),
# and looks at what its attention does on a photograph. Package module: `minijepa/vit.py`; the attention
# explorer lives in `minijepa/explorers.py`.
#
# **Learning goals.** After this notebook you can
# 1. compute scaled dot-product attention by hand and say why it is scaled by 1/√d;
# 2. split attention into heads, and assemble a pre-norm Transformer block and a ViT encoder;
# 3. explain the ViT initialisation used by I-JEPA (and a quirk of the official code);
# 4. verify an implementation against timm by copying weights;
# 5. read attention maps and the *mean attention distance* of a head, and use the attention explorer.

# %%
%%SETUP%%

# %%
import math
from functools import partial

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from minijepa.data import load_photos, normalize
from minijepa.explorers import AttentionExplorer, attention_explorer, patch_distances, plot_attention_view
from minijepa.patches import patchify, sincos_2d
from minijepa.vit import VIT_PRESETS, Attention, Block, vit_tiny

%%STYLE%%

# %%
%%EXERCISES%%

# %% [markdown]
# ## 1. Attention from first principles
#
# Every token emits three vectors: a **query** (what am I looking for?), a **key** (what do I contain?) and
# a **value** (what do I pass on?). Token i compares its query with every key, turns the scores into
# weights with a softmax, and outputs the weighted average of the values:
#
# $$a_{ij} = \mathrm{softmax}_j\Big(\frac{q_i \cdot k_j}{\sqrt d}\Big), \qquad \mathrm{out}_i = \sum_j a_{ij}\, v_j .$$
#
# Why divide by √d? If the entries of q and k are roughly independent with unit variance, q·k is a sum of
# d such products and its standard deviation grows like √d. Without the division, wide heads would have
# huge scores, the softmax would put all its weight on one token, and gradients through the other tokens
# would vanish. The experiment below measures this.

# %%
g = torch.Generator().manual_seed(0)
widths = [4, 16, 64, 256, 1024]
spread, entropy_raw, entropy_scaled = [], [], []
for d in widths:
    q, k = torch.randn(256, d, generator=g), torch.randn(64, d, generator=g)
    scores = q @ k.T  # (256, 64)
    spread.append(scores.std().item())
    for scale, store in ((1.0, entropy_raw), (d ** -0.5, entropy_scaled)):
        p = (scores * scale).softmax(-1)
        store.append(-(p * p.clamp_min(1e-12).log()).sum(-1).mean().item())

fig, axes = plt.subplots(1, 2, figsize=(10, 3.2))
axes[0].plot(widths, spread, "o-", label="std of q·k")
axes[0].plot(widths, np.sqrt(widths), "k--", label="√d")
axes[0].set_xscale("log"); axes[0].set_yscale("log")
axes[0].set_xlabel("head width d"); axes[0].set_ylabel("standard deviation")
axes[0].set_title("dot products grow like √d"); axes[0].legend()
axes[1].plot(widths, entropy_raw, "o-", label="softmax(q·k)")
axes[1].plot(widths, entropy_scaled, "s-", label="softmax(q·k / √d)")
axes[1].axhline(math.log(64), color="k", ls=":", label="uniform over 64 keys")
axes[1].set_xscale("log"); axes[1].set_xlabel("head width d"); axes[1].set_ylabel("entropy of a row (nats)")
axes[1].set_title("without scaling, attention collapses onto one key"); axes[1].legend(fontsize=8)
fig.tight_layout()
plt.show()
assert abs(spread[-1] / math.sqrt(1024) - 1) < 0.1
assert entropy_scaled[-1] > 3 * entropy_raw[-1]

# %% [markdown]
# **Your turn:** implement `attention_weights(q, k)` in `exercises/attention.py`: queries and keys of shape
# (B, h, N, d) give weights (B, h, N, N) whose rows sum to 1. The reference used when yours is not ready
# is a small trick worth understanding: attention applied to the *identity matrix* as values returns the
# weights themselves.

# %%
def reference_attention_weights(q, k):
    """softmax(q k^T / sqrt(d)) via PyTorch's fused attention with one-hot values (out = weights @ I)."""
    identity = torch.eye(k.shape[-2], dtype=q.dtype).expand(*k.shape[:-1], k.shape[-2])  # (B, h, N, N)
    return F.scaled_dot_product_attention(q, k, identity)


reference_attention_weights.__module__ = "torch's scaled_dot_product_attention"


q_check, k_check = torch.randn(2, 3, 5, 8), torch.randn(2, 3, 5, 8)
attention_weights = student_or_reference(
    "attention", "attention_weights", reference_attention_weights,
    check=lambda f: torch.testing.assert_close(f(q_check, k_check), reference_attention_weights(q_check, k_check)),
)

# %% [markdown]
# A tiny example makes the mechanics visible: five tokens whose keys point in different directions, and a
# query equal to the key of token 3, scaled up. The query finds "its" token.

# %%
k = torch.eye(5, 8)[None, None] * 3.0  # (1, 1, 5, 8): token j's key is 3 * e_j
q = k.clone()
q[0, 0, 0] = 2.0 * k[0, 0, 3]  # token 0 asks for what token 3 contains
weights = attention_weights(q, k)  # (1, 1, 5, 5)
print(weights[0, 0].numpy().round(3))
torch.testing.assert_close(weights.sum(-1), torch.ones(1, 1, 5))
assert weights[0, 0, 0].argmax() == 3

fig, ax = plt.subplots(figsize=(4, 3.3))
im = ax.imshow(weights[0, 0], cmap="viridis", vmin=0, vmax=1)
ax.set_xlabel("key token j"); ax.set_ylabel("query token i")
ax.set_title("attention weights: row i sums to 1")
fig.colorbar(im, ax=ax)
plt.show()

# %% [markdown]
# ## 2. Several heads
#
# A single softmax can only focus one way at a time. **Multi-head** attention splits the width D into h
# heads of width d = D/h; each head has its own slice of the query, key and value projections, attends
# independently, and the heads' outputs are concatenated and mixed by an output projection. In the
# package one linear layer `qkv` (D -> 3D) computes all queries, keys and values at once, laid out as
# (three, heads, d).
#
# **Your turn:** implement `attention(x, attn)` in `exercises/attention.py` from the weights of a
# `minijepa.vit.Attention` module (`attn.qkv`, `attn.num_heads`, `attn.proj`), using your
# `attention_weights`. The check compares with the module's own explicit path.

# %%
torch.manual_seed(0)
attn = Attention(dim=48, num_heads=4)
x_check = torch.randn(2, 7, 48)
expected_out, expected_weights = attn(x_check, return_attention=True)


def check_attention(f):
    out, w = f(x_check, attn)
    torch.testing.assert_close(out, expected_out, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(w, expected_weights, rtol=1e-5, atol=1e-5)


def reference_attention(x, attn):
    return attn(x, return_attention=True)


reference_attention.__module__ = "minijepa.vit.Attention"
attention = student_or_reference("attention", "attention", reference_attention, check=check_attention)

# %%
out, w = attention(x_check, attn)
assert out.shape == (2, 7, 48) and w.shape == (2, 4, 7, 7)
# the fused kernel (what training uses) computes the same thing without ever storing the weights
torch.testing.assert_close(attn(x_check), out, rtol=1e-5, atol=1e-5)
print("explicit multi-head attention == fused scaled_dot_product_attention")

# %% [markdown]
# ## 3. The Transformer block and the ViT
#
# A ViT block is *pre-norm*: each sub-layer reads a layer-normalised copy of the residual stream and adds
# its result back:
#
#     x = x + Attention(LayerNorm(x))
#     x = x + MLP(LayerNorm(x))          # MLP: Linear(D, 4D), GELU, Linear(4D, D)
#
# The residual stream is never normalised itself, so information (and gradient) passes straight through
# a deep stack. **Your turn:** `block_forward(x, block)` in `exercises/attention.py`.

# %%
torch.manual_seed(0)
block = Block(dim=48, num_heads=4).eval()


def reference_block_forward(x, block):
    return block(x)


reference_block_forward.__module__ = "minijepa.vit.Block"
block_forward = student_or_reference(
    "attention", "block_forward", reference_block_forward,
    check=lambda f: torch.testing.assert_close(f(x_check, block), block(x_check), rtol=1e-5, atol=1e-5),
)
assert block_forward(x_check, block).shape == x_check.shape

# %% [markdown]
# The encoder stacks it all: patch embedding + fixed sin-cos positions (notebook 01), L blocks, and a final
# LayerNorm. I-JEPA's encoder has no class token and no classification head: its output is one vector per
# patch, (B, N, D), and an image-level feature is the average of the patch vectors. Let us check the block
# by block forward against the module, and count parameters against the ViT paper's table.

# %%
torch.manual_seed(0)
vit = vit_tiny(patch_size=16, image_size=224, depth=4).eval()
photos = load_photos(image_size=224)
images = normalize(torch.stack(list(photos.values())[:2]))  # (2, 3, 224, 224)
with torch.no_grad():
    h = vit.patch_embed(images) + vit.pos_embed  # (B, N, D)
    for blk in vit.blocks:
        h = block_forward(h, blk)
    h = vit.norm(h)
    torch.testing.assert_close(h, vit(images), rtol=1e-4, atol=1e-4)
print("our block-by-block forward matches VisionTransformer.forward:", tuple(h.shape))


def vit_params(depth, embed_dim, mlp_ratio=4.0, patch=16, **_):
    """Parameters of a ViT encoder (no class token or head): patch embedding, blocks, final norm."""
    hidden = round(mlp_ratio * embed_dim)
    per_block = (embed_dim + 1) * 3 * embed_dim + (embed_dim + 1) * embed_dim  # qkv and proj (+ biases)
    per_block += (embed_dim + 1) * hidden + (hidden + 1) * embed_dim + 4 * embed_dim  # MLP, 2 LayerNorms
    return patch * patch * 3 * embed_dim + embed_dim + depth * per_block + 2 * embed_dim


paper = {"tiny": 5.7e6, "small": 22e6, "base": 86e6, "large": 307e6, "huge": 632e6, "giant": 1e9}  # "~1B"
print(f"{'preset':8s}{'layers':>7s}{'width':>7s}{'heads':>7s}{'params':>10s}{'paper':>9s}")
for name, p in VIT_PRESETS.items():
    count = vit_params(**p)
    print(f"{name:8s}{p['depth']:7d}{p['embed_dim']:7d}{p['num_heads']:7d}{count / 1e6:9.1f}M{paper[name] / 1e6:8.1f}M")
    assert abs(count - paper[name]) / paper[name] < 0.05
assert vit_params(**VIT_PRESETS["tiny"]) == sum(p.numel() for p in vit_tiny(image_size=224).parameters())

# %% [markdown]
# ## 4. Initialisation, and a quirk of the official code
#
# All weights start from a truncated normal with standard deviation 0.02. Then the two layers of each block
# that *write into* the residual stream (the attention output projection `attn.proj` and the MLP's second
# layer `mlp.fc2`) are divided by √(2·l) in block l = 1 ... L. Deeper blocks therefore start with smaller
# updates, and the residual stream does not blow up as blocks are stacked.
#
# **A quirk worth knowing.** The official I-JEPA code applies this rescaling when it builds a ViT, but the
# helper that then sets up the models for training (`init_model`) *re-initialises every linear layer* of
# the encoder and the predictor with the plain truncated normal, after the depth-scaled init. That
# overwrites, and so undoes, the rescaling: in the released code all blocks start with the same output
# scale. Ours keeps the rescaling (`minijepa.vit.init_vit_weights`, checked in `tests/test_vit.py`). The
# cell below compares the two: the standard deviation of the output projections, and
# how much each block changes the residual stream of real photographs at initialisation (a 12-layer ViT-Tiny).

# %%
def official_order(model):
    """What the official code ends up with: every linear layer re-drawn after the rescaling."""
    for m in model.modules():
        if isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=0.02, a=-0.04, b=0.04)
            nn.init.zeros_(m.bias)
    return model


@torch.no_grad()
def relative_updates(model, images):
    """||block(x) - x|| / ||x|| for each block: how much each block moves the residual stream."""
    x, sizes = model.embed(images), []
    for blk in model.blocks:
        y = blk(x)
        sizes.append(((y - x).norm() / x.norm()).item())
        x = y
    return sizes


torch.manual_seed(0)
ours = vit_tiny(patch_size=16, image_size=224)
torch.manual_seed(0)
official = official_order(vit_tiny(patch_size=16, image_size=224))
layers = np.arange(1, 13)
fig, axes = plt.subplots(1, 2, figsize=(11, 3.4))
for model, label, style in ((ours, "ours: rescaling kept", "o-"), (official, "official: rescaling undone", "s--")):
    axes[0].plot(layers, [b.attn.proj.weight.std().item() for b in model.blocks], style, label=label)
    axes[1].plot(layers, relative_updates(model, images), style, label=label)
axes[0].plot(layers, 0.02 * 0.8796 / np.sqrt(2 * layers), "k:", label="0.02 · 0.88 / √(2l)")
axes[0].set_xlabel("block l"); axes[0].set_ylabel("std of attn.proj weights")
axes[0].set_title("output projections at initialisation"); axes[0].legend(fontsize=8)
axes[1].set_xlabel("block l"); axes[1].set_ylabel("||block(x) - x|| / ||x||")
axes[1].set_title("how much each block changes the residual stream"); axes[1].legend(fontsize=8)
fig.tight_layout()
plt.show()

stds = [b.attn.proj.weight.std().item() for b in ours.blocks]
assert stds[-1] < 0.4 * stds[0]  # ours: block 12 starts ~3.5x smaller than block 1
assert abs(official.blocks[-1].attn.proj.weight.std().item() / official.blocks[0].attn.proj.weight.std().item() - 1) < 0.1

# %% [markdown]
# ## 5. Parity with timm
#
# "It runs" is not "it is right". timm's `VisionTransformer` is a widely used, independent
# implementation. Configured the same way (no class token, no head, LayerNorm eps 1e-6) it has exactly our
# parameter names, so we can copy our weights into it and compare outputs. (timm stores the position table
# as a parameter, so we copy our fixed table in as well.)

# %%
import timm.models.vision_transformer as timm_vit

torch.manual_seed(0)
ours = vit_tiny(patch_size=16, image_size=224).eval()
cfg = ours.config
theirs = timm_vit.VisionTransformer(
    img_size=cfg.image_size, patch_size=cfg.patch_size, embed_dim=cfg.embed_dim, depth=cfg.depth,
    num_heads=cfg.num_heads, mlp_ratio=cfg.mlp_ratio, qkv_bias=True, class_token=False, global_pool="",
    num_classes=0, norm_layer=partial(nn.LayerNorm, eps=cfg.norm_eps),
).eval()
state = dict(ours.state_dict(), pos_embed=ours.pos_embed.clone())
missing, unexpected = theirs.load_state_dict(state, strict=True)
with torch.no_grad():
    a, b = ours(images), theirs.forward_features(images)
print("max |ours - timm| =", (a - b).abs().max().item())
torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)

# %% [markdown]
# ## 6. Attention maps on a photograph
#
# `VisionTransformer.forward_with_attention` returns every layer's attention weights, (B, h, N, N). Row i
# of a head's matrix, reshaped to the 14 x 14 grid, shows where patch i looks. A summary number per head
# is its **mean attention distance** (the ViT paper's Figure 7): for each query, the attention-weighted
# average distance to the patches it attends to, averaged over queries. A head that looks only at
# itself scores 0; a head that attends uniformly scores the average distance between two patches.
#
# Here is a randomly initialised ViT-Tiny on the cat photograph.

# %%
torch.manual_seed(0)
vit = vit_tiny(patch_size=16, image_size=224).eval()  # 12 layers, 3 heads, random init
cat = photos["chelsea"]
explorer = AttentionExplorer.from_encoder(vit, cat)  # runs the model once, keeps all maps
query = (5, 3)  # the cat's left eye

fig, axes = plt.subplots(3, 4, figsize=(11, 8))
for row, layer in enumerate((0, 5, 11)):
    for head in range(3):
        view = explorer.update(layer=layer, head=head, query=query)
        im = axes[row, head].imshow(view.attention, cmap="viridis")
        axes[row, head].plot(query[1], query[0], "rs", mfc="none", ms=9, label="query")
        axes[row, head].set_title(f"layer {layer}, head {head}", fontsize=9)
        fig.colorbar(im, ax=axes[row, head], fraction=0.046)
    axes[row, 3].imshow(explorer.update(layer=layer, head="mean", query=query).overlay)
    axes[row, 3].set_title(f"layer {layer}, mean of heads, on the photo", fontsize=9)
    axes[row, 0].set_ylabel("key patch row")
for ax in axes[-1]:
    ax.set_xlabel("key patch column")
axes[0, 0].legend(fontsize=7, loc="lower left")
fig.suptitle(f"Random-init ViT-Tiny: attention of query patch {query} (note the tiny colour ranges)", fontsize=11)
fig.tight_layout()
plt.show()

uniform = patch_distances(explorer.grid, 16).mean().item()
distances = explorer.mean_distances()  # (layers, heads), in pixels
print(f"mean attention distances: {distances.min():.1f} to {distances.max():.1f} px; uniform attention: {uniform:.1f} px")
assert np.allclose(distances, uniform, rtol=0.02)  # at initialisation every head looks everywhere equally

# %% [markdown]
# At initialisation the weights are small (std 0.02), so queries and keys are short, their dot products
# are close to zero, and every softmax is almost uniform: each head just averages the whole image, in every layer. The structure of a
# *trained* ViT (heads in early layers that look at their neighbourhood, others that look far away, and
# heads that follow objects) is learned. Notebook 07 repeats these plots on the encoder you train.
#
# To see what structured attention looks like, and what the mean attention distance measures, we can build
# two kinds of heads by hand, with your `attention_weights`:
#
# * a **positional head**: queries = keys = β · (2-D sin-cos position). Scores are high between nearby
#   positions, so the head looks at its neighbourhood; a larger β makes it more local.
# * a **content head**: queries = keys = β · (standardised pixels of the patch). Scores are high between
#   patches that *look alike* (and, since dot products grow with length, towards high-contrast patches),
#   wherever they are: from one eye of the cat, it finds the other eye.

# %%
P, grid = 16, (14, 14)
pos = sincos_2d(64, grid)[None, None]  # (1, 1, N, 64)
pix = patchify(cat[None], P)[0]  # (N, 768)
pix = ((pix - pix.mean(0)) / (pix.std(0) + 1e-6))[None, None]  # (1, 1, N, 768)
heads = {
    "positional, β = 2": attention_weights(2 * pos, 2 * pos)[0, 0],
    "positional, β = 3": attention_weights(3 * pos, 3 * pos)[0, 0],
    "content, β = 0.5": attention_weights(0.5 * pix, 0.5 * pix)[0, 0],
}
q_index = query[0] * 14 + query[1]
fig, axes = plt.subplots(1, 4, figsize=(13, 3.3))
toy = AttentionExplorer([torch.stack(list(heads.values()))], grid, P, cat)
for i, (name, a) in enumerate(heads.items()):
    view = toy.update(layer=0, head=i, query=query)
    axes[i].imshow(view.overlay)
    axes[i].add_patch(plt.Rectangle((query[1] * P - 0.5, query[0] * P - 0.5), P, P, fill=False, ec="yellow", lw=1.2))
    axes[i].set_title(f"{name}\nmean distance {view.mean_distance:.0f} px", fontsize=9)
    axes[i].set_xlabel("x (pixels)")
axes[0].set_ylabel("y (pixels)")
hand = toy.mean_distances()[0]
axes[3].bar(range(3), hand, color=["tab:blue", "tab:cyan", "tab:orange"], label="hand-made heads")
axes[3].axhline(uniform, color="k", ls="--", label="uniform (random-init ViT)")
axes[3].set_xticks(range(3), ["pos β=2", "pos β=3", "content"], fontsize=8)
axes[3].set_ylabel("mean attention distance (px)")
axes[3].set_title("how far each head looks")
axes[3].legend(fontsize=7)
fig.suptitle(f"Hand-made heads, query = the cat's eye {query} (yellow square; bright = attended)", fontsize=11)
fig.tight_layout()
plt.show()

assert hand[1] < hand[0] < uniform  # positional heads are local, sharper with larger β
assert hand[2] > hand[0]  # the content head looks further away, wherever similar patches are

# %% [markdown]
# ## 7. The attention explorer
#
# `minijepa.explorers.AttentionExplorer` keeps all the maps of one forward pass; `update(layer, head,
# query)` returns the attention row of a query patch (and the overlay, the entropy of the row and the
# head's mean attention distance). `attention_explorer(explorer)` wraps it in sliders: pick a layer, a
# head (or their mean) and a query patch, and the figure follows. First a static view (so that this page
# shows something without a running kernel), then the interactive one.
#
# Set `USE_TRAINED = True` after `make train` to explore the encoder you trained (64-pixel images, 8 x 8
# patches).

# %%
USE_TRAINED = False
if USE_TRAINED:
    from minijepa.config import config_from_dict
    from minijepa.data import load_photo
    from minijepa.train import build_model

    checkpoint = torch.load(ROOT / "runs/cpu_default/checkpoint.pt", map_location="cpu", weights_only=False)
    trained = build_model(config_from_dict(checkpoint["config"]))
    trained.load_state_dict(checkpoint["model"])
    encoder = trained.target_encoder
    explorer = AttentionExplorer.from_encoder(encoder, load_photo("chelsea", encoder.config.image_size[0]))

view = explorer.update(layer=explorer.num_layers - 1, head="mean", query=(explorer.grid[0] // 2, explorer.grid[1] // 3))
fig = plot_attention_view(view, explorer)
plt.show()
assert abs(view.attention.sum() - 1) < 1e-4

# %%
attention_explorer(explorer)

# %% [markdown]
# ## Summary
#
# * Attention: weights softmax(q·k/√d), output the weighted average of values; the 1/√d keeps the
#   softmax from saturating as heads get wider.
# * Multi-head attention runs h independent attentions of width D/h and mixes them with a projection;
#   a pre-norm block adds attention and an MLP to the residual stream; the ViT encoder is patch embedding +
#   positions + L blocks + LayerNorm, output (B, N, D).
# * Init: truncated normal 0.02, output projections of block l divided by √(2l). The official I-JEPA code
#   re-initialises every linear layer afterwards, undoing that rescaling; ours keeps it.
# * Our ViT matches timm to 1e-5 with copied weights.
# * At initialisation attention is uniform (mean distance = average patch distance); structure is learned.
#
# ## Self-check
#
# 1. Two heads of width 64 vs one head of width 128, same D = 128: which has more parameters?
# 2. Why does the package compute attention with `F.scaled_dot_product_attention` in training, but
#    explicitly when you ask for the weights?
# 3. A head's mean attention distance is 0. What does its attention matrix look like?
# 4. What does dividing `mlp.fc2` of block l by √(2l) achieve, and why does the order of the init steps
#    in the official code matter?
#
# <details><summary>Answers</summary>
#
# 1. The same: the q, k, v and output projections are D x D matrices either way; heads only split them.
# 2. The fused kernel never stores the N x N weights (less memory, faster), but then they cannot be
#    returned; plotting needs them, so that path computes softmax(q k^T/√d) explicitly.
# 3. The identity: every query puts all its weight on its own patch.
# 4. Each block's contribution to the residual stream starts smaller the deeper it is, so the stream's
#    variance stays controlled as blocks are stacked. If every linear layer is re-initialised afterwards,
#    the division is overwritten and all blocks start at the same scale.
#
# </details>
#
# **Exercises:** `exercises/attention.py` (`attention_weights`, `attention`, `block_forward`).
'''


# =====================================================================================================
# 03 Multi-block masking
# =====================================================================================================

NB03 = r'''
# %% [markdown]
# # 03 · Multi-block masking
#
# Masks are I-JEPA's only "augmentation": they decide what the context encoder sees and what the predictor
# must guess. The paper found the *shape* of this task to matter a lot (large, semantic target blocks
# and an informative, spread-out context). Package module: `minijepa/masks.py`; the mask explorer lives
# in `minijepa/explorers.py`.
#
# **Learning goals.** After this notebook you can
# 1. sample a target block from a scale and an aspect ratio, place it uniformly, and build the context
#    (a large block minus the targets);
# 2. check a sampler's statistics (block area, aspect ratio, context ratio) against its configuration;
# 3. compare multi-block masking with the paper's ablations (random, block, rasterized);
# 4. read coverage heat maps, and spot the biases of the official collator that our `reference` mode
#    reproduces;
# 5. apply masks by index gathering, and explore the settings interactively.

# %%
%%SETUP%%

# %%
import warnings

import matplotlib.pyplot as plt
import numpy as np
import torch

from minijepa import masks as reference
from minijepa.data import load_photos
from minijepa.explorers import MaskExplorerState, mask_explorer, plot_mask_view
from minijepa.masks import BlockMasks, MultiBlockMasks, RandomMasks, RasterizedMasks, coverage, masks_to_grid
from minijepa.viz import mask_overlay

%%STYLE%%
photos = load_photos(image_size=224)
photo = photos["astronaut"]  # (3, 224, 224)
GRID, P = (14, 14), 16

# %%
%%EXERCISES%%

# %% [markdown]
# ## 1. One block
#
# A mask is a set of patch indices into the H x W grid (index = row · W + column). A block is
# described by its **scale** s (the fraction of the N = H·W patches it covers) and its **aspect ratio**
# a = height / width. Solving h·w = s·N and h/w = a gives
#
# $$h = \sqrt{s N a}, \qquad w = \sqrt{s N / a},$$
#
# rounded to whole patches. For the paper's targets, s ~ U(0.15, 0.2) and a ~ U(0.75, 1.5): on the 14 x 14
# grid, blocks of about 30-40 patches such as 6 x 6 or 7 x 5. The block's top-left corner is then drawn
# uniformly among all positions where the block fits: rows 0 ... H - h and columns 0 ... W - w, *both ends
# included*.
#
# **Your turn:** `sample_block(grid, block, generator)` in `exercises/masks.py`. The reference it falls back
# on is the package's single-block ablation sampler, `BlockMasks`, with a fixed scale and ratio.

# %%
def reference_sample_block(grid, block, generator):
    """One h x w block placed uniformly: BlockMasks with scale h*w/N and ratio h/w draws exactly that."""
    (H, W), (h, w) = grid, block
    sampler = BlockMasks(grid, target_scale=h * w / (H * W), aspect_ratio=h / w)
    return sampler.sample(1, generator).targets[0, 0]  # (h*w,)


reference_sample_block.__module__ = "minijepa.masks.BlockMasks"


def check_sample_block(f):
    H, W, h, w = 6, 7, 3, 2
    seen_last_row = seen_last_col = False
    for seed in range(200):
        idx = f((H, W), (h, w), torch.Generator().manual_seed(seed))
        assert idx.shape == (h * w,) and idx.dtype == torch.long, (idx.shape, idx.dtype)
        assert torch.equal(idx, idx.sort().values), "indices must be ascending"
        rows, cols = idx // W, idx % W
        assert rows.max() - rows.min() == h - 1 and cols.max() - cols.min() == w - 1, "not an h x w block"
        assert len(set(idx.tolist())) == h * w
        seen_last_row |= bool(rows.max() == H - 1)
        seen_last_col |= bool(cols.max() == W - 1)
    assert seen_last_row and seen_last_col, "blocks must be able to touch the last row and column"
    assert torch.equal(f((H, W), (h, w), torch.Generator().manual_seed(1)), f((H, W), (h, w), torch.Generator().manual_seed(1)))


sample_block = student_or_reference("masks", "sample_block", reference_sample_block, check=check_sample_block)

# %% [markdown]
# ## 2. Targets, context, overlap removal
#
# I-JEPA draws **M = 4 target blocks** (they may overlap each other) and one **context block** of scale
# 0.85-1.0 and aspect ratio 1. Then every target patch is removed from the context: the context encoder
# must never see what the predictor will be asked about. What is left is an irregular context (on average
# about a quarter to a half of the image, see below) spread around the targets.
#
# **Your turn:** `multiblock_masks(grid, num_targets, target_block, context_block, generator)` in
# `exercises/masks.py`, for one image. The fallback is the package's sampler with the block shapes fixed.

# %%
def reference_multiblock_masks(grid, num_targets, target_block, context_block, generator):
    (H, W), (th, tw), (ch, cw) = grid, target_block, context_block
    sampler = MultiBlockMasks(grid, num_targets=num_targets, target_scale=th * tw / (H * W), target_aspect_ratio=th / tw,
                              context_scale=ch * cw / (H * W), context_aspect_ratio=ch / cw, min_keep=1)
    masks = sampler.sample(1, generator)
    return masks.context[0], masks.targets[0]


reference_multiblock_masks.__module__ = "minijepa.masks.MultiBlockMasks"


def check_multiblock_masks(f):
    for seed in range(20):
        context, targets = f((10, 10), 4, (3, 4), (9, 9), torch.Generator().manual_seed(seed))
        assert targets.shape == (4, 12) and targets.dtype == torch.long
        assert context.dim() == 1 and context.dtype == torch.long
        assert torch.equal(context, context.sort().values)
        assert not torch.isin(context, targets.flatten()).any(), "the context contains target patches"
        rows, cols = context // 10, context % 10
        assert rows.max() - rows.min() < 9 and cols.max() - cols.min() < 9, "context outside one 9 x 9 block"


multiblock_masks = student_or_reference("masks", "multiblock_masks", reference_multiblock_masks,
                                        check=check_multiblock_masks)

# %%
# the three steps by hand, with your sample_block
g = torch.Generator().manual_seed(4)
targets = torch.stack([sample_block(GRID, (6, 5), g) for _ in range(4)])  # (M, T)
context_block = sample_block(GRID, (13, 13), g)  # (169,)
context = context_block[~torch.isin(context_block, targets.flatten())]  # (K,)
assert not torch.isin(context, targets.flatten()).any() and len(context) < 169


def picture(*index_sets):
    """Label picture, masked where empty: k for the k-th index set (later sets drawn on top)."""
    grid = np.zeros(GRID[0] * GRID[1])
    for k, idx in enumerate(index_sets, start=1):
        grid[idx.numpy()] = k
    return np.ma.masked_equal(grid.reshape(GRID), 0)


fig, axes = plt.subplots(1, 3, figsize=(11, 3.6))
steps = [
    (picture(*targets), "1. four target blocks of 6 x 5 (may overlap)", "Set1", 9),
    (picture(context_block), "2. one context block of 13 x 13", "Blues", 1.3),
    (picture(context), f"3. context minus targets: {len(context)} patches", "Blues", 1.3),
]
for ax, (image, title, cmap, top) in zip(axes, steps):
    ax.imshow(image, cmap=cmap, vmin=0, vmax=top)
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("patch column")
    ax.set_xticks(range(0, 14, 2))
axes[0].set_ylabel("patch row")
fig.suptitle("Building the masks of one image on the 14 x 14 grid (white: not in the mask)", fontsize=11)
fig.tight_layout()
plt.show()

# the same in one call, with your multiblock_masks
context, targets = multiblock_masks(GRID, 4, (6, 5), (13, 13), g)
print(f"multiblock_masks: context {tuple(context.shape)}, targets {tuple(targets.shape)}")
assert targets.shape == (4, 30) and not torch.isin(context, targets.flatten()).any()

# %% [markdown]
# ## 3. The package's sampler, for a batch
#
# `MultiBlockMasks` does the same for a whole batch, vectorised and seeded (a `torch.Generator`, never the
# global random state). Two details come from the need to stack masks into tensors:
#
# * the target **shape** is drawn once per batch and shared by all images and blocks (positions differ),
#   so the targets are one (B, M, T) tensor;
# * contexts differ in size, so each is cut to the batch's smallest size K, by keeping a *random* subset of
#   its patches, giving a (B, K) tensor. (An image whose context falls below `min_keep` patches redraws
#   its positions.)

# %%
sampler = MultiBlockMasks(GRID, seed=0)
batch = sampler.sample(4, torch.Generator().manual_seed(0))
print("context", tuple(batch.context.shape), " targets", tuple(batch.targets.shape))
assert batch.targets.shape[:2] == (4, 4) and batch.context.shape[0] == 4
ctx_grid, tgt_grid = masks_to_grid(batch)
assert not (ctx_grid[:, None] & tgt_grid).any()  # no image sees its own targets

fig, axes = plt.subplots(1, 4, figsize=(12, 3.3))
for i, (ax, (name, image)) in enumerate(zip(axes, list(photos.items())[:4])):
    ax.imshow(mask_overlay(image, batch, i, patch_size=P))
    ax.set_title(f"{name}: context {batch.context.shape[1]}, 4 x {batch.targets.shape[2]} targets", fontsize=9)
    ax.set_xlabel("x (pixels)")
axes[0].set_ylabel("y (pixels)")
fig.suptitle("One batch: context (blue) and target blocks (colours); dark patches are unused", fontsize=11)
fig.tight_layout()
plt.show()

# %% [markdown]
# ## 4. Do the statistics match the configuration?
#
# A sampler can be wrong in ways no single picture shows. We draw 2000 batches and compare what comes out
# with what was asked for: target scale in (0.15, 0.2), aspect ratio in (0.75, 1.5). Blocks are whole
# patches, so a drawn scale of, say, 0.16 becomes the nearest block shape: the realised areas land on a
# few discrete values around the range (the histograms), and we check the rounding bound instead of the
# range itself. The context ratio is measured per image before the batch cut (batch of 1) and after it
# (batch of 64).

# %%
g = torch.Generator().manual_seed(0)
area, ratio, ctx1 = [], [], []
for _ in range(2000):
    m = sampler.sample(1, g)
    rows, cols = m.targets[0, 0] // 14, m.targets[0, 0] % 14
    h, w = int(rows.max() - rows.min()) + 1, int(cols.max() - cols.min()) + 1
    area.append(h * w / 196)
    ratio.append(h / w)
    ctx1.append(m.context.shape[1] / 196)
ctx64 = [sampler.sample(64, g).context.shape[1] / 196 for _ in range(100)]
area, ratio = np.array(area), np.array(ratio)

fig, axes = plt.subplots(1, 3, figsize=(12, 3.3))
axes[0].hist(area, bins=np.arange(0.1, 0.26, 0.005), color="tab:red", density=True, label="drawn blocks")
axes[0].axvspan(0.15, 0.2, color="k", alpha=0.1, label="configured scale")
axes[0].set_xlabel("target block area / N"); axes[0].set_title("target scale")
axes[1].hist(ratio, bins=np.arange(0.5, 1.8, 0.05), color="tab:orange", density=True, label="drawn blocks")
axes[1].axvspan(0.75, 1.5, color="k", alpha=0.1, label="configured ratio")
axes[1].set_xlabel("target block height / width"); axes[1].set_title("aspect ratio")
axes[2].hist(ctx1, bins=30, alpha=0.7, density=True, label=f"batch of 1: mean {np.mean(ctx1):.2f}")
axes[2].hist(ctx64, bins=10, alpha=0.7, density=True, label=f"batch of 64: mean {np.mean(ctx64):.2f}")
axes[2].axvline(0.25, color="k", ls="--", label="paper's average, 0.25")
axes[2].set_xlabel("context patches / N"); axes[2].set_title("context ratio")
for ax in axes:
    ax.set_ylabel("density"); ax.legend(fontsize=7)
fig.tight_layout()
plt.show()

# rounding bound: (h - 1/2)(w - 1/2) <= s N <= (h + 1/2)(w + 1/2) for some s in the range
assert area.min() >= 0.11 and area.max() <= 0.25
assert 0.15 <= area.mean() <= 0.2 and 0.75 <= np.median(ratio) <= 1.5
assert ratio.min() > 0.6 and ratio.max() < 1.8
assert np.mean(ctx64) < np.mean(ctx1)  # cutting to the batch minimum shrinks the context
assert 0.2 < np.mean(ctx64) < 0.4  # close to the paper's "about 0.25"

# %% [markdown]
# ## 5. The paper's ablations, side by side
#
# The paper compares multi-block masking with three other ways of choosing context and targets (1 %
# ImageNet linear probe, ViT-B/16 or ViT-L/16; see notebook 08 for our small-scale version):
#
# | masking | targets | context | avg. context ratio | top-1 |
# |---|---|---|---|---|
# | multi-block | 4 blocks, scale 0.15-0.2 | block 0.85-1.0 minus targets | 0.25 | 54.2 |
# | rasterized | 3 quadrants | the fourth quadrant | 0.25 | 15.5 |
# | block | 1 block, scale 0.6 | its complement | 0.4 | 20.2 |
# | random | random 60 % of the patches | the rest | 0.4 | 17.6 |
#
# Random masking leaves a context that is spread everywhere, so each target patch has visible neighbours
# and can be guessed from local texture. The other two hide whole regions but leave a context that is
# either too small and far away (rasterized) or a single large hole (block). Multi-block asks for several
# large, semantic regions from a big, informative context.

# %%
strategies = {
    "multi-block": MultiBlockMasks(GRID, seed=0),
    "rasterized": RasterizedMasks(GRID, seed=0),
    "block": BlockMasks(GRID, target_scale=0.6, seed=0),
    "random": RandomMasks(GRID, target_ratio=0.6, seed=0),
}
fig, axes = plt.subplots(1, 4, figsize=(12, 3.4))
ratios = {}
for ax, (name, s) in zip(axes, strategies.items()):
    m = s.sample(1, torch.Generator().manual_seed(2))
    ratios[name] = np.mean([s.sample(64, torch.Generator().manual_seed(k)).context.shape[1] / 196 for k in range(20)])
    ax.imshow(mask_overlay(photo, m, 0, patch_size=P))
    ax.set_title(f"{name}: M = {m.targets.shape[1]}, context {ratios[name]:.2f}", fontsize=9)
    ax.set_xlabel("x (pixels)")
axes[0].set_ylabel("y (pixels)")
fig.suptitle("Four masking strategies on the same photograph (context blue, targets coloured)", fontsize=11)
fig.tight_layout()
plt.show()
assert abs(ratios["rasterized"] - 0.25) < 1e-6 and abs(ratios["random"] - 0.4) < 0.01
assert abs(ratios["block"] - 0.4) < 0.05

# %% [markdown]
# ## 6. Coverage heat maps: our sampler vs the official collator
#
# How often is each patch part of the context, or of a target, over many images? For a fair sampler the
# picture should be symmetric: nothing in the method prefers the top of an image to the bottom. The
# official collator (facebookresearch/ijepa, `src/masks/multiblock.py`) has a few quirks that show up
# here, and `MultiBlockMasks(mode="reference")` reproduces them on purpose:
#
# * block corners are drawn with `randint(0, H - h)`, whose upper end is *excluded*, so no block ever
#   touches the **last row or last column**;
# * the context block is shrunk below the grid size: at the paper's settings it is always 13 x 13 and,
#   with the corner rule above, always the top-left 13 x 13 square;
# * contexts are cut to the batch minimum by keeping the **lowest indices**, that is the top rows, so
#   the kept context is biased towards the **top** of the image;
# * one random number sets both the scale and the aspect ratio, so they are correlated, and only a handful
#   of block shapes ever occur.
#
# Our default (`mode="unbiased"`) follows the paper's text: corners over all valid positions, independent
# scale and ratio, and a random (not top-first) cut.

# %%
cov = {}
for mode in ("unbiased", "reference"):
    s = MultiBlockMasks(GRID, mode=mode, seed=0)
    cov[mode] = coverage(s, 4096, batch_size=128, generator=torch.Generator().manual_seed(0))

fig, axes = plt.subplots(1, 5, figsize=(15, 3.3), gridspec_kw=dict(width_ratios=[1, 1, 1, 1, 1.3]))
for col, (mode, which, cmap) in enumerate([("unbiased", "context", "Blues"), ("reference", "context", "Blues"),
                                           ("unbiased", "target", "Reds"), ("reference", "target", "Reds")]):
    im = axes[col].imshow(cov[mode][which], cmap=cmap, vmin=0, vmax=1)
    axes[col].set_title(f"{mode}: P({which})", fontsize=9)
    axes[col].set_xlabel("patch column")
    fig.colorbar(im, ax=axes[col], fraction=0.046)
axes[0].set_ylabel("patch row")
for mode, style in (("unbiased", "o-"), ("reference", "s--")):
    axes[4].plot(cov[mode]["context"].mean(1), style, label=f"{mode}: context")
    axes[4].plot(cov[mode]["target"].mean(1), style, alpha=0.5, label=f"{mode}: target")
axes[4].set_xlabel("patch row (top = 0)"); axes[4].set_ylabel("mean frequency over the row")
axes[4].set_title("coverage per row", fontsize=9); axes[4].legend(fontsize=7)
fig.suptitle("How often each patch is context / target over 4096 images (batches of 128)", fontsize=11)
fig.tight_layout()
plt.show()

ref, unb = cov["reference"], cov["unbiased"]
assert ref["context"][-1].max() == 0 and ref["context"][:, -1].max() == 0  # last row / column never context
assert ref["target"][-1].max() == 0 and ref["target"][:, -1].max() == 0  # ... nor target
assert unb["context"][-1].min() > 0 and unb["target"][-1].min() > 0
rows = ref["context"][:-1].mean(1)
assert rows[0] > 3 * rows[-1]  # reference context: strongly biased towards the top
top, bottom = unb["context"][:7].mean().item(), unb["context"][7:].mean().item()
assert abs(top - bottom) < 0.03  # unbiased: top and bottom halves alike
print(f"reference: context ratio {ref['context'].mean():.2f}; unbiased: {unb['context'].mean():.2f}")

# %% [markdown]
# The shared random number of the reference mode is easy to see in the shapes it draws:

# %%
shapes = {}
for mode in ("unbiased", "reference"):
    s = MultiBlockMasks(GRID, mode=mode, seed=0)
    g = torch.Generator().manual_seed(0)
    drawn = []
    for _ in range(500):
        t = s.sample(1, g).targets[0, 0]
        rows, cols = t // 14, t % 14
        drawn.append((int(rows.max() - rows.min()) + 1, int(cols.max() - cols.min()) + 1))
    shapes[mode] = drawn

fig, axes = plt.subplots(1, 2, figsize=(10, 3.3), sharey=True)
for ax, (mode, drawn) in zip(axes, shapes.items()):
    counts = {hw: drawn.count(hw) for hw in sorted(set(drawn))}
    ax.bar([f"{h}x{w}" for h, w in counts], list(counts.values()), color="tab:red", label=f"{len(counts)} shapes")
    ax.set_title(f"{mode}: target block shapes in 500 batches", fontsize=9)
    ax.set_xlabel("block (rows x columns)")
    ax.tick_params(axis="x", labelsize=7, rotation=60)
    ax.legend(fontsize=8)
axes[0].set_ylabel("batches")
fig.tight_layout()
plt.show()
assert len(set(shapes["reference"])) <= 6 < len(set(shapes["unbiased"]))

# %% [markdown]
# On the course's small grid (64-pixel images, 8-pixel patches: 8 x 8) the official rule is worse than
# biased: it accepts a block only if it has *more* than `min_keep` = 10 patches and redraws otherwise,
# forever, and a 3 x 3 target block (9 patches) is drawn for about half the batches. The reference mode
# warns when it is built with such settings and raises instead of hanging:

# %%
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    small = MultiBlockMasks((8, 8), mode="reference", seed=0)
print("warning:", caught[0].message)
failures = 0
for seed in range(40):
    try:
        small.sample(8, torch.Generator().manual_seed(seed))
    except RuntimeError as error:
        failures += 1
        message = str(error)
print(f"{failures} of 40 batches would hang the official collator; for example:\n  {message}")
assert 5 < failures < 35
fine = MultiBlockMasks((8, 8), seed=0).sample(8, torch.Generator().manual_seed(0))  # the unbiased mode is fine
print(f"unbiased mode on the 8 x 8 grid: context {tuple(fine.context.shape)}, targets {tuple(fine.targets.shape)}")

# %% [markdown]
# ## 7. Masking is index gathering
#
# A mask never multiplies pixels by zero. The encoder embeds all patches, then *keeps* the context tokens
# with one gather: `x[b, idx[b, k]]` for every image b and kept position k. The context encoder then runs
# on K tokens instead of N, which is where I-JEPA saves compute. The same operation picks the target
# encoder's outputs at the target blocks, with a (B, M, T) index.
#
# **Your turn:** `gather_tokens(x, idx)` in `exercises/masks.py`.

# %%
x_check = torch.randn(3, 20, 8, requires_grad=True)
idx2 = torch.tensor([[0, 5, 19], [1, 2, 3], [7, 7, 8]])
idx3 = torch.randint(0, 20, (3, 2, 4), generator=torch.Generator().manual_seed(0))


def check_gather_tokens(f):
    torch.testing.assert_close(f(x_check, idx2), reference.gather_tokens(x_check, idx2))
    torch.testing.assert_close(f(x_check, idx3), reference.gather_tokens(x_check, idx3))
    f(x_check, idx2).sum().backward()
    assert x_check.grad is not None, "gradients must reach x"
    x_check.grad = None


gather_tokens = student_or_reference("masks", "gather_tokens", reference.gather_tokens, check=check_gather_tokens)

# %%
tokens = torch.randn(4, 196, 32)  # (B, N, D)
kept = gather_tokens(tokens, batch.context)  # (B, K, D)
blocks = gather_tokens(tokens, batch.targets)  # (B, M, T, D)
print("tokens", tuple(tokens.shape), "-> context", tuple(kept.shape), ", targets", tuple(blocks.shape))
assert torch.equal(kept[2], tokens[2][ctx_grid[2].flatten()])  # same as boolean selection, in raster order
assert torch.equal(blocks[1, 3], tokens[1, batch.targets[1, 3]])

# %% [markdown]
# ## 8. The mask explorer
#
# `MaskExplorerState(photo).update(...)` computes everything the explorer draws for a setting of its
# controls: the overlay of one image of a batch, the patch labels behind it, and coverage heat maps over
# many batches. `mask_explorer(photo)` puts sliders around it (target scale, aspect ratio, number of
# targets, context scale, patch size, seed, sampler mode, batch size). Impossible settings (say, large
# targets and a small context with `min_keep` = 10) show the sampler's message instead of failing.
#
# Things to try: switch the mode to `reference` and watch the last row and column; raise the number of
# targets and see the context shrink; set the batch size to 1 and then 256 and compare the context ratio;
# use patch size 28 (an 8 x 8 grid, as in our CPU runs).

# %%
state = MaskExplorerState(photo, num_coverage_samples=512)
view = state.update(seed=1)
fig = plot_mask_view(view)
fig.suptitle("Mask explorer, default settings (the paper's)", fontsize=11, y=1.02)
plt.show()
assert view.num_context == (view.labels == 1).sum() and view.num_target == (view.labels >= 2).sum()

view = state.update(mode="reference")
fig = plot_mask_view(view)
fig.suptitle("Same photo and seed, reference mode: nothing in the last row or column", fontsize=11, y=1.02)
plt.show()
assert view.coverage_context[-1].max() == 0 and view.coverage_target[:, -1].max() == 0

# %%
mask_explorer(photo, num_coverage_samples=512)

# %% [markdown]
# ## Summary
#
# * A block of scale s and aspect ratio a has h = √(sNa), w = √(sN/a) patches (rounded); its corner is
#   uniform over all positions where it fits.
# * Multi-block: M = 4 targets (scale 0.15-0.2, ratio 0.75-1.5), one context block (0.85-1.0) minus the
#   targets; target shape shared per batch; contexts cut to the batch minimum (about 0.25-0.3 of the
#   patches remain).
# * Ablations: random, block and rasterized masks all did much worse in the paper.
# * The official collator never covers the last row or column, biases the context to the top, ties scale
#   and ratio together, and hangs on small grids; `mode="reference"` reproduces this, the default does not.
# * Masks are index tensors; applying one is a gather, (B, N, D) -> (B, K, D) or (B, M, T, D).
#
# ## Self-check
#
# 1. On a 14 x 14 grid, a 6 x 5 target block: how many top-left positions are possible? With the official
#    `randint(0, H - h)` rule?
# 2. Why are the target blocks' shapes shared by the whole batch, but not their positions?
# 3. Why does a larger batch give a smaller average context?
# 4. Random masking hides 60 % of the patches, more than multi-block hides. Why is it still the easier
#    (and worse) pretext task?
#
# <details><summary>Answers</summary>
#
# 1. Rows 0 ... 8 and columns 0 ... 9: 9 · 10 = 90 positions. With the official rule, rows 0 ... 7 and
#    columns 0 ... 8: 72, and the last row and column are never reached.
# 2. A shared shape makes every target block the same number of patches T, so targets stack into one
#    (B, M, T) tensor and the predictor runs on equal-length sequences. Positions are free to vary per image
#    at no cost.
# 3. Every context is cut to the smallest one in its batch; the minimum of more draws is smaller.
# 4. Each hidden patch has visible neighbours, so it can be filled in from local texture and colour; the
#    task never requires understanding a whole object or region.
#
# </details>
#
# **Exercises:** `exercises/masks.py` (`sample_block`, `multiblock_masks`, `gather_tokens`).
'''


# =====================================================================================================
# 04 The predictor
# =====================================================================================================

NB04 = r'''
# %% [markdown]
# # 04 · The predictor: mask tokens and positions
#
# The predictor turns "what the context encoder saw" plus "where the targets are" into guesses of the
# target representations. It is a ViT too, but a narrow one. Package module: `minijepa/predictor.py`.
#
# **Learning goals.** After this notebook you can
# 1. say what goes into the predictor (context tokens with their positions, and one mask token per target
#    patch) and what comes out, with the shape at every step;
# 2. explain why each target block is predicted separately, and check that blocks cannot see each other;
# 3. show that a mask token carries nothing but its position;
# 4. count parameters and FLOPs to see why the predictor is narrow and cheap.

# %%
%%SETUP%%

# %%
import matplotlib.pyplot as plt
import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from minijepa import Predictor, vit_tiny
from minijepa.data import ShapesDataset, normalize
from minijepa.masks import MultiBlockMasks, gather_tokens
from minijepa.vit import Block

%%STYLE%%

# %%
%%EXERCISES%%

# %% [markdown]
# ## 1. Inputs and outputs
#
# We set up a small I-JEPA on the course's images: 64-pixel images, 8-pixel patches (an 8 x 8 grid, N =
# 64), a ViT-Tiny context encoder of width D = 192, and a predictor of width d = 96. Letters: B images, K
# context patches, M target blocks, T patches per block.

# %%
torch.manual_seed(0)
data = ShapesDataset(num_images=8, image_size=64, seed=0)
images = normalize(data.images.float() / 255)  # (B, 3, 64, 64)
encoder = vit_tiny(patch_size=8, image_size=64, depth=2).eval()
predictor = Predictor(encoder.grid, encoder.embed_dim, predictor_dim=96, depth=2, num_heads=3).eval()
masks = MultiBlockMasks(encoder.grid, seed=0).sample(len(images), torch.Generator().manual_seed(0))
with torch.no_grad():
    context = encoder(images, keep=masks.context)  # (B, K, D)
B, K, D = context.shape
M, T = masks.targets.shape[1:]
print(f"B={B} images, K={K} context tokens of width D={D}, M={M} target blocks of T={T} patches")

# %% [markdown]
# ## 2. The forward pass, step by step
#
# 1. **Context in.** Project the context tokens to the predictor width (a linear layer D -> d) and add the
#    sin-cos positions of their patches (the predictor has its own table, of width d). The encoder already
#    added positions, but at width D and before twelve (here two) layers of mixing; adding them again is
#    cheap and makes them explicit.
# 2. **One copy per block.** Repeat the context M times, image-major (row b·M + m is image b, block m).
# 3. **Mask tokens.** For every target patch, a query token = one learned vector shared by *all* targets
#    (`mask_token`) + the position of that patch. The mask token says "predict here"; the position says
#    where "here" is.
# 4. **Transformer.** Concatenate context and queries, (B·M, K + T, d), and apply the blocks: the queries
#    read the context through attention.
# 5. **Out.** Keep the last T tokens, LayerNorm, project d -> D, and reshape to (B, M, T, D).

# %%
trace = [("context tokens (B, K, D)", context.shape)]
with torch.no_grad():
    pos = predictor.pos_embed.expand(B, -1, -1)  # (B, N, d)
    x = predictor.embed(context) + gather_tokens(pos, masks.context)  # 1. (B, K, d)
    trace.append(("1. projected + positions (B, K, d)", x.shape))
    x = x.repeat_interleave(M, dim=0)  # 2. (B*M, K, d)
    trace.append(("2. one copy per block (B*M, K, d)", x.shape))
    queries = predictor.mask_token + gather_tokens(pos, masks.targets)  # 3. (B, M, T, d)
    queries = queries.reshape(B * M, T, -1)  # (B*M, T, d)
    trace.append(("3. mask tokens + positions (B*M, T, d)", queries.shape))
    h = torch.cat([x, queries], dim=1)  # 4. (B*M, K+T, d)
    for block in predictor.blocks:
        h = block(h)
    trace.append(("4. through the blocks (B*M, K+T, d)", h.shape))
    by_hand = predictor.proj(predictor.norm(h[:, K:])).reshape(B, M, T, D)  # 5. (B, M, T, D)
    trace.append(("5. predictions (B, M, T, D)", by_hand.shape))
    expected = predictor(context, masks.context, masks.targets)

for name, shape in trace:
    print(f"{name:42s} {tuple(shape)}")
assert trace[3][1] == (B * M, T, predictor.predictor_dim) and trace[4][1] == (B * M, K + T, predictor.predictor_dim)
torch.testing.assert_close(by_hand, expected, rtol=1e-5, atol=1e-5)
print("by hand == Predictor.forward")

# %% [markdown]
# **Your turn:** `predictor_forward(predictor, context, context_idx, target_idx)` in
# `exercises/predictor.py`.

# %%
predictor_forward = student_or_reference(
    "predictor", "predictor_forward", lambda p, *args: p(*args),
    check=lambda f: torch.testing.assert_close(f(predictor, context, masks.context, masks.targets), expected,
                                               rtol=1e-5, atol=1e-5),
)
with torch.no_grad():
    predictions = predictor_forward(predictor, context, masks.context, masks.targets)
assert predictions.shape == (B, M, T, D)

# %% [markdown]
# ## 3. What the mask tokens know
#
# Before the first block, every query is the *same* learned vector plus a position: remove the positions
# and nothing distinguishes them. So whatever differs between the predictions of two target patches comes
# from (a) where they are and (b) what the context says around there. Two checks:
#
# * move a target block by one column and its predictions change, although its context is the same;
# * change one block's position and the predictions of the *other* blocks do not move at all, because
#   each block is predicted in its own sequence (the context is copied M times). Blocks cannot help each
#   other, or copy each other's answers.

# %%
with torch.no_grad():
    q = predictor.mask_token + gather_tokens(pos, masks.targets)  # (B, M, T, d)
    q_without_pos = q - gather_tokens(pos, masks.targets)
torch.testing.assert_close(q_without_pos, predictor.mask_token.expand_as(q_without_pos))  # all identical

# a copy of the masks where block 0 of every image moves one column (left or right, staying inside the grid)
moved = masks.targets.clone()
cols = moved[:, 0] % 8
shift = torch.where(cols.max(dim=1, keepdim=True).values < 7, 1, -1)  # (B, 1)
moved[:, 0] += shift
with torch.no_grad():
    after = predictor(context, masks.context, moved)
change = (after - predictions).abs().amax(dim=(0, 2, 3))  # (M,) largest change per block
print("largest change of the predictions per block:", change.numpy().round(4))
assert change[0] > 1e-3  # the moved block's predictions changed
assert torch.all(change[1:] == 0)  # the other blocks did not move at all

fig, ax = plt.subplots(figsize=(6, 3))
ax.bar(range(M), change.numpy(), color=["tab:red"] + ["tab:gray"] * (M - 1), label="moved block in red")
ax.set_xlabel("target block m")
ax.set_ylabel("max |change| of predictions")
ax.set_title("Moving block 0 by one patch changes only block 0")
ax.legend()
plt.show()

# %% [markdown]
# ## 4. Why narrow? Parameters and FLOPs
#
# The predictor's task is easier than the encoder's: it fills in a few blocks of one image from tokens
# that are already rich. Keeping it small also keeps the semantic work in the encoder, which is what we
# keep after training. The paper pairs a ViT-H/14 encoder (32 blocks, width 1280) with a predictor of 12
# blocks and width 384.
#
# A block on n tokens of width D (MLP ratio 4) costs, in multiply-adds, 3nD² (q, k, v) + nD² (output
# projection) + 8nD² (MLP) + 2n²D (scores and weighted sum): **12nD² + 2n²D**, so 24nD² + 4n²D FLOPs.
# We check the formula with PyTorch's FLOP counter on one block (explicit attention, so the counter sees
# the matrix products), then apply it to one ViT-H/14 training image. (A multiply-add counts as 2 FLOPs
# here; tables that quote "FLOPs" of ViTs often count multiply-adds, half these numbers.)

# %%
def block_flops(n, width):
    return 24 * n * width ** 2 + 4 * n ** 2 * width


for n, width in ((50, 64), (100, 192)):
    blk = Block(width, num_heads=4)
    with FlopCounterMode(display=False) as counter:
        blk(torch.randn(1, n, width), return_attention=True)
    print(f"block n={n:3d} width={width:3d}: counter {counter.get_total_flops():>11,d}, formula {block_flops(n, width):>11,d}")
    assert counter.get_total_flops() == block_flops(n, width)

# %%
N, Dh, Lh = 256, 1280, 32  # ViT-H/14 at 224 px
d, Lp = 384, 12  # the paper's predictor
Kh, Th, Mh = round(0.25 * N), round(0.175 * N), 4  # about a quarter of the patches as context; 4 blocks of ~45
per_image = {  # forward FLOPs per image, in GFLOPs
    "target encoder\n(all 256 patches)": Lh * block_flops(N, Dh) / 1e9,
    "context encoder\n(~64 context patches)": Lh * block_flops(Kh, Dh) / 1e9,
    "predictor\n(4 x (64 + 45) tokens)": (Mh * Lp * block_flops(Kh + Th, d) + 2 * 2 * Mh * (Kh + Th) * Dh * d) / 1e9,
}
params = {
    "encoder (ViT-H/14)": Lh * 12 * Dh ** 2 / 1e6,
    "predictor (12 x 384)": (Lp * 12 * d ** 2 + 2 * Dh * d) / 1e6,
}
for name, value in per_image.items():
    print(f"{name.replace(chr(10), ' '):45s} {value:7.1f} GFLOPs per image (forward)")
for name, value in params.items():
    print(f"{name:45s} {value:7.0f} M parameters (weights of the linear layers)")

widths = np.array([128, 192, 256, 384, 512, 768, 1024, 1280])
encoders = Lh * (block_flops(N, Dh) + block_flops(Kh, Dh))
predictor_cost = Mh * Lp * block_flops(Kh + Th, widths) + 4 * Mh * (Kh + Th) * Dh * widths
share = predictor_cost / (encoders + predictor_cost)
fig, axes = plt.subplots(1, 2, figsize=(12, 3.5))
bars = axes[0].bar(list(per_image), list(per_image.values()), color=["tab:orange", "tab:blue", "tab:green"],
                   label="forward pass, one 224 px image")
axes[0].bar_label(bars, fmt="%.0f")
axes[0].set_ylabel("GFLOPs")
axes[0].set_title("Where the compute goes (ViT-H/14 + 12 x 384 predictor)")
axes[0].tick_params(axis="x", labelsize=8)
axes[0].legend(fontsize=8)
axes[1].plot(widths, 100 * np.array(share), "o-", label="predictor, depth 12")
axes[1].axvline(384, color="k", ls=":", label="the paper's width")
axes[1].set_xlabel("predictor width d")
axes[1].set_ylabel("% of forward FLOPs per image")
axes[1].set_title("A predictor as wide as the encoder would dominate")
axes[1].legend(fontsize=8)
fig.tight_layout()
plt.show()

assert params["predictor (12 x 384)"] < 0.05 * params["encoder (ViT-H/14)"]
assert per_image["predictor\n(4 x (64 + 45) tokens)"] < 0.25 * sum(per_image.values())

# %% [markdown]
# Note the other saving: the context encoder runs on about a quarter of the patches, so it costs about a
# quarter of a full forward pass, and the target encoder's pass needs no backward. The predictor sees
# more tokens (the context is repeated for every block), but at width 384 each token is cheap.
#
# ## Summary
#
# * Predictor input: context tokens (projected to width d, plus their positions) and, for each target
#   patch, the shared mask token plus that patch's position. Output: (B, M, T, D), one vector per target
#   patch at the encoder's width.
# * The context is repeated once per target block: M independent sequences of K + T tokens, so blocks
#   cannot see each other.
# * Mask tokens differ only by position; the prediction of a patch comes from where it is and from the
#   context.
# * The paper's predictor (12 x 384) has about 3 % of ViT-H's parameters and costs a fraction of the
#   encoders' FLOPs.
#
# ## Self-check
#
# 1. With B = 64 images, M = 4 blocks of T = 9 patches and K = 20 context tokens, how many sequences, of
#    what length, go through the predictor's blocks?
# 2. Why does the predictor add position embeddings to the *context* tokens, which already went through
#    an encoder that had positions?
# 3. What would go wrong if each target patch had its own learned mask token instead of a shared one
#    plus a position?
# 4. If all M blocks were put into one sequence (K + M·T tokens), what could the predictor do that it
#    should not?
#
# <details><summary>Answers</summary>
#
# 1. B·M = 256 sequences of K + T = 29 tokens (width d).
# 2. The encoder's positions are mixed into its tokens over many layers and live at width D; the
#    predictor works at width d and needs an exact, explicit "where" to compare context and target
#    positions.
# 3. The predictor could store an average answer for each position (a prior that ignores the image), it
#    would need N extra vectors and would be tied to one grid size. A shared token plus a fixed position
#    code carries only "where", so "what" has to come from the context.
# 4. Target patches of overlapping or nearby blocks could attend to each other; nothing useful, but it
#    changes the task (and its cost grows with (M·T)²). Separate sequences keep each block's prediction a
#    function of the context only.
#
# </details>
#
# **Exercise:** `exercises/predictor.py` (`predictor_forward`).
'''


# =====================================================================================================
# 05 The target encoder and collapse
# =====================================================================================================

NB05 = r'''
# %% [markdown]
# # 05 · The target encoder and collapse
#
# I-JEPA compares two outputs of networks it is training. Nothing in the loss stops both from becoming
# constant, which makes the loss zero and the features useless: **collapse**. What prevents it is an
# asymmetry: the targets come from a separate *target encoder*, an exponential moving average (EMA) of the
# context encoder that gets no gradients. Package modules: `minijepa/ema.py`, and the collapse measures in
# `minijepa/evaluate.py`.
#
# **Learning goals.** After this notebook you can
# 1. write the EMA update and the momentum schedule 0.996 -> 1, and say how many steps an EMA "remembers";
# 2. measure collapse with `feature_std` and `effective_rank`, and know what each one misses;
# 3. run a short experiment that shows collapse without the asymmetry and none with it, and explain why a
#    *lower* loss can mean a *worse* encoder.

# %%
%%SETUP%%

# %%
import time

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F

from minijepa import Predictor, VisionTransformer, ema as reference, ijepa_loss, make_target_encoder
from minijepa.data import ShapesDataset, normalize
from minijepa.evaluate import effective_rank, feature_std
from minijepa.masks import MultiBlockMasks, gather_tokens

%%STYLE%%

# %%
%%EXERCISES%%

# %% [markdown]
# ## 1. What collapse looks like, and how to measure it
#
# Two numbers from `minijepa.evaluate`, computed on a batch of feature vectors (one row per image or
# token):
#
# * `feature_std`: rescale each vector to norm √D, then average over dimensions the standard deviation
#   across the batch. About 1 when the vectors point in all directions, 0 when they are all the same.
# * `effective_rank`: exp(entropy) of the normalised singular values of the *centred* matrix, between 1 and
#   D. Low when the vectors vary along only a few directions (*dimensional* collapse).
#
# The second measure removes the mean first, so it is blind to scale: vectors that are all equal up to
# tiny noise still have a high effective rank. Complete collapse shows in `feature_std`.

# %%
g = torch.Generator().manual_seed(0)
D = 64
examples = {
    "healthy: random directions": torch.randn(256, D, generator=g),
    "dimensional collapse: 2 directions": torch.randn(256, 2, generator=g) @ torch.randn(2, D, generator=g),
    "complete collapse: one vector + 1e-3 noise": torch.randn(1, D, generator=g) + 1e-3 * torch.randn(256, D, generator=g),
}
print(f"{'features':45s}{'feature_std':>12s}{'effective_rank':>16s}")
for name, z in examples.items():
    print(f"{name:45s}{feature_std(z):12.3f}{effective_rank(z):16.1f}")
healthy, flat, constant = examples.values()
assert feature_std(healthy) > 0.9 and effective_rank(healthy) > 40
assert effective_rank(flat) < 2.5 < feature_std(flat) * 10
assert feature_std(constant) < 0.01 and effective_rank(constant) > 40  # effective rank misses it

# %% [markdown]
# ## 2. The EMA update and its schedule
#
# After every optimiser step, each parameter of the target encoder moves a fraction 1 - m towards the
# context encoder's:
#
# $$\theta_{\text{target}} \leftarrow m\,\theta_{\text{target}} + (1 - m)\,\theta_{\text{context}}.$$
#
# Unrolled, the target is a weighted average of the context encoder's past weights, with weights that decay
# by m per step: an EMA "remembers" about 1/(1 - m) steps (250 steps at m = 0.996). I-JEPA raises m
# linearly from 0.996 to 1.0 over training, so the targets move less and less and are frozen at the end.
#
# **Your turn:** `ema_update(target, online, momentum)` and `momentum_schedule(step, total_steps, start,
# end)` in `exercises/ema.py`.

# %%
def check_ema_update(f):
    torch.manual_seed(0)
    online, target = torch.nn.Linear(4, 3), torch.nn.Linear(4, 3)
    expected = make_target_encoder(target)
    reference.ema_update(expected, online, 0.9)
    online_before = [p.clone() for p in online.parameters()]
    f(target, online, 0.9)
    for a, b in zip(target.parameters(), expected.parameters()):
        torch.testing.assert_close(a, b)
    assert all(torch.equal(a, b) for a, b in zip(online.parameters(), online_before)), "online changed"


ema_update = student_or_reference("ema", "ema_update", reference.ema_update, check=check_ema_update)
momentum_schedule = student_or_reference(
    "ema", "momentum_schedule", reference.momentum_schedule,
    check=lambda f: [np.testing.assert_allclose(f(s, 100), reference.momentum_schedule(s, 100)) for s in (0, 37, 100, 150)],
)

# %%
steps = np.arange(1001)
m = np.array([momentum_schedule(int(s), 1000) for s in steps])
assert m[0] == 0.996 and m[-1] == 1.0 and np.all(np.diff(m) >= 0)

# a toy: the EMA of a noisy signal that jumps at step 300
signal = np.where(np.arange(600) < 300, 0.0, 1.0) + 0.3 * np.random.default_rng(0).standard_normal(600)

fig, axes = plt.subplots(1, 2, figsize=(12, 3.4))
axes[0].plot(steps, m, label="momentum m")
axes[0].set_xlabel("training step (of 1000)"); axes[0].set_ylabel("momentum m")
axes[0].set_title("I-JEPA's momentum schedule, 0.996 -> 1")
twin = axes[0].twinx()
twin.plot(steps[:-1], 1 / (1 - m[:-1]), "C1--", label="memory 1/(1 - m), steps")
twin.set_yscale("log"); twin.set_ylabel("memory (steps, log)")
axes[0].legend(handles=axes[0].get_lines() + twin.get_lines(), fontsize=8, loc="upper left")
axes[1].plot(signal, color="0.7", lw=0.8, label="online value (noisy)")
for momentum in (0.9, 0.99):
    tracked = [0.0]
    for value in signal[1:]:
        tracked.append(momentum * tracked[-1] + (1 - momentum) * value)
    axes[1].plot(tracked, lw=2, label=f"EMA, m = {momentum} (memory {1 / (1 - momentum):.0f} steps)")
axes[1].set_xlabel("step"); axes[1].set_ylabel("value")
axes[1].set_title("an EMA follows slowly and smooths")
axes[1].legend(fontsize=8)
fig.tight_layout()
plt.show()

# %% [markdown]
# ## 3. An experiment: with and without the asymmetry
#
# We train three tiny I-JEPAs for the same number of steps on the embedded shapes (32-pixel images, 4-pixel
# patches: an 8 x 8 grid; a 2-layer ViT of width 64), identical except for where the targets come from:
#
# * **EMA target** (I-JEPA): a target encoder updated by EMA, no gradients. In a run this short the
#   paper's m = 0.996 would barely move it (its memory, 250 steps, is longer than the run), so we use
#   0.99 -> 1.
# * **Stop-gradient, no EMA**: the target is a detached copy of the *current* context encoder (m = 0).
# * **No asymmetry**: the target is the context encoder itself, run on the whole image, *with*
#   gradients.
#
# Every 15 steps we encode 128 held-out images with the encoder that produces the targets, layer-normalise
# the tokens as the loss does, and measure `feature_std` across images. Expect about 20-30 s on two cores.

# %%
torch.manual_seed(0)
train_images = normalize(ShapesDataset(num_images=1024, image_size=32, seed=0).images.float() / 255)
eval_images = normalize(ShapesDataset(num_images=128, image_size=32, seed=0, split="test").images.float() / 255)


def spread(encoder):
    """feature_std of the layer-normed tokens across images (one row per image: all its tokens)."""
    with torch.no_grad():
        z = encoder(eval_images)  # (128, N, D)
    return feature_std(F.layer_norm(z, z.shape[-1:]).flatten(1))


def train(variant, steps=150, batch_size=32, log_every=15):
    torch.manual_seed(0)
    encoder = VisionTransformer(image_size=32, patch_size=4, embed_dim=64, depth=2, num_heads=2)
    predictor = Predictor(encoder.grid, 64, predictor_dim=32, depth=1, num_heads=2)
    target_encoder = make_target_encoder(encoder)
    sampler = MultiBlockMasks(encoder.grid, seed=0)
    optimizer = torch.optim.AdamW([*encoder.parameters(), *predictor.parameters()], lr=1e-3, weight_decay=0.04)
    g = torch.Generator().manual_seed(0)
    log = {"step": [], "loss": [], "feature_std": []}
    for step in range(steps + 1):
        if step % log_every == 0:
            log["step"].append(step)
            log["feature_std"].append(spread(encoder if variant == "no asymmetry" else target_encoder))
        if step == steps:
            break
        images = train_images[torch.randint(0, len(train_images), (batch_size,), generator=g)]
        masks = sampler.sample(batch_size, g)
        if variant == "no asymmetry":
            h = encoder(images)  # gradients flow into the targets too
        else:
            with torch.no_grad():
                h = target_encoder(images)
        targets = gather_tokens(F.layer_norm(h, h.shape[-1:]), masks.targets)  # (B, M, T, D)
        predictions = predictor(encoder(images, keep=masks.context), masks.context, masks.targets)
        loss = ijepa_loss(predictions, targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if variant == "EMA target":
            ema_update(target_encoder, encoder, momentum_schedule(step, steps, 0.99, 1.0))
        elif variant == "stop-gradient, no EMA":
            ema_update(target_encoder, encoder, 0.0)  # m = 0: a plain copy of the current encoder
        if step % log_every == 0:
            log["loss"].append(loss.item())
    return log


start = time.time()
runs = {variant: train(variant) for variant in ("EMA target", "stop-gradient, no EMA", "no asymmetry")}
print(f"three runs in {time.time() - start:.0f} s")
for variant, log in runs.items():
    print(f"{variant:24s} final loss {log['loss'][-1]:.4f}   feature_std {log['feature_std'][0]:.3f} -> {log['feature_std'][-1]:.3f}")

# %%
fig, axes = plt.subplots(1, 2, figsize=(12, 3.6))
for (variant, log), style in zip(runs.items(), ("o-", "s-", "^-")):
    axes[0].plot(log["step"][:len(log["loss"])], log["loss"], style, label=variant)
    axes[1].plot(log["step"], log["feature_std"], style, label=variant)
axes[0].set_yscale("log"); axes[0].set_xlabel("step"); axes[0].set_ylabel("training loss (log)")
axes[0].set_title("The collapsed run has the lowest loss ...")
axes[1].set_yscale("log"); axes[1].set_xlabel("step"); axes[1].set_ylabel("feature_std across images (log)")
axes[1].set_title("... because its features no longer depend on the image")
for ax in axes:
    ax.legend(fontsize=8)
fig.tight_layout()
plt.show()

ema_run, stop_run, sym_run = runs.values()
assert sym_run["feature_std"][-1] < 0.1 * ema_run["feature_std"][-1]  # collapse without the asymmetry
assert sym_run["loss"][-1] < 0.1 * ema_run["loss"][-1]  # ... with a near-zero loss
assert ema_run["feature_std"][-1] > 0.5 * ema_run["feature_std"][0]  # the EMA targets keep their spread
assert sym_run["feature_std"][-1] < stop_run["feature_std"][-1] < ema_run["feature_std"][-1]

# %% [markdown]
# What happened:
#
# * **No asymmetry.** Both sides of the loss are computed by the network being trained, so the fastest
#   way down is to make every token the same: the loss goes to almost zero while the spread of the
#   features across images drops by well over an order of magnitude. A low loss here means a useless
#   encoder.
# * **Stop-gradient, no EMA.** Blocking the gradient through the targets helps, but the target still jumps
#   to wherever the context encoder moved at every step, and the spread keeps shrinking.
# * **EMA target.** The targets change slowly and never chase the predictor's current output, so the
#   cheap constant solution is never offered: the target features keep their spread, and the predictor has
#   to actually predict.
#
# Why this works in general is subtle (it also relies on the predictor and on how fast the EMA moves); the
# paper, like BYOL and DINO before it, relies on it empirically. In a real run, watch the spread of the
# target features: the training script (notebook 06) logs `target_std`, the `feature_std` of the target
# tokens, in `metrics.jsonl`, and prints a warning when it falls below `run.collapse_std`.
#
# ## Summary
#
# * Collapse: both branches output the same constant; the loss is zero and the features carry nothing.
#   `feature_std` detects it; `effective_rank` detects dimensional collapse but not this one.
# * The target encoder is an EMA of the context encoder, θ_t <- m θ_t + (1 - m) θ_c, with m from 0.996 to 1;
#   it remembers about 1/(1 - m) steps and gets no gradients.
# * Without the asymmetry a tiny I-JEPA collapses within a hundred steps, with the lowest loss of all.
#
# ## Self-check
#
# 1. At m = 0.999, about how many recent steps of the context encoder make up the target?
# 2. Why must `ema_update` modify the target's tensors in place rather than assign new ones?
# 3. A run's loss drops to 1e-4 within a few hundred steps. What do you check first, and how?
# 4. Why is a *lower* loss not a sign of a better encoder in this family of methods?
#
# <details><summary>Answers</summary>
#
# 1. About 1/(1 - 0.999) = 1000 steps.
# 2. Other objects (the model, a DDP wrapper, hooks) hold references to those tensors; assigning new
#    tensors would leave them pointing at the old ones. In place, under `torch.no_grad()`, also keeps the
#    update out of any autograd graph.
# 3. Collapse: compute `feature_std` (and `effective_rank`) of the target encoder's features on a batch
#    of held-out images; values near 0 mean every image gets the same features.
# 4. The loss compares two learned outputs; a network can make them agree trivially by ignoring the input.
#    Only features measured on their own (spread, probes) tell whether anything was learned.
#
# </details>
#
# **Exercises:** `exercises/ema.py` (`ema_update`, `momentum_schedule`).
'''

NOTEBOOKS_SOURCES = {
    "00_big_picture.ipynb": NB00,
    "01_images_as_sequences.ipynb": NB01,
    "02_attention_and_vit.ipynb": NB02,
    "03_multiblock_masking.ipynb": NB03,
    "04_predictor.ipynb": NB04,
    "05_target_encoder_and_collapse.ipynb": NB05,
}


# =====================================================================================================
# Building, executing, cleaning
# =====================================================================================================


def parse(source: str) -> list:
    """Percent-format text -> nbformat cells. Placeholders: %%SETUP%%, %%STYLE%%, %%EXERCISES%%."""
    cells = []
    kind, lines = None, []

    def flush():
        if kind is None:
            return
        text = "\n".join(lines).strip("\n")
        if kind == "markdown":
            text = "\n".join(line[2:] if line.startswith("# ") else line.lstrip("#") for line in text.splitlines())
            cells.append(nbformat.v4.new_markdown_cell(text))
        else:
            text = text.replace("%%SETUP%%", SETUP).replace("%%STYLE%%", PLOT_STYLE)
            text = text.replace("%%EXERCISES%%", EXERCISE_HELPER)
            cells.append(nbformat.v4.new_code_cell(text))

    for line in source.strip("\n").splitlines():
        if line.startswith("# %%"):
            flush()
            kind, lines = ("markdown" if "[markdown]" in line else "code"), []
        else:
            lines.append(line)
    flush()
    return cells


def build(name: str, source: str) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.cells = parse(source)
    for i, cell in enumerate(nb.cells):
        cell.id = f"{name[:2]}-{i:02d}"
    nb.metadata = {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python", "pygments_lexer": "ipython3"},
    }
    return nb


WIDGET_NOTE = "[interactive explorer: run this cell in Jupyter to get the sliders]"


def clean(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Drop widget state and timing metadata; replace widget views by a one-line note."""
    nb.metadata.pop("widgets", None)
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        cell.metadata.pop("ExecuteTime", None)
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if "application/vnd.jupyter.widget-view+json" in data:
                output["data"] = {"text/plain": WIDGET_NOTE}
    return nb


def execute(nb: nbformat.NotebookNode, timeout: int) -> float:
    from nbclient import NotebookClient

    start = time.time()
    NotebookClient(nb, timeout=timeout, kernel_name="python3", record_timing=True, shutdown_kernel="immediate",
                   resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
    return time.time() - start


def slowest_cells(nb: nbformat.NotebookNode, count: int = 3) -> str:
    """The cells that took longest (from nbclient's timing metadata), e.g. 'cell 12: 8.1 s'."""
    from datetime import datetime

    times = []
    for i, cell in enumerate(nb.cells):
        timing = cell.metadata.get("execution", {})
        if "iopub.execute_input" in timing and "shell.execute_reply" in timing:
            start, end = (datetime.fromisoformat(timing[k].replace("Z", "+00:00"))
                          for k in ("iopub.execute_input", "shell.execute_reply"))
            times.append(((end - start).total_seconds(), i))
    return ", ".join(f"cell {i}: {t:.1f} s" for t, i in sorted(times, reverse=True)[:count])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("only", nargs="*", help="build only notebooks whose file name starts with one of these")
    parser.add_argument("--execute", action="store_true", help="execute and save outputs")
    parser.add_argument("--timeout", type=int, default=300, help="per-cell timeout in seconds")
    args = parser.parse_args(argv)
    NOTEBOOKS.mkdir(exist_ok=True)
    for name, source in NOTEBOOKS_SOURCES.items():
        if args.only and not any(name.startswith(prefix) for prefix in args.only):
            continue
        nb = build(name, source)
        message = "written"
        if args.execute:
            seconds = execute(nb, args.timeout)
            message = f"executed in {seconds:.0f} s (slowest: {slowest_cells(nb)})"
        path = NOTEBOOKS / name
        nbformat.write(clean(nb), path)
        print(f"{path.relative_to(ROOT)}: {message}, {path.stat().st_size / 1e6:.2f} MB", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
