"""Pretrain I-JEPA: one CPU in minutes, or many GPUs and nodes under torchrun, with the same command.

    python -m minijepa.train --config configs/cpu_default.yaml [--set optim.epochs=5] [--out runs/NAME]
    torchrun --nproc_per_node 8 -m minijepa.train --config configs/gpu_vitb16.yaml --out runs/NAME

The training step (:func:`train_step`) is a plain function that reads like the paper's algorithm. The loop
around it (:func:`train`) handles data, logging, checkpoints and faults:
- a checkpoint (atomic: temporary file, then rename) every ``run.checkpoint_every`` steps and at the end
  holds everything needed to continue exactly; a run started again with the same ``--out`` resumes;
- a non-finite loss stops the run before the weights are touched and keeps the last good checkpoint;
- every ``run.probe_every`` steps, both encoders are probed on a small validation set (:func:`probe_record`):
  the probe curves of the report;
- under torchrun, each process trains on its slice of the global batch with DistributedDataParallel;
  rank 0 alone logs and writes files.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn as nn
import yaml

from . import data as data_lib
from .batches import GlobalBatchSampler, MaskingCollator, SeededCrops, mix_seed
from .config import Config, config_to_dict, load_config
from .ema import momentum_schedule
from .errors import NonFiniteError, Stopped, UserError, run_command
from .evaluate import effective_rank, feature_std, probe_sets, quick_probe, quick_probe_sets
from .build import build_encoder, build_mask_sampler, build_model, load_trained_model, read_checkpoint  # noqa: F401 (re-exported)
from .ijepa import IJEPA
from .masks import MaskBatch
from .schedules import cosine, param_groups, set_hyperparameters, warmup_cosine

__all__ = [
    "NonFiniteLossError",
    "Distributed",
    "build_encoder",
    "build_model",
    "build_mask_sampler",
    "train_step",
    "train",
    "main",
]

CHECKPOINT = "checkpoint.pt"


class NonFiniteLossError(NonFiniteError):
    """The loss (or, checked before every checkpoint, a weight or optimizer state) is NaN or infinite."""


# ----------------------------------------------------------------------------------------------------------
# Building blocks of a run
# ----------------------------------------------------------------------------------------------------------


@dataclass
class Distributed:
    """Where this process sits in a (possibly single-process) run."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def setup_distributed(device_name: str) -> Distributed:
    """Read torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK) and join the process group.

    gloo on CPU, nccl on GPU. Nothing here assumes SLURM: any launcher that sets torchrun's variables works.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device_name == "auto":
        device_name = "cuda" if torch.cuda.is_available() else "cpu"
    if device_name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise UserError(f"run.device={device_name!r} but no CUDA device is available; use run.device=cpu")
        device = torch.device("cuda", local_rank if device_name == "cuda" else int(device_name.split(":")[1]))
        if device.index >= torch.cuda.device_count():
            raise UserError(f"run.device={device_name!r} (local rank {local_rank}) but this machine has "
                            f"{torch.cuda.device_count()} CUDA device(s)")
        torch.cuda.set_device(device)
    elif device_name == "cpu":
        device = torch.device("cpu")
    else:
        raise UserError(f"run.device={device_name!r}; choose auto, cpu, cuda or cuda:N")
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return Distributed(rank, world_size, local_rank, device)


def autocast_dtype(precision: str, device: torch.device):
    """bf16 autocast on GPU by default, plain fp32 on CPU (bf16 matmuls on CPU are slow and lossy)."""
    if precision == "auto":
        precision = "bf16" if device.type == "cuda" else "fp32"
    if precision == "fp32":
        return None
    if precision == "bf16":
        return torch.bfloat16
    raise ValueError(f"run.precision={precision!r}; choose auto, fp32 or bf16")


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state(device: torch.device) -> dict:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def set_rng_state(state: dict, device: torch.device) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


# ----------------------------------------------------------------------------------------------------------
# The training step
# ----------------------------------------------------------------------------------------------------------


@dataclass
class StepHyperparameters:
    lr: float
    weight_decay: float
    momentum: float


def hyperparameters(cfg: Config, step: int, total_steps: int, steps_per_epoch: int) -> StepHyperparameters:
    o = cfg.optim
    warmup = min(int(round(o.warmup_epochs * steps_per_epoch)), total_steps)
    return StepHyperparameters(
        lr=warmup_cosine(step, total_steps, warmup, o.lr_start, o.lr, o.lr_final),
        weight_decay=cosine(step, total_steps, *o.weight_decay),
        momentum=momentum_schedule(step, total_steps, *o.ema),
    )


def fused_adamw_available(device: torch.device) -> bool:
    """PyTorch's fused AdamW (one kernel for all parameters) runs on CUDA, and on the CPU since torch 2.4."""
    if device.type == "cuda":
        return True
    major, minor = (int(v) for v in torch.__version__.split(".")[:2])
    return device.type == "cpu" and (major, minor) >= (2, 4)


def build_optimizer(ijepa: IJEPA, cfg: Config, device: torch.device) -> torch.optim.AdamW:
    """AdamW over the context encoder and predictor, biases and norms without weight decay.

    ``fused=True`` where available: the same update, computed for all parameters in one kernel instead of a
    Python loop of about ten small operations per parameter (on the course's CPU run: 12 ms -> 4 ms per step;
    ViT-S/16: 108 ms -> 20 ms; ``benchmarks/``)."""
    fused = fused_adamw_available(device)
    return torch.optim.AdamW(param_groups(*ijepa.trainable_modules()), lr=cfg.optim.lr, betas=cfg.optim.betas,
                             fused=fused or None)  # fmt: skip


def train_step(
    model: nn.Module,
    ijepa: IJEPA,
    optimizer: torch.optim.Optimizer,
    images: torch.Tensor,
    masks: MaskBatch,
    hp: StepHyperparameters,
    amp_dtype: torch.dtype | None = None,
    grad_clip: float | None = None,
) -> dict:
    """One I-JEPA step: forward, loss, backward, optimiser step, EMA update of the target encoder.

    ``model`` is what runs the forward pass (``ijepa`` itself, or its DistributedDataParallel wrapper,
    which averages the gradients across processes during backward).
    """
    set_hyperparameters(optimizer, hp.lr, hp.weight_decay)
    with torch.autocast(images.device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
        out = model(images, masks)
    loss = out.loss.float()
    if not torch.isfinite(loss):  # stop before the bad gradient reaches the weights
        raise NonFiniteLossError(f"non-finite loss {loss.item()} (lr={hp.lr:.3g})")
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    grad_norm = None
    if grad_clip is not None:
        grad_norm = torch.nn.utils.clip_grad_norm_(
            [p for m in ijepa.trainable_modules() for p in m.parameters()], grad_clip
        )
    optimizer.step()
    ijepa.update_target(hp.momentum)
    return {"loss": loss.detach(), "targets": out.targets.detach(), "grad_norm": grad_norm}


# ----------------------------------------------------------------------------------------------------------
# Checkpoints
# ----------------------------------------------------------------------------------------------------------


def save_checkpoint(path: Path, state: dict) -> None:
    """Write to a temporary file in the same folder, then rename: a crash never leaves a half-written file."""
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def non_finite_tensors(ijepa: IJEPA, optimizer) -> list[str]:
    """Names of the weights, buffers and optimizer states that hold a NaN or an infinity.

    One fused norm per list of tensors (``torch._foreach_norm``; a NaN or inf anywhere makes a norm
    non-finite): cheap next to a training step, and run before every checkpoint so that a checkpoint is
    never written from broken weights (a finite loss can still be followed by an update to NaN).
    """
    named = [(f"model.{n}", t) for n, t in ijepa.state_dict().items() if t.is_floating_point()]
    named += [(f"optimizer.state[{i}].{k}", v) for i, st in optimizer.state.items() for k, v in st.items()
              if torch.is_tensor(v) and v.is_floating_point()]
    if not named:
        return []
    norms = torch._foreach_norm([t.detach().float() for _, t in named])
    finite = torch.isfinite(torch.stack(norms)).tolist()
    return [name for (name, _), ok in zip(named, finite) if not ok]


def write_checkpoint(path: Path, ijepa: IJEPA, optimizer, step: int, steps_per_epoch: int, cfg: Config,
                     env: "Distributed") -> None:
    """Everything needed to continue exactly: weights, optimizer, step, every process's RNG states, config.

    Collective under DDP (every process must call it): RNG states are gathered to rank 0, which writes.
    Raises :class:`NonFiniteLossError` instead of writing when a weight or optimizer state is not finite.
    """
    broken = non_finite_tensors(ijepa, optimizer)
    if broken:
        raise NonFiniteLossError(f"the update left {len(broken)} weight or optimizer tensor(s) non-finite "
                                 f"(first: {broken[0]}) although the loss was finite; they were not checkpointed")
    states = [None] * env.world_size
    if env.enabled:
        dist.all_gather_object(states, rng_state(env.device))
    else:
        states = [rng_state(env.device)]
    if env.is_main:
        save_checkpoint(path, {
            "model": ijepa.state_dict(),
            "optimizer": optimizer.state_dict(),
            "step": step,
            "epoch": step // steps_per_epoch,
            "batch_in_epoch": step % steps_per_epoch,  # the data order position (see minijepa.batches)
            "rng": states,
            "config": config_to_dict(cfg),
            "data_version": data_lib.data_version(cfg.data.dataset),
            "world_size": env.world_size,
            "grad_scaler": None,  # bf16 needs no loss scaling; kept for the record
        })
    if env.enabled:
        dist.barrier()


def trained_data_version(state: dict) -> int | None:
    """The version of the embedded images a checkpoint was trained on (None: a data set read from disk).

    The embedded images are code (``ShapesDataset.VERSION``), so a new version of the course can draw other
    images for the same config; checkpoints from before versions were written on version 1.
    """
    if state["config"].get("data", {}).get("dataset") != "shapes":
        return None
    return state.get("data_version", 1)


def load_checkpoint(path: Path, ijepa: IJEPA, optimizer, cfg: Config) -> dict:
    state = read_checkpoint(path)
    version = trained_data_version(state)
    if cfg.data.dataset == "shapes" and version is not None and version != data_lib.ShapesDataset.VERSION:
        raise UserError(f"checkpoint {path} was trained on version {version} of the embedded images and this "
                        f"code draws version {data_lib.ShapesDataset.VERSION}: resuming would mix the two; "
                        f"start over with --no-resume, or give another --out")
    saved_model = state["config"]["model"]
    if saved_model != config_to_dict(cfg)["model"]:
        diff = {k: (v, config_to_dict(cfg)["model"].get(k)) for k, v in saved_model.items() if config_to_dict(cfg)["model"].get(k) != v}
        raise UserError(f"checkpoint {path} was written by a different model (checkpoint vs config: {diff})")
    try:
        ijepa.load_state_dict(state["model"])
    except RuntimeError as e:
        raise UserError(f"checkpoint {path} does not fit this model's shape: {e}") from None
    optimizer.load_state_dict(state["optimizer"])
    return state


# ----------------------------------------------------------------------------------------------------------
# The loop
# ----------------------------------------------------------------------------------------------------------


class StopSignals:
    """SIGTERM and SIGINT ask the loop to stop after the current step; it then checkpoints and exits.

    SIGTERM is what a scheduler sends before it kills a job (SLURM, also early with ``--signal``; Kubernetes),
    SIGINT is Ctrl-C. A second signal while the first is handled acts at once (the default action). Handlers
    are installed in the main thread only (Python's rule); :meth:`restore` puts the previous ones back.
    """

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self):
        self.received: int | None = None
        self._previous: dict = {}

    def install(self) -> "StopSignals":
        if threading.current_thread() is threading.main_thread():
            for signum in self.SIGNALS:
                self._previous[signum] = signal.signal(signum, self.handle)
        return self

    def restore(self) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        self._previous.clear()

    def handle(self, signum, frame) -> None:
        if self.received is None:
            self.received = signum
            return
        # Asked twice: what would have happened without us (KeyboardInterrupt for Ctrl-C, a notebook
        # kernel's own handler, or the default action: the process ends).
        previous = self._previous.get(signum, signal.SIG_DFL)
        signal.signal(signum, previous)
        if callable(previous):
            previous(signum, frame)
        elif previous == signal.SIG_DFL:
            signal.raise_signal(signum)

    def requested(self, env: Distributed, check: bool = True) -> int | None:
        """The signal to stop for, the same on every process (a signal to any one process stops them all).

        One process reads its own flag at no cost. Under DDP the processes agree by an all-reduce, a sync
        point, so it runs only when ``check`` (the loop passes its logging steps, where it syncs anyway).
        """
        if not env.enabled:
            return self.received
        if not check:
            return None
        flag = torch.tensor([self.received or 0], device=env.device)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        return int(flag.item()) or None


def _stopped_on_non_finite(step: int, error: Exception, ckpt_path: Path, checkpoint_step: int | None) -> NonFiniteLossError:
    """The error that ends a run on a non-finite loss or weights, naming the checkpoint that is still good."""
    good = ("no checkpoint has been written yet" if checkpoint_step is None
            else f"the last good checkpoint is {ckpt_path} (step {checkpoint_step})")
    return NonFiniteLossError(f"step {step}: {error}. The run stopped; {good} "
                              f"(lower optim.lr or set optim.grad_clip, then run again to resume).")


def make_datasets(cfg: Config):
    d = cfg.data
    if d.dataset == "shapes":
        train_set = data_lib.ShapesDataset(d.num_images, image_size=cfg.model.image_size, seed=cfg.run.seed, task=d.eval_task)
    else:
        from torchvision.transforms import v2

        to_tensor = v2.Compose([v2.ToImage(), v2.ToDtype(torch.float32, scale=True)])  # crops come later
        train_set = data_lib.build_dataset(d.dataset, root=d.root, split="train", image_size=cfg.model.image_size,
                                           transform=to_tensor)
        if cfg.run.evaluate:  # the end-of-run probe needs a test split: fail now, not after training
            data_lib.build_dataset(d.dataset, root=d.root, split="test", image_size=cfg.model.image_size)
    return train_set


def probe_record(ijepa: IJEPA, quick_sets, step: int) -> dict:
    """The probe curves' point at ``step``: quick probes of both encoders (and, at step 0, of raw pixels).

    At step 0 both encoders are the random initialisation: that point is the curves' random-init level.
    Reads the weights only (eval mode, no random numbers), so the run continues exactly as without it.
    """
    start = time.perf_counter()
    scores = quick_probe({"target": ijepa.target_encoder, "context": ijepa.context_encoder}, quick_sets, pixels=step == 0)
    record = {"step": step, "probe": {k: v for k, v in scores.items() if k != "pixels"}}
    if "pixels" in scores:
        record["pixels"] = scores["pixels"]
    record["probe_seconds"] = time.perf_counter() - start
    return record


class MetricsLog:
    """Append-only JSON-lines log; on resume, lines past the checkpoint's step are dropped."""

    def __init__(self, path: Path, resume_step: int):
        self.path = path
        if path.exists():
            kept = [line for line in path.read_text().splitlines() if line and json.loads(line).get("step", 0) <= resume_step]
            path.write_text("".join(line + "\n" for line in kept))
        self.file = open(path, "a")

    def write(self, record: dict) -> None:
        self.file.write(json.dumps(record) + "\n")
        self.file.flush()

    def close(self) -> None:
        self.file.close()


def train(cfg: Config, out_dir: str | Path, resume: bool = True, quiet: bool = False) -> dict:
    """Run (or resume) pretraining described by ``cfg``; returns a summary dict (rank 0) or {}."""
    env = setup_distributed(cfg.run.device)
    if cfg.optim.batch_size % env.world_size:
        raise UserError(f"optim.batch_size={cfg.optim.batch_size} is not divisible by the {env.world_size} processes")
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"--out {out_dir} is a file, not a run folder")
    if cfg.run.threads:
        torch.set_num_threads(cfg.run.threads)
    if cfg.run.deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    amp_dtype = autocast_dtype(cfg.run.precision, env.device)

    # Same initial weights on every process (DDP also broadcasts them), then per-rank random streams.
    seed_everything(cfg.run.seed)
    ijepa = build_model(cfg).to(env.device)
    mask_sampler = build_mask_sampler(cfg, ijepa.context_encoder.grid)
    seed_everything(mix_seed(cfg.run.seed, 100, env.rank))

    train_set = make_datasets(cfg)
    batch_sampler = GlobalBatchSampler(len(train_set), cfg.optim.batch_size, env.rank, env.world_size, cfg.run.seed)
    steps_per_epoch = len(train_set) // cfg.optim.batch_size
    if steps_per_epoch == 0:
        raise UserError(f"optim.batch_size={cfg.optim.batch_size} is larger than the {len(train_set)} training images")
    total_steps = steps_per_epoch * cfg.optim.epochs
    stop_step = min(total_steps, cfg.optim.max_steps) if cfg.optim.max_steps else total_steps
    loader = torch.utils.data.DataLoader(
        SeededCrops(train_set, cfg.model.image_size, cfg.data.crop_scale, cfg.run.seed, normalize=data_lib.normalize),
        batch_sampler=batch_sampler,
        collate_fn=MaskingCollator(mask_sampler, cfg.optim.batch_size, env.rank, env.world_size, cfg.run.seed),
        num_workers=cfg.data.num_workers,
        pin_memory=env.device.type == "cuda",
        persistent_workers=cfg.data.num_workers > 0,
        generator=torch.Generator(),  # keeps the DataLoader off the global RNG (exact resume)
    )

    optimizer = build_optimizer(ijepa, cfg, env.device)

    step = 0
    ckpt_path = out_dir / CHECKPOINT
    checkpoint_step = None  # the step of the last checkpoint this run can trust
    if resume and ckpt_path.exists():
        state = load_checkpoint(ckpt_path, ijepa, optimizer, cfg)
        step = checkpoint_step = state["step"]
        set_rng_state(state["rng"][env.rank] if env.rank < len(state["rng"]) else state["rng"][0], env.device)
        if env.is_main and not quiet:
            print(f"resumed from {ckpt_path} at step {step}/{stop_step}", flush=True)

    if cfg.run.compile:
        for module in ijepa.trainable_modules() + (ijepa.target_encoder,):
            module.compile()
    model: nn.Module = ijepa
    if env.enabled:
        model = nn.parallel.DistributedDataParallel(ijepa, device_ids=[env.device.index] if env.device.type == "cuda" else None)

    log = tb = None
    if env.is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "config.yaml").write_text(yaml.safe_dump(config_to_dict(cfg), sort_keys=False))
        log = MetricsLog(out_dir / "metrics.jsonl", step)
        if cfg.run.tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError as e:
                raise RuntimeError("run.tensorboard=true needs the tensorboard package: pip install tensorboard") from e
            tb = SummaryWriter(out_dir / "tensorboard")

    progress = None
    if env.is_main and not quiet:
        from tqdm.auto import tqdm

        progress = tqdm(total=stop_step, initial=step, desc="I-JEPA", dynamic_ncols=True, file=sys.stdout)

    quick_sets = None
    if env.is_main and cfg.run.probe_every > 0:
        quick_sets = quick_probe_sets(probe_sets(cfg))
        if step == 0:
            log.write(probe_record(ijepa, quick_sets, 0))

    ijepa.train()
    last_time, images_seen = time.perf_counter(), 0
    signals = StopSignals().install()
    try:
        while step < stop_step:
            epoch, start_batch = divmod(step, steps_per_epoch)
            batch_sampler.set_epoch(epoch, start_batch)
            for images, _, masks in loader:
                images = images.to(env.device, non_blocking=True)
                masks = masks.to(env.device, non_blocking=True)
                hp = hyperparameters(cfg, step, total_steps, steps_per_epoch)
                try:
                    result = train_step(model, ijepa, optimizer, images, masks, hp, amp_dtype, cfg.optim.grad_clip)
                except NonFiniteLossError as e:
                    raise _stopped_on_non_finite(step, e, ckpt_path, checkpoint_step) from None
                step += 1
                images_seen += images.shape[0] * env.world_size
                if step % cfg.run.log_every == 0 or step == stop_step:
                    loss = result["loss"]
                    if env.enabled:
                        dist.all_reduce(loss, op=dist.ReduceOp.AVG)
                    targets = result["targets"].float()  # (B, M, T, D)
                    tokens = targets.flatten(0, 2)  # (B*M*T, D): every target token
                    pooled = targets.mean(dim=(1, 2))  # (B, D): one vector per image
                    now = time.perf_counter()
                    record = {
                        "step": step, "epoch": epoch, "loss": loss.item(), "lr": hp.lr,
                        "weight_decay": hp.weight_decay, "momentum": hp.momentum,
                        "images_per_s": images_seen / max(now - last_time, 1e-9),
                        "target_std": feature_std(tokens), "target_image_std": feature_std(pooled),
                        "target_rank": effective_rank(pooled),
                    }
                    if result["grad_norm"] is not None:
                        record["grad_norm"] = float(result["grad_norm"])
                    last_time, images_seen = now, 0
                    if env.is_main:
                        log.write(record)
                        if tb is not None:
                            for key, value in record.items():
                                tb.add_scalar(f"train/{key}", value, step)
                        if progress is not None:
                            progress.set_postfix(loss=f"{record['loss']:.4f}", lr=f"{hp.lr:.2e}", m=f"{hp.momentum:.4f}",
                                                 img_s=f"{record['images_per_s']:.0f}")
                        if record["target_std"] < cfg.run.collapse_std:
                            msg = (f"warning: step {step}: target features are collapsing (std across tokens "
                                   f"{record['target_std']:.4f} < {cfg.run.collapse_std}, effective rank {record['target_rank']:.1f})")
                            (progress.write if progress is not None else print)(msg)
                if quick_sets is not None and (step % cfg.run.probe_every == 0 or step == stop_step):
                    log.write(probe_record(ijepa, quick_sets, step))
                    last_time = time.perf_counter()  # the probe's time is not training throughput
                if progress is not None:
                    progress.update(1)
                stop = signals.requested(env, check=step % cfg.run.log_every == 0 or step == stop_step)
                if step % cfg.run.checkpoint_every == 0 or step == stop_step or stop:
                    try:
                        write_checkpoint(ckpt_path, ijepa, optimizer, step, steps_per_epoch, cfg, env)
                    except NonFiniteLossError as e:
                        raise _stopped_on_non_finite(step, e, ckpt_path, checkpoint_step) from None
                    checkpoint_step = step
                if stop:
                    raise Stopped(f"stopped by {signal.Signals(stop).name} after step {step}/{stop_step}: checkpoint "
                                  f"written to {ckpt_path}; run the same command again to resume", stop)
                if step >= stop_step:
                    break
    finally:
        signals.restore()
        if progress is not None:
            progress.close()
        if log is not None:
            log.close()
        if tb is not None:
            tb.close()

    summary = {}
    if env.is_main:
        summary = {"steps": step, "out_dir": str(out_dir), "checkpoint": str(ckpt_path)}
        if cfg.run.evaluate:
            from .report import write_report

            with torch.random.fork_rng(devices=[]):  # the baseline must not disturb the run's RNG
                torch.manual_seed(cfg.run.seed + 12345)
                random_encoder = build_encoder(cfg)
            summary["report"] = write_report(cfg, ijepa, random_encoder, out_dir, mask_sampler, quiet=quiet)
    if env.enabled:
        dist.barrier()
    return summary


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m minijepa.train", description=__doc__.split("\n\n")[0])
    p.add_argument("--config", default="configs/cpu_default.yaml", help="YAML config (see configs/)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override one config value, e.g. --set optim.epochs=2 (repeatable)")
    p.add_argument("--out", default=None, help="output folder (default runs/<config name>)")
    p.add_argument("--no-resume", action="store_true", help="start from scratch even if OUT has a checkpoint")
    p.add_argument("--resume", action="store_true", help="resume from OUT/checkpoint.pt (the default when it exists)")
    return p.parse_args(argv)


def _main(argv=None) -> int:
    args = parse_args(argv)
    try:
        if args.resume and args.no_resume:
            raise UserError("--resume and --no-resume contradict each other; give one of them")
        cfg = load_config(args.config, args.overrides)
        out = args.out or str(Path("runs") / Path(args.config).stem)
        if args.resume and not (Path(out) / CHECKPOINT).exists():
            raise FileNotFoundError(f"--resume: no checkpoint at {Path(out) / CHECKPOINT}")
        train(cfg, out, resume=not args.no_resume)
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
    return 0


def main(argv=None) -> int:
    """The command line; user errors print one line and exit 2 (see :mod:`minijepa.errors` for every code)."""
    return run_command(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
