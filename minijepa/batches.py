"""How a training batch is made: which images, which crops, which masks.

Every random choice here is a pure function of (seed, epoch, position), never of a global random state:
- the images of global batch i of an epoch are a slice of one seeded permutation of the dataset;
- each image's random-resized crop is drawn from a generator seeded by (seed, epoch, image index);
- the masks of global batch i are drawn from a generator seeded by (seed, epoch, i), for the *global*
  batch, and each process keeps its own slice.
So one process with batch 64 and two processes with 32 each see exactly the same images, crops and masks,
DataLoader workers can sample masks in the collate function, and resuming a run at step s needs nothing
but s (the data order position).
"""

from __future__ import annotations

import math

import torch
from torch.utils.data import Dataset, Sampler, default_collate
from torchvision.transforms.v2 import functional as TF

from .masks import MaskBatch

__all__ = ["mix_seed", "random_resized_crop_box", "SeededCrops", "GlobalBatchSampler", "MaskingCollator"]

_MASK64 = (1 << 64) - 1


def mix_seed(*values: int) -> int:
    """Hash integers into one 63-bit seed (splitmix64 steps), so nearby inputs give unrelated seeds."""
    state = 0x9E3779B97F4A7C15
    for v in values:
        state = (state ^ (int(v) & _MASK64)) & _MASK64
        state = (state + 0x9E3779B97F4A7C15) & _MASK64
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
        state = z ^ (z >> 31)
    return state >> 1


def random_resized_crop_box(
    height: int,
    width: int,
    scale: tuple[float, float],
    ratio: tuple[float, float],
    generator: torch.Generator,
) -> tuple[int, int, int, int]:
    """(top, left, h, w) of a crop covering a random ``scale`` of the area with a random aspect ratio.

    Same distribution as torchvision's RandomResizedCrop (area uniform in scale, log-uniform ratio, up to 10
    tries, then the largest centred crop within the ratio range), but drawn from ``generator``.
    """
    area = height * width
    log_lo, log_hi = math.log(ratio[0]), math.log(ratio[1])
    for _ in range(10):
        u = torch.rand(4, generator=generator).tolist()
        target_area = area * (scale[0] + (scale[1] - scale[0]) * u[0])
        aspect = math.exp(log_lo + (log_hi - log_lo) * u[1])
        w = int(round(math.sqrt(target_area * aspect)))
        h = int(round(math.sqrt(target_area / aspect)))
        if 0 < w <= width and 0 < h <= height:
            top = int(u[2] * (height - h + 1))
            left = int(u[3] * (width - w + 1))
            return top, left, h, w
    in_ratio = width / height  # fallback: centred crop with the ratio clamped into range
    if in_ratio < ratio[0]:
        w, h = width, int(round(width / ratio[0]))
    elif in_ratio > ratio[1]:
        h, w = height, int(round(height * ratio[1]))
    else:
        w, h = width, height
    return (height - h) // 2, (width - w) // 2, h, w


class SeededCrops(Dataset):
    """Wraps a dataset of (image tensor (C, H, W) in [0, 1], label) and applies a per-image seeded crop.

    Indexed by ``(index, epoch, batch)`` tuples from :class:`GlobalBatchSampler`; returns
    ``(image (C, S, S), label, tag)`` with tag = (epoch, batch number), used by :class:`MaskingCollator`, the image random-resized-cropped to S = ``image_size`` (the paper's
    only augmentation) and normalised with ``normalize``.
    """

    def __init__(self, dataset, image_size: int, crop_scale=(0.3, 1.0), seed: int = 0, normalize=None,
                 ratio=(3 / 4, 4 / 3)):
        self.dataset = dataset
        self.image_size = image_size
        self.crop_scale = tuple(crop_scale)
        self.ratio = tuple(ratio)
        self.seed = seed
        self.normalize = normalize

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key):
        index, epoch, batch = key
        image, label = self.dataset[index]
        g = torch.Generator().manual_seed(mix_seed(self.seed, 1, epoch, index))
        top, left, h, w = random_resized_crop_box(image.shape[-2], image.shape[-1], self.crop_scale, self.ratio, g)
        image = TF.resized_crop(image, top, left, h, w, [self.image_size, self.image_size], antialias=True)
        if self.normalize is not None:
            image = self.normalize(image)
        return image, label, torch.tensor([epoch, batch])


class GlobalBatchSampler(Sampler):
    """Yields this process's share of each global batch, tagged ``(index, epoch, batch_number)``.

    Per epoch the dataset is permuted with a generator seeded by (seed, epoch); global batch i is the slice
    [i*G, (i+1)*G) of that permutation; process r of R takes the r-th of R equal parts. The last incomplete
    batch is dropped. ``start_batch`` skips the batches already trained on when a run resumes mid-epoch.
    """

    def __init__(self, num_samples: int, global_batch: int, rank: int = 0, world_size: int = 1, seed: int = 0):
        if global_batch % world_size:
            raise ValueError(f"batch_size={global_batch} is not divisible by the number of processes {world_size}")
        if num_samples < global_batch:
            raise ValueError(f"the dataset has {num_samples} images, fewer than one batch of batch_size={global_batch}")
        self.num_samples = num_samples
        self.global_batch = global_batch
        self.local_batch = global_batch // world_size
        self.rank = rank
        self.world_size = world_size
        self.seed = seed
        self.epoch = 0
        self.start_batch = 0

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        self.epoch = epoch
        self.start_batch = start_batch

    def __len__(self) -> int:
        return self.num_samples // self.global_batch - self.start_batch

    def __iter__(self):
        g = torch.Generator().manual_seed(mix_seed(self.seed, 2, self.epoch))
        order = torch.randperm(self.num_samples, generator=g)
        lo = self.rank * self.local_batch
        for i in range(self.start_batch, self.num_samples // self.global_batch):
            batch = order[i * self.global_batch:(i + 1) * self.global_batch][lo:lo + self.local_batch]
            yield [(int(j), self.epoch, i) for j in batch]


class MaskingCollator:
    """collate_fn that stacks images and labels and samples this process's masks for the batch.

    Masks are drawn for the whole global batch from a generator seeded by (seed, epoch, batch number) and
    sliced, so they do not depend on how many processes or workers there are. Picklable, so it runs inside
    DataLoader workers.
    """

    def __init__(self, mask_sampler, global_batch: int, rank: int = 0, world_size: int = 1, seed: int = 0):
        self.mask_sampler = mask_sampler
        self.global_batch = global_batch
        self.local_batch = global_batch // world_size
        self.rank = rank
        self.seed = seed

    def masks_for(self, epoch: int, batch: int) -> MaskBatch:
        g = torch.Generator().manual_seed(mix_seed(self.seed, 3, epoch, batch))
        masks = self.mask_sampler.sample(self.global_batch, generator=g)
        lo, hi = self.rank * self.local_batch, (self.rank + 1) * self.local_batch
        return MaskBatch(masks.context[lo:hi], masks.targets[lo:hi], masks.grid)

    def __call__(self, items):
        images, labels, tags = default_collate(items)  # (B, C, S, S), (B,), (B, 2)
        epoch, batch = tags[0].tolist()
        return images, labels, self.masks_for(epoch, batch)
