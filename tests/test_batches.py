import torch

from minijepa.batches import GlobalBatchSampler, MaskingCollator, SeededCrops, mix_seed, random_resized_crop_box
from minijepa.masks import MultiBlockMasks


class Toy(torch.utils.data.Dataset):
    def __len__(self):
        return 20

    def __getitem__(self, i):
        return torch.full((3, 16, 16), float(i) / 20), i


def test_mix_seed_spreads_and_is_stable():
    assert mix_seed(1, 2, 3) == mix_seed(1, 2, 3)
    seeds = {mix_seed(0, e, i) for e in range(10) for i in range(10)}
    assert len(seeds) == 100 and all(0 <= s < 2**63 for s in seeds)


def test_crop_box_distribution():
    g = torch.Generator().manual_seed(0)
    areas = []
    for _ in range(2000):
        top, left, h, w = random_resized_crop_box(64, 64, (0.3, 1.0), (3 / 4, 4 / 3), g)
        assert 0 <= top and top + h <= 64 and 0 <= left and left + w <= 64
        areas.append(h * w / 64**2)
    areas = torch.tensor(areas)
    assert 0.25 < areas.min() < 0.35 and areas.max() > 0.9


def test_global_batches_are_the_same_for_any_number_of_processes():
    one = GlobalBatchSampler(20, 8, rank=0, world_size=1, seed=3)
    two = [GlobalBatchSampler(20, 8, rank=r, world_size=2, seed=3) for r in range(2)]
    for epoch in range(3):
        one.set_epoch(epoch)
        for s in two:
            s.set_epoch(epoch)
        single = list(one)
        split = list(zip(*(list(s) for s in two)))
        assert len(single) == len(split) == 2  # 20 // 8, last incomplete batch dropped
        for a, (r0, r1) in zip(single, split):
            assert a == r0 + r1
    one.set_epoch(1, start_batch=1)
    assert len(list(one)) == 1 and len(one) == 1


def test_epochs_reshuffle():
    s = GlobalBatchSampler(20, 10, seed=0)
    s.set_epoch(0)
    a = list(s)
    s.set_epoch(1)
    assert a != list(s)


def test_collator_slices_global_masks():
    sampler = MultiBlockMasks((4, 4), num_targets=2, target_scale=(0.1, 0.2), min_keep=2)
    data = SeededCrops(Toy(), image_size=8, crop_scale=(0.5, 1.0), seed=0)
    full = MaskingCollator(sampler, global_batch=4, rank=0, world_size=1, seed=5)
    halves = [MaskingCollator(sampler, global_batch=4, rank=r, world_size=2, seed=5) for r in range(2)]
    items = [data[(i, 2, 1)] for i in range(4)]
    images, labels, masks = full(items)
    assert images.shape == (4, 3, 8, 8) and labels.tolist() == [0, 1, 2, 3]
    for r, collate in enumerate(halves):
        _, _, part = collate(items[2 * r:2 * r + 2])
        assert torch.equal(part.context, masks.context[2 * r:2 * r + 2])
        assert torch.equal(part.targets, masks.targets[2 * r:2 * r + 2])


def test_seeded_crops_depend_only_on_seed_epoch_index():
    data = SeededCrops(Toy(), image_size=8, seed=0)
    a, _, tag = data[(3, 1, 0)]
    b, _, _ = data[(3, 1, 7)]
    assert torch.equal(a, b) and tag.tolist() == [1, 0]
    assert a.shape == (3, 8, 8)
