# %% [markdown]
# # 09 · Scaling up: from the notebook loop to many GPUs
#
# The notebooks trained I-JEPA with a dozen lines of loop. The pretraining script, `minijepa/train.py`, runs
# the *same* training step and adds what a real run needs: a typed config, a data loader that samples the
# masks, schedules, logs, checkpoints that survive a crash, and data parallelism with `torchrun` from one CPU
# to many GPUs and nodes. This notebook opens each of those pieces and checks it on the CPU, then estimates
# what the paper's ViT-H/14 run costs.
#
# **Learning goals.** After this notebook you can
# 1. read the script's training step and say what the loop around it adds;
# 2. explain how a global batch is split across processes so that 2 processes train exactly like 1, and
#    check it with a real `torchrun` run;
# 3. stop and resume a run and get the same weights, and say what a checkpoint must hold for that;
# 4. say what bf16 autocast and `torch.compile` change (and what they do not), and when to turn them on;
# 5. count the FLOPs of an I-JEPA step and turn the paper's ViT-H/14 recipe into GPU hours.

# %%
# <<SETUP>>

# %%
import inspect
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import matplotlib.pyplot as plt
import torch
from torch.utils.flop_counter import FlopCounterMode

from minijepa import train as train_lib
from minijepa.batches import GlobalBatchSampler, MaskingCollator
from minijepa.config import config_to_dict, load_config
from minijepa.masks import MultiBlockMasks
from minijepa.vit import vit_config, VisionTransformer

# <<STYLE>>

# %% [markdown]
# ## 1. The step is the same; the loop around it grows
#
# Here is the script's training step, word for word. It is a plain function at module level, so it reads
# top to bottom like the paper's algorithm: forward (targets from the EMA encoder, context, predictor,
# loss), backward, optimiser step, EMA update. The only additions to the notebook version are the
# hyperparameters of the step (learning rate, weight decay and momentum come from the schedules), optional
# autocast and gradient clipping, and a check that stops before a non-finite loss reaches the weights.

# %%
print(inspect.getsource(train_lib.train_step))

# %% [markdown]
# Everything else in `train.py` is the loop around it:
#
# | concern | where | what it does |
# |---|---|---|
# | config | `minijepa/config.py` | YAML file -> typed dataclasses; unknown keys and wrong types name the key |
# | data | `minijepa/batches.py` | global batches, per-image seeded crops, masks sampled in the collate function (in `DataLoader` workers) |
# | schedules | `hyperparameters()` | warm-up + cosine learning rate, cosine weight decay, linear EMA momentum, per step |
# | processes | `setup_distributed()` | reads `torchrun`'s environment, picks gloo (CPU) or NCCL (GPU), wraps the model in DDP |
# | logs | `MetricsLog`, tqdm | one JSON line per logged step: loss, lr, momentum, images/s, collapse measures |
# | checkpoints | `write_checkpoint()` | atomic write; weights, optimiser, step, every process's RNG state, config |
# | faults | `NonFiniteLossError` | stop before a bad step, keep the last good checkpoint |
#
# ## 2. Configs: typed, checked, saved with the run
#
# A run is described by a YAML file under `configs/`, read into dataclasses, changed with `--set
# section.key=value`. A typo must not silently train the wrong model, so unknown keys, wrong types and
# values out of range (a zero learning rate, a warm-up longer than the run, an image size that is not a
# multiple of the patch size) are errors that name the key and the value; the command line prints them in
# one line and exits with code 2, before anything is written (README, "Training").

# %%
cfg = load_config(ROOT / "configs" / "cpu_default.yaml" if ROOT else None, ["optim.epochs=2", "masks.num_targets=3"])
print(json.dumps(config_to_dict(cfg)["optim"], indent=1))
assert cfg.optim.epochs == 2 and cfg.masks.num_targets == 3

for bad in (["optim.learning_rate=1e-3"], ["optim.epochs=many"], ["optim.lr=0"], ["model.image_size=60"]):
    try:
        load_config(None, bad)
    except ValueError as error:
        print(f"--set {bad[0]!r:28} -> {error}")
    else:
        raise AssertionError("a bad key or value was accepted")

# %% [markdown]
# The three shipped configs span the course's range:

# %%
for name in ("cpu_default", "gpu_vits16", "in1k_vith14"):
    c = load_config(ROOT / "configs" / f"{name}.yaml" if ROOT else None)
    print(f"{name:12s} ViT-{c.model.encoder:5s} depth {c.model.depth or 'preset'}, {c.model.image_size} px, "
          f"patch {c.model.patch_size}, predictor {c.model.predictor_depth} x {c.model.predictor_dim}, "
          f"batch {c.optim.batch_size}, {c.optim.epochs} epochs, data: {c.data.dataset}")

# %% [markdown]
# ## 3. Data parallelism: one global batch, split across processes
#
# With DistributedDataParallel (DDP) every process holds a full copy of the model, runs forward and backward
# on its share of the batch, and the gradients are averaged across processes during `backward()` (an
# all-reduce), so every copy takes the same optimiser step. If the shares together are exactly the batch a
# single process would have used, and everything random (crops, masks) depends only on the image and the
# step, then N processes compute the same update as one: the only difference is the order of
# floating-point additions.
#
# `GlobalBatchSampler` does the split: the epoch's permutation depends on (seed, epoch) only, global batch i
# is a slice of it, and process r takes the r-th part. The masks are drawn for the whole global batch from a
# generator seeded by (seed, epoch, batch) and sliced the same way.

# %%
single = GlobalBatchSampler(num_samples=64, global_batch=16, rank=0, world_size=1, seed=0)
ranks = [GlobalBatchSampler(num_samples=64, global_batch=16, rank=r, world_size=2, seed=0) for r in range(2)]
for sampler in (single, *ranks):
    sampler.set_epoch(3)
first_single = next(iter(single))
first_ranks = [next(iter(s)) for s in ranks]
print("1 process :", [i for i, _, _ in first_single])
for r, batch in enumerate(first_ranks):
    print(f"rank {r}    :", [i for i, _, _ in batch])
assert first_ranks[0] + first_ranks[1] == first_single

grid = (8, 8)
masks_1 = MaskingCollator(MultiBlockMasks(grid), 16, rank=0, world_size=1).masks_for(epoch=3, batch=0)
masks_r1 = MaskingCollator(MultiBlockMasks(grid), 16, rank=1, world_size=2).masks_for(epoch=3, batch=0)
assert torch.equal(masks_1.targets[8:], masks_r1.targets), "rank 1 gets the second half of the same masks"
print("rank 1's masks are the second half of the single process's masks")

# %% [markdown]
# ### A real `torchrun`, on this CPU
#
# Now the real thing: the same command run once as a single process, and once under `torchrun` as two
# processes (gloo backend, since there is no GPU), with the same global batch of 16. We train a very small
# model for one epoch (8 steps) and compare the final weights. `torchrun` starts the processes and gives
# each one its rank and the address of the others in environment variables; `setup_distributed()` reads
# them. Nothing in the script knows about SLURM or any other scheduler.

# %%
TINY = ["model.depth=2", "model.embed_dim=48", "model.num_heads=3", "model.image_size=48", "model.patch_size=8",
        "model.predictor_dim=24", "model.predictor_depth=2", "masks.min_keep=4", "data.num_images=128",
        "optim.batch_size=16", "optim.epochs=1", "run.evaluate=false", "run.probe_every=0", "run.threads=1", "run.device=cpu",
        "run.log_every=1", "run.checkpoint_every=100"]
workdir = Path(tempfile.mkdtemp(prefix="minijepa-09-"))


def script(out, *extra, processes=1):
    """The command line: python -m minijepa.train ... (under torchrun when processes > 1)."""
    launcher = ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(processes)] if processes > 1 else []
    sets = [arg for kv in TINY + list(extra) for arg in ("--set", kv)]
    config = ROOT / "configs" / "cpu_default.yaml"
    return [sys.executable, *launcher, "-m", "minijepa.train", "--config", str(config), "--out", str(out), *sets]


def run(cmd):
    start = time.perf_counter()
    result = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stderr[-2000:]
    return time.perf_counter() - start


def weights(out):
    return torch.load(Path(out) / "checkpoint.pt", map_location="cpu", weights_only=False)["model"]


def losses(out):
    records = [json.loads(line) for line in (Path(out) / "metrics.jsonl").read_text().splitlines()]
    return [r["loss"] for r in records if "loss" in r]  # (lines with "probe" are the probe curves' points)


print(" ".join(script("runs/ddp", processes=2)[1:8]), "...")
seconds_1 = run(script(workdir / "one"))
seconds_2 = run(script(workdir / "two", processes=2))
w1, w2 = weights(workdir / "one"), weights(workdir / "two")
max_diff = max((w1[k] - w2[k]).abs().max().item() for k in w1)
print(f"1 process: {seconds_1:.1f} s, 2 processes: {seconds_2:.1f} s (start-up dominates at this size)")
print(f"largest difference between the final weights: {max_diff:.2e}")
assert max_diff < 1e-5

# %%
fig, ax = plt.subplots(figsize=(5, 2.8))
ax.plot(losses(workdir / "one"), "o-", label="1 process, batch 16")
ax.plot(losses(workdir / "two"), "x--", label="2 processes x 8 (loss averaged)")
ax.set_xlabel("step")
ax.set_ylabel("I-JEPA loss")
ax.set_title("DDP computes the same steps as one process")
ax.legend()
plt.show()

# %% [markdown]
# ## 4. Checkpoints and exact resume
#
# Jobs on shared clusters get pre-empted, nodes fail, time limits end. A checkpoint must hold *everything*
# that the rest of the run depends on: both encoders and the predictor, the optimiser's moments, the step
# (the schedules are functions of it), the position in the data order, and the random-number generators of
# every process. It is written to a temporary file and renamed, so a crash in the middle of writing leaves
# the previous checkpoint intact (a rename is atomic on POSIX file systems).
#
# We train 8 steps straight, and separately 3 steps, then resume from the checkpoint to step 8. (The test
# suite does the harsher version: it kills a run with SIGKILL at a random moment.)

# %%
straight = workdir / "straight"
run(script(straight))
stopped = workdir / "stopped"
run(script(stopped, "optim.max_steps=3"))  # stops at step 3 (the schedules still span 8 steps)
print("checkpoint holds:", sorted(torch.load(stopped / "checkpoint.pt", weights_only=False)))
run(script(stopped))  # the same folder: the script resumes from its checkpoint
a, b = weights(straight), weights(stopped)
assert all(torch.equal(a[k], b[k]) for k in a)
print("3 steps + resume to 8 gives bit-identical weights to 8 steps straight")

# %% [markdown]
# ## 5. bf16 autocast: half the bytes, the same range
#
# On a GPU, matrix multiplications in bfloat16 run several times faster than in float32 and move half the
# bytes. `torch.autocast` runs the matmuls in bf16 and keeps precision-sensitive operations (softmax, norms,
# the loss) and the weights in float32. bf16 keeps float32's 8 exponent bits and drops mantissa bits, so it
# covers the same range: unlike float16, it needs no loss scaling (`GradScaler`).

# %%
for dtype in (torch.float32, torch.bfloat16, torch.float16):
    info = torch.finfo(dtype)
    print(f"{str(dtype):15s} max {info.max:9.3g}   smallest normal {info.tiny:9.3g}   step near 1: {info.eps:.1e}")

encoder = VisionTransformer(vit_config("tiny", image_size=64, patch_size=8, depth=4)).eval()
images = torch.randn(8, 3, 64, 64)
dtypes = {}


def record_dtype(name):
    def hook(module, args, output):  # a forward hook that returns None leaves the output unchanged
        dtypes.setdefault(name, output.dtype)
    return hook


hooks = [module.register_forward_hook(record_dtype(name))
         for name, module in [("a linear layer (blocks.0.attn.qkv)", encoder.blocks[0].attn.qkv),
                              ("a LayerNorm (blocks.0.norm1)", encoder.blocks[0].norm1)]]
with torch.no_grad():
    full = encoder(images)
    dtypes.clear()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        half = encoder(images)
for hook in hooks:
    hook.remove()
for name, dtype in dtypes.items():
    print(f"under autocast, {name} outputs {dtype}")
relative = ((half.float() - full).norm() / full.norm()).item()
print(f"encoder output: {half.dtype}; relative difference to the float32 forward: {relative:.4f}")
assert dtypes["a linear layer (blocks.0.attn.qkv)"] == torch.bfloat16
assert dtypes["a LayerNorm (blocks.0.norm1)"] == torch.float32 and relative < 0.05

# %% [markdown]
# The script turns this on by itself on a GPU (`run.precision: auto` means bf16 on CUDA, float32 on the CPU,
# where bf16 matmuls are usually not faster).
#
# ## 6. `torch.compile`: the same model, fused kernels
#
# `torch.compile` traces the model's forward and backward and generates fused kernels: elementwise chains
# (bias + GELU, residual adds, LayerNorm) become one kernel instead of several memory round trips. The
# first call compiles (tens of seconds); later calls are faster. The results are the same up to float
# rounding. The script compiles the encoders and the predictor with `run.compile=true`. The cell below
# runs a small comparison only if a C++ compiler is available (the CPU backend needs one).

# %%
if shutil.which("g++") or shutil.which("c++"):
    model = VisionTransformer(vit_config("tiny", image_size=64, patch_size=8, depth=2)).eval()
    compiled = torch.compile(model)
    x = torch.randn(16, 3, 64, 64)
    with torch.no_grad():
        start = time.perf_counter()
        out_compiled = compiled(x)
        first_call = time.perf_counter() - start
        eager_times, compiled_times = [], []
        for _ in range(5):
            start = time.perf_counter(); model(x); eager_times.append(time.perf_counter() - start)
            start = time.perf_counter(); compiled(x); compiled_times.append(time.perf_counter() - start)
        difference = (out_compiled - model(x)).abs().max().item()
    print(f"first compiled call (compiles): {first_call:.1f} s")
    print(f"forward, median of 5: eager {1e3 * sorted(eager_times)[2]:.1f} ms, compiled {1e3 * sorted(compiled_times)[2]:.1f} ms")
    print(f"largest difference: {difference:.1e}")
    assert difference < 1e-3
else:
    print("no C++ compiler found: skipping the torch.compile demo")


# %% [markdown]
# ## 7. What does the paper's run cost?
#
# A matrix product of (n x k) by (k x m) costs 2nkm floating-point operations (FLOPs). Per Transformer
# block on N tokens of width D (MLP width 4D):
#
# * QKV and output projections: 2·N·D·3D + 2·N·D·D = 8ND²;
# * attention scores and weighted sum: 2·N·N·D + 2·N·N·D = 4N²D;
# * MLP: 2·N·D·4D · 2 = 16ND².
#
# So about 24ND² + 4N²D per block, forward. The backward pass costs about twice the forward. We check the
# formula against PyTorch's `FlopCounterMode`, which counts every matmul that runs (with the explicit
# attention path, whose matmuls it sees on every backend).

# %%
def vit_forward_flops(tokens, width, depth, patch_dim=0, mlp_ratio=4.0):
    """Forward FLOPs of a ViT on `tokens` tokens: blocks, plus the patch embedding when patch_dim > 0."""
    block = 8 * tokens * width**2 + 4 * tokens**2 * width + 4 * mlp_ratio * tokens * width**2
    return depth * block + 2 * tokens * patch_dim * width


small = VisionTransformer(vit_config("tiny", image_size=64, patch_size=8, depth=4)).eval()
x = torch.randn(2, 3, 64, 64)
with torch.no_grad(), FlopCounterMode(display=False) as counter:
    small.forward_with_attention(x)
counted = counter.get_total_flops() / 2
formula = vit_forward_flops(tokens=64, width=192, depth=4, patch_dim=3 * 8 * 8)
print(f"ViT-Ti/8 depth 4 on 64 px, per image: counted {counted / 1e6:.1f} MFLOPs, formula {formula / 1e6:.1f} MFLOPs")
assert abs(counted - formula) / formula < 0.01

# %% [markdown]
# One I-JEPA step, per image: the target encoder's forward on all N patches (no backward); the context
# encoder's forward and backward (3x) on its K context patches; and the predictor's forward and backward on M
# sequences of K + T tokens at its narrow width. The paper's ViT-H/14 run: 224 px (a 16 x 16 grid, N = 256),
# context about a quarter of the patches, 4 target blocks of 15-20 % of the image, predictor 12 x 384,
# 300 epochs of ImageNet-1k (1.28 M images).

# %%
N, D, depth, patch_dim = 256, 1280, 32, 3 * 14 * 14
K, M, T = int(0.25 * N), 4, int(0.175 * N)
target = vit_forward_flops(N, D, depth, patch_dim)
context = 3 * vit_forward_flops(K, D, depth, patch_dim)
predictor = 3 * M * (vit_forward_flops(K + T, 384, 12) + 2 * K * D * 384 + 2 * T * 384 * D)
per_image = target + context + predictor
total = per_image * 1.28e6 * 300
print(f"per image: target {target / 1e9:.0f} + context {context / 1e9:.0f} + predictor {predictor / 1e9:.0f} "
      f"= {per_image / 1e9:.0f} GFLOPs")
print(f"300 epochs of ImageNet-1k: {total:.2e} FLOPs")

a100_bf16_peak = 312e12  # FLOP/s, dense bf16 on one A100
for mfu in (0.3, 0.4, 0.5):
    print(f"at {mfu:.0%} of the A100's bf16 peak: {total / (a100_bf16_peak * mfu) / 3600:6.0f} GPU hours")
implied = total / (1200 * 3600 * a100_bf16_peak)
print(f"the paper's 'under 1,200 GPU hours' implies at least {implied:.0%} of peak")

fig, ax = plt.subplots(figsize=(4.5, 2.6))
ax.barh(["target encoder\n(forward)", "context encoder\n(fwd + bwd)", "predictor\n(fwd + bwd)"],
        [target / 1e9, context / 1e9, predictor / 1e9], color=["tab:orange", "tab:blue", "tab:green"])
ax.set_xlabel("GFLOPs per image")
ax.set_title("Where an I-JEPA ViT-H/14 step spends its FLOPs")
plt.show()

# %% [markdown]
# Two things stand out. The target encoder's forward over *all* patches costs about as much as the context
# encoder's forward and backward over a quarter of them: masking the context is what makes I-JEPA cheap
# (MAE saves in the same way). And one pass over ImageNet costs about 10^18 FLOPs at this size: 300 of
# them in a few days needs many GPUs *and* a good fraction of each one's peak, which is what bf16, fused
# attention (`F.scaled_dot_product_attention`), large batches and data loading that keeps up are for. Well-
# tuned ViT training reaches 40-50 % of the bf16 peak; the figures above are a lower bound on the paper's.
#
# ## 8. Launching on a cluster
#
# The script reads everything it needs from `torchrun`'s environment, so the launch is the same on a
# workstation, a cloud machine, or a SLURM cluster:
#
# ```bash
# # one machine, 8 GPUs
# torchrun --standalone --nproc_per_node 8 -m minijepa.train --config configs/gpu_vits16.yaml --out runs/vits16
# # two machines: run this on each, with the first machine's address
# torchrun --nnodes 2 --nproc_per_node 8 --rdzv_backend c10d --rdzv_endpoint $HEAD_NODE:29500 \
#     -m minijepa.train --config configs/in1k_vith14.yaml --set data.root=/data/imagenet --out /shared/runs/vith14
# ```
#
# On SLURM, start one `torchrun` per node (`srun` with `--ntasks-per-node=1`) and pass the first node's
# name as the rendezvous endpoint; the README has the full batch script. The batch size in a config is the
# *global* batch: going from 8 to 16 GPUs halves each GPU's share and changes nothing else, so the learning
# rate needs no rescaling.
#
# ## Summary
#
# * The script runs the notebook's training step unchanged; the loop around it adds a checked config, a
#   data loader that samples masks, schedules, logs, checkpoints and fault handling.
# * DDP = identical model copies + gradients averaged during backward. With the global batch split across
#   processes and all randomness a function of (seed, epoch, image), 2 processes train like 1 (checked to
#   1e-5 above).
# * A checkpoint holds weights, optimiser, step, data position, every RNG state and the config, and is
#   written atomically; resuming gives bit-identical weights on the CPU.
# * bf16 autocast: faster matmuls at float32's range (no loss scaling); `torch.compile`: fused kernels, same
#   results up to rounding. Both are options for the GPU.
# * An I-JEPA ViT-H/14 step costs about 0.6 TFLOPs per image; the paper's run is about 2.4 x 10^20 FLOPs.
#
# ## Self-check
#
# 1. Why must the masks be drawn for the whole global batch and then sliced, rather than drawn by each
#    process for its own share?
# 2. A run on 8 GPUs is resumed on 4 GPUs with the same config. What must stay the same for the training to
#    continue as if nothing happened, and what in this script makes that work?
# 3. Why does bf16 need no `GradScaler` while float16 does?
# 4. The target encoder runs on all patches but only forward; the context encoder on a quarter of them,
#    forward and backward. Which costs more, and by how much?
#
# <details><summary>Answers</summary>
#
# 1. Then the masks of image i do not depend on how many processes there are, so N processes see exactly
#    the masks one process would: the precondition for "2 processes = 1 process".
# 2. The global batch and the order of batches: the config's batch size is global, the data order depends on
#    (seed, epoch) only, and the checkpoint stores the step and the position in the epoch. (Random states
#    are per process; with a different number of processes they cannot all carry over, which is why the
#    random choices are functions of (seed, epoch, index) rather than of a running generator.)
# 3. bf16 has float32's 8 exponent bits, so small gradients do not underflow to zero; float16 has only 5
#    exponent bits (smallest normal about 6e-5), so gradients are scaled up before backward and down after.
# 4. Roughly the same: N tokens x 1 pass vs N/4 tokens x 3 passes; the attention term (N²) makes the full
#    forward a little more expensive.
#
# </details>
#
# **Exercises:** the learning-rate schedule the script calls every step is `exercises/schedules.py`
# (`warmup_cosine`); its end-of-run report fits the linear probe of `exercises/probe.py` (`linear_probe`).
