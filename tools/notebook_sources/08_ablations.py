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
# <<SETUP>>

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

# <<STYLE>>

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
VARIANTS = yaml.safe_load((ROOT / "tools" / "ablations.yaml").read_text())["runs"]  # name -> overrides
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
# ## 4. The longer runs, two seeds each
#
# `tools/run_ablations.py` runs each variant of `tools/ablations.yaml` with the course's default recipe
# (`configs/cpu_default.yaml`: ViT-Tiny depth 6, batch 64, the paper's hyperparameters plus the
# variance/covariance extension of notebook 06) at half the default run's length (256 steps, about 5 minutes
# per run on two idle cores), for **two seeds**, and probes all four labels of both encoders with the report's
# protocol (2048 training / 1024 test images). Every run is a line of `assets/ablations/results.jsonl`
# (config, seed, probes, context check, effective rank; failures included); `assets/ablations/results.json`
# is the summary over seeds that this section reads. The score of a run is the test accuracy of its better
# encoder, the one with the higher *validation* accuracy (the test split never chooses anything).

# %%
import sys

sys.path.insert(0, str(ROOT / "tools"))
import run_ablations  # noqa: E402

summary = json.loads((ROOT / "assets" / "ablations" / "results.json").read_text())
variants, chance, paper = summary["variants"], summary["chance"], summary["paper_top1"]
tasks = list(chance)
print(f"{summary['meta']['command']}  (every run: {summary['meta']['config']} + {summary['meta']['common']} + the variant)")
print(f"{'test top-1 %, mean over seeds':30s}{'seeds':>6s}" + "".join(f"{t:>14s}" for t in tasks) + f"{'mean':>8s}{'ctx use':>9s}")


def mean_spread(xs):
    return f"{100 * np.mean(xs):5.1f}" + (f"±{50 * (max(xs) - min(xs)):3.1f}" if len(xs) > 1 else "     ")


for name, v in variants.items():
    if not v["seeds"]:
        print(f"{name:30s} every run failed: {v['failed']}")
        continue
    per_task = [mean_spread(run_ablations.seed_scores(v, t)) for t in tasks]
    print(f"{name:30s}{len(v['seeds']):6d}" + "".join(f"{x:>14s}" for x in per_task)
          + f"{100 * np.mean(run_ablations.seed_scores(v)):8.1f}{np.mean(v['context_use']):8.2f}x")
base = variants["multi-block"]["baselines"]  # per seed: random init and pixels, the same protocol
for source in ("random init", "pixels"):
    print(f"{source:30s}{len(base):6d}" + "".join(
        f"{mean_spread([b[source]['linear_probe'][t] for b in base]):>14s}" for t in tasks))
print(f"{'chance':30s}{'':6s}" + "".join(f"{100 * chance[t]:14.1f}" for t in tasks))
print("(± is half the range between seeds; score = the better encoder on validation, linear probe)")

# %%
masking = [n for n in ("multi-block", "rasterized", "block", "random") if variants.get(n, {}).get("seeds")]
fig, axes = plt.subplots(1, 2, figsize=(10, 3.2))
x = np.arange(len(masking))


def bars(ax, pos, names):
    scores = [100 * np.array(run_ablations.seed_scores(variants[n], "shape")) for n in names]
    means = [s.mean() for s in scores]
    err = np.array([[m - s.min() for m, s in zip(means, scores)], [s.max() - m for m, s in zip(means, scores)]])
    ax.bar(pos, means, 0.4, yerr=err, capsize=3, label="here: shapes, 'shape' (seeds' range)")


axes[0].bar(x - 0.2, [paper[n] for n in masking], 0.4, label="paper: 1% ImageNet top-1 (ViT-B/16)")
bars(axes[0], x + 0.2, masking)
axes[0].set_xticks(x, masking)
axes[0].set(title="masking strategies", ylabel="top-1 accuracy (%)")
axes[1].bar(np.arange(2) - 0.2, [paper["representations (ViT-L/16, 500 ep)"], paper["pixels (ViT-L/16, 800 ep)"]], 0.4,
            label="paper (ViT-L/16)")
if variants.get("pixel targets", {}).get("seeds"):
    bars(axes[1], np.arange(2) + 0.2, ["multi-block", "pixel targets"])
axes[1].set_xticks(range(2), ["representations", "pixels"])
axes[1].set(title="prediction targets", ylabel="top-1 accuracy (%)")
for ax in axes:
    ax.axhline(100 * np.mean([b["random init"]["linear_probe"]["shape"] for b in base]), color="C2", ls="--", lw=1,
               label="random init (here)")
    ax.axhline(100 * chance["shape"], color="black", ls=":", lw=1, label="chance (here)")
    ax.legend(fontsize=7)
plt.tight_layout()
plt.show()

# %% [markdown]
# ## 5. Which orderings reproduce?
#
# An ordering of the paper counts as reproduced here when the gap between the two variants' means is larger
# than the spread between seeds (max - min) of either variant (`run_ablations.ordering`); a smaller gap is
# "within the seeds' spread": no verdict either way. Computed for the `shape` label (the most semantic one)
# and for the mean over the four labels.

# %%
verdicts = {}
print(f"{'paper ordering':30s}{'label':>7s}{'gap':>8s}{'spread':>8s}   verdict")
for a, b in summary["orderings"]:
    if not (variants.get(a, {}).get("seeds") and variants.get(b, {}).get("seeds")):
        continue
    for task in ("shape", None):
        o = run_ablations.ordering(summary, a, b, task)
        verdicts[(a, b, o["task"])] = o["verdict"]
        print(f"{a + ' > ' + b:30s}{o['task']:>7s}{100 * o['gap']:+8.1f}{100 * o['spread']:8.1f}   {o['verdict']}")
assert verdicts

# %% [markdown]
# Reading the verdicts of the shipped results (two seeds per variant, 256 steps of the default recipe;
# rerun `tools/run_ablations.py` and the cells above re-read yours):
#
# * **On shape, one of the paper's four orderings reproduces, and the masking orderings do not.** With
#   multi-block masks, representation targets are 15.2 points ahead of pixel targets (55.9 %: seeds 54.9
#   and 56.9, against 40.7 %: 39.9, 41.5), far beyond the seeds' spread. But the four masking strategies
#   land within 1.2 points of each other: multi-block 55.9 %, random 55.3 % (56.2, 54.3), block 54.7 %
#   (56.5, 52.8), rasterized 54.7 % (55.7, 53.7), inside the spread between seeds (2-4 points): no verdict.
#   Every one of them is 24-25 points above the random-init encoder of the same architecture (30.6 %:
#   30.5, 30.7) and 25-27 above pixels (29.2 %). The paper's gap (54 against 15-20 % on ImageNet, ViT-B for hundreds of
#   epochs) does not appear in 256 steps on these images. On version 1 of the embedded images
#   (`assets/ablations/results_data_v1.json`: smaller other objects, 1-4 per scene) multi-block was ahead
#   of the other three by 3-5 points, beyond its two seeds' spread; that the gap went away with a change of
#   the images says that two seeds and 256 steps were too few to call it.
# * **On the mean over the four labels random masking is on top** (61.1 % against 58.3 % for multi-block,
#   a gap larger than either's spread, which is near zero here by chance). The mean is carried by position
#   and size, which a random ViT already reads well (73.0 and 50.1 %): random masking makes the task local
#   interpolation, which teaches where edges are and how large a blob is as well as anything.
# * **Pixel targets learn something, but less, and differently**: their loss stays high (0.79 against 0.33),
#   the effective rank of the target features does not grow (10.2 -> 11.3 and 11.9 -> 10.8, where every
#   representation-target run grows, 15.4 -> 22.4 for multi-block), and shape is 15 points lower; count is 5 points lower
#   (within the seeds' spread), position and size are level.
# * The context check (held-out loss with another image's context / with its own) says how much each
#   predictor relies on the image: random masking x2.3 (the visible neighbours of every target patch),
#   multi-block and block x1.2, rasterized x1.05 (one quadrant says little about the other three).
# * The `min` column of the sweep's own table is not a cost comparison: several of these runs shared the
#   two cores with the test suite (one run of each variant took 4-5 minutes on idle cores).
#
# ## Summary
#
# * The paper's case for multi-block masking: large informative context, several medium target blocks; the
#   alternatives either hide too much (rasterized, block) or too little structure (random: local interpolation).
# * Pixel targets make the model spend capacity on details that are unpredictable or irrelevant;
#   representation targets let the target encoder decide what is worth predicting.
# * An ablation changes one thing, keeps the budget and the probe fixed, repeats each run with several seeds
#   and reports numbers next to chance, the random-init and pixel baselines, and the seeds' spread. At the
#   course's scale (256 steps, two seeds), representation targets are ahead of pixel targets on shape by 15
#   points, far more than the spread between seeds; the four masking strategies tie within that spread on
#   shape, and random masking leads on the mean of the four labels. The paper's masking result needs more
#   than this budget (or more seeds) to show.
#
# ## Self-check
#
# 1. Why does random masking with 60 % targets give the predictor an *easier* task than multi-block with
#    about 40 % targets?
# 2. Rasterized and multi-block both have a context ratio of about 0.25 in the paper. What differs?
# 3. Suppose two of the short runs above differed by 3 points on 256 test images. Is that a result?
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
