# %% [markdown]
# # 10 · ViT lessons: resolution, stability, optimisers, and what the first layers learn
#
# The earlier notebooks built a ViT and trained it with I-JEPA. This one steps back from I-JEPA and
# collects five lessons about Vision Transformers themselves, each shown on a model small enough to run
# here: what happens to the positions when the image size changes, the changes that kept ViT-22B's
# training stable, why ViTs are trained with AdamW rather than SGD, and what the first layers (patch
# filters, position embeddings) and the attention heads end up doing. Package modules: `minijepa/vit.py`
# (the options), `minijepa/patches.py` (positions), `minijepa/inspect_vit.py` (looking inside a ViT).
#
# **Learning goals.** After this notebook you can
# 1. run a ViT at another resolution or aspect ratio, and say what happens to its positions: sin-cos
#    positions are recomputed (the grid is *extended*), a learned table is resized (the grid is
#    *stretched*);
# 2. name ViT-22B's stability changes (qk-norm, parallel blocks, no biases), and watch the attention logits
#    of a high-learning-rate run grow without qk-norm and stay bounded with it;
# 3. compare SGD and AdamW on the same budget, explain the gap, and count what each optimiser's state costs
#    in memory;
# 4. read three pictures of a ViT: the principal components of its patch filters, the similarity of its
#    position embeddings, and the mean attention distance of its heads, for a random and a trained model.

# %%
# <<SETUP>>

# %%
import copy
import math
import re
import time
from dataclasses import replace

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from minijepa import VisionTransformer, ViTConfig, param_groups, sincos_2d, vit_tiny
from minijepa.data import PHOTO_NAMES, ShapesDataset, load_photo, normalize
from minijepa.inspect_vit import (attention_distance, attention_logits_max, mean_attention_distance, patch_distances,
                                  patch_filter_pca, position_similarity)
from minijepa.patches import resize_positions
from minijepa.pretrained import load_encoder

# <<STYLE>>
notebook_start = time.perf_counter()

# %% [markdown]
# ## 1. Other resolutions
#
# Nothing in a Transformer block depends on the number of tokens: attention mixes however many there are,
# and the MLP works token by token. A ViT built for 64-pixel images therefore runs on any image whose sides
# are multiples of the patch size; only the number of tokens, N = (H / P) x (W / P), changes, and with it
# the cost (attention grows as N²). The one part tied to the grid is the **position embeddings**:
#
# * **sin-cos** positions (I-JEPA's, and ours by default) are a formula of the row and column, so the model
#   simply computes them for the new grid;
# * **learned** positions (the original ViT's) exist only for the trained grid; the usual fix, from the ViT
#   paper's fine-tuning at higher resolution, is to treat the table as a small D-channel image and resize it
#   bicubically (`resize_positions`).
#
# A ViT-Tiny of depth 2 built for 64 px with 8-pixel patches (an 8 x 8 grid), run at three sizes:

# %%
torch.manual_seed(0)
sincos_vit = vit_tiny(patch_size=8, image_size=64, depth=2).eval()
learned_vit = vit_tiny(patch_size=8, image_size=64, depth=2, pos_embed="learned").eval()
D = sincos_vit.embed_dim

print(f"{'image (H x W)':>14s}{'grid':>9s}{'tokens N':>10s}   output of each model")
with torch.no_grad():
    for size in [(64, 64), (96, 96), (64, 96)]:
        images = torch.randn(2, 3, *size)
        outputs = [sincos_vit(images), learned_vit(images)]
        grid = (size[0] // 8, size[1] // 8)
        print(f"{size[0]:>8d} x {size[1]:<4d}{grid[0]:>5d} x {grid[1]:<3d}{grid[0] * grid[1]:>8d}   "
              f"{' and '.join(str(tuple(o.shape)) for o in outputs)}")
        assert all(o.shape == (2, grid[0] * grid[1], D) for o in outputs)

# At the built size nothing is recomputed or resized: the stored tables are used as they are.
for model in (sincos_vit, learned_vit):
    assert model.position_embeddings(model.grid) is model.pos_embed
assert torch.equal(resize_positions(learned_vit.pos_embed, (8, 8), (8, 8)), learned_vit.pos_embed)
assert torch.equal(sincos_vit.pos_embed[0], sincos_2d(D, (8, 8)))

# %% [markdown]
# ### Extending versus stretching
#
# The two kinds of positions behave differently on a bigger grid. To compare them fairly, we give the
# learned model a table with a clear grid structure: a copy of the 8 x 8 sin-cos table, standing in for a
# table that training has made smooth (section 4 trains a real one). Then we go to 96 px, a 12 x 12 grid:
#
# * the sin-cos formula **extends** the grid: patches 0-7 of each row keep exactly the positions they had,
#   and patches 8-11 get new ones, further out, that the model never saw in training;
# * the bicubic resize **stretches** the 8 x 8 table over 12 x 12: the new corner patch gets (about) the old
#   corner's position, and every step between two patches becomes 8/12 of an old step.

# %%
with torch.no_grad():
    learned_vit.pos_embed.copy_(sincos_2d(D, (8, 8))[None])  # a smooth "learned" table, for the comparison

extended = sincos_vit.position_embeddings((12, 12))[0].view(12, 12, D)  # recomputed for 12 x 12
stretched = learned_vit.position_embeddings((12, 12))[0].detach().view(12, 12, D)  # resized bicubically
original = sincos_2d(D, (8, 8)).view(8, 8, D)

assert torch.equal(extended[:8, :8], original), "sin-cos on a bigger grid keeps the old positions exactly"
corner_stretched = (stretched[11, 11] - original[7, 7]).norm().item()
corner_extended = (extended[11, 11] - original[7, 7]).norm().item()
print(f"distance of the new corner patch (11, 11) to the old corner (7, 7):  resized {corner_stretched:.2f},  "
      f"recomputed {corner_extended:.2f}   (size of one position vector: {original[7, 7].norm():.2f})")
assert corner_stretched < 0.1 * corner_extended

# One channel of the column code along the top row: channel k is sin(column x w_k), w_k = 10000^(-k / 48).
k = 4
fig, ax = plt.subplots(figsize=(7, 2.8))
ax.plot(range(12), extended[0, :, k], "s-", color="tab:blue", label="sin-cos recomputed for 12 columns: extends")
ax.plot(range(12), stretched[0, :, k], "^-", color="tab:orange", label="8-column table resized to 12: stretches")
ax.plot(range(8), original[0, :, k], "o", ms=11, mfc="none", mec="k", mew=1.5, label="the built grid's 8 columns")
ax.set(title=f"one position channel (k = {k}) along the top row", xlabel="column index on the grid",
       ylabel="value of the channel")
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# The similarity maps show the same thing in two dimensions: each small map is the cosine similarity of one
# patch's position embedding with every other patch's (`position_similarity`), on the new grids. The
# resized table's maps are the 8 x 8 maps blown up: their bright spots are 12/8 = 1.5 times wider in patches.
# The last row is the rectangular case (64 x 96 px, an 8 x 12 grid): the learned table is stretched along the
# columns only. (All similarities are high, because many sin-cos channels have frequencies so low that they
# hardly change across 8 or 12 patches; what carries the position is how the similarity falls off.)

# %%
queries = {(12, 12): [(0, 0), (5, 5), (11, 11)], (8, 12): [(0, 0), (4, 6), (7, 11)]}
rows = [
    ("sin-cos recomputed\nfor 12 x 12", sincos_vit.position_embeddings((12, 12)), (12, 12)),
    ("learned 8 x 8,\nresized to 12 x 12", learned_vit.position_embeddings((12, 12)), (12, 12)),
    ("learned 8 x 8,\nresized to 8 x 12", learned_vit.position_embeddings((8, 12)), (8, 12)),
]
sims = [position_similarity(table, grid) for _, table, grid in rows]  # (H, W, H, W) each
low = min(sim.min().item() for sim in sims)  # one colour scale for all maps
fig, axes = plt.subplots(len(rows), 3, figsize=(8, 6.6))
for row, (name, _, grid), sim in zip(axes, rows, sims):
    for ax, (r, c) in zip(row, queries[grid]):
        image = ax.imshow(sim[r, c], vmin=low, vmax=1, cmap="viridis")
        ax.plot(c, r, "r+", ms=8)
        ax.set_xticks([]); ax.set_yticks([])
        ax.set_title(f"patch ({r}, {c})", fontsize=8)
    row[0].set_ylabel(name, fontsize=8)
fig.colorbar(image, ax=axes, shrink=0.6, label="cosine similarity")
fig.suptitle("similarity of one patch's position (red +) with every other patch's")
plt.show()


# %% [markdown]
# Two remarks on other code you may read:
#
# * **Class tokens.** The original ViT, DeiT and DINO prepend a class token, so their position tables have
#   1 + N rows, and their resizing helpers set row 0 aside before reshaping the rest into a square. The
#   official I-JEPA encoder copies that helper, but it has *no* class token: row 0 is the top-left patch.
#   Its helper then tries to reshape N - 1 rows into a square, which fails for every square grid (s² - 1 is
#   never a square), so that encoder cannot run at another resolution as written. Our tables have no class
#   token either, and `resize_positions` resizes every row.
# * **Sin-cos in the official code** is stored as a frozen table and goes through the same bicubic resize,
#   so there it is stretched too; ours is recomputed. Which is better depends on the task: stretching keeps
#   positions inside the trained range, extending keeps the spacing between patches the model was trained on.

# %%
def official_style_reshape(pos_embed):
    """What a class-token helper does first: put row 0 aside, reshape the other rows into a square."""
    patches = pos_embed[:, 1:]  # (1, N - 1, D): assumes row 0 is a class token
    side = int(math.sqrt(patches.shape[1]))
    return patches.reshape(1, side, side, -1)  # (1, side, side, D), if N - 1 is a square


try:
    official_style_reshape(learned_vit.pos_embed)
    print("reshaped")
except RuntimeError as err:
    print(f"{learned_vit.pos_embed.shape[1]} positions, no class token -> RuntimeError: {err}")

# %% [markdown]
# ## 2. Stability options from ViT-22B
#
# Scaling a ViT to 22 billion parameters (Dehghani et al., 2023) needed three changes to the block, each one
# an option of `ViTConfig` here:
#
# * **`qk_norm=True`**: a LayerNorm on every head's queries and keys before their dot product. Already at
#   about 8 billion parameters, the training loss diverged after a few thousand steps: some attention logits
#   q·k/√d had grown so large that the softmax put all the weight on one token (attention entropy near
#   zero). After the norm (gain 1, no shift) every q and k has norm √d, so |q·k|/√d ≤ √d; only the norms'
#   learned gains can raise that ceiling.
# * **`parallel_blocks=True`**: y = x + Attention(LN(x)) + MLP(LN(x)), both branches reading one LayerNorm,
#   instead of one after the other. The input projections of the two branches (qkv and the MLP's first
#   layer) can then be fused into one matrix product, and so can their output projections; PaLM, where the
#   idea comes from, trained about 15 % faster this way.
# * **`qkv_bias=False`, `norm_bias=False`**: no biases in the query/key/value projection and in the
#   LayerNorms (the MLP and the attention output keep theirs); ViT-22B reports about 3 % better use of the
#   accelerators and no loss of quality. (ViT-22B's norms also skip the centring, which makes them RMSNorms;
#   `norm_bias=False` keeps the centring and drops only the shift.)
#
# All off by default: then the model *is* the I-JEPA encoder (same parameter names, same outputs). Each
# option's effect on the parameters of a small ViT:

# %%
IMG, PATCH, WIDTH, DEPTH, HEADS = 32, 4, 64, 2, 2  # the small ViT of sections 2-4: 8 x 8 grid, head width 32
base = ViTConfig(image_size=IMG, patch_size=PATCH, embed_dim=WIDTH, depth=DEPTH, num_heads=HEADS)
options = {
    "I-JEPA encoder (all off)": {},
    "qk_norm": dict(qk_norm=True),
    "parallel_blocks": dict(parallel_blocks=True),
    "qkv_bias=False": dict(qkv_bias=False),
    "norm_bias=False": dict(norm_bias=False),
    "all four (ViT-22B)": dict(qk_norm=True, parallel_blocks=True, qkv_bias=False, norm_bias=False),
}
models = {}
for name, option in options.items():
    torch.manual_seed(0)
    models[name] = VisionTransformer(replace(base, **option))
plain_keys = set(models["I-JEPA encoder (all off)"].state_dict())
count = lambda m: sum(p.numel() for p in m.parameters())
print(f"{'option':26s}{'parameters':>11s}   tensors added / removed")
for name, model in models.items():
    keys = set(model.state_dict())
    added = sorted({re.sub(r"^blocks\.\d+\.", "", k) for k in keys - plain_keys})  # names within a block
    removed = sorted({re.sub(r"^blocks\.\d+\.", "", k) for k in plain_keys - keys})
    print(f"{name:26s}{count(model):>11,d}   {'+' + ', +'.join(added) if added else ''}"
          f"{'  ' if added and removed else ''}{'-' + ', -'.join(removed) if removed else ''}")

# Parity: with every option off, the model is the plain encoder: same names, bit-identical outputs.
torch.manual_seed(0)
explicit_off = VisionTransformer(replace(base, qk_norm=False, parallel_blocks=False, qkv_bias=True, norm_bias=True))
x = torch.randn(4, 3, IMG, IMG)
assert set(explicit_off.state_dict()) == plain_keys
assert torch.equal(explicit_off(x), models["I-JEPA encoder (all off)"](x))

# What the parallel block computes, written out:
block = models["parallel_blocks"].blocks[0]
tokens = torch.randn(4, 16, WIDTH)
torch.testing.assert_close(block(tokens), tokens + block.attn(block.norm1(tokens)) + block.mlp(block.norm1(tokens)))

# The qk-norm ceiling at initialisation: every logit is at most sqrt(d) = sqrt(32).
images = torch.randn(8, 3, IMG, IMG)
head_dim = WIDTH // HEADS
ceiling = attention_logits_max(models["qk_norm"], images).max().item()
print(f"\nlargest attention logit at init: plain {attention_logits_max(models['I-JEPA encoder (all off)'], images).max():.2f}, "
      f"qk_norm {ceiling:.2f} (ceiling sqrt(d) = {math.sqrt(head_dim):.2f})")
assert ceiling <= math.sqrt(head_dim)

# %% [markdown]
# Note the second number: qk-norm does not only cap the logits, it also *raises* them at initialisation.
# Without it, q and k come from small random weights (std 0.02) and all logits are about 0.1, so attention
# starts almost uniform; with it, q and k are rescaled to norm √d and the logits start at a few units.
#
# ### An experiment: logits during a high-learning-rate run
#
# The data: the course's shapes at 32 px, and a supervised task that a tiny ViT learns in a few hundred
# steps: `position`, which quadrant the object is in, on the images that hold a single object (about a
# third of the 8192 training images; 4 classes, chance 25 %). The model: the ViT
# above, its tokens averaged, and a linear classifier. AdamW at a learning rate of 3e-3 (3 x I-JEPA's peak)
# and 1e-2, with no warm-up, 150 steps of 32 images, with and without qk-norm. Every 10 steps we record the
# largest attention logit of each layer on 32 held-out images (`attention_logits_max`). About 10 s per run.

# %%
TASK = "position"
train_set = ShapesDataset(num_images=8192, image_size=IMG, seed=0, task=TASK)
test_set = ShapesDataset(num_images=2048, image_size=IMG, seed=0, split="test", task=TASK)
single = [d.labels["count"] == 0 for d in (train_set, test_set)]  # images with one object: about a third
train_x, train_y = normalize(train_set.images[single[0]].float() / 255), train_set.labels[TASK][single[0]]
test_x, test_y = normalize(test_set.images[single[1]].float() / 255), test_set.labels[TASK][single[1]]
watch = test_x[:32]  # the images the logits are measured on


class Classifier(nn.Module):
    """A small ViT, its tokens averaged, then a linear layer: supervised classification of one label."""

    def __init__(self, **options):
        super().__init__()
        self.encoder = VisionTransformer(replace(base, **options))
        self.head = nn.Linear(WIDTH, 4)

    def forward(self, images):
        return self.head(self.encoder(images).mean(dim=1))  # (B, N, D) -> (B, D) -> (B, 4)


def make_optimizer(name, model, lr):
    if name == "AdamW":  # no weight decay on biases, norms and positions
        return torch.optim.AdamW(param_groups(model), lr=lr, weight_decay=0.05)
    if name == "SGD":
        return torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    raise ValueError(name)


def train(optimizer_name="AdamW", lr=1e-3, steps=150, batch_size=32, log_every=10, **options):
    """Train a Classifier from the same initialisation on the same batches; log loss, logits, accuracy."""
    torch.manual_seed(0)
    model = Classifier(**options)
    init = copy.deepcopy(model)
    optimizer = make_optimizer(optimizer_name, model, lr)
    g = torch.Generator().manual_seed(0)
    log = {"loss": [], "logit_step": [], "logits": []}
    start = time.perf_counter()
    for step in range(steps + 1):
        if step % log_every == 0:
            log["logit_step"].append(step)
            log["logits"].append(attention_logits_max(model.encoder, watch))  # (L,)
        if step == steps:
            break
        batch = torch.randint(0, len(train_x), (batch_size,), generator=g)
        loss = F.cross_entropy(model(train_x[batch]), train_y[batch])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        log["loss"].append(loss.item())
    model.eval()
    with torch.no_grad():
        accuracy = (model(test_x).argmax(1) == test_y).float().mean().item()
    log["logits"] = torch.stack(log["logits"])  # (T, L): one row per logged step
    return dict(model=model, init=init, accuracy=accuracy, seconds=time.perf_counter() - start, **log)


runs = {}
for lr in (3e-3, 1e-2):
    for qk_norm in (False, True):
        runs["AdamW", lr, qk_norm] = train("AdamW", lr, qk_norm=qk_norm)
print(f"{'lr':>6s}  {'qk_norm':8s}{'max logit per layer: step 0 -> 150':>36s}{'final loss':>12s}{'accuracy':>10s}{'time':>7s}")
for (_, lr, qk_norm), run in runs.items():
    first, last = run["logits"][0].numpy(), run["logits"][-1].numpy()
    print(f"{lr:>6g}  {str(qk_norm):8s}{str(first.round(1)):>17s} -> {str(last.round(1)):15s}"
          f"{np.mean(run['loss'][-10:]):>12.3f}{run['accuracy']:>10.1%}{run['seconds']:>6.0f}s")

# %%
fig, axes = plt.subplots(1, 3, figsize=(12, 3.4))
for ax, lr in zip(axes[:2], (3e-3, 1e-2)):
    for qk_norm, style in ((False, "-"), (True, "--")):
        run = runs["AdamW", lr, qk_norm]
        for layer in range(DEPTH):
            ax.plot(run["logit_step"], run["logits"][:, layer], style, marker="o", ms=3, color=f"C{layer}",
                    label=f"layer {layer}, {'with' if qk_norm else 'without'} qk_norm")
    ax.axhline(math.sqrt(head_dim), color="0.5", lw=0.8, ls=":", label="√d, qk_norm's ceiling at init")
    ax.set_yscale("log")
    ax.set(title=f"largest attention logit, AdamW lr {lr:g}", xlabel="step", ylabel="max q·k/√d (log)")
axes[0].legend(fontsize=7)
for (_, lr, qk_norm), run in runs.items():
    smooth = np.convolve(run["loss"], np.ones(10) / 10, mode="valid")
    axes[2].plot(np.arange(len(smooth)) + 10, smooth, "--" if qk_norm else "-", color="C2" if lr == 1e-2 else "C3",
                 label=f"lr {lr:g}, {'with' if qk_norm else 'without'} qk_norm")
axes[2].axhline(math.log(4), color="0.5", lw=0.8, ls=":", label="chance (ln 4)")
axes[2].set(title="training loss (mean of 10 steps)", xlabel="step", ylabel="cross-entropy")
axes[2].legend(fontsize=7)
fig.tight_layout()
plt.show()

for (_, lr, qk_norm), run in runs.items():
    _, weights = run["model"].encoder.forward_with_attention(watch)  # L x (B, h, N, N)
    one_hot = [(w.amax(dim=-1) > 0.99).float().mean().item() for w in weights]
    print(f"lr {lr:<6g} {'with' if qk_norm else 'without':7s} qk_norm: attention rows with a weight > 0.99, per layer: "
          + ", ".join(f"{share:.0%}" for share in one_hot))
assert runs["AdamW", 1e-2, False]["logits"][-1].max() > 10 * runs["AdamW", 1e-2, True]["logits"][-1].max()
assert all(runs["AdamW", lr, True]["logits"].max() < 3 * math.sqrt(head_dim) for lr in (3e-3, 1e-2))

# %% [markdown]
# What the run shows:
#
# * **Without qk-norm the logits grow fast.** From about 0.1 at initialisation, the largest logit reaches
#   20-40 at lr 3e-3 and 60-90 at lr 1e-2 within 150 steps. Once the logits of a row differ by tens, its
#   softmax is one-hot (e^-20 ≈ 2 x 10^-9). The count printed above shows it: without qk-norm, a part of
#   the second layer's attention rows (20 % at lr 3e-3, 6 % at lr 1e-2) put more than 99 % of their weight
#   on a single token; with qk-norm, none do. That is the failure ViT-22B met, reached here in 150 steps of
#   a tiny model by a large learning rate instead of thousands of steps of a huge one.
# * **With qk-norm they stay near the ceiling √d ≈ 5.7**, a bit above it only because the norms' gains
#   are learned.
# * **qk-norm is not a cure-all.** At lr 1e-2 both runs stay at chance: something else breaks first at that
#   learning rate. At lr 3e-3 the qk-norm run ends a little better (93.5 vs 91.4 %, one seed each: not a
#   verdict) and with a far lower loss (0.10 vs 0.35); part of that may be the higher logits at initialisation
#   noted above (attention is not uniform from step 0), not only the cap.
#
# Growing logits are not in themselves a sign of trouble: attention *has* to sharpen to learn anything, and
# the lr 1e-3 run of section 3 learns well (85 %) with its largest logit at about 13. The
# danger is growth without bound, which a learning rate too high for the model reaches quickly, and which
# ViT-22B met at scale with a learning rate it could not afford to lower; qk-norm rules it out.
#
# ## 3. Optimisers: SGD versus AdamW
#
# CNNs are often trained with SGD and momentum; ViTs almost always with Adam or AdamW. Same model, same
# initialisation, same 150 batches, no warm-up, no schedule: SGD with momentum 0.9 at three learning rates,
# AdamW (weight decay 0.05) at two. The lr 3e-3 AdamW run is the one of section 2. About 10 s per run.

# %%
for lr in (0.03, 0.1, 0.3):
    runs["SGD", lr, False] = train("SGD", lr)
runs["AdamW", 1e-3, False] = train("AdamW", 1e-3)
compared = [("SGD", lr, False) for lr in (0.03, 0.1, 0.3)] + [("AdamW", lr, False) for lr in (1e-3, 3e-3)]

fig, axes = plt.subplots(1, 2, figsize=(11, 3.4), gridspec_kw=dict(width_ratios=(1.6, 1)))
colours = {("SGD", 0.03): "#fdae6b", ("SGD", 0.1): "#e6550d", ("SGD", 0.3): "#a63603",
           ("AdamW", 1e-3): "#6baed6", ("AdamW", 3e-3): "#08519c"}
for key in compared:
    run = runs[key]
    smooth = np.convolve(run["loss"], np.ones(10) / 10, mode="valid")
    axes[0].plot(np.arange(len(smooth)) + 10, smooth, color=colours[key[:2]], label=f"{key[0]}, lr {key[1]:g}")
axes[0].axhline(math.log(4), color="0.5", lw=0.8, ls=":", label="chance (ln 4)")
axes[0].set(title="training loss (mean of 10 steps)", xlabel="step", ylabel="cross-entropy")
axes[0].legend(fontsize=8)
labels = [f"{key[0]}\n{key[1]:g}" for key in compared]
accuracies = [runs[key]["accuracy"] for key in compared]
axes[1].bar(labels, accuracies, color=[colours[key[:2]] for key in compared])
axes[1].axhline(0.25, color="0.5", lw=0.8, ls=":", label="chance")
axes[1].set(title="held-out accuracy after 150 steps", ylabel="accuracy (quadrant)", ylim=(0, 1))
axes[1].legend(fontsize=8)
fig.tight_layout()
plt.show()
for key in compared:
    run = runs[key]
    print(f"{key[0]:6s} lr {key[1]:<6g} final loss {np.mean(run['loss'][-10:]):.3f}, accuracy {run['accuracy']:.1%}, "
          f"largest attention logit {run['logits'][-1].max():.2f}")
best_sgd = max(runs[key]["accuracy"] for key in compared if key[0] == "SGD")
best_adamw = max(runs[key]["accuracy"] for key in compared if key[0] == "AdamW")
assert best_adamw > best_sgd + 0.2


# %% [markdown]
# What happened: SGD learns only at its smallest learning rate (lr 0.03: loss 1.17, 57 % held out); at
# lr 0.1 and 0.3 its loss stays at chance level (1.39 for 4 classes). At lr 0.03 and 0.1 its attention
# logits stay below 0.2, so its attention stays uniform. AdamW reaches 85 % (lr 1e-3) and 91 %
# (lr 3e-3) on the same 150 batches.
#
# Why? Look at how far one step moves each weight matrix, relative to its size, from the same
# initialisation and the same batch (the fused qkv projection split into its query, key and value parts).
# SGD moves a tensor in proportion to its gradient, and in a freshly initialised ViT the gradients of
# different tensors differ by orders of magnitude: the query and key projections get tiny gradients (the
# gradient of one is proportional to the other, and both start small), the classifier head large ones. A learning rate large enough for the attention is too large for the head, and the
# reverse. Adam divides each gradient by its own running scale, so every tensor moves by about the learning
# rate per entry, whatever its gradient's size.

# %%
def weight_matrices(model):
    """The weight matrices by name, the fused qkv projection split into its query, key and value parts."""
    matrices = {}
    for name, p in model.named_parameters():
        if p.ndim < 2:
            continue  # biases and norms
        name = name.removeprefix("encoder.").removesuffix(".weight")
        if name.endswith("qkv"):
            for part, rows in zip("qkv", p.detach().chunk(3)):  # (3D, D) -> 3 x (D, D)
                matrices[name.removesuffix("qkv") + part] = rows
        else:
            matrices[name] = p.detach()
    return matrices


def relative_step(optimizer_name, lr):
    """||W_after - W_before|| / ||W_before|| for every weight matrix, after one step on one batch."""
    torch.manual_seed(0)
    model = Classifier()
    before = {name: w.clone() for name, w in weight_matrices(model).items()}
    optimizer = make_optimizer(optimizer_name, model, lr)
    F.cross_entropy(model(train_x[:32]), train_y[:32]).backward()
    optimizer.step()
    after = weight_matrices(model)
    return {name: ((after[name] - w).norm() / w.norm()).item() for name, w in before.items()}


sgd_step, adamw_step = relative_step("SGD", 0.1), relative_step("AdamW", 1e-3)
names = list(sgd_step)
fig, ax = plt.subplots(figsize=(10, 3))
positions = np.arange(len(names))
ax.bar(positions - 0.2, [sgd_step[n] for n in names], width=0.4, color="#e6550d", label="SGD, lr 0.1")
ax.bar(positions + 0.2, [adamw_step[n] for n in names], width=0.4, color="#08519c", label="AdamW, lr 1e-3")
ax.set_yscale("log")
ax.set_xticks(positions, names, rotation=35, ha="right", fontsize=7)
ax.set(title="relative change of each weight matrix after one step", ylabel="‖ΔW‖ / ‖W‖ (log)")
ax.legend(fontsize=8)
plt.show()
sgd_spread = max(sgd_step.values()) / min(sgd_step.values())
adamw_spread = max(adamw_step.values()) / min(adamw_step.values())
print(f"ratio of the largest to the smallest relative step: SGD {sgd_spread:,.0f}x, AdamW {adamw_spread:.0f}x")
assert sgd_spread > 10 * adamw_spread


# %% [markdown]
# SGD is not useless for ViTs: the ViT paper *fine-tuned* its pretrained models with SGD and momentum,
# when the attention already works and the gradients are better balanced. Training from scratch is where
# Adam's per-parameter scaling matters. Whether a warm-up, a larger batch or many more steps would rescue
# SGD here is left as an exercise.
#
# ### The price: optimiser state
#
# Adam keeps two running averages per parameter (of the gradient and of its square); SGD with momentum
# keeps one; plain SGD none. Their memory, measured on the tensors in `optimizer.state` after one step:

# %%
def state_bytes(optimizer):
    return sum(t.numel() * t.element_size() for state in optimizer.state.values() for t in state.values()
               if torch.is_tensor(t))


torch.manual_seed(0)
model = Classifier()
param_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
ratios = {}
for name, make in {
    "SGD, no momentum": lambda: torch.optim.SGD(model.parameters(), lr=0.1),
    "SGD, momentum 0.9": lambda: torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9),
    "AdamW": lambda: torch.optim.AdamW(model.parameters(), lr=1e-3),
}.items():
    optimizer = make()
    model.zero_grad()
    F.cross_entropy(model(train_x[:8]), train_y[:8]).backward()
    optimizer.step()
    ratios[name] = state_bytes(optimizer) / param_bytes
    print(f"{name:18s} state {state_bytes(optimizer) / 1e3:8.1f} kB = {ratios[name]:.3f} x the parameters "
          f"({param_bytes / 1e3:.1f} kB)")
assert ratios["SGD, no momentum"] == 0 and ratios["SGD, momentum 0.9"] == 1 and 2 <= ratios["AdamW"] < 2.01
vit_h = 632e6
print(f"\nViT-H/14 ({vit_h / 1e6:.0f} M parameters) in float32: weights {4 * vit_h / 1e9:.1f} GB, "
      f"gradients {4 * vit_h / 1e9:.1f} GB, AdamW state {8 * vit_h / 1e9:.1f} GB")

# %% [markdown]
# AdamW's state is twice the model (plus one step counter per tensor): weights, gradients and state together
# make four copies of the model, before any activation. That cost is why memory-lean
# optimisers exist (Adafactor factorises the second moment into row and column averages), and why large runs
# split the optimiser state across GPUs (ZeRO, FSDP) instead of giving every GPU a full copy.
#
# ## 4. What the first layers learn
#
# The ViT paper looked at the two things a ViT learns before any attention: the **patch embedding**, D
# filters of size C x P x P that each patch is dotted with, and the **position embeddings**.
#
# ### Patch filters
#
# Taking the D filters as samples, PCA finds the few patterns that most of them are made of
# (`patch_filter_pca`); the ViT paper shows the first 28 as RGB tiles, and after long training on large
# data they look like a CNN's first layer: smooth, low-frequency bases (blobs, gradients, stripes). We show
# them for a random ViT-Tiny, for the course's I-JEPA encoder (`assets/cpu_default`, 512 steps on the
# shapes), and, as the reference a filter bank tends towards, the principal components of the 8 x 8 patches
# of the photographs themselves.

# %%
ENCODER_FILE = ROOT / "assets" / "cpu_default" / "target_encoder.pt"
trained, meta = load_encoder(ENCODER_FILE)
torch.manual_seed(0)
random_vit = VisionTransformer(trained.config).eval()
P = trained.config.patch_size
print(f"I-JEPA encoder: width {trained.config.embed_dim}, depth {trained.config.depth}, patch {P}, "
      f"{trained.config.image_size[0]} px, {meta['step']} training steps")

photos = torch.stack([load_photo(name, 64) for name in PHOTO_NAMES])  # (5, 3, 64, 64) in [0, 1]
photo_patches = photos.unfold(2, P, P).unfold(3, P, P)  # (5, 3, 8, 8, P, P)
photo_patches = photo_patches.permute(0, 2, 3, 1, 4, 5).reshape(-1, 3, P, P)  # (320, 3, P, P), one per patch

filters = {
    "random init": random_vit.patch_embed.proj.weight,
    "I-JEPA (course run)": trained.patch_embed.proj.weight,
    "reference: photo patches": photo_patches,
}
pca = {name: patch_filter_pca(weight, k=28) for name, weight in filters.items()}  # (tiles (28, 3, P, P), ratios)

fig, axes = plt.subplots(2 * len(pca), 14, figsize=(10, 5.4))
for row, (name, (tiles, _)) in enumerate(pca.items()):
    for i, tile in enumerate(tiles):
        ax = axes[2 * row + i // 14, i % 14]
        ax.imshow(tile.permute(1, 2, 0).numpy())
        ax.set_xticks([]); ax.set_yticks([])
    axes[2 * row, 0].set_title(name, fontsize=9, loc="left")
fig.suptitle("first 28 principal components of the patch-embedding filters, as RGB tiles (two rows each)")
plt.show()

fig, ax = plt.subplots(figsize=(5, 2.8))
for name, (_, explained) in pca.items():
    ax.plot(range(1, 29), explained.numpy(), "o-", ms=3, label=name)
ax.set_yscale("log")
ax.set(title="how much of the filters each component explains", xlabel="component",
       ylabel="share of the variance (log)")
ax.legend(fontsize=8)
plt.show()
for name, (_, explained) in pca.items():
    print(f"{name:26s} first component explains {explained[0]:.1%}, first 28 together {explained.sum():.1%}")

# %% [markdown]
# The photo patches' components are the textbook picture: flat patches first (overall brightness and
# colour), then smooth gradients along each axis, then finer and finer patterns, with a steeply falling
# variance. The random filters have no structure and a flat spectrum (every direction as likely).
# The course's encoder has barely left its random start: its components explain what the random filters'
# do (2.0 % for the first, 42.6 against 42.5 % for the first 28), and its tiles are still noise; 512 steps on small synthetic images have not reshaped its 192
# filters. The model of the ViT paper's figure had been trained on hundreds of millions of images.
#
# ### Position embeddings
#
# Our encoders use fixed sin-cos positions, a formula of (row, column) that is never trained, not even
# saved in the encoder file: the random and the trained encoder have *the same* table, and the same
# similarity picture. To see positions being learned, we train the section-2 classifier with
# `pos_embed="learned"` (initialised at random, std 0.02) for 300 steps with AdamW at lr 1e-3; its task,
# the quadrant of the object, needs positions. About 15 s.

# %%
assert torch.equal(random_vit.pos_embed, trained.pos_embed) and "pos_embed" not in trained.state_dict()
learned_run = train("AdamW", 1e-3, steps=300, log_every=50, pos_embed="learned")
print(f"learned positions: accuracy {learned_run['accuracy']:.1%} after 300 steps ({learned_run['seconds']:.0f} s)")
grid8 = learned_run["model"].encoder.grid


def similarity_mosaic(sim, pad=1):
    """(H, W, H, W) similarities -> one image of H x W small maps (map (r, c) at row r, column c)."""
    H, W = sim.shape[:2]
    canvas = torch.full((H * (H + pad) - pad, W * (W + pad) - pad), float("nan"))
    for r in range(H):
        for c in range(W):
            canvas[r * (H + pad):r * (H + pad) + H, c * (W + pad):c * (W + pad) + W] = sim[r, c]
    return canvas


tables = {
    "sin-cos (random and trained\nI-JEPA encoders alike)": trained.pos_embed,
    "learned, at initialisation": learned_run["init"].encoder.pos_embed,
    "learned, after 300 steps": learned_run["model"].encoder.pos_embed,
}
fig, axes = plt.subplots(1, 3, figsize=(12, 4.1))
for ax, (name, table) in zip(axes, tables.items()):
    sim = position_similarity(table, grid8)  # (8, 8, 8, 8)
    off_diagonal = sim.reshape(64, 64)[~torch.eye(64, dtype=torch.bool)]
    image = ax.imshow(similarity_mosaic(sim), vmin=off_diagonal.min().item(), vmax=1, cmap="viridis")
    ax.set_xticks([]); ax.set_yticks([])
    ax.set(title=name, xlabel="patch column", ylabel="patch row")
    fig.colorbar(image, ax=ax, shrink=0.8, label="cosine similarity")
fig.suptitle("cosine similarity of each position embedding (the small map at its row and column) with all others")
fig.tight_layout()
plt.show()

distance = patch_distances(grid8)  # (N, N) in patches
near, far = (distance > 0) & (distance <= 1.5), distance >= 4
for name, table in tables.items():
    sim = position_similarity(table, grid8).reshape(64, 64)
    print(f"{name.replace(chr(10), ' '):48s} mean similarity: neighbours {sim[near].mean():+.2f}, "
          f"4+ patches apart {sim[far].mean():+.2f}")
trained_sim = position_similarity(tables["learned, after 300 steps"], grid8).reshape(64, 64)
init_sim = position_similarity(tables["learned, at initialisation"], grid8).reshape(64, 64)
assert trained_sim[near].mean() - trained_sim[far].mean() > 0.2 > init_sim[near].mean() - init_sim[far].mean()

# %% [markdown]
# (Each panel has its own colour scale, from its lowest similarity to 1.) At initialisation the learned table
# is noise: each position is similar only to itself. After 300 steps nearby patches have similar embeddings
# and distant ones dissimilar: training has written the grid into the table, which is what the ViT paper
# found at scale (there rows and columns show up too). Our short run learns what its task needs, mostly
# which *quadrant* a patch is in, so its maps are blocky where the sin-cos ones are smooth.
#
# ## 5. How far does each head look?
#
# A head's **mean attention distance** is the attention-weighted average distance, in pixels, from each
# query patch to the patches it attends to, averaged over queries and images (`mean_attention_distance`):
# the ViT analogue of a CNN's receptive field. A head that only looks at its own patch scores 0; a head that
# attends uniformly scores the mean distance between two patches of the grid. In large trained ViTs the
# early layers hold both **local** heads (small distance, like a convolution) and **global** heads
# (distance near the uniform one), and later layers are mostly global: a ViT can look across the whole
# image from the first layer, which a CNN, whose receptive field grows a few pixels per layer, cannot.
#
# We measure it on 64 held-out shapes and on the five photographs at 64 px, for the random and the course's
# I-JEPA encoder. Two rulers, computed with `attention_distance` on hand-made attention maps: a head that
# attends equally to its own patch and its 8 neighbours (a 3 x 3 convolution's view), and uniform attention.

# %%
shapes64 = normalize(ShapesDataset(num_images=64, image_size=64, seed=0, split="test").images.float() / 255)
photos64 = normalize(photos)
distances = {
    (data, name): mean_attention_distance(encoder, images)  # (L, h) in pixels
    for data, images in (("shapes", shapes64), ("photos", photos64))
    for name, encoder in (("random init", random_vit), ("I-JEPA", trained))
}

grid_distance = patch_distances(trained.grid)  # (N, N), in patches
neighbourhood = (grid_distance <= 1.5).float()  # (N, N): itself and its (up to) 8 neighbours
rulers = {
    "uniform attention": attention_distance(torch.full_like(grid_distance, 1 / grid_distance.shape[0]), trained.grid, P),
    "3 x 3 neighbourhood": attention_distance(neighbourhood / neighbourhood.sum(1, keepdim=True), trained.grid, P),
}

fig, axes = plt.subplots(1, 2, figsize=(11, 3.6), sharey=True)
for ax, data in zip(axes, ("shapes", "photos")):
    for name, colour, offset in (("random init", "0.5", -0.1), ("I-JEPA", "tab:blue", 0.1)):
        d = distances[data, name]
        layers = np.arange(1, d.shape[0] + 1)
        for h in range(d.shape[1]):
            ax.scatter(layers + offset, d[:, h], s=16, color=colour, label=f"{name} (one dot per head)" if h == 0 else None)
        ax.plot(layers + offset, d.mean(1), color=colour, lw=1)
    for (name, value), style in zip(rulers.items(), (":", "--")):
        ax.axhline(value, color="k", ls=style, lw=0.8, label=f"{name}: {value:.1f} px")
    ax.set(title=f"{data} at 64 px (8-px patches, 8 x 8 grid)", xlabel="layer", ylabel="mean attention distance (px)",
           ylim=(0, 40), xticks=layers)
axes[0].legend(fontsize=7, loc="lower right")
fig.tight_layout()
plt.show()

for (data, name), d in distances.items():
    print(f"{data:7s}{name:12s} heads from {d.min():5.1f} to {d.max():5.1f} px; per layer (mean of heads):",
          np.round(d.mean(1).numpy(), 1))
uniform = rulers["uniform attention"].item()
random_d = torch.cat([distances[data, "random init"] for data in ("shapes", "photos")])
trained_d = torch.cat([distances[data, "I-JEPA"] for data in ("shapes", "photos")])
assert (random_d - uniform).abs().max() < 0.5  # a random ViT attends (almost) uniformly
assert (trained_d - uniform).abs().max() > 2 * (random_d - uniform).abs().max()  # training moved some heads

classifier = mean_attention_distance(learned_run["model"].encoder, test_x[:64])  # (L, h), 32-px images
classifier_uniform = patch_distances(grid8, PATCH).mean().item()
print(f"\nsection 4's classifier (32 px, 4-px patches; uniform {classifier_uniform:.1f} px): heads from "
      f"{classifier.min():.1f} to {classifier.max():.1f} px")

# %% [markdown]
# * **Random init:** every head sits on the uniform line. With small random weights all logits are about
#   0.1 (section 2), so every softmax is nearly flat.
# * **The course's I-JEPA encoder** has moved only a little: its heads spread by a few pixels around the
#   uniform value (over 4 px on the shapes it was trained on, 3 px on the photos). None is anywhere near the
#   3 x 3 ruler; in the ViT and I-JEPA papers' plots, local heads come with far longer training on far more
#   images.
# * **The classifier of section 4** is about as uniform, although it reached high accuracy: its task (which
#   quadrant?) is solved by averaging over the whole image, so nothing pushes a head to become local. What a
#   head learns depends on what the objective rewards.
#
# ## Summary
#
# * A ViT runs at any size that the patch size divides; only the token count (and the cost) changes, and
#   the positions must follow. Sin-cos positions are recomputed and *extend* the grid; a learned table is
#   resized bicubically and *stretches*. Code written for class-token models sets row 0 aside first; our
#   tables (and I-JEPA's) have no class token.
# * ViT-22B's stability changes: qk-norm (a LayerNorm on queries and keys, bounding the attention logits by
#   √d times the learned gains), parallel attention and MLP on one LayerNorm, no biases in qkv and the
#   norms. In a short high-learning-rate run, logits grew from 0.1 to about 90 without qk-norm and stayed
#   near √d with it.
# * On the same budget, AdamW trained the small ViT to 85-91 % and SGD with momentum reached 57 % at best,
#   at the smallest of three learning rates: SGD's step sizes differ by orders of magnitude between tensors,
#   Adam's do not. The price: AdamW's state is 2x the parameters (SGD with momentum 1x, plain SGD 0).
# * Three pictures of a ViT: PCA of the patch filters (smooth, low-frequency bases after long training), the
#   similarity of the position embeddings (learned ones come to encode the grid; sin-cos does so by
#   construction), and the mean attention distance of each head (local and global heads). On the course's
#   512-step I-JEPA encoder all three have barely moved from random. A small classifier trained for 300
#   steps on a task about *where* things are learns a grid-like position table, but its heads stay global:
#   its task needs no local heads.
#
# ## Self-check
#
# 1. A ViT-B/16 trained at 224 px is fine-tuned at 384 px. How many tokens does it see, and how much more
#    does one attention layer cost?
# 2. You resize a learned 14 x 14 position table to 24 x 24. Which old position does the new patch (23, 23)
#    get, about? And with sin-cos positions recomputed for 24 x 24?
# 3. With qk-norm and head width d = 64, what is the largest possible attention logit at initialisation,
#    and what can make it larger during training?
# 4. Why does SGD with one learning rate struggle on a freshly initialised ViT, while AdamW does not?
# 5. How much memory does the AdamW state of a ViT-L (307 M parameters) need in float32?
# 6. Why are the position-similarity pictures of our random and trained encoders identical?
# 7. What mean attention distance does a head get that attends only to its own patch? One that attends
#    uniformly?
#
# <details><summary>Answers</summary>
#
# 1. (384 / 16)² = 576 tokens instead of 196, about 2.9 times more; the attention matrix grows with N², so
#    about 8.6 times the attention cost (the MLP cost only 2.9 times).
# 2. About the old corner (13, 13): resizing stretches the table over the new grid. Recomputed sin-cos gives
#    it the position (23, 23), ten steps beyond anything seen in training.
# 3. √64 = 8: q and k have norm √d after the LayerNorm, so |q·k|/√d ≤ d/√d. The norms' learned gains (and
#    biases, if any) can raise it.
# 4. Its gradients differ by orders of magnitude between tensors (tiny for the query and key projections,
#    large for the head), so one learning rate is too small for some and too large for others. Adam
#    normalises each parameter's step by its own gradient scale.
# 5. Two float32 values per parameter: 2 x 4 x 307 M bytes, about 2.5 GB (on top of 1.2 GB of weights and
#    1.2 GB of gradients).
# 6. Sin-cos positions are a fixed formula of the grid, never trained: both encoders compute the same table.
# 7. 0 pixels for its own patch; the mean distance between two patch centres of the grid for uniform
#    attention (33 px on our 64-px, 8 x 8 grid).
#
# </details>
#
# **Exercises:** `exercises/attention.py` (attention weights, multi-head attention, the block) is the
# closest: add a qk-norm to your `attention` (a LayerNorm over each head's q and k) and check it against
# `Attention(qk_norm=True)`. To try yourself: give SGD a warm-up and 1000 steps in section 3; train the
# section-4 classifier on `shape` instead of `position` and compare its learned positions; run the learned
# classifier on 48-px images with its table resized.

# %%
print(f"this notebook ran in {time.perf_counter() - notebook_start:.0f} s")
