import time

import numpy as np
import pytest
import torch
from PIL import Image

from minijepa.data import (
    IMAGENET_MEAN,
    PHOTO_NAMES,
    ShapesDataset,
    build_dataset,
    denormalize,
    eval_transform,
    load_photo,
    load_photos,
    normalize,
    train_transform,
)


@pytest.fixture(scope="module")
def shapes():
    return ShapesDataset(512, image_size=64, seed=0)


def test_deterministic_from_seed(shapes):
    again = ShapesDataset(512, image_size=64, seed=0)
    other = ShapesDataset(512, image_size=64, seed=1)
    assert torch.equal(shapes.images, again.images)
    assert all(torch.equal(shapes.labels[t], again.labels[t]) for t in ShapesDataset.TASKS)
    assert not torch.equal(shapes.images, other.images)
    # Image i does not depend on how many images are drawn.
    assert torch.equal(ShapesDataset(8, image_size=64, seed=0).images, shapes.images[:8])


@pytest.mark.parametrize("size", [32, 64, 224])
def test_shapes_and_ranges(size):
    ds = ShapesDataset(8, image_size=size, seed=3)
    image, label = ds[0]
    assert image.shape == (3, size, size) and image.dtype == torch.float32
    assert 0.0 <= image.min() and image.max() <= 1.0 and image.std() > 0.05
    assert isinstance(label, int)
    with pytest.raises(ValueError, match="image_size"):
        ShapesDataset(2, image_size=16)


def test_labels_match_the_drawing(shapes):
    for i in range(40):
        masks = shapes.object_masks(i)  # (n, S, S), largest first
        assert len(masks) == shapes.labels["count"][i].item() + 1
        # The largest object's pixels lie in the labelled quadrant.
        ys, xs = torch.nonzero(masks[0] > 0.5, as_tuple=True)
        half = shapes.image_size / 2
        quadrant = int(ys.float().mean() >= half) * 2 + int(xs.float().mean() >= half)
        assert quadrant == shapes.labels["position"][i].item()
        # It is the largest.
        areas = masks.sum(dim=(1, 2))
        assert torch.all(areas[0] >= areas[1:])


def test_classes_roughly_balanced():
    ds = ShapesDataset(2048, image_size=32, seed=0)
    for task in ShapesDataset.TASKS:
        counts = torch.bincount(ds.labels[task], minlength=ShapesDataset.num_classes(task)).float()
        assert counts.min() > 0.5 * counts.mean(), (task, counts.tolist())
    ds.task = "count"
    assert ds[0][1] == ds.labels["count"][0].item()
    with pytest.raises(ValueError, match="unknown task 'colour'"):
        ds.task = "colour"


def test_train_and_test_splits_are_disjoint():
    train = build_dataset("shapes", split="train", image_size=32, num_images=256, seed=0)
    test = build_dataset("shapes", split="test", image_size=32, num_images=256, seed=0)
    flat_train = {bytes(x.numpy()) for x in train.images}
    assert not any(bytes(x.numpy()) in flat_train for x in test.images)


def test_generation_is_fast():
    start = time.perf_counter()
    ShapesDataset(512, image_size=64, seed=5)
    assert time.perf_counter() - start < 5.0  # ~0.4 s here; a loose bound, not a benchmark


def test_transforms(shapes):
    image, _ = shapes[0]
    out = train_transform(48)(image)
    assert out.shape == (3, 48, 48)
    ev = eval_transform(48)(image)
    assert ev.shape == (3, 48, 48)
    # Normalised with ImageNet statistics, and denormalize inverts normalize.
    torch.testing.assert_close(denormalize(normalize(image)), image, atol=1e-6, rtol=0)
    plain = eval_transform(48, normalize=False)(image)
    torch.testing.assert_close(ev[0], (plain[0] - IMAGENET_MEAN[0]) / 0.229, atol=1e-5, rtol=0)


def write_png(path, seed):
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 255, (20, 24, 3), dtype=np.uint8)).save(path)


def test_imagefolder(tmp_path):
    for cls in ("cat", "dog"):
        (tmp_path / cls).mkdir()
        for i in range(3):
            write_png(tmp_path / cls / f"{i}.png", i)
    ds = build_dataset("imagefolder", root=str(tmp_path), image_size=16)
    image, label = ds[4]
    assert len(ds) == 6 and image.shape == (3, 16, 16) and label == 1
    (tmp_path / "dog" / "broken.png").write_bytes(b"not a png")
    ds = build_dataset("imagefolder", root=str(tmp_path), image_size=16)
    broken = [i for i, (p, _) in enumerate(ds.samples) if p.endswith("broken.png")][0]
    with pytest.raises(OSError, match="broken.png"):
        ds[broken]


def test_missing_data_gives_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        build_dataset("imagefolder", root=str(tmp_path / "nowhere"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="empty"):
        build_dataset("imagefolder", root=str(tmp_path / "empty"))
    for name in ("cifar10", "stl10"):
        with pytest.raises(FileNotFoundError, match="never downloads"):
            build_dataset(name, root=str(tmp_path))
    assert list(tmp_path.iterdir()) == [tmp_path / "empty"]  # nothing was downloaded
    with pytest.raises(ValueError, match="unknown dataset 'imagenet'"):
        build_dataset("imagenet", root=str(tmp_path))


def test_photos_are_real_rgb_images():
    photos = load_photos(64)
    assert set(photos) == set(PHOTO_NAMES)
    for name, photo in photos.items():
        assert photo.shape == (3, 64, 64)
        assert photo.std() > 0.05, name  # not a constant image
        assert (photo[0] - photo[1]).abs().mean() > 0.01, name  # colour, not grey
    assert load_photo("astronaut").shape == (3, 512, 512)
    with pytest.raises(ValueError, match="unknown photo"):
        load_photo("lena")
