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
# <<SETUP>>

# %%
import importlib

import matplotlib.pyplot as plt
import torch

import minijepa as mj
from minijepa.data import load_photos, normalize
from minijepa.masks import MultiBlockMasks
from minijepa.viz import mask_overlay

# <<STYLE>>

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
