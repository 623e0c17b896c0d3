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
# <<SETUP>>

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

# <<STYLE>>

# %%
# <<EXERCISES>>

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
