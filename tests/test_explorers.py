"""The explorers' update logic, headless: moving a control changes the figure data as it should."""

import math

import numpy as np
import pytest
import torch

from minijepa.explorers import (
    CONTEXT,
    UNUSED,
    AttentionExplorer,
    MaskExplorerState,
    attention_distance,
    patch_distances,
    plot_attention_view,
    plot_mask_view,
)
from minijepa.vit import vit_tiny


@pytest.fixture(scope="module")
def image():
    """A smooth synthetic 'photo' (3, 64, 64) in [0, 1], with structure in every patch."""
    y, x = torch.meshgrid(torch.linspace(0, 1, 64), torch.linspace(0, 1, 64), indexing="ij")
    return torch.stack([x, y, 0.5 + 0.5 * torch.sin(12 * x * y)]).clamp(0, 1)


@pytest.fixture
def state(image):
    return MaskExplorerState(image, num_coverage_samples=256, patch_size=4)  # 16 x 16 grid


def _patch_means(view):
    """Mean colour of every patch of the overlay: (H, W, 3)."""
    H, W = view.grid
    p = view.patch_size
    return view.overlay.reshape(H, p, W, p, 3).mean(axis=(1, 3))


# ---------------------------------------------------------------------------------------------------
# Mask explorer
# ---------------------------------------------------------------------------------------------------


def test_mask_view_is_deterministic_and_seed_changes_it(state):
    a = state.update(seed=3)
    b = state.update(seed=3)
    c = state.update(seed=4)
    assert np.array_equal(a.labels, b.labels) and np.array_equal(a.overlay, b.overlay)
    assert not np.array_equal(a.labels, c.labels)


def test_more_targets_give_more_target_patches(state):
    counts = []
    for m in (1, 2, 4, 6):
        view = state.update(num_targets=m, target_scale=0.1, seed=0)
        assert view.error is None
        assert view.masks.targets.shape[1] == m
        assert set(np.unique(view.labels)) <= {UNUSED, CONTEXT, *range(2, 2 + m)}
        counts.append(view.num_target)
    assert counts == sorted(counts) and counts[0] < counts[-1]
    # the coverage heat maps move the same way: more blocks cover more of the grid on average
    ratios = [state.update(num_targets=m).mean_target_ratio for m in (1, 2, 4, 6)]
    assert ratios == sorted(ratios)


def test_larger_target_scale_gives_larger_blocks(state):
    small = state.update(target_scale=(0.05, 0.05), target_aspect_ratio=1.0, num_targets=1)
    large = state.update(target_scale=(0.3, 0.3))
    hs, ws = small.target_shape
    hl, wl = large.target_shape
    assert hs * ws < hl * wl
    assert abs(hl * wl / 256 - 0.3) < 0.06 and abs(hs * ws / 256 - 0.05) < 0.03
    assert large.masks.targets.shape[2] == hl * wl  # the block really has that many patches


def test_aspect_ratio_control_changes_block_shape(state):
    tall = state.update(target_scale=0.2, target_aspect_ratio=3.0, num_targets=1)
    wide = state.update(target_aspect_ratio=1 / 3)
    assert tall.target_shape[0] > tall.target_shape[1]
    assert wide.target_shape[0] < wide.target_shape[1]


def test_context_scale_control_changes_the_context(state):
    small = state.update(context_scale=(0.4, 0.4), num_targets=1, target_scale=0.05, min_keep=4)
    large = state.update(context_scale=(1.0, 1.0))
    assert small.mean_context_ratio < large.mean_context_ratio
    assert small.num_context < large.num_context


def test_patch_size_control_changes_the_grid(state):
    for p, side in ((4, 16), (8, 8), (16, 4)):
        view = state.update(patch_size=p, num_targets=1, target_scale=0.2, min_keep=1)
        assert view.grid == (side, side) and view.labels.shape == (side, side)
        assert view.coverage_context.shape == (side, side)
        assert view.overlay.shape == (64, 64, 3)
    assert 12 not in state.valid_patch_sizes() and 16 in state.valid_patch_sizes()
    bad = state.update(patch_size=12)
    assert bad.error and "does not divide" in bad.error


def test_overlay_agrees_with_labels_and_counts(state, image):
    view = state.update(seed=7)
    H, W = view.grid
    # labels <-> masks
    assert (view.labels == CONTEXT).sum() == view.num_context == view.masks.context.shape[1]
    assert (view.labels >= 2).sum() == view.num_target
    assert math.isclose(view.context_ratio, view.num_context / (H * W))
    # overlay <-> labels: unused patches are the photo dimmed to 25 %, used ones are tinted
    photo = image.permute(1, 2, 0).numpy().reshape(H, 4, W, 4, 3).mean(axis=(1, 3))
    means = _patch_means(view)
    unused = view.labels == UNUSED
    assert unused.any()
    np.testing.assert_allclose(means[unused], 0.25 * photo[unused], atol=1e-6)
    assert np.abs(means[~unused] - 0.25 * photo[~unused]).max(axis=-1).min() > 1e-3
    # context patches are tinted blue: bluer than the photo itself
    ctx = view.labels == CONTEXT
    blue_shift = (means[..., 2] - means[..., 0]) - (photo[..., 2] - photo[..., 0])
    assert blue_shift[ctx].mean() > 0


def test_coverage_numbers_match_the_sampler(state):
    view = state.update(seed=0, num_targets=4, target_scale=(0.15, 0.2), min_keep=10)
    assert view.coverage_context.min() >= 0 and view.coverage_context.max() <= 1
    # without overlap no patch is both context and target, so the two frequencies add up to at most 1
    assert (view.coverage_context + view.coverage_target <= 1 + 1e-6).all()
    # the mean context frequency is the average context size of the sampled batches
    sampler = state.sampler(state.settings)
    g = torch.Generator().manual_seed(10_000)
    sizes = [sampler.sample(64, g).context.shape[1] for _ in range(4)]
    assert math.isclose(view.mean_context_ratio, sum(sizes) / len(sizes) / 256, rel_tol=1e-6)


def test_batch_size_truncates_the_context(state):
    one = state.update(batch_size=1, seed=0)
    many = state.update(batch_size=128)
    assert many.mean_context_ratio < one.mean_context_ratio


def test_reference_mode_shows_its_biases(image):
    state = MaskExplorerState(image, num_coverage_samples=512, patch_size=4, mode="reference")
    view = state.update()
    assert view.error is None
    assert view.coverage_context[-1].max() == 0 and view.coverage_context[:, -1].max() == 0
    assert view.coverage_target[-1].max() == 0 and view.coverage_target[:, -1].max() == 0
    rows = view.coverage_context.mean(axis=1)
    assert rows[0] > rows[-2]  # context biased towards the top
    unbiased = state.update(mode="unbiased")
    assert unbiased.coverage_target[-1].max() > 0 and unbiased.coverage_context[-1].max() > 0


def test_impossible_settings_give_a_message_not_an_exception(state):
    view = state.update(num_targets=8, target_scale=(0.5, 0.6), context_scale=(0.3, 0.3), min_keep=20)
    assert view.error is not None and "min_keep" in view.error
    assert view.labels.max() == UNUSED
    fig = plot_mask_view(view)  # still draws
    assert fig.axes
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_unknown_setting_is_a_clear_error(state):
    with pytest.raises(TypeError, match="unknown mask explorer settings"):
        state.update(num_target=3)


def test_plot_mask_view_has_titles_and_labels(state):
    import matplotlib.pyplot as plt

    fig = plot_mask_view(state.update(seed=1))
    overlay_ax, ctx_ax, tgt_ax = fig.axes[:3]
    assert "grid" in overlay_ax.get_title() and ctx_ax.get_xlabel() == "patch column"
    assert "target" in tgt_ax.get_title()
    plt.close(fig)


# ---------------------------------------------------------------------------------------------------
# Attention explorer
# ---------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def explorer(image):
    torch.manual_seed(0)
    encoder = vit_tiny(patch_size=8, image_size=64, depth=3, init_std=0.2)  # large init: peaked attention
    return AttentionExplorer.from_encoder(encoder, image)


def test_attention_rows_are_distributions(explorer):
    assert explorer.num_layers == 3 and explorer.num_heads == 3 and explorer.grid == (8, 8)
    view = explorer.update(layer=1, head=2, query=(3, 4))
    assert view.attention.shape == (8, 8)
    assert math.isclose(view.attention.sum(), 1.0, rel_tol=1e-5)
    assert 0 <= view.entropy <= math.log(64) + 1e-5
    assert view.overlay.shape == (64, 64, 3)


def test_attention_explorer_on_an_image_of_another_size(image):
    """The encoder was built for 64 px; a 48 x 80 image gives a 6 x 10 grid, and the views follow it."""
    torch.manual_seed(0)
    encoder = vit_tiny(patch_size=8, image_size=64, depth=2, init_std=0.2)
    other = torch.nn.functional.interpolate(image[None], size=(48, 80), mode="bilinear", align_corners=False)[0]
    explorer = AttentionExplorer.from_encoder(encoder, other.clamp(0, 1))
    assert explorer.grid == (6, 10)
    view = explorer.update(layer=1, head="mean", query=(5, 9))
    assert view.attention.shape == (6, 10) and view.overlay.shape == (48, 80, 3)
    assert math.isclose(view.attention.sum(), 1.0, rel_tol=1e-5)
    with pytest.raises(ValueError, match="outside the 6x10 grid"):
        explorer.update(query=(6, 0))
    with pytest.raises(ValueError):
        AttentionExplorer.from_encoder(encoder, image[:, :60, :60])  # not a multiple of the patch size


def test_different_query_gives_a_different_row(explorer):
    a = explorer.update(layer=0, head=0, query=(0, 0))
    b = explorer.update(query=(7, 7))  # layer and head are kept
    assert (b.layer, b.head, b.query) == (0, 0, (7, 7))
    assert not np.allclose(a.attention, b.attention)
    expected = explorer.attentions[0][0, 63].reshape(8, 8).numpy()
    np.testing.assert_allclose(b.attention, expected)
    assert explorer.update(query=63).query == (7, 7)  # raster index and (row, col) agree


def test_layer_and_head_controls_select_the_right_maps(explorer):
    for layer in range(3):
        for head in range(3):
            view = explorer.update(layer=layer, head=head, query=(2, 5))
            np.testing.assert_allclose(view.attention.reshape(-1), explorer.attentions[layer][head, 2 * 8 + 5].numpy())
    mean = explorer.update(layer=2, head="mean", query=(2, 5))
    assert mean.head is None
    np.testing.assert_allclose(mean.attention.reshape(-1), explorer.attentions[2][:, 21].mean(0).numpy(), rtol=1e-5)
    with pytest.raises(ValueError, match="outside"):
        explorer.update(layer=5)
    with pytest.raises(ValueError, match="outside the 8x8 grid"):
        explorer.update(layer=0, query=(8, 0))


def test_overlay_is_brightest_where_attention_is_highest(explorer):
    view = explorer.update(layer=1, head=0, query=(4, 4))
    brightness = view.overlay.reshape(8, 8, 8, 8, 3).mean(axis=(1, 3, 4)) / (
        explorer.image.permute(1, 2, 0).numpy().reshape(8, 8, 8, 8, 3).mean(axis=(1, 3, 4)) + 1e-9
    )  # (8, 8) factor by which each patch was dimmed
    assert np.unravel_index(brightness.argmax(), (8, 8)) == np.unravel_index(view.attention.argmax(), (8, 8))


def test_attention_distance_extremes():
    grid = (6, 6)
    n = 36
    self_only = torch.eye(n)
    uniform = torch.full((n, n), 1 / n)
    assert attention_distance(self_only, grid, 16).item() == 0
    mean_pair = patch_distances(grid, 16).mean().item()
    assert math.isclose(attention_distance(uniform, grid, 16).item(), mean_pair, rel_tol=1e-5)
    # a head that looks one patch to the right (where possible) sits at 16 px
    right = torch.zeros(n, n)
    for i in range(n):
        right[i, i + 1 if i % 6 < 5 else i - 1] = 1
    assert math.isclose(attention_distance(right, grid, 16).item(), 16.0, rel_tol=1e-6)


def test_mean_distances_table_and_plot(explorer):
    import matplotlib.pyplot as plt

    d = explorer.mean_distances()
    assert d.shape == (3, 3) and (d >= 0).all()
    fig = plot_attention_view(explorer.update(layer=0, head=0, query=0), explorer)
    assert len(fig.axes) >= 3 and fig.axes[2].get_ylabel().startswith("mean attention distance")
    plt.close(fig)


def test_widgets_follow_their_controls(image, explorer):
    pytest.importorskip("ipywidgets")
    from minijepa.explorers import attention_explorer, mask_explorer

    box = mask_explorer(image, num_coverage_samples=64, patch_size=8)
    before = box.last_view.num_target
    box.controls["num_targets"].value = 1
    assert box.last_view.settings["num_targets"] == 1 and box.last_view.num_target <= before
    box.controls["patch_size"].value = 4
    assert box.last_view.grid == (16, 16)

    ui = attention_explorer(explorer)
    ui.controls["row"].value, ui.controls["col"].value = 1, 2
    assert ui.last_view.query == (1, 2)
    ui.controls["head"].value = "mean"
    assert ui.last_view.head is None
