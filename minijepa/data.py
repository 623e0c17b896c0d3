"""Data for I-JEPA: an embedded procedural dataset, the paper's only augmentation, real data sets, photos.

I-JEPA learns without hand-crafted view augmentations: the only transform is a random resized crop
(scale 0.3-1.0). What the model learns comes from masking, not from colour jitter or flips.

So that the course runs on a laptop with nothing to download, :class:`ShapesDataset` draws its images
in code: coloured shapes on textured backgrounds, with labels for probing what an encoder learned,
loosely in the spirit of the paper's low-level tasks Clevr/Count and Clevr/Dist.
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from .errors import UserError

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "normalize",
    "denormalize",
    "ShapesDataset",
    "train_transform",
    "eval_transform",
    "build_dataset",
    "DATASETS",
    "PHOTO_NAMES",
    "load_photos",
    "load_photo",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _channel_stats(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    # (3, 1, 1): broadcasts over (3, H, W) and (B, 3, H, W) alike.
    mean = torch.tensor(IMAGENET_MEAN, dtype=x.dtype, device=x.device).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=x.dtype, device=x.device).view(3, 1, 1)
    return mean, std


def normalize(x: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) or (3, H, W) in [0, 1] -> ImageNet-normalized (zero mean, unit std per channel)."""
    mean, std = _channel_stats(x)
    return (x - mean) / std


def denormalize(x: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`normalize`, clamped to [0, 1] so the result can be shown with imshow."""
    mean, std = _channel_stats(x)
    return (x * std + mean).clamp(0, 1)


# ----------------------------------------------------------------------------------------------------
# The embedded dataset
# ----------------------------------------------------------------------------------------------------

# Sizes are fractions of the image side, so a seed draws the same scene at 32 px and at 224 px.
# An object's *size* s is the square root of its area (a fraction of the side): shapes of one size cover
# the same number of pixels whatever their kind, so neither the mean colour nor the painted area tells
# the shape, and "size" means what a viewer sees. Its circumradius R (the smallest circle around its
# centre holding it, used to place objects apart) is s / sqrt(area of the shape at R = 1).
_SIZES = (0.25, 0.32, 0.39)  # the largest object: small, medium, large (three sizes, as dSprites has scales)
_OTHER_SIZE = 0.17  # the 0-2 other objects: one size, so their count is their painted area
_MAX_OBJECTS = 3  # a scene holds 1.._MAX_OBJECTS objects (uniformly); there are always 4 slots, unused ones absent
_SIZE_JITTER = 0.004  # +- on every size: edges fall at different sub-pixel places, labels stay unambiguous
_TILT = math.radians(10)  # objects stand upright, tilted by at most this: each shape keeps its silhouette
_GAP = 0.03  # free space between bounding circles, so every object stays a separate blob
_MIDLINE_MARGIN = 0.05  # the largest object's centre keeps this far from the midlines: quadrant is never ambiguous
_CANDIDATES = 256  # candidate positions tried for each small object (rejection sampling, vectorized)
_UNIFORMS = 1664  # random numbers drawn per image (a fixed count: image i never depends on the others)
_NOISE_GRID = 5  # background noise: a 5 x 5 grid of random values, smoothly upsampled
_STREAMS = {"train": 0, "test": 1}  # independent random streams for the two splits of one seed


def _circle(x, y, r):
    return torch.hypot(x, y) - r


def _ring(x, y, r):
    # Annulus between radii 0.55 r and r: its hole shows the background, unlike the filled circle.
    return (torch.hypot(x, y) - 0.775 * r).abs() - 0.225 * r


def _triangle(x, y, r):
    # Equilateral triangle = intersection of 3 half-planes at distance r/2 (the inradius) from the centre.
    d = [x * math.cos(a) + y * math.sin(a) for a in (math.pi / 2, 7 * math.pi / 6, 11 * math.pi / 6)]
    return torch.maximum(torch.maximum(d[0], d[1]), d[2]) - r / 2


def _cross(x, y, r):
    # Union (min) of two bars of half length L and half width 0.3 L, with sqrt(L^2 + w^2) = R.
    half_len = r / math.sqrt(1 + 0.3**2)
    half_wid = 0.3 * half_len
    bar_h = torch.maximum(x.abs() - half_len, y.abs() - half_wid)
    bar_v = torch.maximum(x.abs() - half_wid, y.abs() - half_len)
    return torch.minimum(bar_h, bar_v)


# Signed distance functions in pixels (negative inside). Coverage clamp(0.5 - sdf, 0, 1) anti-aliases
# the edge over one pixel, so even a 32 px image shows clean shapes.
_SHAPES = {"circle": _circle, "ring": _ring, "triangle": _triangle, "cross": _cross}
# Area of each shape at circumradius R = 1 (same order): pi, pi (1 - 0.55^2), 3 sqrt(3) / 4, and for the
# cross two bars 2L x 0.6L minus their shared 0.6L x 0.6L square, L^2 = 1 / 1.09.
_UNIT_AREA = torch.tensor([math.pi, math.pi * (1 - 0.55**2), 3 * math.sqrt(3) / 4, (2 * 1.2 - 0.36) / 1.09],
                          dtype=torch.float64)


def _hsv_to_rgb(h: torch.Tensor, s: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """(...,) hue, saturation, value in [0, 1] -> (..., 3) RGB in [0, 1]."""
    k = (torch.tensor([5.0, 3.0, 1.0], dtype=h.dtype) + h[..., None] * 6) % 6
    return v[..., None] * (1 - s[..., None] * torch.clamp(torch.minimum(k, 4 - k), 0, 1))


class _Uniforms:
    """Hands out columns of a (B, n) table of uniforms, one row per image, in a fixed order."""

    def __init__(self, u: torch.Tensor):
        self.u, self.pos = u, 0

    def take(self, *shape: int) -> torch.Tensor:  # (B, *shape)
        n = math.prod(shape)
        if self.pos + n > self.u.shape[1]:
            raise RuntimeError(f"scene sampling needs more than the {self.u.shape[1]} random numbers per image it draws")
        out = self.u[:, self.pos : self.pos + n].reshape(-1, *shape)
        self.pos += n
        return out


def data_version(dataset: str) -> int | None:
    """Which version of its images a data set name draws: the embedded data's ``ShapesDataset.VERSION`` (its
    images are code and change with it); None for data read from disk."""
    return ShapesDataset.VERSION if dataset == "shapes" else None


class ShapesDataset(Dataset):
    """1-3 coloured shapes of one kind on a smooth textured background, drawn in code: the course's default data set.

    Image i is a pure function of (seed, split, i): its random numbers come from its own stream
    ``numpy.random.default_rng([seed, stream, i])`` and it consumes a fixed count of them, so it does
    not depend on ``num_images`` nor on how images are batched; ``split="test"`` uses another stream,
    so train and test never share an image. Objects never overlap (every object is a separate blob),
    colours and backgrounds are random and independent of the labels.

    Labels (``TASKS``), the spirit of Clevr/Count and Clevr/Dist: ``shape`` of the objects (circle, ring,
    triangle, cross; every object of a scene has the same shape, so the label describes the whole image,
    as an image class does), ``count`` of objects (class c = c + 1 objects), ``position`` (quadrant of the
    largest object's centre: top-left, top-right, bottom-left, bottom-right) and ``size`` of the largest
    object (small, medium, large: three sizes, as dSprites has scales). The other objects share one smaller
    size, so "the largest" is never in doubt. Sizes are areas: objects of one size cover the same number of
    pixels whatever their shape. All labels are roughly balanced and independent of each other.

    Why these choices: a label must be learnable by the course's small ViT in the default run's budget, or
    a probe that fails on it says nothing about self-supervision. With 8 x 8 patches an object is 2-4 patches
    wide, so shapes are chosen to differ at that scale (a ring's hole, a cross's arms, a triangle's point,
    a disc), the background varies slowly (no edges of its own), and the other objects all have one size,
    so how many there are shows in how much of the image they cover. The supervised ceiling
    (``python -m minijepa.supervised``, ``assets/cpu_default/supervised.json``) measures each label: 91 / 84 /
    95 / 93 % (shape / count / position / size) on the test split. Version 1 of this data set (other objects
    0.13 of the side, 1-4 per scene) reached only 75 % on count, off by one between 2, 3 and 4 objects (the
    largest object's three sizes changed the painted area more than one small object did);
    ``tools/ceiling_attempts.py`` recorded what lifts it on validation images
    (``assets/cpu_default/ceiling_attempts.jsonl``): flips, larger other objects alone, at most three objects
    alone or a higher learning rate do not (60-76 %); other objects of size 0.17 *and* at most three objects
    per scene do (83 % on count, the other labels at 91-99 %): version 2, this one.

    Memory: all images are drawn at construction and kept as uint8, N * 3 * S * S bytes
    (2048 images at 64 px: 25 MB; at 224 px: 308 MB).
    """

    # Raised whenever the drawn images or their labels change: results made on the data (a supervised
    # ceiling, sweep baselines) record it, so a result is never shown beside a run on other images.
    VERSION = 2  # 2: other objects 0.17 (was 0.13), 1-3 objects per scene (was 1-4)
    TASKS = ("shape", "count", "position", "size")
    CLASS_NAMES = {
        "shape": tuple(_SHAPES),
        "count": ("1", "2", "3"),
        "position": ("top-left", "top-right", "bottom-left", "bottom-right"),
        "size": ("small", "medium", "large"),
    }

    def __init__(self, num_images: int = 2048, image_size: int = 64, seed: int = 0, task: str = "shape",
                 transform=None, split: str = "train"):
        if not 32 <= image_size <= 224:
            raise ValueError(f"image_size must be between 32 and 224, got image_size={image_size}")
        if num_images < 1 or seed < 0:
            raise ValueError(f"need num_images >= 1 and seed >= 0, got {num_images} and {seed}")
        if split not in _STREAMS:
            raise ValueError(f"unknown split {split!r}, choose from {tuple(_STREAMS)}")
        self.image_size, self.seed, self.split, self.transform = image_size, seed, split, transform
        self.task = task
        self.scenes = self._sample_scenes(torch.arange(num_images))
        chunk = max(1, 2**20 // image_size**2)  # render ~1M pixels at a time to bound temporary memory
        self.images = torch.cat([self._render(self.scenes, slice(i, i + chunk))[0]
                                 for i in range(0, num_images, chunk)])  # (N, 3, S, S) uint8
        self.labels = {
            "shape": self.scenes["shape"][:, 0].clone(),
            "count": self.scenes["present"].sum(1) - 1,
            "position": self.scenes["quadrant"].clone(),
            "size": self.scenes["size_class"].clone(),
        }  # task -> (N,) int64

    @property
    def task(self) -> str:
        return self._task

    @task.setter
    def task(self, task: str):
        self.num_classes(task)  # validates
        self._task = task

    @classmethod
    def num_classes(cls, task: str) -> int:
        if task not in cls.TASKS:
            raise ValueError(f"unknown task {task!r}, choose from {cls.TASKS}")
        return len(cls.CLASS_NAMES[task])

    @property
    def classes(self) -> tuple[str, ...]:
        """Class names of the current task (like torchvision's ``dataset.classes``)."""
        return self.CLASS_NAMES[self.task]

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        image = self.images[i].float() / 255  # (3, S, S) in [0, 1]
        if self.transform is not None:
            image = self.transform(image)
        return image, int(self.labels[self.task][i])

    def object_masks(self, i: int) -> torch.Tensor:
        """(num_objects, S, S) coverage in [0, 1] of each object of image i, largest first (redrawn)."""
        _, coverage, owner = self._render(self.scenes, slice(i, i + 1))
        return coverage[owner[:, 1].argsort()]

    # --- drawing ---------------------------------------------------------------------------------

    def _sample_scenes(self, index: torch.Tensor) -> dict[str, torch.Tensor]:
        """All random choices, vectorized over images; positions and radii are fractions of the side."""
        rows = [np.random.default_rng([self.seed, _STREAMS[self.split], int(i)]).random(_UNIFORMS) for i in index]
        u = _Uniforms(torch.from_numpy(np.stack(rows)))  # (B, _UNIFORMS) float64 in [0, 1)
        B = len(index)
        count = (u.take(1)[:, 0] * _MAX_OBJECTS).long() + 1  # (B,) 1.._MAX_OBJECTS objects
        present = torch.arange(4) < count[:, None]  # (B, 4), slot 0 is the largest object
        shape = (u.take(1) * len(_SHAPES)).long().expand(B, 4)  # (B, 4): every object of a scene has one shape
        angle = (2 * u.take(4) - 1) * _TILT  # (B, 4)
        size_class = (u.take(1)[:, 0] * len(_SIZES)).long()  # (B,) 0 small, 1 medium, 2 large
        size = torch.full((B, 4), _OTHER_SIZE, dtype=torch.float64)
        size[:, 0] = torch.tensor(_SIZES, dtype=torch.float64)[size_class]
        size = size + (2 * u.take(4) - 1) * _SIZE_JITTER  # (B, 4)
        radius = size / _UNIT_AREA[shape].sqrt()  # (B, 4) circumradius

        # The largest object: pick a quadrant, then a centre inside it that keeps the object in the image.
        quadrant = (u.take(1)[:, 0] * 4).long()  # (B,) 0 TL, 1 TR, 2 BL, 3 BR
        side = torch.stack([quadrant % 2, quadrant // 2], 1)  # (B, 2) (x, y): 0 = left/top, 1 = right/bottom
        r0 = radius[:, :1]  # (B, 1)
        offset = r0 + u.take(2) * (0.5 - _MIDLINE_MARGIN - r0)  # distance from the nearest image edge
        centre = torch.zeros(B, 4, 2, dtype=torch.float64)
        centre[:, 0] = torch.where(side == 0, offset, 1 - offset)

        # Smaller objects: the first of 64 random candidates clear of the objects already placed.
        for j in range(1, 4):
            rj = radius[:, j, None]  # (B, 1)
            cand = rj[..., None] + u.take(_CANDIDATES, 2) * (1 - 2 * rj[..., None])  # (B, C, 2)
            dist = (cand[:, :, None] - centre[:, None, :j]).norm(dim=-1)  # (B, C, j)
            clear = dist - radius[:, None, :j] - rj[..., None] - _GAP  # (B, C, j), >= 0 is free
            clear = torch.where(present[:, None, :j], clear, torch.inf).amin(-1)  # (B, C)
            best = torch.where(clear >= 0, 0, 1).argmin(1)  # first free candidate, or 0 if none
            best = torch.where(clear.amax(1) >= 0, best, clear.argmax(1))  # none free: the roomiest...
            slack = clear.gather(1, best[:, None])[:, 0]  # ...shrunk to fit (very rare)
            radius[:, j] = torch.where(slack < 0, (radius[:, j] + slack).clamp(min=0.5 * radius[:, j]), radius[:, j])
            centre[:, j] = cand[torch.arange(B), best]

        # Colours: a background palette of one hue and moderate contrast, objects in saturated, roughly
        # complementary hues.
        bg_hue = u.take(1)
        hue = (bg_hue + 0.25 + 0.5 * u.take(4)) % 1  # (B, 4)
        colour = _hsv_to_rgb(hue, 0.65 + 0.35 * u.take(4), 0.7 + 0.3 * u.take(4))  # (B, 4, 3)
        palette = _hsv_to_rgb((bg_hue + 0.2 * u.take(2) - 0.1) % 1, 0.1 + 0.5 * u.take(2),
                              torch.tensor([0.25, 0.55]) + 0.3 * u.take(2))  # (B, 2, 3) dark, light
        size = radius * _UNIT_AREA[shape].sqrt()  # (B, 4) after any shrinking
        return dict(count=count, present=present, shape=shape, angle=angle, radius=radius, size=size,
                    size_class=size_class, centre=centre,
                    quadrant=quadrant, colour=colour, palette=palette,
                    stripes=u.take(4), noise=u.take(_NOISE_GRID, _NOISE_GRID))

    def _render(self, scenes: dict[str, torch.Tensor], rows: slice):
        """Draw images ``rows``: (B, 3, S, S) uint8, per-object coverage (n, S, S), owner (n, 2) = (image, slot)."""
        sc = {k: v[rows] for k, v in scenes.items()}
        B, S = len(sc["count"]), self.image_size
        grid = (torch.arange(S, dtype=torch.float32) + 0.5) / S  # pixel centres as fractions of the side
        gy, gx = grid.view(1, S, 1), grid.view(1, 1, S)  # (1, S, 1), (1, 1, S)

        # Background: a texture t in [0, 1] (smooth noise blended with broad waves) maps dark -> light colour.
        # Both vary slowly (waves of 0.5-2 periods per image): the background has no sharp edges of its own,
        # so the objects' outlines are the image's edges.
        st = sc["stripes"].float()  # (B, 4): frequency, orientation, phase, blend
        noise = F.interpolate(sc["noise"].float()[:, None], size=(S, S), mode="bicubic", align_corners=True)[:, 0]
        freq, theta = (0.5 + 1.5 * st[:, 0]).view(B, 1, 1), (math.pi * st[:, 1]).view(B, 1, 1)
        stripes = 0.5 + 0.5 * torch.sin(2 * math.pi * (freq * (gx * theta.cos() + gy * theta.sin()) + st[:, 2, None, None]))
        t = (st[:, 3, None, None] * noise + (1 - st[:, 3, None, None]) * stripes).clamp(0, 1)  # (B, S, S)
        dark, light = sc["palette"].float().unbind(1)  # (B, 3) each
        image = dark[:, :, None, None] + t[:, None] * (light - dark)[:, :, None, None]  # (B, 3, S, S)

        # Objects: one coverage map per present object, computed shape by shape.
        owner = sc["present"].nonzero()  # (n, 2) (image, slot)
        b, j = owner.unbind(1)
        cx, cy = (sc["centre"][b, j].float() * S).unbind(1)  # (n,) centre in pixels
        r, a = (sc["radius"][b, j] * S).float().view(-1, 1, 1), sc["angle"][b, j].float().view(-1, 1, 1)
        dx, dy = gx * S - cx.view(-1, 1, 1), gy * S - cy.view(-1, 1, 1)  # (n, S, S) offsets in pixels
        x, y = a.cos() * dx + a.sin() * dy, -a.sin() * dx + a.cos() * dy  # rotated into the object's frame
        sdf = torch.empty(len(owner), S, S)
        for k, shape_sdf in enumerate(_SHAPES.values()):
            sel = sc["shape"][b, j] == k
            sdf[sel] = shape_sdf(x[sel], y[sel], r[sel])
        coverage = (0.5 - sdf).clamp(0, 1)  # (n, S, S), anti-aliased over one pixel

        # Objects never overlap, so compositing is a sum: image * (1 - alpha) + sum of colour * coverage.
        alpha = torch.zeros(B, S, S).index_add_(0, b, coverage)
        paint = torch.zeros(B, 3, S, S).index_add_(0, b, coverage[:, None] * sc["colour"][b, j].float()[:, :, None, None])
        image = image * (1 - alpha[:, None]) + paint
        return (image * 255).round().clamp(0, 255).to(torch.uint8), coverage, owner


# --- transforms ------------------------------------------------------------------------------------


def train_transform(image_size: int, crop_scale=(0.3, 1.0), normalize: bool = True):
    """The paper's only augmentation: a random resized crop (scale 0.3-1.0), then ImageNet normalisation.

    Works on tensors and PIL images. It draws from torch's global RNG, which DataLoader seeds per worker;
    the training script uses :class:`minijepa.batches.SeededCrops` instead, whose crops are a pure function
    of (seed, epoch, index), so runs resume exactly.
    """
    from torchvision.transforms import v2

    steps = [v2.ToImage(), v2.RandomResizedCrop(image_size, scale=tuple(crop_scale), antialias=True),
             v2.ToDtype(torch.float32, scale=True)]
    if normalize:
        steps.append(v2.Normalize(IMAGENET_MEAN, IMAGENET_STD))
    return v2.Compose(steps + [v2.ToPureTensor()])  # a plain (3, S, S) tensor, not a tv_tensors.Image


def eval_transform(image_size: int, normalize: bool = True):
    """Resize the short side to ``image_size`` and centre-crop a square (no randomness)."""
    from torchvision.transforms import v2

    steps = [v2.ToImage(), v2.Resize(image_size, antialias=True), v2.CenterCrop(image_size),
             v2.ToDtype(torch.float32, scale=True)]
    if normalize:
        steps.append(v2.Normalize(IMAGENET_MEAN, IMAGENET_STD))
    return v2.Compose(steps + [v2.ToPureTensor()])  # a plain (3, S, S) tensor, not a tv_tensors.Image


# --- real data sets, from disk only ----------------------------------------------------------------

DATASETS = ("shapes", "imagefolder", "cifar10", "stl10")


def to_rgb(image):
    """Any PIL image as 8-bit RGB on the same [0, 1] scale as its 8-bit twin.

    ``Image.convert("RGB")`` alone clips 16- and 32-bit grey values at 255 (a 16-bit PNG comes out almost
    white) and drops transparency onto whatever colour the transparent pixels hold. Here: integer modes
    are rescaled from their bit depth, float images are taken as [0, 1], palette images with transparency
    and RGBA / LA images are composited over black, everything else goes through PIL's conversion
    (1-bit, L, P, CMYK, YCbCr, LAB, HSV).
    """
    from PIL import Image

    if image.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        array = np.asarray(image, dtype=np.float64)
        peak = 65535.0 if image.mode != "I" or array.max() > 255 else 255.0  # PIL opens 16-bit PNGs as "I"
        grey = np.clip(np.round(array / peak * 255), 0, 255).astype(np.uint8)
        return Image.fromarray(grey).convert("RGB")
    if image.mode == "F":
        grey = np.clip(np.round(np.asarray(image, dtype=np.float64) * 255), 0, 255).astype(np.uint8)
        return Image.fromarray(grey).convert("RGB")
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "La", "RGBa"):
        rgba = image.convert("RGBA")
        black = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        return Image.alpha_composite(black, rgba).convert("RGB")
    return image.convert("RGB")


def _checked_loader(path: str):
    """Open an image as RGB (:func:`to_rgb`); an unreadable file is a user error that names it."""
    from PIL import Image

    try:
        with open(path, "rb") as f:
            image = Image.open(f)
            image.load()
    except Exception as e:  # PIL raises several types for broken files
        raise UserError(f"cannot read image file {path}: {e} (remove or replace it)") from None
    return to_rgb(image)


def _folder_classes(folder: Path) -> list[str]:
    """Class names of an ImageFolder split: its sub-folders, sorted (torchvision's rule)."""
    return sorted(entry.name for entry in os.scandir(folder) if entry.is_dir())


def _relabel(folder_set, classes: list[str]):
    """Number an ImageFolder's labels by ``classes`` (the training split's list) instead of its own folders.

    torchvision numbers each split by its own sorted sub-folders, so a test split that lacks one class would
    silently shift every later label by one.
    """
    index = {c: i for i, c in enumerate(classes)}
    own = folder_set.classes
    folder_set.samples = [(path, index[own[y]]) for path, y in folder_set.samples]
    folder_set.imgs = folder_set.samples
    folder_set.targets = [y for _, y in folder_set.samples]
    folder_set.classes, folder_set.class_to_idx = list(classes), index
    return folder_set


def _split_folder(root: Path, split: str) -> Path:
    """ImageFolder root: ``root/split`` if it exists (``val`` accepted for ``test``).

    A folder without split subfolders is the train split only: reusing it as the test split would
    silently evaluate a probe on its own training images.
    """
    for name in ((split, "val") if split == "test" else (split,)):
        if (root / name).is_dir():
            return root / name
    if split == "test":
        raise FileNotFoundError(f"no test split in {root}: expected {root / 'test'} (or {root / 'val'}) "
                                f"next to {root / 'train'}, each holding <class>/<image> folders")
    return root


def build_dataset(name: str, root: str | None = None, split: str = "train", image_size: int = 64,
                  transform=None, **kwargs):
    """A data set by name; real data must already be on disk (never downloaded).

    - ``shapes``: :class:`ShapesDataset` (``kwargs``: num_images, seed, task);
    - ``imagefolder``: ``root/<class>/<image>``, or ``root/train/...`` and ``root/val/...`` per split;
    - ``cifar10`` / ``stl10``: torchvision's files in ``root`` (as torchvision's download would leave them).
    Items are ``(image, label)``; ``transform`` (default: :func:`eval_transform`) maps a PIL image to a tensor.
    """
    if name not in DATASETS:
        raise UserError(f"unknown dataset {name!r}; choose one of {DATASETS}")
    if split not in ("train", "test"):
        raise UserError(f"unknown split {split!r}; choose train or test")
    if name == "shapes":
        return ShapesDataset(image_size=image_size, transform=transform, split=split, **kwargs)
    if root is None:
        raise UserError(f"dataset {name!r} needs data.root, the folder that holds it")
    root_path = Path(root).expanduser()
    if not root_path.is_dir():
        raise FileNotFoundError(f"data folder not found: {root_path} (for {name}: put the files there first; "
                                f"nothing is downloaded)")
    transform = transform if transform is not None else eval_transform(image_size)
    import torchvision

    if name == "imagefolder":
        folder = _split_folder(root_path, split)
        classes = None
        if split == "test":  # label numbers must mean the same class in both splits: take the training split's
            classes = _folder_classes(_split_folder(root_path, "train"))
            found = _folder_classes(folder)
            unknown = sorted(set(found) - set(classes))
            if unknown:
                raise UserError(f"{folder} has class folder(s) {unknown} that the training split "
                                f"{_split_folder(root_path, 'train')} does not have")
            missing = sorted(set(classes) - set(found))
            if missing:
                print(f"warning: {folder} has no images of class(es) {missing} of the training split; "
                      f"the other labels keep the training split's numbers", file=sys.stderr)
        try:
            folder_set = torchvision.datasets.ImageFolder(str(folder), transform=transform, loader=_checked_loader)
        except FileNotFoundError as e:
            raise FileNotFoundError(f"no images found in {folder}: expected {folder}/<class>/<image>.png|jpg ({e})") from None
        return _relabel(folder_set, classes) if classes is not None else folder_set
    try:
        if name == "cifar10":
            return torchvision.datasets.CIFAR10(str(root_path), train=split == "train", transform=transform, download=False)
        return torchvision.datasets.STL10(str(root_path), split=split, transform=transform, download=False)
    except RuntimeError as e:  # torchvision: "Dataset not found or corrupted. You can use download=True ..."
        raise FileNotFoundError(
            f"{name} files not found in {root_path}: download them once with torchvision "
            f"(torchvision.datasets.{'CIFAR10' if name == 'cifar10' else 'STL10'}(root, download=True)) "
            f"on a machine with internet; minijepa never downloads ({e})"
        ) from None


# --- real photographs for the course's figures ------------------------------------------------------

_PHOTO_FILES = {"astronaut": "astronaut.png", "chelsea": "chelsea.png", "coffee": "coffee.png",
                "rocket": "rocket.jpg", "motorcycle": "motorcycle_left.png"}  # files inside skimage/data/
PHOTO_NAMES = tuple(_PHOTO_FILES)


def load_photo(name: str, image_size: int | None = None) -> torch.Tensor:
    """A real photograph bundled with scikit-image (no download): (3, H, W) float in [0, 1].

    With ``image_size``, centre-cropped to a square and resized to image_size x image_size.
    """
    if name not in PHOTO_NAMES:
        raise ValueError(f"unknown photo {name!r}; choose one of {PHOTO_NAMES}")
    import skimage.data
    import skimage.io

    array = skimage.io.imread(Path(skimage.data.data_dir) / _PHOTO_FILES[name])[..., :3]  # (H, W, 3) uint8
    image = torch.from_numpy(np.ascontiguousarray(array)).permute(2, 0, 1).float() / 255  # (3, H, W)
    if image_size is not None:
        h, w = image.shape[1:]
        side = min(h, w)
        top, left = (h - side) // 2, (w - side) // 2
        image = image[:, top:top + side, left:left + side]
        image = F.interpolate(image[None], size=(image_size, image_size), mode="bilinear",
                              antialias=True, align_corners=False)[0].clamp(0, 1)
    return image


def load_photos(image_size: int | None = None, names=PHOTO_NAMES) -> dict[str, torch.Tensor]:
    """Several photographs by name (see :func:`load_photo`)."""
    return {name: load_photo(name, image_size) for name in names}
