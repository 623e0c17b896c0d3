# %% [markdown]
# # 08 · The paper's ablations at small scale
#
# The I-JEPA paper backs its two main design choices with ablations: **multi-block masking** (several
# medium-sized target blocks and one large, informative context block) against other ways to mask, and
# **targets in representation space** against targets in pixel space. This notebook runs the same
# comparisons with the course's model and data, measured with the same probe, and puts them next to the
# paper's table. Package modules: `minijepa/masks.py` (the four strategies), `minijepa/ijepa.py` (the
# `target="pixels"` variant), `tools/run_ablations.py` (the longer runs).
#
# **Learning goals.** After this notebook you can
# 1. describe the four masking strategies of the paper's ablation and what each makes the predictor do;
# 2. say what changes when the targets are pixels instead of representations;
# 3. run an ablation properly: one change at a time, same budget, same probe, numbers next to baselines;
# 4. say which of the paper's orderings reproduce at this scale, and why others need the paper's scale.

# %%
%%SETUP%%

# %%
import json
import tempfile
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
import yaml

from minijepa.config import load_config
from minijepa.data import ShapesDataset, denormalize, normalize
from minijepa.build import build_mask_sampler, load_trained_model
from minijepa.evaluate import evaluate_encoders
from minijepa.masks import coverage
from minijepa.train import train
from minijepa.viz import mask_overlay

%%STYLE%%

# %% [markdown]
# ## 1. The paper's table
#
# 1 %-ImageNet linear probe (top-1), ViT-B/16 for the masking strategies, ViT-L/16 for the targets:
#
# | masking | targets | context | avg. context ratio | top-1 |
# |---|---|---|---|---|
# | **multi-block** | 4 blocks, scale 0.15-0.2 | one block, scale 0.85-1, minus the targets | 0.25 | **54.2** |
# | rasterized | 3 quadrants | the fourth quadrant | 0.25 | 15.5 |
# | block | 1 block, scale 0.6 | its complement | 0.4 | 20.2 |
# | random | a random 60 % of the patches | the other 40 % | 0.4 | 17.6 |
#
# | targets | arch | epochs | top-1 |
# |---|---|---|---|
# | **representations** (target encoder) | ViT-L/16 | 500 | **66.9** |
# | pixels | ViT-L/16 | 800 | 40.7 |
#
# Two orderings: multi-block far above the other three, and representations far above pixels.
#
# ## 2. The four strategies, drawn
#
# Each strategy is a `MaskSampler` in `minijepa.masks`, chosen in a config with `masks.strategy`. Here are
# their masks on the course's 8 x 8 grid, with how often each patch ends up in the context and in a target.

# %%
STRATEGIES = ("multiblock", "rasterized", "block", "random")
images = denormalize(normalize(ShapesDataset(num_images=4, image_size=64, seed=0).images.float() / 255))
fig, axes = plt.subplots(2, 4, figsize=(10, 5))
for col, strategy in enumerate(STRATEGIES):
    cfg = load_config(ROOT / "configs" / "cpu_default.yaml", [f"masks.strategy={strategy}"])
    sampler = build_mask_sampler(cfg, (8, 8))
    masks = sampler.sample(512, torch.Generator().manual_seed(0))
    context_share = masks.context.shape[1] / 64  # every image keeps the same number of context patches
    maps = coverage(sampler, num_samples=512, generator=torch.Generator().manual_seed(0))
    context_map, target_map = maps["context"].view(8, 8), maps["target"].view(8, 8)
    target_share = float(maps["target"].mean())
    axes[0, col].imshow(context_map.numpy(), cmap="Blues", vmin=0, vmax=1)
    axes[0, col].set_title(f"{strategy}\ncontext {context_share:.0%} of patches", fontsize=9)
    axes[1, col].imshow(target_map.numpy(), cmap="Reds", vmin=0, vmax=1)
    axes[1, col].set_title(f"targets {target_share:.0%} of patches", fontsize=9)
    for ax in axes[:, col]:
        ax.set_xticks([]); ax.set_yticks([])
axes[0, 0].set_ylabel("P(patch in context)")
axes[1, 0].set_ylabel("P(patch in a target)")
fig.suptitle("where each strategy puts context and targets (512 samples, 8 x 8 grid)")
plt.tight_layout()
plt.show()

# %%
fig, axes = plt.subplots(1, 4, figsize=(10, 2.8))
for ax, strategy in zip(axes, STRATEGIES):
    cfg = load_config(ROOT / "configs" / "cpu_default.yaml", [f"masks.strategy={strategy}"])
    masks = build_mask_sampler(cfg, (8, 8)).sample(1, torch.Generator().manual_seed(3))
    ax.imshow(mask_overlay(images[0], masks, i=0, patch_size=8))
    ax.set_title(strategy)
    ax.set_xticks([]); ax.set_yticks([])
fig.suptitle("one sample of each strategy (context tinted blue, each target its own colour, the rest dimmed)")
plt.tight_layout()
plt.show()

# %% [markdown]
# What each one asks of the predictor:
#
# * **multi-block**: the context is large and spread out, the targets are medium-sized blocks inside the
#   image. Predicting a block needs to know what *object parts* are around it: a semantic task.
# * **rasterized**: one quadrant predicts the other three. The targets are mostly far from anything the
#   context saw, so the best guess is vague.
# * **block**: one big block in the middle is hidden; the context is a thin frame around it. Again too little
#   information about what is inside.
# * **random**: 60 % of the patches are hidden at random, so every target patch has visible neighbours. The
#   task becomes local interpolation (like a denoiser), which low-level features solve.
#
# ## 3. A short run of each, here
#
# Five runs of the pretraining script with one change each (the strategy, or pixel targets: the variants
# of `tools/ablations.yaml`), with a small
# model and budget so that the whole comparison takes about a minute: ViT-Tiny width, depth 2, 32 steps of 32
# images. Each is probed with the protocol of the default run's report (`minijepa.evaluate.evaluate_encoders`:
# validated linear probe on average-pooled features, last layer or last 4 layers chosen on validation data),
# on the target encoder and two of the four labels.

# %%
VARIANTS = yaml.safe_load((ROOT / "tools" / "ablations.yaml").read_text())["variants"]  # name -> overrides
SHORT = ["model.depth=2", "data.num_images=512", "optim.batch_size=32", "optim.epochs=2", "optim.warmup_epochs=0.5",
         "run.evaluate=false", "run.probe_every=0", "run.threads=1", "run.device=cpu", "run.log_every=8",
         "run.checkpoint_every=1000"]
probe_train = ShapesDataset(num_images=512, image_size=64, seed=0)
probe_test = ShapesDataset(num_images=256, image_size=64, seed=0, split="test")
train_x, test_x = (normalize(d.images.float() / 255) for d in (probe_train, probe_test))
probe_tasks = ("shape", "size")
sets = (train_x, {t: probe_train.labels[t] for t in probe_tasks}, test_x, {t: probe_test.labels[t] for t in probe_tasks})
workdir = Path(tempfile.mkdtemp(prefix="minijepa-08-"))

short = {}
start = time.perf_counter()
for name, overrides in VARIANTS.items():
    cfg = load_config(ROOT / "configs" / "cpu_default.yaml", SHORT + overrides)
    run_dir = workdir / name.split(" ")[0]
    train(cfg, run_dir, quiet=True)
    model, _, _ = load_trained_model(run_dir / "checkpoint.pt")
    probes = evaluate_encoders({"target": model.target_encoder}, sets, pixels=False)["target"]
    short[name] = {task: probes[task]["linear_probe"] for task in probe_tasks}
print(f"5 short runs in {time.perf_counter() - start:.0f} s")
print(f"{'variant':22s}{'shape':>8s}{'size':>8s}   (linear probe top-1 %)")
for name, per_task in short.items():
    print(f"{name:22s}" + "".join(f"{100 * v:8.1f}" for v in per_task.values()))
assert all(0 <= v <= 1 for per_task in short.values() for v in per_task.values())

# %% [markdown]
# At this budget the differences are within the noise of the probe (a few points on 256 test images): 32
# steps of a 2-layer model show that every variant *runs*, not which one is better. The comparison needs
# the longer runs of the next section.
#
# ## 4. The longer runs
#
# `tools/run_ablations.py` runs each variant with the course's default config (ViT-Tiny depth 6, batch 64)
# and probes all four labels with the report's protocol (2048 training / 1024 test images). The results that
# ship with the course, in `assets/ablations/results.json`, come from `python tools/run_ablations.py --epochs
# 4`: half the default run's length (256 steps per variant, about 4-5 minutes each on two idle cores, 30 in
# all); without `--epochs` each variant is as long as `make train`.
#
# **Caveat: these results are from an earlier course version.** They were measured with the paper's recipe
# (`configs/cpu_paper.yaml`, no variance/covariance term) on the *previous* embedded data set (four shapes
# including squares, any rotation, striped backgrounds; supervised ceiling 56 % on shape). The data set has
# since been redesigned so that every label is learnable in this budget, and the default recipe gained an
# extension that makes the encoder beat random init clearly (notebook 06, section 7). Re-running the
# ablations with the new recipe and two seeds (`python tools/run_ablations.py --epochs 4`, about 30 minutes)
# is open work; until then, read the numbers below as the old, negative result they are.

# %%
RESULTS = ROOT / "assets" / "ablations" / "results.json"
full = json.loads(RESULTS.read_text())
variants, meta, baselines = full["variants"], full["meta"], full["baselines"]
tasks = [t for t in next(iter(variants.values()))["probes"]]
print(f"{meta['command']}: {meta['epochs']} epochs per variant; protocol: {meta['protocol']}")
print(f"{'linear probe / k-NN, top-1 %':34s}" + "".join(f"{t:>14s}" for t in tasks) + f"{'mean (linear)':>15s}")
mean_linear = {}


def row(label, probes):
    mean = float(np.mean([probes[t]["linear_probe"] for t in tasks]))
    print(f"{label:34s}" + "".join(f"{100 * probes[t]['linear_probe']:8.1f} /{100 * probes[t]['knn']:4.0f}" for t in tasks)
          + f"{100 * mean:15.1f}")
    return mean


for name, result in variants.items():
    mean_linear[name] = row(f"{name} (target)", result["probes"])
    row(f"{name} (context)", result["probes_context"])
for name, probes in baselines.items():
    row(f"{name} [{probes['_features']['choice']}]", probes)
print(f"{'chance':34s}" + "".join(f"{100 * meta['chance'][t]:14.1f}" for t in tasks))

# %%
paper = meta["paper_top1"]
masking = [n for n in ("multi-block", "rasterized", "block", "random") if n in variants]
fig, axes = plt.subplots(1, 2, figsize=(10, 3.2))
x = np.arange(len(masking))
axes[0].bar(x - 0.2, [paper[n] for n in masking], 0.4, label="paper: 1% ImageNet top-1 (ViT-B/16)")
axes[0].bar(x + 0.2, [100 * variants[n]["probes"]["shape"]["linear_probe"] for n in masking], 0.4,
            label="here: shapes, 'shape' linear probe")
axes[0].axhline(100 * meta["chance"]["shape"], color="black", ls="--", lw=1, label="chance (here)")
axes[0].set_xticks(x, masking)
axes[0].set(title="masking strategies", ylabel="top-1 accuracy (%)")
axes[0].legend(fontsize=7)
target_names = [n for n in ("multi-block", "pixels (multi-block)") if n in variants]
axes[1].bar(np.arange(2) - 0.2, [paper["representations (ViT-L/16, 500 ep)"], paper["pixels (ViT-L/16, 800 ep)"]], 0.4,
            label="paper (ViT-L/16)")
if len(target_names) == 2:
    axes[1].bar(np.arange(2) + 0.2, [100 * variants[n]["probes"]["shape"]["linear_probe"] for n in target_names], 0.4,
                label="here: 'shape' linear probe")
axes[1].axhline(100 * meta["chance"]["shape"], color="black", ls="--", lw=1, label="chance (here)")
axes[1].set_xticks(range(2), ["representations", "pixels"])
axes[1].set(title="prediction targets", ylabel="top-1 accuracy (%)")
axes[1].legend(fontsize=7)
plt.tight_layout()
plt.show()

# %% [markdown]
# ## 5. Which orderings reproduce?
#
# The verdicts below are computed from the numbers above, for the mean linear-probe accuracy over the four
# labels and for the `shape` label alone (the most semantic one), with a margin: differences smaller than
# 1.5 points are called ties (the probe's noise on 1024 test images is about that).

# %%
MARGIN = 0.015


def verdict(a, b, score):
    d = score(a) - score(b)
    return "yes" if d > MARGIN else ("no (reversed)" if d < -MARGIN else "tie")


def score(encoder, task=None):
    """Linear-probe accuracy of a variant's encoder ("probes": target, "probes_context": context)."""
    def get(n):
        probes = variants[n][encoder]
        return probes[task]["linear_probe"] if task else float(np.mean([probes[t]["linear_probe"] for t in tasks]))
    return get


columns = {"target, mean": score("probes"), "target, shape": score("probes", "shape"),
           "context, mean": score("probes_context"), "context, shape": score("probes_context", "shape")}
rows = [(f"multi-block > {other}", "multi-block", other) for other in ("rasterized", "block", "random") if other in variants]
if "pixels (multi-block)" in variants:
    rows.append(("representations > pixels", "multi-block", "pixels (multi-block)"))
verdicts = {}
print(f"{'paper ordering':28s}" + "".join(f"{c:>16s}" for c in columns))
for text, a, b in rows:
    verdicts[text] = [verdict(a, b, f) for f in columns.values()]
    print(f"{text:28s}" + "".join(f"{v:>16s}" for v in verdicts[text]))
assert len(verdicts) >= 1

# %% [markdown]
# Reading the verdicts of the shipped results (rerun `tools/run_ablations.py` and the cells above re-read
# yours):
#
# * **None of the paper's masking gaps reproduces at this scale**, with the validated probe on either
#   encoder. On the target encoder multi-block is *behind* random masking on shape (34.9 vs 37.8 %) and level
#   with rasterized and block (36.1, 34.6 %); on the context encoder the four strategies are within 5.3 points
#   on shape (36.8-42.1 %), rasterized on top (42.1 %, ahead of multi-block's 39.4 %), block last. The paper's gaps (54.2 vs 15-20 %) come from ViT-B trained
#   for hundreds of ImageNet epochs and measured on 1000 classes; ours from a 6-layer ViT-Tiny trained for
#   256 steps on synthetic shapes, measured on 3-4 classes, one seed per run. Every trained encoder is only a
#   few points above the random-init baseline (32.0 % on shape) and far below the supervised ceiling of the
#   default run's length (56 %): at this budget every variant is in the early phase where the encoder learns
#   colour and texture, which any masking teaches about as well; the advantage of predicting whole blocks is
#   not visible.
# * **Representations against pixels is mixed.** The target encoder ties on the mean of the four labels
#   (46.0 vs 45.4 %) and is 2.4 points ahead on shape (34.9 vs 32.5 %); the context encoder is ahead on
#   shape (39.4 vs 36.4 %), count and size, and 4.9 points on the mean (41.0 vs 36.1 %). That is the paper's direction, but
#   from one seed each: without the spread between seeds it is suggestive, not shown. (With the old,
#   unvalidated probe of this course the same comparison read 41.8 vs 39.0 % on the mean: a change of
#   protocol moved it as much as the effect itself, which is why the protocol had to be fixed first.)
# * The random-masking context encoder scores *below chance* on position (22.5 % against 27.8 %): a
#   measurement that disagrees with its own baselines, left open here: it needs the spread between seeds
#   and a look at its validation curve before anything is built on it.
# * A serious ablation repeats each run with several seeds and reports the spread; with one seed, a gap of
#   2 points is not a result (self-check 3).
#
# ## Summary
#
# * Multi-block masking: large informative context, several medium target blocks; the alternatives either
#   hide too much (rasterized, block) or too little structure (random: local interpolation).
# * Pixel targets make the model spend capacity on details that are unpredictable or irrelevant;
#   representation targets let the target encoder decide what is worth predicting.
# * An ablation changes one thing, keeps the budget and the probe fixed, and reports numbers next to
#   chance, the random-init and pixel baselines, and with their noise; at the course's scale and budget none
#   of the paper's masking gaps is visible, and representations beat pixels clearly only on the context
#   encoder, from one seed.
#
# ## Self-check
#
# 1. Why does random masking with 60 % targets give the predictor an *easier* task than multi-block with
#    about 40 % targets?
# 2. Rasterized and multi-block both have a context ratio of about 0.25 in the paper. What differs?
# 3. The short runs above differ by 3 points on 256 test images. Is that a result?
# 4. Why might pixel targets do *relatively* better on a synthetic dataset of flat-coloured shapes than on
#    ImageNet?
#
# <details><summary>Answers</summary>
#
# 1. Almost every hidden patch has visible neighbours, so it can be filled in by local interpolation;
#    multi-block targets are whole blocks whose inside is far from the context.
# 2. Where the context is: one quadrant (so most targets are far from it, and the context sees one corner
#    of the scene) versus a large block spread over the image that surrounds the targets.
# 3. No: with 256 test images the standard error of an accuracy near 40 % is about 3 points, and it is one
#    seed. Repeat with several seeds and more test images before believing it.
# 4. Pixels of flat shapes on smooth backgrounds are mostly predictable and mostly informative (colour,
#    edges); ImageNet's pixels carry much more unpredictable detail (texture, noise) that a pixel loss must
#    still pay for.
#
# </details>
#
# **Exercises:** `exercises/masks.py` (`sample_block`, `multiblock_masks`: the multi-block sampler).
