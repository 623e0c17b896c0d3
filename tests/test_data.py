"""Tests for minijepa.data: the embedded shapes dataset, transforms, real data sets and photos.

Labels are checked against the *pixels* of each object (its rendered coverage mask), never against the
variables they were computed from.
"""

import math
import re
import socket

import numpy as np
import pytest
import torch
from PIL import Image
from skimage.measure import label as connected_components
from skimage.measure import regionprops

from minijepa.errors import UserError
from minijepa.data import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    PHOTO_NAMES,
    ShapesDataset,
    _OTHER_SIZE,
    _SIZE_JITTER,
    _SIZES,
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


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a connection fails the test: nothing may be downloaded."""

    def refuse(*args, **kwargs):
        raise AssertionError("tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


# --- the embedded dataset ----------------------------------------------------------------------------


def test_deterministic_from_seed(shapes):
    again = ShapesDataset(512, image_size=64, seed=0)
    other = ShapesDataset(512, image_size=64, seed=1)
    assert torch.equal(shapes.images, again.images)
    assert all(torch.equal(shapes.labels[t], again.labels[t]) for t in ShapesDataset.TASKS)
    assert not torch.equal(shapes.images, other.images)
    assert (shapes.images != other.images).float().mean() > 0.5  # not a near-copy
    assert not torch.equal(shapes.labels["count"], other.labels["count"])
    # Image i does not depend on how many images are drawn.
    assert torch.equal(ShapesDataset(8, image_size=64, seed=0).images, shapes.images[:8])


def test_same_scene_at_every_resolution():
    small, large = ShapesDataset(64, image_size=32, seed=2), ShapesDataset(64, image_size=224, seed=2)
    assert all(torch.equal(small.labels[t], large.labels[t]) for t in ShapesDataset.TASKS)


@pytest.mark.parametrize("size", [32, 64, 224])
def test_shapes_dtypes_and_ranges(size):
    ds = ShapesDataset(8, image_size=size, seed=3)
    assert ds.images.shape == (8, 3, size, size) and ds.images.dtype == torch.uint8
    image, label = ds[0]
    assert image.shape == (3, size, size) and image.dtype == torch.float32
    assert 0.0 <= image.min() and image.max() <= 1.0 and image.std() > 0.05
    assert isinstance(label, int) and 0 <= label < ShapesDataset.num_classes("shape")
    assert len(ds) == 8


def test_invalid_arguments():
    for bad in (16, 31, 225):
        with pytest.raises(ValueError, match="image_size"):
            ShapesDataset(2, image_size=bad)
    with pytest.raises(ValueError, match="unknown task 'colour'"):
        ShapesDataset(2, task="colour")
    with pytest.raises(ValueError, match="unknown task 'colour'"):
        ShapesDataset.num_classes("colour")


def test_count_and_position_match_the_pixels(shapes):
    S = shapes.image_size
    for i in range(60):
        masks = shapes.object_masks(i)  # (n, S, S) coverage, largest first
        count = shapes.labels["count"][i].item() + 1
        assert len(masks) == count
        # Every object is a separate blob in the picture: count the connected components.
        _, blobs = connected_components((masks.sum(0) > 0.5).numpy(), connectivity=2, return_num=True)
        assert blobs == count, i
        # The masks are what was painted: inside each object the cached image has a single colour.
        image = shapes.images[i].float()  # (3, S, S)
        for mask in masks:
            inside = image[:, mask >= 0.999]  # (3, pixels)
            assert inside.shape[1] > 4 and (inside.amax(1) - inside.amin(1)).max() <= 1, i
        # The largest object's pixels lie in the labelled quadrant, and it is the largest.
        ys, xs = torch.nonzero(masks[0] > 0.5, as_tuple=True)
        quadrant = int(ys.float().mean() + 0.5 >= S / 2) * 2 + int(xs.float().mean() + 0.5 >= S / 2)
        assert quadrant == shapes.labels["position"][i].item(), i
        areas = masks.sum(dim=(1, 2))
        # The largest object is at least (0.246 / 0.174)^2 = 2.0 x any other in area (sizes +- jitter).
        ratio = ((_SIZES[0] - _SIZE_JITTER) / (_OTHER_SIZE + _SIZE_JITTER)) ** 2
        assert torch.all(areas[0] > 0.9 * ratio * areas[1:]), i


def classify_shape(mask: np.ndarray) -> tuple[str, float]:
    """Name a shape from its pixels alone, and return its circumradius in pixels.

    A hole (Euler number 0) singles out the ring, solidity (area / convex hull area) the cross (~0.68);
    area / R^2 then separates circle (pi) and triangle (1.3), R = farthest pixel from the centroid.
    """
    region = regionprops(mask.astype(np.uint8))[0]
    ys, xs = np.nonzero(mask)
    cy, cx = region.centroid
    radius = np.sqrt((ys - cy) ** 2 + (xs - cx) ** 2).max() + 0.5  # to the pixel's outer edge
    if region.euler_number <= 0:
        return "ring", radius
    if region.solidity < 0.85:
        return "cross", radius
    return ("circle" if region.area / radius**2 > 2.2 else "triangle"), radius


def test_shape_and_size_match_the_pixels():
    ds = ShapesDataset(40, image_size=224, seed=4)
    S, names = ds.image_size, ShapesDataset.CLASS_NAMES["shape"]
    sizes = _SIZES  # the largest object's sqrt(area) / S per size class (+- 0.004 jitter)
    for i in range(len(ds)):
        masks = ds.object_masks(i)  # (n, S, S), largest first
        # Every object of a scene has the labelled shape.
        for mask in masks:
            shape, _ = classify_shape((mask > 0.5).numpy())
            assert shape == names[ds.labels["shape"][i]], i
        # Size is the square root of the painted area; the other objects all have one smaller size.
        measured = masks.sum(dim=(1, 2)).sqrt() / S  # (n,)
        assert abs(measured[0] - sizes[ds.labels["size"][i]]) <= 0.006, (i, measured[0])
        drawn = ds.scenes["size"][i, 1 : len(masks)].float()  # the other objects' sizes as sampled (or shrunk)
        assert torch.all((measured[1:] - drawn).abs() <= 0.006), (i, measured, drawn)
        assert torch.all(drawn <= _OTHER_SIZE + _SIZE_JITTER + 1e-6), (i, drawn)


def test_other_objects_keep_their_size():
    # They are placed by rejection sampling and shrunk only when no free spot is found: rarely (1.6 % of
    # scenes at data version 2, whose other objects are larger than version 1's; 0.1 % then).
    ds = ShapesDataset(2048, image_size=32, seed=0)
    present, size = ds.scenes["present"][:, 1:], ds.scenes["size"][:, 1:]
    shrunk = (present & ((size - _OTHER_SIZE).abs() > _SIZE_JITTER + 1e-4)).any(1)
    assert shrunk.float().mean() < 0.025


def test_size_and_area_do_not_tell_the_shape():
    # Shapes of one size cover the same area, so the number of object pixels says nothing about the shape.
    ds = ShapesDataset(256, image_size=64, seed=5)
    area = torch.stack([ds.object_masks(i)[0].sum() for i in range(len(ds))]) / 64**2  # (N,)
    per_shape = [area[(ds.labels["shape"] == k) & (ds.labels["size"] == 1)] for k in range(4)]
    means = torch.stack([a.mean() for a in per_shape])
    assert (means.amax() - means.amin()) < 0.002, means  # one size (+- 0.004 in sqrt(area)) covers ~0.116


def test_classes_roughly_balanced():
    ds = ShapesDataset(2048, image_size=32, seed=0)
    for task in ShapesDataset.TASKS:
        counts = torch.bincount(ds.labels[task], minlength=ShapesDataset.num_classes(task)).float()
        assert len(counts) == ShapesDataset.num_classes(task) >= 3
        assert counts.min() > 0.8 * counts.mean(), (task, counts.tolist())
    # Shape identity is not readable from the mean colour: per-class mean colours are close.
    means = ds.images.float().mean(dim=(2, 3))  # (N, 3)
    for task in ShapesDataset.TASKS:
        k = ShapesDataset.num_classes(task)
        per_class = torch.stack([means[ds.labels[task] == c].mean(0) for c in range(k)])  # (k, 3)
        assert (per_class.amax(0) - per_class.amin(0)).max() < 6, task  # of 255
    ds.task = "count"
    assert ds.classes == ("1", "2", "3")
    assert [ds[k][1] for k in range(5)] == ds.labels["count"][:5].tolist()
    with pytest.raises(ValueError, match="unknown task 'colour'"):
        ds.task = "colour"


def test_train_and_test_splits_are_disjoint():
    train = build_dataset("shapes", split="train", image_size=32, num_images=256, seed=0)
    test = build_dataset("shapes", split="test", image_size=32, num_images=256, seed=0)
    seen = {bytes(x.numpy()) for x in train.images}
    assert not any(bytes(x.numpy()) in seen for x in test.images)
    assert torch.equal(train.images, ShapesDataset(256, image_size=32, seed=0).images)
    with pytest.raises(ValueError, match="split"):
        build_dataset("shapes", split="validation")


# --- transforms ----------------------------------------------------------------------------------------


def test_transforms_on_tensors_and_pil(shapes):
    image, _ = shapes[0]  # (3, 64, 64) float in [0, 1]
    pil = Image.fromarray(shapes.images[0].permute(1, 2, 0).numpy())
    for transform in (train_transform(48), eval_transform(48)):
        for x in (image, pil, shapes.images[0]):
            out = transform(x)
            assert type(out) is torch.Tensor and out.shape == (3, 48, 48) and out.dtype == torch.float32
    # Eval: deterministic, and the same for a PIL image and the tensor it came from.
    plain = eval_transform(48, normalize=False)
    torch.testing.assert_close(plain(pil), plain(image), atol=2 / 255, rtol=0)
    # Train: random crops from torch's global RNG, reproducible under a seed.
    torch.manual_seed(0)
    a, b = train_transform(48)(image), train_transform(48)(image)
    torch.manual_seed(0)
    assert torch.equal(train_transform(48)(image), a) and not torch.equal(a, b)
    # scale=(1, 1) with the image's aspect ratio keeps the whole image: only a resize and normalisation.
    whole = train_transform(64, crop_scale=(1.0, 1.0))(image)
    torch.testing.assert_close(whole, normalize(image), atol=1e-5, rtol=0)


def test_normalisation():
    grey = torch.tensor(IMAGENET_MEAN).view(3, 1, 1).expand(3, 40, 40).clone()
    assert eval_transform(32)(grey).abs().max() < 1e-5  # the ImageNet mean maps to 0
    x = torch.rand(2, 3, 8, 8)
    torch.testing.assert_close(normalize(x)[:, 1], (x[:, 1] - IMAGENET_MEAN[1]) / IMAGENET_STD[1])
    torch.testing.assert_close(denormalize(normalize(x)), x, atol=1e-6, rtol=0)
    torch.testing.assert_close(denormalize(normalize(x[0])), x[0], atol=1e-6, rtol=0)
    plain = eval_transform(32, normalize=False)(x[0])
    assert plain.shape == (3, 32, 32) and 0 <= plain.min() and plain.max() <= 1


# --- real data sets -----------------------------------------------------------------------------------


def write_pngs(folder, classes=("cat", "dog"), per_class=3):
    for c, cls in enumerate(classes):
        (folder / cls).mkdir(parents=True)
        for i in range(per_class):
            pixels = np.full((20, 24, 3), 40 * c + 10 * i, dtype=np.uint8)
            Image.fromarray(pixels).save(folder / cls / f"{i}.png")


def test_imagefolder(tmp_path):
    write_pngs(tmp_path)
    ds = build_dataset("imagefolder", root=str(tmp_path), image_size=16)
    assert len(ds) == 6 and ds.classes == ["cat", "dog"]
    image, label = ds[4]  # dog/1.png: value 50 everywhere
    assert image.shape == (3, 16, 16) and label == 1
    torch.testing.assert_close(image, normalize(torch.full((3, 16, 16), 50 / 255)), atol=1e-5, rtol=0)
    # A flat folder is a train split only: never silently reused as the test split.
    with pytest.raises(FileNotFoundError, match="test"):
        build_dataset("imagefolder", root=str(tmp_path), split="test")


def test_imagefolder_with_split_folders(tmp_path):
    write_pngs(tmp_path / "train", per_class=3)
    write_pngs(tmp_path / "val", per_class=2)
    assert len(build_dataset("imagefolder", root=str(tmp_path), split="train")) == 6
    assert len(build_dataset("imagefolder", root=str(tmp_path), split="test")) == 4


def test_imagefolder_unreadable_file_is_named(tmp_path):
    write_pngs(tmp_path)
    (tmp_path / "dog" / "broken.png").write_bytes(b"not a png")
    ds = build_dataset("imagefolder", root=str(tmp_path), image_size=16)
    broken = [i for i, (p, _) in enumerate(ds.samples) if p.endswith("broken.png")][0]
    with pytest.raises(UserError, match=re.escape(f"cannot read image file {tmp_path / 'dog' / 'broken.png'}")):
        ds[broken]  # names the file with its full path, not just PIL's "cannot identify image file"
    ds[0]  # the others still load


def test_missing_data_gives_clear_errors(tmp_path, no_network):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        build_dataset("imagefolder", root=str(tmp_path / "nowhere"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="empty"):
        build_dataset("imagefolder", root=str(tmp_path / "empty"))
    (tmp_path / "empty" / "cat").mkdir()  # a class folder without images
    with pytest.raises(FileNotFoundError, match="empty"):
        build_dataset("imagefolder", root=str(tmp_path / "empty"))
    for name in ("cifar10", "stl10"):
        with pytest.raises(FileNotFoundError, match="never downloads") as error:
            build_dataset(name, root=str(tmp_path))
        assert str(tmp_path) in str(error.value) and "download=True" in str(error.value)
        with pytest.raises(FileNotFoundError, match="not found"):
            build_dataset(name, root=str(tmp_path / "nowhere"))
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["cat", "empty"]  # nothing was downloaded
    with pytest.raises(ValueError, match="unknown dataset 'imagenet'.*cifar10"):
        build_dataset("imagenet", root=str(tmp_path))


# --- photographs ----------------------------------------------------------------------------------------


def test_photos_are_real_rgb_images(no_network):
    photos = load_photos(64)
    assert set(photos) == set(PHOTO_NAMES) and len(photos) >= 4
    for name, photo in photos.items():
        assert photo.shape == (3, 64, 64) and photo.dtype == torch.float32, name
        assert 0 <= photo.min() and photo.max() <= 1, name
        assert photo.std() > 0.05, name  # not a constant image
        assert (photo[0] - photo[1]).abs().mean() > 0.01, name  # colour, not grey
        # Natural images are smooth: neighbouring pixels correlate far more than in noise.
        a, b = photo[:, :, :-1].flatten(), photo[:, :, 1:].flatten()
        assert torch.corrcoef(torch.stack([a, b]))[0, 1] > 0.7, name
    assert load_photo("astronaut").shape == (3, 512, 512)
    assert load_photo("chelsea").shape == (3, 300, 451)  # original size when image_size is None
    with pytest.raises(ValueError, match="unknown photo"):
        load_photo("lena")
    assert math.isclose(load_photo("coffee", 32).mean().item(), load_photo("coffee", 64).mean().item(), abs_tol=0.02)
