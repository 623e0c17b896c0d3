"""The supervised ceiling: the same encoder trained *with labels*, in the same budget, probed the same way.

    python -m minijepa.supervised --config configs/cpu_default.yaml --out assets/cpu_default/supervised.json

"36 % on shape" means nothing alone: is the label hard for any model of this size in this many steps, or
did self-supervision fail? This command answers the first half. It trains the run's encoder architecture
from the same initial weights, with one linear head per label on the mean-pooled tokens (cross-entropy,
summed over the labels), for the run's number of steps and batch size, with the run's AdamW schedules
(warm-up + cosine learning rate, cosine weight decay). Then the trained encoder is frozen and probed with
exactly the report's protocol (:func:`minijepa.evaluate.evaluate_encoders`); the heads' own test accuracy
is kept too.

Data: the run's training images. Crops follow the run's ``data.crop_scale`` for data sets whose labels
survive a crop (an ImageFolder's classes); the embedded data set's labels describe the *whole* image (how
many objects, in which quadrant, how large), which a random crop changes, so there it trains on the
uncropped images.

The result file records the config it belongs to (:func:`minijepa.evaluate.ceiling_fingerprint`); the
end-of-run report shows it only for a run with the same fingerprint (``run.ceiling`` names the file).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from . import data as data_lib
from .batches import GlobalBatchSampler, SeededCrops
from .build import build_encoder
from .config import Config, load_config
from .errors import UserError, run_command
from .evaluate import ceiling_fingerprint, chance_levels, evaluate_encoders, format_summary, probe_sets
from .schedules import cosine, param_groups, set_hyperparameters, warmup_cosine

__all__ = ["train_supervised", "main"]


class _WholeImages(torch.utils.data.Dataset):
    """The embedded data set's images, normalised and uncropped, with every label: (image, {task: label})."""

    def __init__(self, shapes: data_lib.ShapesDataset):
        self.shapes = shapes

    def __len__(self) -> int:
        return len(self.shapes)

    def __getitem__(self, key):
        index = key[0]  # (index, epoch, batch) from GlobalBatchSampler
        image = data_lib.normalize(self.shapes.images[index].float() / 255)  # (3, S, S)
        return image, {t: int(y[index]) for t, y in self.shapes.labels.items()}


class _CroppedWithLabel(torch.utils.data.Dataset):
    """A real data set with the run's seeded crops: (image, {"label": class})."""

    def __init__(self, crops: SeededCrops):
        self.crops = crops

    def __len__(self) -> int:
        return len(self.crops)

    def __getitem__(self, key):
        image, label, _ = self.crops[key]
        return image, {"label": int(label)}


def _training_data(cfg: Config):
    d, size = cfg.data, cfg.model.image_size
    if d.dataset == "shapes":
        shapes = data_lib.ShapesDataset(d.num_images, image_size=size, seed=cfg.run.seed)
        return _WholeImages(shapes), {t: shapes.num_classes(t) for t in shapes.TASKS}
    from torchvision.transforms import v2

    to_tensor = v2.Compose([v2.ToImage(), v2.ToDtype(torch.float32, scale=True)])
    train_set = data_lib.build_dataset(d.dataset, root=d.root, split="train", image_size=size, transform=to_tensor)
    num_classes = len(getattr(train_set, "classes", [])) or 1 + max(int(y) for _, y in train_set)
    crops = SeededCrops(train_set, size, d.crop_scale, cfg.run.seed, normalize=data_lib.normalize)
    return _CroppedWithLabel(crops), {"label": num_classes}


def train_supervised(cfg: Config, quiet: bool = False) -> tuple[nn.Module, nn.ModuleDict, dict]:
    """(the trained encoder, its heads, {"steps", "final_loss", "seconds"}) for the run described by ``cfg``."""
    if cfg.run.threads:
        torch.set_num_threads(cfg.run.threads)
    torch.manual_seed(cfg.run.seed)  # the same initial encoder weights as the I-JEPA run's context encoder
    encoder = build_encoder(cfg)
    dataset, num_classes = _training_data(cfg)
    heads = nn.ModuleDict({t: nn.Linear(encoder.embed_dim, n) for t, n in num_classes.items()})
    o = cfg.optim
    steps_per_epoch = len(dataset) // o.batch_size
    total_steps = steps_per_epoch * o.epochs
    stop_step = min(total_steps, o.max_steps) if o.max_steps else total_steps
    warmup = min(int(round(o.warmup_epochs * steps_per_epoch)), total_steps)
    optimizer = torch.optim.AdamW(param_groups(encoder, heads), lr=o.lr, betas=o.betas)
    sampler = GlobalBatchSampler(len(dataset), o.batch_size, seed=cfg.run.seed)
    loader = torch.utils.data.DataLoader(dataset, batch_sampler=sampler, num_workers=cfg.data.num_workers,
                                         generator=torch.Generator())
    step, start, loss = 0, time.perf_counter(), torch.tensor(math.nan)
    encoder.train()
    while step < stop_step:
        epoch, start_batch = divmod(step, steps_per_epoch)
        sampler.set_epoch(epoch, start_batch)
        for images, labels in loader:
            set_hyperparameters(optimizer, warmup_cosine(step, total_steps, warmup, o.lr_start, o.lr, o.lr_final),
                                cosine(step, total_steps, *o.weight_decay))
            pooled = encoder(images).mean(dim=1)  # (B, N, D) -> (B, D)
            loss = sum(F.cross_entropy(heads[t](pooled), labels[t]) for t in heads)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            if not quiet and (step % 50 == 0 or step == stop_step):
                print(f"step {step}/{stop_step}  loss {loss.item():.4f}", flush=True)
            if step >= stop_step:
                break
    return encoder.eval(), heads.eval(), {"steps": step, "final_loss": loss.item(), "seconds": time.perf_counter() - start}


@torch.no_grad()
def head_accuracy(encoder: nn.Module, heads: nn.ModuleDict, images: torch.Tensor, labels: dict) -> dict:
    """Test accuracy of the trained heads themselves (the encoder is not frozen for them: an upper reference)."""
    pooled = torch.cat([encoder(images[i:i + 256]).mean(dim=1) for i in range(0, len(images), 256)])  # (N, D)
    return {t: (heads[t](pooled).argmax(1) == labels[t]).float().mean().item() for t in heads if t in labels}


def main(argv=None) -> int:
    """The command line; user errors print one line and exit 2 (minijepa.errors)."""
    return run_command(_main, argv)


def _main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m minijepa.supervised", description=__doc__.split("\n\n")[0])
    p.add_argument("--config", default="configs/cpu_default.yaml")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE")
    p.add_argument("--out", default=None, help="result JSON (default: the config's run.ceiling, else supervised.json)")
    args = p.parse_args(argv)
    cfg = load_config(args.config, args.overrides)
    out = Path(args.out or cfg.run.ceiling or "supervised.json")
    if out.is_dir():
        raise UserError(f"--out {out} is a folder; give the result file's name, e.g. {out / 'supervised.json'}")
    encoder, heads, info = train_supervised(cfg)
    sets = probe_sets(cfg)
    probes = evaluate_encoders({"supervised": encoder}, sets, pixels=False)
    result = {
        "fingerprint": ceiling_fingerprint(cfg),
        "probes": probes,
        "heads": head_accuracy(encoder, heads, sets[2], sets[3]),
        "chance": chance_levels(sets[3]),
        "command": " ".join(["python -m minijepa.supervised", "--config", args.config]
                            + [f"--set {o}" for o in args.overrides]),
        **info,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(json.dumps(result, indent=2))
    tmp.replace(out)
    print(format_summary({"probes": probes, "chance": result["chance"]}))
    print("heads (encoder trained with the labels): "
          + ", ".join(f"{t} {100 * a:.1f}" for t, a in result["heads"].items()))
    print(f"written to {out} ({info['seconds'] / 60:.1f} min of training)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
