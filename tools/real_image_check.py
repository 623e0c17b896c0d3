"""The default recipe on real images: handwritten digits on flat and on photographed backgrounds.

The embedded shapes are synthetic; this check asks whether the course's recipe also learns from real
pixels, and whether its predictor then still uses the image. Nothing is downloaded: the digits are
scikit-learn's bundled scans of handwriting (``sklearn.datasets.load_digits``: 1797 digits, 8 x 8 pixels,
43 writers), the backgrounds are photographs bundled with scikit-image (textures of brick, grass and gravel,
and photos of coffee, a cat, coins, a rocket, ...). Each 64 x 64 image shows one digit, upscaled to 40-56
pixels with crisp strokes, at a random place, in a random dark colour; half of the images have a *flat*
background of one random light colour (where a predictor can guess much of a target from its position
alone), half a random crop of a photograph, lightened (*textured*). The label is the digit (10 classes).
The writers' digits are split before rendering: no scan of the test split is in the training split.

Earlier versions of the folder (smaller digits in any colour, either darker or lighter than full-contrast
photographs) were not learnable in the recipe's budget even with labels: every attempt, with its design and
numbers, is in ``assets/real_images/attempts.jsonl``.

    python tools/real_image_check.py                  # write the folder, train, probe (~12 min on 2 cores)
    python tools/real_image_check.py --write-only     # only write runs/real_digits/{train,test}/<digit>/*.png
    python tools/real_image_check.py --ceiling        # first the supervised ceiling on the same images (+5 min)
    python tools/real_image_check.py --set optim.epochs=2 --out runs/real_check_short

The run is the pretraining script on ``configs/cpu_default.yaml`` with ``data.dataset=imagefolder``, so its
report is the default run's (validated linear probe and k-NN of both encoders, random init, pixels, the
predictor's context check); this tool adds the context check on the flat and on the textured test images
separately, and writes it all to ``<out>/real_check.json``. The shipped result: ``assets/real_images/``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from minijepa import data as data_lib  # noqa: E402
from minijepa.build import build_mask_sampler, load_trained_model  # noqa: E402
from minijepa import supervised  # noqa: E402
from minijepa.config import load_config  # noqa: E402
from minijepa.evaluate import ceiling_fingerprint  # noqa: E402
from minijepa.report import context_use  # noqa: E402
from minijepa.train import train  # noqa: E402

BACKGROUND_FILES = ("brick.png", "grass.png", "gravel.png", "coffee.png", "chelsea.png", "coins.png",
                    "rocket.jpg", "astronaut.png", "motorcycle_left.png", "camera.png")  # in skimage/data/
TEST_DIGITS = 397  # the last 397 of a seeded permutation of the 1797 scans; the other 1400 are for training
DIGIT_PIXELS = (40, 56)  # side of the upscaled digit in the 64-pixel image: strokes span several pixels
STROKE = (0.4, 0.7)  # the upscaled ink (0-1) is remapped to coverage by this ramp: crisp, not blurred, strokes
LIGHT = 0.55  # backgrounds are light (flat colours in [LIGHT, 1], photos mapped into it) ...
INK = 0.3  # ... and the ink dark (each channel in [0, INK]): a digit is always darker than what is around it
VERSION = 3  # bump when the rendering changes: a folder of another version is rewritten


def load_backgrounds() -> list[np.ndarray]:
    """The photographs, (H, W, 3) float in [0, 1]; grey ones repeated to three channels."""
    import skimage.data
    import skimage.io

    photos = []
    for name in BACKGROUND_FILES:
        a = skimage.io.imread(Path(skimage.data.data_dir) / name).astype(np.float32) / 255
        a = np.repeat(a[..., None], 3, axis=2) if a.ndim == 2 else a[..., :3]
        photos.append(a)
    return photos


def _photo_crop(photo: np.ndarray, rng: np.random.Generator, size: int) -> np.ndarray:
    """A random square crop (a quarter to all of the shorter side), resized to size x size."""
    h, w = photo.shape[:2]
    side = int(rng.integers(min(h, w) // 4, min(h, w) + 1))
    top, left = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
    crop = torch.from_numpy(np.ascontiguousarray(photo[top:top + side, left:left + side])).permute(2, 0, 1)
    crop = F.interpolate(crop[None], size=(size, size), mode="bilinear", antialias=True, align_corners=False)[0]
    return crop.permute(1, 2, 0).clamp(0, 1).numpy()  # (size, size, 3)


def render(digit: np.ndarray, rng: np.random.Generator, textured: bool, photos: list[np.ndarray],
           size: int = 64) -> np.ndarray:
    """One image: the 8 x 8 digit (values 0-16) upscaled and painted, in a dark colour, over a light flat
    colour or a lightened photograph.

    Returns (size, size, 3) uint8.
    """
    if textured:
        photo = _photo_crop(photos[int(rng.integers(len(photos)))], rng, size)
        background = LIGHT + (1 - LIGHT) * photo  # the photo's texture and colours, lightened
    else:
        background = np.broadcast_to(LIGHT + (1 - LIGHT) * rng.random(3), (size, size, 3)).copy()
    side = int(rng.integers(DIGIT_PIXELS[0], DIGIT_PIXELS[1] + 1))
    alpha = torch.from_numpy(digit.astype(np.float32) / 16)[None, None]  # (1, 1, 8, 8)
    alpha = F.interpolate(alpha, size=(side, side), mode="bicubic", align_corners=False)[0, 0].numpy()
    alpha = np.clip((alpha - STROKE[0]) / (STROKE[1] - STROKE[0]), 0, 1)
    top, left = int(rng.integers(0, size - side + 1)), int(rng.integers(0, size - side + 1))
    colour = INK * rng.random(3)
    region = background[top:top + side, left:left + side]
    background[top:top + side, left:left + side] = region * (1 - alpha[..., None]) + colour * alpha[..., None]
    return (background * 255).round().astype(np.uint8)


def digit_split(num_digits: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Indices of the scans used for the train and the test images (disjoint)."""
    order = np.random.default_rng(seed).permutation(num_digits)
    return {"train": order[:-TEST_DIGITS], "test": order[-TEST_DIGITS:]}


def write_folder(root: Path, num_train: int = 4096, num_test: int = 1024, seed: int = 0, size: int = 64) -> Path:
    """Write ``root/{train,test}/<digit>/{flat,textured}_NNNNN.png`` (deterministic); skip if already written."""
    from PIL import Image
    from sklearn.datasets import load_digits

    root = Path(root)
    manifest = {"version": VERSION, "num_train": num_train, "num_test": num_test, "seed": seed, "size": size}
    stamp = root / "manifest.json"
    if stamp.exists() and json.loads(stamp.read_text()) == manifest:
        return root
    digits = load_digits()
    pools = digit_split(len(digits.target), seed)
    photos = load_backgrounds()
    for split_id, (split, count) in enumerate((("train", num_train), ("test", num_test))):
        pool = pools[split]
        for label in range(10):
            (root / split / str(label)).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            rng = np.random.default_rng([seed, split_id, i])  # image i never depends on the others
            k = int(pool[i % len(pool)])
            textured = i % 2 == 1
            image = render(digits.images[k], rng, textured, photos, size)
            name = f"{'textured' if textured else 'flat'}_{i:05d}.png"
            Image.fromarray(image).save(root / split / str(int(digits.target[k])) / name)
    stamp.write_text(json.dumps(manifest))
    return root


def background_context_use(run_dir: Path, root: Path, limit: int = 512) -> dict:
    """The predictor's context check on flat and on textured test images separately."""
    ijepa, cfg, _ = load_trained_model(run_dir / "checkpoint.pt")
    dataset = data_lib.build_dataset("imagefolder", root=str(root), split="test", image_size=cfg.model.image_size)
    mask_sampler = build_mask_sampler(cfg, ijepa.context_encoder.grid)
    result = {}
    for kind in ("flat", "textured"):
        index = [i for i, (path, _) in enumerate(dataset.samples) if Path(path).name.startswith(kind)][:limit]
        images = torch.stack([dataset[i][0] for i in index])  # (n, 3, H, W), normalised
        result[kind] = context_use(ijepa, images, mask_sampler, seed=cfg.run.seed)
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(ROOT / "runs" / "real_digits"), help="the image folder to write/use")
    parser.add_argument("--out", default=str(ROOT / "runs" / "real_check"), help="the run folder")
    parser.add_argument("--config", default=str(ROOT / "configs" / "cpu_default.yaml"))
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--write-only", action="store_true", help="write the image folder and stop")
    parser.add_argument("--ceiling", action="store_true",
                        help="first train the supervised ceiling on these images (<out>/supervised.json)")
    parser.add_argument("--num-train", type=int, default=4096, help="training images (default 4096, as shapes)")
    parser.add_argument("--num-test", type=int, default=1024, help="test images (default 1024)")
    args = parser.parse_args(argv)
    root = write_folder(Path(args.data), args.num_train, args.num_test)
    print(f"image folder: {root}")
    if args.write_only:
        return 0
    overrides = ["data.dataset=imagefolder", f"data.root={root}"] + args.overrides
    run_dir = Path(args.out)
    if args.ceiling:
        ceiling = run_dir / "supervised.json"
        want = json.loads(json.dumps(ceiling_fingerprint(load_config(args.config, overrides))))
        if not (ceiling.exists() and json.loads(ceiling.read_text()).get("fingerprint") == want):
            if supervised.main(["--config", args.config, "--out", str(ceiling)]
                               + [f"--set={o}" for o in overrides]) != 0:
                return 2
        overrides.append(f"run.ceiling={ceiling}")
    cfg = load_config(args.config, overrides)
    train(cfg, run_dir)
    by_background = background_context_use(run_dir, root)
    report = json.loads((run_dir / "report.json").read_text())
    result = {"command": " ".join(["python tools/real_image_check.py"] + [f"--set {o}" for o in args.overrides]),
              "images": json.loads((root / "manifest.json").read_text()),
              "report": report, "context_use_by_background": by_background}
    (run_dir / "real_check.json").write_text(json.dumps(result, indent=1))
    print("context check by background (held-out loss, other image's context / own): "
          + ", ".join(f"{k} x{v['ratio']:.2f}" for k, v in by_background.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
