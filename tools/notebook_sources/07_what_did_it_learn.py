# %% [markdown]
# # 07 · What did it learn?
#
# A self-supervised loss going down says little about the features (notebook 06). What counts is what the
# frozen encoder's features are good for. This notebook opens the course's default run (`make train`: a
# ViT-Tiny of depth 6 trained with I-JEPA for 512 steps on the shapes) and looks at its target encoder in
# five ways: linear probes and k-NN against a randomly initialised encoder and raw pixels, the principal
# components of its patch features drawn as colours, its attention, how far its heads look, and nearest
# neighbours. Package modules: `minijepa/evaluate.py`, `minijepa/inspect_vit.py`, `minijepa/explorers.py`.
#
# **Learning goals.** After this notebook you can
# 1. run the frozen-feature protocol (average-pooled tokens -> linear probe / k-NN) and read its numbers
#    only next to their baselines (random init, pixels, chance);
# 2. explain why a *random* ViT is a strong baseline on some tasks, and what that says about a task;
# 3. look inside an encoder: PCA of patch features as colours, attention maps, mean attention distance,
#    nearest neighbours;
# 4. say plainly what a short CPU run of I-JEPA does and does not learn.

# %%
%%SETUP%%

# %%
import json

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F

from minijepa import vit_config, VisionTransformer
from minijepa.data import ShapesDataset, denormalize, load_photo, normalize
from minijepa.evaluate import effective_rank, extract_features, feature_std, knn_classify, linear_probe, pixel_features
from minijepa.explorers import AttentionExplorer, attention_explorer, plot_attention_view
from minijepa.inspect_vit import mean_attention_distance
from minijepa.pretrained import load_encoder

%%STYLE%%

# %%
%%EXERCISES%%

# %% [markdown]
# ## 1. The trained encoder, and its baselines
#
# The run's target encoder ships with the course in `assets/cpu_default/` (half precision, written by
# `tools/export_course_encoder.py` from `runs/cpu_default/`), with the run's report and metrics. After
# `make train` on your machine, you can point `ENCODER_FILE` at your own export instead; the CPU run is
# deterministic, so you should get the same numbers.
#
# The baseline that matters most is the **same architecture with random weights**: whatever it scores comes
# from the architecture (patches, positions, random mixing), not from learning.

# %%
ASSETS = ROOT / "assets" / "cpu_default"
ENCODER_FILE = ASSETS / "target_encoder.pt"
trained, meta = load_encoder(ENCODER_FILE)
torch.manual_seed(12345)
random_init = VisionTransformer(trained.config).eval()
cfg = meta["config"]
print(f"ViT: width {trained.config.embed_dim}, depth {trained.config.depth}, {trained.config.image_size[0]} px, "
      f"patch {trained.config.patch_size}; trained for {meta['step']} steps of {cfg['optim']['batch_size']} images")

metrics = [json.loads(line) for line in (ASSETS / "metrics.jsonl").read_text().splitlines()]
fig, axes = plt.subplots(1, 2, figsize=(9, 2.6))
axes[0].plot([m["step"] for m in metrics], [m["loss"] for m in metrics])
axes[0].set(title="the run's loss", xlabel="step", ylabel="I-JEPA loss")
axes[1].plot([m["step"] for m in metrics], [m["target_rank"] for m in metrics], color="tab:green")
axes[1].set(title="effective rank of the target features", xlabel="step", ylabel="effective rank")
plt.tight_layout()
plt.show()

# %% [markdown]
# ## 2. Linear probe and k-NN on frozen features
#
# The paper's protocol: freeze the encoder, average its patch tokens into one vector per image, and fit a
# linear classifier (after standardising each feature); k-NN (k = 20, cosine similarity) needs no training.
# The shapes data has four labels: the **shape** of the largest object, the **count** of objects, the
# **position** (quadrant) of the largest object and its **size**. Here we use 1024 training and 512 test
# images (the run's report used 2048 / 1024; its numbers are printed below).

# %%
train_set = ShapesDataset(num_images=1024, image_size=64, seed=0)
test_set = ShapesDataset(num_images=512, image_size=64, seed=0, split="test")
train_x, test_x = (normalize(d.images.float() / 255) for d in (train_set, test_set))
features = {
    "I-JEPA": (extract_features(trained, train_x), extract_features(trained, test_x)),
    "random init": (extract_features(random_init, train_x), extract_features(random_init, test_x)),
    "pixels": (pixel_features(train_x), pixel_features(test_x)),
}
tasks = ShapesDataset.TASKS
scores = {name: {task: (linear_probe(f_train, train_set.labels[task], f_test, test_set.labels[task], epochs=200),
                        knn_classify(f_train, train_set.labels[task], f_test, test_set.labels[task]))
                 for task in tasks}
          for name, (f_train, f_test) in features.items()}
chance = {task: torch.bincount(test_set.labels[task]).max().item() / len(test_set) for task in tasks}

print(f"{'top-1 %: linear / k-NN':24s}" + "".join(f"{t:>14s}" for t in tasks))
for name, per_task in scores.items():
    print(f"{name:24s}" + "".join(f"{100 * lp:8.1f} /{100 * kn:4.0f}" for lp, kn in per_task.values()))
print(f"{'chance':24s}" + "".join(f"{100 * chance[t]:14.1f}" for t in tasks))

report = json.loads((ASSETS / "report.json").read_text())
print("\nthe run's report (2048 / 1024 images), linear probe:")
for name, per_task in report["probes"].items():
    print(f"  {name:24s}" + "".join(f"{t} {100 * per_task[t]['linear_probe']:.1f}  " for t in tasks))
for name, (f_train, f_test) in features.items():
    assert all(0 <= lp <= 1 for lp, _ in scores[name].values())

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 3))
width = 0.26
for ax, metric, title in ((axes[0], 0, "linear probe"), (axes[1], 1, "k-NN (k = 20)")):
    for i, name in enumerate(scores):
        ax.bar(np.arange(len(tasks)) + (i - 1) * width, [100 * scores[name][t][metric] for t in tasks], width, label=name)
    for j, task in enumerate(tasks):
        ax.hlines(100 * chance[task], j - 1.5 * width, j + 1.5 * width, colors="black", linestyles="dashed",
                  label="chance" if j == 0 else None)
    ax.set_xticks(range(len(tasks)), tasks)
    ax.set(title=f"{title} on frozen features", ylabel="top-1 accuracy (%)", ylim=(0, 100))
axes[0].legend(fontsize=7, loc="upper left")
plt.tight_layout()
plt.show()

# %% [markdown]
# What these numbers say (and the figures are the point of this notebook, so read them before the prose):
#
# * **Position is easy for a random ViT.** Every token carries its sin-cos position, and a random network
#   mixes "a bright, saturated patch is here" into the average in a position-dependent way, so a linear
#   probe reads off the quadrant. Training for content *removes* part of that: an encoder that learns to
#   describe patches by what they show, wherever they are, pools into a vector that says less about where.
#   The paper's own probes show the same tension (I-JEPA is weaker than MAE on Clevr/Count).
# * **Shape, count and size** are where learned features should help. After 512 small steps on a CPU they
#   help little or not at all: I-JEPA is known to need long training (the paper trains for 300 epochs of
#   ImageNet), and 10 minutes on two cores is about a millionth of that compute. The course's runs are for
#   seeing the mechanics work end to end, measured honestly; the gains of the paper need its scale.
# * **k-NN on raw pooled features is near chance** for every encoder: cosine similarity of whole-image
#   averages is dominated by the background's colour and texture, which the labels ignore. A linear probe
#   can pick out the few useful directions; k-NN cannot.
#
# ## 3. Patch features as colours
#
# Take the tokens of many images (one vector per patch), find their three main directions (PCA), and draw
# each patch's coordinates on them as red, green and blue. Patches the encoder represents alike get alike
# colours. This is how DINO and I-JEPA papers show what features "see".

# %%
def pca_colours(encoder, images, fit_images):
    with torch.no_grad():
        fit = encoder(fit_images).flatten(0, 1)  # (B*N, D): tokens of many images
        tokens = encoder(images)  # (b, N, D)
    mean = fit.mean(0)
    _, _, v = torch.pca_lowrank(fit - mean, q=3, center=False)  # (D, 3) main directions
    fit_proj, proj = (fit - mean) @ v, (tokens - mean) @ v  # (B*N, 3), (b, N, 3)
    lo, hi = fit_proj.quantile(0.02, dim=0), fit_proj.quantile(0.98, dim=0)
    colours = ((proj - lo) / (hi - lo)).clamp(0, 1)
    H, W = encoder.grid
    return colours.view(len(images), H, W, 3)


shown = test_x[:6]
rows = {"image": denormalize(shown).permute(0, 2, 3, 1)}
for name, encoder in (("I-JEPA", trained), ("random init", random_init)):
    rows[f"{name}: token PCA"] = pca_colours(encoder, shown, test_x[:256])
fig, axes = plt.subplots(len(rows), len(shown), figsize=(1.6 * len(shown), 1.7 * len(rows)))
for r, (name, pictures) in enumerate(rows.items()):
    for c in range(len(shown)):
        axes[r, c].imshow(pictures[c].numpy(), interpolation="nearest")
        axes[r, c].set_xticks([]); axes[r, c].set_yticks([])
    axes[r, 0].set_ylabel(name, fontsize=8)
fig.suptitle("first three principal components of the patch tokens, as RGB")
plt.tight_layout()
plt.show()
assert rows["I-JEPA: token PCA"].shape == (6, 8, 8, 3)

# %% [markdown]
# In the trained encoder's colours the objects stand out from the background as regions of their own
# (the large circle, the square, the triangle), and the background's stripes show as bands; the random
# encoder's colours are noisier and follow colour more than shape.
#
# ## 4. Attention: where does a patch look?
#
# The attention explorer of notebook 02, now on the trained encoder, on one of the shapes. Pick a query
# patch on the largest object and compare the last layer's attention with the random encoder's.

# %%
image = denormalize(test_x[1])
query = (3, 4)
fig, axes = plt.subplots(1, 3, figsize=(9, 3))
axes[0].imshow(image.permute(1, 2, 0).numpy())
axes[0].add_patch(plt.Rectangle((query[1] * 8, query[0] * 8), 8, 8, fill=False, color="yellow", lw=2))
axes[0].set_title("image and query patch")
for ax, (name, encoder) in zip(axes[1:], (("I-JEPA", trained), ("random init", random_init))):
    explorer = AttentionExplorer.from_encoder(encoder, image)
    view = explorer.update(layer=explorer.num_layers - 1, head="mean", query=query)
    ax.imshow(view.attention.reshape(explorer.grid), cmap="viridis")
    ax.set_title(f"{name}: last layer, mean of heads")
    ax.set_xlabel("key patch column"); ax.set_ylabel("key patch row")
    assert abs(float(view.attention.sum()) - 1) < 1e-4
plt.tight_layout()
plt.show()

# %% [markdown]
# The trained encoder's map has structure that follows the image: a query on the square attends *less* to
# the square's own patches and more to the background around it, in bands like the background's stripes.
# The random encoder's map is an unstructured speckle. (Both are close to uniform in magnitude: look at the
# explorer's entropy readout.) Explore layers, heads and queries:

# %%
explorer = AttentionExplorer.from_encoder(trained, image)
attention_explorer(explorer)

# %% [markdown]
# ## 5. How far does each head look?
#
# The mean attention distance of a head is the attention-weighted average distance, in pixels, between the
# query patch and the patches it attends to, averaged over queries and images. A random ViT attends almost
# uniformly (every head at the mean distance between two patches); in large trained ViTs heads specialise,
# some local, some global, with more local heads in the early layers.

# %%
distances = {name: mean_attention_distance(encoder, test_x[:64]) for name, encoder in
             (("I-JEPA", trained), ("random init", random_init))}
fig, ax = plt.subplots(figsize=(5, 3))
for (name, d), marker in zip(distances.items(), ("o", "x")):
    layers = np.arange(d.shape[0])
    for h in range(d.shape[1]):
        ax.scatter(layers + 0.08 * (h - 1), d[:, h].numpy(), marker=marker, s=18,
                   color="tab:blue" if name == "I-JEPA" else "tab:gray", label=name if h == 0 else None)
ax.set(title="mean attention distance of every head", xlabel="layer", ylabel="distance (pixels)")
ax.legend()
plt.show()
for name, d in distances.items():
    print(f"{name:12s} per layer (mean over heads, px):", np.round(d.mean(1).numpy(), 1))
spread = {name: (d.max() - d.min()).item() for name, d in distances.items()}
print(f"range of head distances: I-JEPA {spread['I-JEPA']:.1f} px, random init {spread['random init']:.1f} px")
assert spread["I-JEPA"] > spread["random init"], "training should make heads differ from uniform attention"

# %% [markdown]
# After 512 steps the heads have barely moved away from uniform attention: the spread of their distances is
# about a pixel, against a tenth of a pixel at random init. Specialised local and global heads, as in the
# ViT and I-JEPA papers' plots, come with far longer training (notebook 10 looks at this more).
#
# ## 6. Nearest neighbours
#
# For a few test images, the five training images with the most similar features (cosine similarity of the
# pooled features), for the trained encoder and for pixels.

# %%
queries = [0, 2, 5, 9]
fig, axes = plt.subplots(2 * len(queries), 6, figsize=(7.5, 2.6 * len(queries)))
for q_i, q in enumerate(queries):
    for r, name in enumerate(("I-JEPA", "pixels")):
        f_train, f_test = features[name]
        sims = F.normalize(f_test[q:q + 1], dim=1) @ F.normalize(f_train, dim=1).T  # (1, N_train)
        nearest = sims[0].topk(5).indices
        row = axes[2 * q_i + r]
        row[0].imshow(denormalize(test_x[q]).permute(1, 2, 0).numpy())
        row[0].set_ylabel(name, fontsize=8)
        for c, j in enumerate(nearest.tolist(), start=1):
            row[c].imshow(denormalize(train_x[j]).permute(1, 2, 0).numpy())
        for ax in row:
            ax.set_xticks([]); ax.set_yticks([])
axes[0, 0].set_title("query", fontsize=8)
for c in range(1, 6):
    axes[0, c].set_title(f"neighbour {c}", fontsize=8)
fig.suptitle("nearest training images (rows: I-JEPA features, then pixels, for each query)")
plt.tight_layout()
plt.show()

# %% [markdown]
# Look at what the neighbours share: mostly the background's colour and texture, for both feature sources.
# That is the same message as the k-NN numbers: at this scale the features describe the whole image's look
# far more than the objects the labels ask about.
#
# ## Summary
#
# * Frozen-feature probes mean something only next to baselines: a random-init encoder of the same
#   architecture, raw pixels, chance.
# * A random ViT is strong on *where* (position) because of its position embeddings; learning content
#   features can lower that score. Shape, count and size need much longer training than a CPU run gives.
# * PCA colours, attention maps, attention distances and nearest neighbours show what the features react
#   to; here, objects as regions and the background's colour and texture, with attention still close to
#   uniform.
#
# ## Self-check
#
# 1. Why standardise the features before the linear probe, and why does k-NN on the same features do so
#    much worse here?
# 2. A random-init encoder scores 70 % on `position` and the trained one 40 %. Did training make the encoder
#    worse?
# 3. Why is uniform attention's mean distance not zero, and what would a purely local head's be?
# 4. What would you change first to make the CPU run learn object shape: more steps, a wider encoder, or the
#    data? What does each cost?
#
# <details><summary>Answers</summary>
#
# 1. Standardising puts every feature on the same scale, so a few large, label-irrelevant directions do not
#    dominate the classifier's optimisation. k-NN uses cosine similarity of raw features, which *is*
#    dominated by those large directions (background colour and texture).
# 2. Worse at reading off position from an average, yes; but the task rewards position information that
#    the random positions give away for free. The question is which tasks you care about: the features are
#    meant for content.
# 3. Uniform attention averages the distance from the query to every patch (tens of pixels on a 64-pixel
#    image); a head that attends only to its own patch has distance 0, to its neighbours about one patch.
# 4. More steps is the first lever (the paper's gains need its scale); a wider encoder costs more per step
#    on a CPU; simpler data (less background variation) makes objects the dominant thing to predict but
#    changes what is being tested.
#
# </details>
#
# **Exercise:** `exercises/probe.py` (`linear_probe`); for more, write the weighted k-NN vote of `minijepa.evaluate.knn_classify` yourself.
