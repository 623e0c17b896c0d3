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
# <<SETUP>>

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

# <<STYLE>>
photos = load_photos(image_size=224)
photo = photos["astronaut"]  # (3, 224, 224)
GRID, P = (14, 14), 16


# %%
# <<EXERCISES>>

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
#
# Without a kernel (on the course website, `make site`), the explorer runs as a standalone page with
# precomputed frames: <a href="../explorers/mask/index.html">the mask explorer page</a>.

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
