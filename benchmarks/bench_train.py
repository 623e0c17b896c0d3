"""How fast is one training step? ``python benchmarks/bench_train.py [--quick]``

Times one I-JEPA training step (target forward, context forward, predictor, loss, backward, AdamW step,
EMA update) and prints, per setting, ms/step and images/s (median over the timed steps, after warm-up),
the FLOPs of one step, the model FLOP utilisation (MFU) and the memory a step needs.

Settings (``--settings``):

* ``course``: the course's CPU run (configs/cpu_default.yaml): ViT-Tiny cut to depth 6, patch 8, 64 x 64
  images, predictor depth 4 / width 96; batch 32 (the config trains with 64);
* ``paper``: the paper's shape: ViT-S/16 at 224 x 224, predictor depth 6 / width 384; batch 8 on a CPU;
* ``gpu``: ViT-B/16 at 224 x 224, predictor depth 6 / width 384, batch 128 (for ``--device cuda``).

Rows (``--rows``):

* ``ours``: :func:`minijepa.train.train_step` on :func:`minijepa.train.build_model`, AdamW built as the
  script builds it;
* ``official``: the official code's modules (facebookresearch/ijepa, imported from the folder in the
  environment variable IJEPA_REPO; the row is skipped when it is not set), driven by
  :meth:`Official.phases`, which does what one iteration of their ``src/train.py`` does;
* ``own`` ("ours, own masks"): ours again, with masks from the course's own sampler (unbiased mode);
* ``loop`` (off by default): ours with PyTorch's default CPU AdamW (a Python loop over the parameters)
  instead of the fused one the script uses: what fusing the optimiser gains;
* ``compiled`` (off by default): ours with the encoders and predictor ``torch.compile``'d, as the script does
  with ``run.compile=true`` (the first steps compile, for about a minute on a CPU; then timed).

``ours`` and ``official`` consume the SAME mask index tensors (drawn by the official MaskCollator, or by
our ``mode="reference"`` sampler, its reimplementation, when IJEPA_REPO is not set), so their ratio
compares implementations, not masking: the number of context tokens K sets most of the cost. The ``own``
row shows what the course really runs: our unbiased sampler keeps more context (K column).

The rows are timed interleaved (ours, official, own; official, own, ours; ...), so that the load of a
shared machine hits them equally; the ratio to the official code is the median over the rounds of the
ratio of two steps taken moments apart, with its quartiles. Threads: ``torch.set_num_threads(--threads)``,
2 by default.

MFU = (FLOPs of one step) / (median step time) / (peak): FLOPs are counted with
``torch.utils.flop_counter.FlopCounterMode`` (matrix products, convolutions, attention; forward and
backward; the optimiser and EMA are not counted). On a CPU the counter does not know PyTorch's fused
attention kernel (``aten._scaled_dot_product_flash_attention_for_cpu``) and would count our attention as
zero; we register that kernel with the counter's own SDPA formula (its backward as twice the forward, the
model's FLOPs without the kernel's recomputation), so that both rows count alike. Ours does slightly less
work (the predictor's last block skips the context tokens' outputs, :func:`skipped_flops`); a warning is
printed if our count is not the official one minus that work, to 1 %. The peak is measured in the same run:
the median speed of a large square float32 matrix product (2048 x 2048 on a CPU).

Memory: on a CPU, each row runs a few steps in a fresh process (``--probe-memory``) and reports the
process's peak resident set (ru_maxrss) minus its resident set just before the first step; on a GPU,
``torch.cuda.max_memory_allocated`` in this process.

``--breakdown SETTINGS`` (``course,paper`` by default) times the phases of one step for ours and the
official code side by side. ``--quick`` runs tiny models for a few steps (a smoke test, not a measurement).

    IJEPA_REPO=/tmp/ijepa python benchmarks/bench_train.py
    IJEPA_REPO=/tmp/ijepa python benchmarks/bench_train.py --settings gpu --device cuda --precision bf16 \
        --breakdown gpu [--compile]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import statistics
import subprocess
import sys
import time
from contextlib import nullcontext
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils import flop_counter

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # runnable as a script from anywhere
    sys.path.insert(0, str(ROOT))

from minijepa.config import Config, ModelConfig  # noqa: E402
from minijepa.losses import ijepa_loss  # noqa: E402
from minijepa.masks import MaskBatch, MultiBlockMasks  # noqa: E402
from minijepa.schedules import param_groups, set_hyperparameters  # noqa: E402
from minijepa.train import build_mask_sampler, build_model, hyperparameters, train_step  # noqa: E402
from minijepa.train import build_optimizer as train_build_optimizer  # noqa: E402

# The paper's masks (both implementations): 4 targets of scale 0.15-0.2, aspect 0.75-1.5, context 0.85-1.0.
MASKS = dict(num_targets=4, target_scale=(0.15, 0.2), target_aspect_ratio=(0.75, 1.5), context_scale=(0.85, 1.0))
STEPS_PER_EPOCH, EPOCHS = 1000, 10  # schedules as in a real run (values only; nothing depends on them)


@dataclass(frozen=True)
class Setting:
    name: str
    encoder: str  # ViT preset (ours) and vit_<preset> (official)
    image_size: int
    patch_size: int
    predictor_dim: int
    predictor_depth: int
    batch: int
    depth: int | None = None  # None: the preset's depth
    embed_dim: int | None = None
    num_heads: int | None = None
    min_keep: int = 10
    steps: int = 20  # timed steps (per row)
    warmup: int = 3

    @property
    def grid(self) -> int:
        return self.image_size // self.patch_size

    def describe(self) -> str:
        depth = f", depth {self.depth}" if self.depth else ""
        width = f", width {self.embed_dim}" if self.embed_dim else ""
        return (f"ViT-{self.encoder}/{self.patch_size}{depth}{width} at {self.image_size}px ({self.grid}x{self.grid} "
                f"patches), predictor {self.predictor_depth} x {self.predictor_dim}, batch {self.batch}")


SETTINGS = {
    "course": Setting("course", "tiny", 64, 8, 96, 4, batch=32, depth=6, steps=50, warmup=5),
    "paper": Setting("paper", "small", 224, 16, 384, 6, batch=8, steps=15, warmup=3),
    "gpu": Setting("gpu", "base", 224, 16, 384, 6, batch=128, steps=30, warmup=10),
}
QUICK = {  # tiny sizes for a smoke test: 6 x 6 grid, min_keep lowered so the official collator finishes
    "course": Setting("course", "tiny", 48, 8, 24, 1, batch=4, depth=2, embed_dim=48, num_heads=3, min_keep=4,
                      steps=2, warmup=1),
    "paper": Setting("paper", "small", 48, 8, 24, 1, batch=2, depth=2, embed_dim=48, num_heads=3, min_keep=4,
                     steps=2, warmup=1),
    "gpu": Setting("gpu", "base", 48, 8, 24, 1, batch=4, depth=2, embed_dim=48, num_heads=3, min_keep=4,
                   steps=2, warmup=1),
}


# ----------------------------------------------------------------------------------------------------------
# Ours
# ----------------------------------------------------------------------------------------------------------


def our_config(s: Setting) -> Config:
    model = ModelConfig(encoder=s.encoder, image_size=s.image_size, patch_size=s.patch_size, depth=s.depth,
                        embed_dim=s.embed_dim, num_heads=s.num_heads, predictor_dim=s.predictor_dim,
                        predictor_depth=s.predictor_depth)  # fmt: skip
    cfg = Config(model=model)
    cfg.masks = replace(cfg.masks, min_keep=s.min_keep, **MASKS)
    cfg.optim = replace(cfg.optim, batch_size=s.batch, epochs=EPOCHS)
    return cfg


def build_optimizer(ijepa, cfg: Config, device: torch.device, variant: str = "script") -> torch.optim.Optimizer:
    """AdamW as the training script builds it (``variant="script"``: :func:`minijepa.train.build_optimizer`,
    fused where available), or PyTorch's ``"loop"`` (one Python iteration per parameter, the default on a CPU)
    or ``"foreach"`` implementations, to measure those."""
    if variant == "script":
        return train_build_optimizer(ijepa, cfg, device)
    groups = param_groups(*ijepa.trainable_modules())
    kwargs = {"loop": {"foreach": False, "fused": False}, "foreach": {"foreach": True}}[variant]
    return torch.optim.AdamW(groups, lr=cfg.optim.lr, betas=cfg.optim.betas, **kwargs)


class Ours:
    name = "ours"

    def __init__(self, s: Setting, device, amp_dtype, compile_: bool, optimizer: str = "script"):
        self.cfg = our_config(s)
        torch.manual_seed(0)
        self.ijepa = build_model(self.cfg).to(device).train()
        self.optimizer = build_optimizer(self.ijepa, self.cfg, device, optimizer)
        self.amp_dtype = amp_dtype
        if compile_:
            for module in self.ijepa.trainable_modules() + (self.ijepa.target_encoder,):
                module.compile()
        self.step_index = 0

    def hp(self):
        return hyperparameters(self.cfg, self.step_index, STEPS_PER_EPOCH * EPOCHS, STEPS_PER_EPOCH)

    def step(self, images, masks: MaskBatch) -> None:
        train_step(self.ijepa, self.ijepa, self.optimizer, images, masks, self.hp(), self.amp_dtype)
        self.step_index += 1

    def phases(self, images, masks: MaskBatch, clock) -> None:
        """The same step as :func:`minijepa.train.train_step`, with a ``clock(name)`` call after each phase
        (keep in step with ``train_step`` and ``IJEPA.forward``)."""
        ijepa, hp = self.ijepa, self.hp()
        with _autocast(images.device, self.amp_dtype):
            targets = ijepa.compute_targets(images, masks)
            clock("target forward")
            context = ijepa.context_encoder(images, keep=masks.context)
            clock("context forward")
            predictions = ijepa.predictor(context, masks.context, masks.targets)
            loss = ijepa_loss(predictions, targets, ijepa.loss_kind).float()
            clock("predictor forward + loss")
        set_hyperparameters(self.optimizer, hp.lr, hp.weight_decay)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        clock("backward")
        self.optimizer.step()
        clock("optimizer step")
        ijepa.update_target(hp.momentum)
        clock("EMA update")
        self.step_index += 1


# ----------------------------------------------------------------------------------------------------------
# The official code (imported from IJEPA_REPO at run time; nothing of it is copied here)
# ----------------------------------------------------------------------------------------------------------


def load_official():
    """The official modules we need, as a dict, and a note saying where they came from (or why not)."""
    repo = os.environ.get("IJEPA_REPO")
    if not repo:
        return None, "IJEPA_REPO not set: official rows skipped"
    sys.path.insert(0, repo)
    try:
        from src.helper import init_opt
        from src.masks.multiblock import MaskCollator
        from src.masks.utils import apply_masks
        from src.models import vision_transformer as vit
        from src.utils.tensors import repeat_interleave_batch
    except ImportError as error:
        return None, f"could not import the official code from IJEPA_REPO={repo}: {error}"
    logging.disable(logging.WARNING)  # its collator's "Valid mask not found" and helper's INFO lines
    modules = dict(vit=vit, MaskCollator=MaskCollator, apply_masks=apply_masks, init_opt=init_opt,
                   repeat_interleave_batch=repeat_interleave_batch)  # fmt: skip
    return modules, f"official code from {repo}"


class Official:
    """The official encoder, predictor and optimiser, and one iteration of their training loop."""

    name = "official"

    def __init__(self, s: Setting, official: dict, device, amp_dtype, compile_: bool):
        vit = official["vit"]
        self.apply_masks = official["apply_masks"]
        self.repeat_interleave_batch = official["repeat_interleave_batch"]
        torch.manual_seed(0)
        # Their vit_<name>(...) factories fix the depth and width; to cut them we call the class with the
        # factory's own arguments.
        preset = {"tiny": (192, 12, 3), "small": (384, 12, 6), "base": (768, 12, 12)}[s.encoder]
        dim, depth, heads = s.embed_dim or preset[0], s.depth or preset[1], s.num_heads or preset[2]
        self.encoder = vit.VisionTransformer(
            img_size=[s.image_size], patch_size=s.patch_size, embed_dim=dim, depth=depth, num_heads=heads,
            mlp_ratio=4, qkv_bias=True, norm_layer=partial(nn.LayerNorm, eps=1e-6),
        ).to(device)  # fmt: skip
        self.predictor = vit.vit_predictor(
            num_patches=self.encoder.patch_embed.num_patches, embed_dim=dim, predictor_embed_dim=s.predictor_dim,
            depth=s.predictor_depth, num_heads=heads,
        ).to(device)  # fmt: skip
        self.target_encoder = _frozen_copy(self.encoder)
        o = Config().optim
        self.optimizer, _, self.scheduler, self.wd_scheduler = official["init_opt"](
            encoder=self.encoder, predictor=self.predictor, wd=o.weight_decay[0], final_wd=o.weight_decay[1],
            start_lr=o.lr_start, ref_lr=o.lr, final_lr=o.lr_final, iterations_per_epoch=STEPS_PER_EPOCH,
            warmup=1, num_epochs=EPOCHS, ipe_scale=1.0, use_bfloat16=False,
        )  # fmt: skip
        self.amp_dtype = amp_dtype
        if compile_:
            for module in (self.encoder, self.predictor, self.target_encoder):
                module.compile()
        self.ema = Config().optim.ema
        self.step_index = 0

    def momentum(self) -> float:  # their schedule: a generator of linearly spaced values
        return self.ema[0] + self.step_index * (self.ema[1] - self.ema[0]) / (STEPS_PER_EPOCH * EPOCHS)

    def step(self, images, masks) -> None:
        self.phases(images, masks, lambda name: None)

    def phases(self, images, masks, clock) -> None:
        """One iteration of the official ``src/train.py`` loop, calling their modules, single process.

        Left out: DistributedDataParallel and AllReduce (one process), the GradScaler (bf16 needs none),
        and their per-step ``grad_logger`` (a norm and a host sync per weight matrix, logging only)."""
        masks_enc, masks_pred = masks
        self.scheduler.step()
        self.wd_scheduler.step()
        with _autocast(images.device, self.amp_dtype):
            with torch.no_grad():  # forward_target
                h = self.target_encoder(images)
                h = F.layer_norm(h, (h.size(-1),))
                h = self.apply_masks(h, masks_pred)  # (M*B, T, D)
                h = self.repeat_interleave_batch(h, len(images), repeat=len(masks_enc))
            clock("target forward")
            z = self.encoder(images, masks_enc)  # forward_context
            clock("context forward")
            z = self.predictor(z, masks_enc, masks_pred)
            loss = F.smooth_l1_loss(z, h)
            clock("predictor forward + loss")
        loss.backward()
        clock("backward")
        self.optimizer.step()
        self.optimizer.zero_grad()
        clock("optimizer step")
        with torch.no_grad():  # their momentum update, parameter by parameter
            m = self.momentum()
            for param_q, param_k in zip(self.encoder.parameters(), self.target_encoder.parameters()):
                param_k.data.mul_(m).add_((1.0 - m) * param_q.detach().data)
        clock("EMA update")
        loss.item()  # their step returns float(loss): a host sync
        self.step_index += 1


def _frozen_copy(module: nn.Module) -> nn.Module:
    import copy

    target = copy.deepcopy(module)
    for p in target.parameters():
        p.requires_grad = False
    return target


def _autocast(device, dtype):
    return torch.autocast(device.type, dtype=dtype) if dtype is not None else nullcontext()


# ----------------------------------------------------------------------------------------------------------
# Masks: one pool of index tensors shared by ours and the official code
# ----------------------------------------------------------------------------------------------------------


def shared_mask_pool(s: Setting, official: dict | None, size: int, seed: int = 0):
    """``size`` batches of masks in the official format (list of (B, K), list of M (B, T)).

    Drawn by the official MaskCollator when available (skipping the batches on which it would loop forever,
    see bench_masks.py), else by our reference-mode sampler (its reimplementation)."""
    pool = []
    if official is not None:
        collator = official["MaskCollator"](
            input_size=(s.image_size, s.image_size), patch_size=s.patch_size, enc_mask_scale=MASKS["context_scale"],
            pred_mask_scale=MASKS["target_scale"], aspect_ratio=MASKS["target_aspect_ratio"], nenc=1,
            npred=MASKS["num_targets"], min_keep=s.min_keep, allow_overlap=False,
        )  # fmt: skip
        items = [torch.zeros(()) for _ in range(s.batch)]
        while len(pool) < size:
            g = torch.Generator().manual_seed(collator._itr_counter.value + 1)  # the seed its next call uses
            h, w = collator._sample_block_size(g, collator.pred_mask_scale, collator.aspect_ratio)
            if h * w <= collator.min_keep:  # it would loop forever on this batch: skip it
                collator.step()
                continue
            _, masks_enc, masks_pred = collator(items)
            pool.append((masks_enc, masks_pred))
        return pool
    sampler = MultiBlockMasks(s.grid, mode="reference", min_keep=s.min_keep, **MASKS)
    g = torch.Generator().manual_seed(seed)
    while len(pool) < size:
        try:
            m = sampler.sample(s.batch, g)
        except RuntimeError:  # where the official collator would hang
            continue
        pool.append(([m.context], list(m.targets.unbind(1))))
    return pool


def as_mask_batch(masks, grid: int) -> MaskBatch:
    masks_enc, masks_pred = masks
    return MaskBatch(masks_enc[0], torch.stack(masks_pred, dim=1), (grid, grid))  # (B, K), (B, M, T)


def own_mask_pool(s: Setting, size: int, seed: int = 0) -> list[MaskBatch]:
    """Masks from the course's own sampler (minijepa.train.build_mask_sampler: unbiased multi-block)."""
    sampler = build_mask_sampler(our_config(s), (s.grid, s.grid))
    g = torch.Generator().manual_seed(seed)
    return [sampler.sample(s.batch, g) for _ in range(size)]


def mask_to(masks, device):
    if isinstance(masks, MaskBatch):
        return masks.to(device)
    return [m.to(device) for m in masks[0]], [m.to(device) for m in masks[1]]


# ----------------------------------------------------------------------------------------------------------
# Measuring
# ----------------------------------------------------------------------------------------------------------


def sync(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_peak(device, dtype, n: int, repeats: int = 10) -> float:
    """FLOP/s of an n x n matrix product (median of ``repeats`` after 2 warm-up calls)."""
    a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
    times = []
    for _ in range(repeats + 2):
        sync(device)
        start = time.perf_counter()
        a @ b
        sync(device)
        times.append(time.perf_counter() - start)
    return 2 * n**3 / statistics.median(times[2:])


def _cpu_sdpa_flops(query, key, value, *args, out_shape=None, **kwargs):
    return flop_counter.sdpa_flop_count(query, key, value)


def _cpu_sdpa_backward_flops(grad_out, query, key, value, *args, out_shape=None, **kwargs):
    # Model FLOPs: the four products of the backward (grads of the weights and values, of q and k), twice the
    # forward. (The counter's own sdpa_backward_flop_count adds the kernel's recomputation of the scores, which
    # the explicit attention of the official code does not do: counts would then differ for the same model.)
    return 2 * flop_counter.sdpa_flop_count(query, key, value)


# FlopCounterMode knows the CUDA attention kernels but not the CPU one: without these, our fused attention
# counts as zero FLOPs on a CPU.
CPU_SDPA_FLOPS = {
    torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: _cpu_sdpa_flops,
    torch.ops.aten._scaled_dot_product_flash_attention_for_cpu_backward: _cpu_sdpa_backward_flops,
}


def skipped_flops(s: Setting, k: int, t: int) -> int:
    """FLOPs the official step computes and ours does not, for K context and T target tokens per sequence.

    Our predictor's last block computes only the mask tokens' outputs (``Block(x, last=T)``): for the K context
    tokens of each of the B * M sequences it skips the attention of their queries (scores and weighted values
    over K + T keys), the output projection and the MLP; forward, and twice that in the backward."""
    d, hidden = s.predictor_dim, 4 * s.predictor_dim
    per_token = 4 * (k + t) * d + 2 * d * d + 4 * d * hidden
    return 3 * s.batch * MASKS["num_targets"] * k * per_token


def count_flops(impl, images, masks) -> int:
    """FLOPs of one training step (forward + backward; one real step is taken)."""
    with flop_counter.FlopCounterMode(display=False, custom_mapping=CPU_SDPA_FLOPS) as counter:
        impl.step(images, masks)
    return counter.get_total_flops()


def time_interleaved(rows, images, device, steps: int, warmup: int) -> dict[str, list[float]]:
    """Step times in seconds per row, the rows taking turns step by step (after ``warmup`` rounds).

    Each round runs every row once, starting from a different row each time (no row always follows the same
    one), so that ``times[a][i] / times[b][i]`` compares two steps taken moments apart."""
    times = {row.label: [] for row in rows}
    for i in range(warmup + steps):
        for row in rows[i % len(rows):] + rows[: i % len(rows)]:
            masks = row.masks[i % len(row.masks)]
            sync(device)
            start = time.perf_counter()
            row.impl.step(images, masks)
            sync(device)
            if i >= warmup:
                times[row.label].append(time.perf_counter() - start)
    return times


def time_phases(impls, images, pools, device, steps: int, warmup: int) -> dict[str, dict[str, float]]:
    """Median ms per phase for each implementation, interleaved."""
    records = {impl.name: {} for impl in impls}
    for i in range(warmup + steps):
        for impl, pool in zip(impls, pools):
            last = [time.perf_counter()]

            def clock(name, impl=impl, last=last):
                sync(device)
                now = time.perf_counter()
                if i >= warmup:
                    records[impl.name].setdefault(name, []).append(now - last[0])
                last[0] = now

            sync(device)
            last[0] = time.perf_counter()
            impl.phases(images, pool[i % len(pool)], clock)
    return {name: {k: 1e3 * statistics.median(v) for k, v in phases.items()} for name, phases in records.items()}


@dataclass
class Row:
    label: str
    impl: object
    masks: list
    context: float  # mean context tokens K
    targets: float  # target tokens per block T


ROW_KINDS = {  # --rows: which rows to time
    "ours": "ours",
    "official": "official",
    "own": "ours, own masks",
    "loop": "ours, AdamW loop",  # the same masks, PyTorch's per-parameter AdamW loop instead of the fused one
    "compiled": "ours, compiled",  # the same masks, encoders and predictor torch.compile'd (run.compile=true)
}


def make_rows(s: Setting, official, device, amp_dtype, compile_: bool, optimizer: str,
              kinds=("ours", "official", "own"), pool_size: int = 8) -> list[Row]:
    shared = shared_mask_pool(s, official, pool_size)
    k = statistics.mean(m[0][0].shape[1] for m in shared)
    t = statistics.mean(m[1][0].shape[1] for m in shared)
    ours_shared = [mask_to(as_mask_batch(m, s.grid), device) for m in shared]
    rows = []
    for kind in kinds:
        if kind == "ours":
            rows.append(Row("ours", Ours(s, device, amp_dtype, compile_, optimizer), ours_shared, k, t))
        elif kind == "official" and official is not None:
            rows.append(Row("official", Official(s, official, device, amp_dtype, compile_),
                            [mask_to(m, device) for m in shared], k, t))  # fmt: skip
        elif kind == "compiled":
            rows.append(Row(ROW_KINDS[kind], Ours(s, device, amp_dtype, True, optimizer), ours_shared, k, t))
        elif kind == "loop":
            rows.append(Row(ROW_KINDS[kind], Ours(s, device, amp_dtype, compile_, "loop"), ours_shared, k, t))
        elif kind == "own":
            own = own_mask_pool(s, pool_size)
            impl = Ours(s, device, amp_dtype, compile_, optimizer)
            rows.append(Row(ROW_KINDS[kind], impl, [m.to(device) for m in own],
                            statistics.mean(m.context.shape[1] for m in own),
                            statistics.mean(m.targets.shape[2] for m in own)))  # fmt: skip
    return rows


def images_for(s: Setting, device) -> torch.Tensor:
    return torch.randn(s.batch, 3, s.image_size, s.image_size, generator=torch.Generator().manual_seed(0)).to(device)


def probe_memory(args) -> dict:
    """Run in a fresh process: build one row, take warm-up + 3 steps, report the memory a step needs."""
    s = settings(args)[args.probe_memory[0]]
    label = args.probe_memory[1]
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    official, _ = load_official() if label == "official" else (None, "")
    kind = next(k for k, v in ROW_KINDS.items() if v == label)
    rows = make_rows(s, official, device, amp(args), args.compile, args.optimizer, kinds=(kind,))
    if not rows:
        return {}
    row, images = rows[0], images_for(s, device)
    before = rss_mib()
    for i in range(4):
        row.impl.step(images, row.masks[i % len(row.masks)])
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    return {"step_mib": peak - before, "peak_rss_mib": peak}


def gpu_memory(row, images, device) -> float:
    """Peak GPU memory allocated during two steps of one row, minus what was allocated before (MiB)."""
    torch.cuda.synchronize(device)
    before = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    for i in range(2):
        row.impl.step(images, row.masks[i % len(row.masks)])
    torch.cuda.synchronize(device)
    return (torch.cuda.max_memory_allocated(device) - before) / 2**20


def rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def memory_of(args, setting: str, label: str) -> dict:
    """Memory of one row: a fresh process on a CPU (ru_maxrss cannot be reset in this one)."""
    cmd = [sys.executable, __file__, "--probe-memory", setting, label, "--threads", str(args.threads),
           "--optimizer", args.optimizer] + (["--quick"] if args.quick else [])  # fmt: skip
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=True).stdout
        return json.loads(out.strip().splitlines()[-1])
    except (subprocess.SubprocessError, ValueError, IndexError) as error:
        print(f"  (memory probe for {setting}/{label} failed: {error})", file=sys.stderr)
        return {}


# ----------------------------------------------------------------------------------------------------------
# The command
# ----------------------------------------------------------------------------------------------------------

COLUMNS = ["setting", "row", "K ctx", "T tgt", "ms/step", "img/s", "vs official", "ratio IQR", "GFLOP/step", "MFU",
           "step MiB"]


def settings(args) -> dict[str, Setting]:
    table = QUICK if args.quick else SETTINGS
    if args.steps or args.warmup is not None:
        table = {k: replace(v, steps=args.steps or v.steps, warmup=v.warmup if args.warmup is None else args.warmup)
                 for k, v in table.items()}  # fmt: skip
    return table


def amp(args):
    return {"fp32": None, "bf16": torch.bfloat16}[args.precision]


def run_setting(s: Setting, official, args, device, peak: float) -> tuple[list[dict], dict | None]:
    torch.manual_seed(0)
    kinds = [k for k in args.rows.split(",") if k]
    rows = make_rows(s, official, device, amp(args), args.compile, args.optimizer, kinds)
    images = images_for(s, device)
    flops = {row.label: count_flops(row.impl, images, row.masks[0]) for row in rows}
    times = time_interleaved(rows, images, device, s.steps, s.warmup)
    results = []
    for row in rows:
        ms = 1e3 * statistics.median(times[row.label])
        result = {"setting": s.name, "row": row.label, "K ctx": row.context, "T tgt": row.targets, "ms/step": ms,
                  "img/s": s.batch / ms * 1e3, "GFLOP/step": flops[row.label] / 1e9,
                  "MFU": flops[row.label] / (ms / 1e3) / peak}  # fmt: skip
        results.append(result)
    by_label = {r["row"]: r for r in results}
    if "official" in by_label:
        for r in results:
            # Median of the per-round ratios (steps taken moments apart see the same load), and its spread.
            ratios = sorted(o / t for o, t in zip(times["official"], times[r["row"]]))
            r["vs official"] = statistics.median(ratios)
            q1, _, q3 = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else (ratios[0],) * 3
            r["ratio IQR"] = f"{q1:.2f}-{q3:.2f}"
            r["ratio of medians"] = r["img/s"] / by_label["official"]["img/s"]
        if "ours" in by_label:  # same masks, same architecture: the counts must agree (else one misses an operator)
            first = next(row for row in rows if row.label == "ours").masks[0]  # the batch the counts were taken on
            k, t = first.context.shape[1], first.targets.shape[2]
            expected = flops["official"] - skipped_flops(s, k, t)
            by_label["ours"]["flops agree"] = abs(flops["ours"] / expected - 1) < 0.01
    if args.memory:
        for row, r in zip(rows, results):
            if device.type == "cuda":
                r["step MiB"] = gpu_memory(row, images, device)
            else:
                r["step MiB"] = memory_of(args, s.name, r["row"]).get("step_mib")
    breakdown = None
    if s.name in args.breakdown.split(","):
        chosen = [row for row in rows if row.label in ("ours", "official")]
        if chosen:
            breakdown = time_phases([r.impl for r in chosen], images, [r.masks for r in chosen], device, s.steps,
                                    s.warmup)  # fmt: skip
    return results, breakdown


def fmt(value, column: str) -> str:
    if value is None:
        return "-"
    if column == "vs official":
        return f"{value:.2f}x"
    if column == "MFU":
        return f"{100 * value:.1f}%"
    if isinstance(value, float):
        return f"{value:.1f}"
    return str(value)


def print_table(results: list[dict], columns=COLUMNS) -> None:
    cells = [[fmt(r.get(c), c) for c in columns] for r in results]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    line = "  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(columns, widths)))
    print(line)
    print("-" * len(line))
    for row in cells:
        print("  ".join(v.ljust(w) if i < 2 else v.rjust(w) for i, (v, w) in enumerate(zip(row, widths))))


def print_breakdown(breakdown: dict, step_ms: dict) -> None:
    names = list(next(iter(breakdown.values())))
    impls = list(breakdown)
    header = f"{'phase':<26}" + "".join(f"{impl + ' ms':>14}{'%':>7}" for impl in impls)
    if len(impls) == 2:
        header += f"{'official/ours':>15}"
    print(header)
    print("-" * len(header))
    totals = {impl: sum(breakdown[impl].values()) for impl in impls}
    for name in names + ["sum of phases", "whole step (table)"]:
        line = f"{name:<26}"
        values = []
        for impl in impls:
            if name == "sum of phases":
                ms = totals[impl]
            elif name == "whole step (table)":
                ms = step_ms.get(impl)
            else:
                ms = breakdown[impl][name]
            values.append(ms)
            pct = "" if ms is None or name == "whole step (table)" else f"{100 * ms / totals[impl]:.0f}%"
            line += (f"{ms:>14.1f}" if ms is not None else f"{'-':>14}") + f"{pct:>7}"
        if len(impls) == 2 and None not in values:
            line += f"{values[1] / values[0]:>14.2f}x"
        print(line)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="tiny models, few steps: a smoke test, not a measurement")
    p.add_argument("--settings", default="course,paper", help="comma-separated: course, paper, gpu")
    p.add_argument("--steps", type=int, default=None, help="timed steps per row (default: per setting)")
    p.add_argument("--warmup", type=int, default=None, help="untimed steps per row first (default: per setting)")
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (CPU)")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--precision", default="fp32", choices=["fp32", "bf16"], help="bf16: autocast, both rows")
    p.add_argument("--compile", action="store_true", help="torch.compile the encoders and predictor (both rows)")
    p.add_argument("--optimizer", default="script", choices=["script", "loop", "foreach"],
                   help="our AdamW: as the training script builds it (default, fused), PyTorch's loop, or foreach")
    p.add_argument("--rows", default="ours,official,own",
                   help="comma-separated rows: ours, official (needs IJEPA_REPO), own (ours with its own masks), "
                        "loop (ours with PyTorch's per-parameter AdamW loop), compiled (ours, torch.compile)")
    p.add_argument("--no-memory", dest="memory", action="store_false", help="skip the memory column")
    p.add_argument("--breakdown", default="course,paper",
                   help="comma-separated settings whose step is split into phases ('' for none)")
    p.add_argument("--peak-size", type=int, default=None, help="n of the n x n matmul that measures the peak")
    p.add_argument("--json", default=None, help="also write the results to this JSON file")
    p.add_argument("--probe-memory", nargs=2, metavar=("SETTING", "ROW"), help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv=None) -> list[dict]:
    args = parse_args(argv)
    if args.probe_memory:
        print(json.dumps(probe_memory(args)))
        return []
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    official, note = load_official()
    table = settings(args)
    names = [n for n in args.settings.split(",") if n]
    unknown = [n for n in names if n not in table]
    if unknown:
        raise SystemExit(f"unknown setting(s) {unknown}; choose from {sorted(table)}")
    peak_dtype = torch.bfloat16 if args.precision == "bf16" else torch.float32
    peak_n = args.peak_size or (256 if args.quick else 8192 if device.type == "cuda" else 2048)
    peak = matmul_peak(device, peak_dtype, peak_n)
    threads = torch.get_num_threads()
    where = f"{threads} thread{'s' * (threads > 1)}" if device.type == "cpu" else torch.cuda.get_device_name(device)
    print(f"torch {torch.__version__}, {device.type} ({where}), {args.precision}"
          f"{', compiled' if args.compile else ''}; {note}")
    print(f"peak: {peak_n}x{peak_n} {str(peak_dtype).split('.')[-1]} matmul, {peak / 1e9:.1f} GFLOP/s (median)\n")
    results, breakdowns = [], {}
    for name in names:
        s = table[name]
        print(f"{name}: {s.describe()}; median of {s.steps} steps after {s.warmup} warm-up", flush=True)
        rows, breakdown = run_setting(s, official, args, device, peak)
        results += rows
        if breakdown:
            breakdowns[name] = (breakdown, {r["row"]: r["ms/step"] for r in rows})
    print()
    print_table(results)
    print("\nours and official: the same masks (K ctx context tokens, T tgt tokens per target block, means);"
          "\n'ours, own masks': the course's unbiased sampler. vs official: the images/s ratio, as the median over"
          "\nthe rounds of (official step time / this row's step time); ratio IQR: the quartiles of those ratios."
          "\nMFU: counted FLOPs / step time / measured matmul peak. step MiB: "
          + ("peak GPU memory allocated during a step minus what was allocated before." if device.type == "cuda"
             else "peak RSS of a fresh process minus its RSS before the first step."))
    for r in results:
        if r.get("flops agree") is False:
            print(f"warning: {r['setting']}: our FLOP count is not the official one minus the predictor's skipped "
                  "work (skipped_flops): one of the two counts misses an operator")
    for name, (breakdown, step_ms) in breakdowns.items():
        print(f"\nwhere the time goes ({name}; median ms per phase, the implementations interleaved):")
        print_breakdown(breakdown, step_ms)
    if args.json:
        Path(args.json).write_text(json.dumps({"peak_flops": peak, "results": results,
                                               "breakdowns": {k: v[0] for k, v in breakdowns.items()}}, indent=1))
    return results


if __name__ == "__main__":
    main()
