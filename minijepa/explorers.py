"""The course's interactive explorers: what to draw when a control moves, computed without any UI.

Two explorers, each a plain class whose ``update(...)`` returns a small dataclass with everything a figure
needs (arrays and numbers). The notebooks wrap them in ipywidgets with :func:`mask_explorer` and
:func:`attention_explorer`; ipywidgets is imported only there, so this module imports (and is tested)
headless.

* :class:`MaskExplorerState` samples I-JEPA masks (:class:`~minijepa.masks.MultiBlockMasks`) for a photo under
  the current settings (target scale, aspect ratio, number of targets, context scale, patch size, seed,
  mode) and returns the overlay (context blue, targets coloured, unused patches dark), the patch labels
  behind it, and how often each patch is context / target over many draws (coverage heat maps).
* :class:`AttentionExplorer` runs a ViT once on an image, keeps every layer's attention weights, and returns
  the attention row of one query patch for a (layer, head), with the head's mean attention distance.

Notation: H/W grid rows/columns, N = H * W patches, P patch size, S image side in pixels, L layers, h heads.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, field

import numpy as np
import torch

from .inspect_vit import attention_distance, patch_distances  # re-exported: the explorer's distances live there
from .masks import MaskBatch, MultiBlockMasks, coverage, masks_to_grid
from .viz import mask_overlay

__all__ = [
    "MaskView",
    "MaskExplorerState",
    "plot_mask_view",
    "mask_view_summary",
    "mask_explorer",
    "patch_distances",
    "attention_distance",
    "AttentionView",
    "AttentionExplorer",
    "plot_attention_view",
    "attention_view_summary",
    "attention_explorer",
]


# ----------------------------------------------------------------------------------------------------
# Mask explorer
# ----------------------------------------------------------------------------------------------------

UNUSED, CONTEXT = 0, 1  # patch labels; target block m has label 2 + m


@dataclass
class MaskView:
    """Everything the mask explorer draws for one setting of its controls.

    overlay:  (S, S, 3) floats in [0, 1], the photo with the masks of one image drawn over it.
    labels:   (H, W) ints, 0 = unused, 1 = context, 2 + m = target block m (what the overlay shows).
    coverage_context / coverage_target: (H, W) frequencies over ``num_coverage_samples`` images: how often
              each patch is context / inside some target block.
    error:    a message instead of masks when the settings are impossible (then labels are all 0).
    """

    settings: dict
    grid: tuple[int, int]
    patch_size: int
    overlay: np.ndarray
    labels: np.ndarray
    masks: MaskBatch | None = None
    target_shape: tuple[int, int] | None = None  # (h, w) of every target block, in patches
    num_context: int = 0  # patches the context encoder sees
    num_target: int = 0  # patches inside at least one target block
    coverage_context: np.ndarray | None = None
    coverage_target: np.ndarray | None = None
    num_samples: int = 0  # images behind the coverage maps
    error: str | None = None

    @property
    def num_patches(self) -> int:
        return self.grid[0] * self.grid[1]

    @property
    def context_ratio(self) -> float:
        """Share of the patches that the context encoder sees in the drawn image."""
        return self.num_context / self.num_patches

    @property
    def target_ratio(self) -> float:
        """Share of the patches inside at least one target block in the drawn image."""
        return self.num_target / self.num_patches

    @property
    def mean_context_ratio(self) -> float:
        """Average context ratio over the coverage samples (the paper's "avg. ratio", about 0.25)."""
        return float(self.coverage_context.mean()) if self.coverage_context is not None else float("nan")

    @property
    def mean_target_ratio(self) -> float:
        return float(self.coverage_target.mean()) if self.coverage_target is not None else float("nan")


def _pair(value) -> tuple[float, float]:
    """A slider gives a number or a (min, max) pair: 0.2 -> (0.2, 0.2)."""
    if isinstance(value, (int, float)):
        return (float(value), float(value))
    lo, hi = value
    return (float(lo), float(hi))


class MaskExplorerState:
    """Masks for one photograph under settings that change one control at a time.

    ``update(**changes)`` merges the changed controls into the current settings and returns a
    :class:`MaskView`. Settings (defaults are the paper's): ``target_scale``, ``target_aspect_ratio``,
    ``context_scale`` (each a number or a (min, max) pair), ``num_targets``, ``patch_size`` (must divide the
    image side), ``seed``, ``mode`` ("unbiased" or "reference"), ``min_keep`` and ``batch_size``. The same
    settings and seed always give the same view.

    The drawn image is the first of a batch of ``batch_size``, and the coverage maps are made of such batches,
    because a batch matters: every context is cut to the smallest one in its batch (the encoder sees a
    (B, K) tensor), so a larger batch means fewer context patches per image.
    """

    DEFAULTS = dict(
        target_scale=(0.15, 0.2),
        target_aspect_ratio=(0.75, 1.5),
        num_targets=4,
        context_scale=(0.85, 1.0),
        patch_size=16,
        seed=0,
        mode="unbiased",
        min_keep=10,
        batch_size=64,
    )

    def __init__(self, image: torch.Tensor, num_coverage_samples: int = 512, **settings):
        if image.dim() != 3 or image.shape[0] != 3:
            raise ValueError(f"expected one RGB image (3, S, S) in [0, 1], got shape {tuple(image.shape)}")
        if image.shape[1] != image.shape[2]:
            raise ValueError(f"expected a square image, got {image.shape[1]}x{image.shape[2]}")
        self.image = image.detach().float().cpu()
        self.image_size = image.shape[-1]
        self.num_coverage_samples = num_coverage_samples
        unknown = set(settings) - set(self.DEFAULTS)
        if unknown:
            raise TypeError(f"unknown mask explorer settings {sorted(unknown)}; known: {sorted(self.DEFAULTS)}")
        self.settings = {**self.DEFAULTS, **settings}
        self._samplers: dict[tuple, MultiBlockMasks] = {}

    def valid_patch_sizes(self, smallest: int = 4, largest: int = 64) -> list[int]:
        """Patch sizes that tile the image exactly (choices for the patch-size control)."""
        return [p for p in range(smallest, largest + 1) if self.image_size % p == 0]

    def sampler(self, settings: dict) -> MultiBlockMasks:
        """The sampler for these settings (cached: building one runs a feasibility trial)."""
        grid = self.image_size // settings["patch_size"]
        key = (
            grid, settings["num_targets"], _pair(settings["target_scale"]), _pair(settings["target_aspect_ratio"]),
            _pair(settings["context_scale"]), settings["min_keep"], settings["mode"],
        )
        if key not in self._samplers:
            import warnings

            with warnings.catch_warnings():  # reference mode warns about hanging settings; we report errors
                warnings.simplefilter("ignore", RuntimeWarning)
                self._samplers[key] = MultiBlockMasks(
                    grid,
                    num_targets=settings["num_targets"],
                    target_scale=_pair(settings["target_scale"]),
                    target_aspect_ratio=_pair(settings["target_aspect_ratio"]),
                    context_scale=_pair(settings["context_scale"]),
                    min_keep=settings["min_keep"],
                    mode=settings["mode"],
                )
        return self._samplers[key]

    def update(self, **changes) -> MaskView:
        unknown = set(changes) - set(self.DEFAULTS)
        if unknown:
            raise TypeError(f"unknown mask explorer settings {sorted(unknown)}; known: {sorted(self.DEFAULTS)}")
        self.settings = {**self.settings, **changes}
        return self.view(self.settings)

    def view(self, settings: dict) -> MaskView:
        p, S = settings["patch_size"], self.image_size
        if S % p:
            return self._error_view(settings, f"patch size {p} does not divide the {S}-pixel image")
        grid = (S // p, S // p)
        try:
            sampler = self.sampler(settings)
            batch = settings["batch_size"]
            masks = sampler.sample(batch, torch.Generator().manual_seed(settings["seed"]))
            masks = MaskBatch(masks.context[:1], masks.targets[:1], masks.grid)  # the image we draw
            cov = coverage(sampler, self.num_coverage_samples, batch_size=batch,
                           generator=torch.Generator().manual_seed(10_000 + settings["seed"]))
        except (ValueError, RuntimeError) as error:  # impossible settings: say why instead of failing
            return self._error_view(settings, str(error))
        context, targets = masks_to_grid(masks)  # (1, H, W), (1, M, H, W)
        labels = np.zeros(grid, dtype=np.int64)
        labels[context[0].numpy()] = CONTEXT
        for m in range(targets.shape[1]):  # drawn in this order by viz.mask_overlay: later blocks on top
            labels[targets[0, m].numpy()] = 2 + m
        rows, cols = masks.targets[0, 0] // grid[1], masks.targets[0, 0] % grid[1]
        target_shape = (int(rows.max() - rows.min()) + 1, int(cols.max() - cols.min()) + 1)
        return MaskView(
            settings=dict(settings),
            grid=grid,
            patch_size=p,
            overlay=mask_overlay(self.image, masks, 0, patch_size=p),
            labels=labels,
            masks=masks,
            target_shape=target_shape,
            num_context=int(context[0].sum()),
            num_target=int(targets[0].any(dim=0).sum()),
            coverage_context=cov["context"].numpy(),
            coverage_target=cov["target"].numpy(),
            num_samples=self.num_coverage_samples,
        )

    def _error_view(self, settings: dict, message: str) -> MaskView:
        p = settings["patch_size"]
        grid = (max(self.image_size // p, 1),) * 2
        dimmed = self.image.permute(1, 2, 0).clamp(0, 1).numpy() * 0.25
        return MaskView(dict(settings), grid, p, dimmed, np.zeros(grid, dtype=np.int64), error=message)


def plot_mask_view(view: MaskView, fig=None):
    """Three panels: the photo with its masks, then context and target coverage heat maps."""
    import matplotlib.pyplot as plt

    if fig is None:
        fig = plt.figure(figsize=(10.5, 3.6))
    axes = fig.subplots(1, 3)
    ax = axes[0]
    ax.imshow(view.overlay)
    S = view.overlay.shape[0]
    for k in range(1, view.grid[0]):  # patch grid lines
        ax.axhline(k * view.patch_size - 0.5, color="white", lw=0.3, alpha=0.4)
        ax.axvline(k * view.patch_size - 0.5, color="white", lw=0.3, alpha=0.4)
    ax.set_xlim(-0.5, S - 0.5)
    ax.set_ylim(S - 0.5, -0.5)
    ax.set_xlabel("x (pixels)")
    ax.set_ylabel("y (pixels)")
    if view.error:
        ax.set_title("impossible settings", fontsize=9)
        ax.text(0.5, 0.5, _wrap(view.error, 45), transform=ax.transAxes, ha="center", va="center",
                fontsize=7, color="white")
        for a in axes[1:]:
            a.axis("off")
        return fig
    h, w = view.target_shape
    ax.set_title(
        f"{view.grid[0]}x{view.grid[1]} grid, {view.settings['num_targets']} targets of {h}x{w}\n"
        f"context {view.num_context} patches ({view.context_ratio:.0%}), targets {view.num_target} ({view.target_ratio:.0%})",
        fontsize=8,
    )
    for a, data, name, cmap in (
        (axes[1], view.coverage_context, "context", "Blues"),
        (axes[2], view.coverage_target, "target", "Reds"),
    ):
        im = a.imshow(data, cmap=cmap, vmin=0, vmax=1)
        a.set_title(f"P(patch is {name}) over {view.num_samples} images\nmean {data.mean():.2f}", fontsize=8)
        a.set_xlabel("patch column")
        a.set_ylabel("patch row")
        fig.colorbar(im, ax=a, fraction=0.046, pad=0.04, label="frequency")
    fig.tight_layout()
    return fig


def mask_view_summary(view: MaskView) -> str:
    """One line of text under the mask explorer's figure: the drawn masks and the coverage means."""
    if view.error:
        return f"impossible settings: {view.error}"
    (H, W), (h, w) = view.grid, view.target_shape
    return (
        f"{H}x{W} grid, {view.settings['num_targets']} targets of {h}x{w} patches; drawn image: "
        f"context {view.num_context} patches ({view.context_ratio:.0%}), targets {view.num_target} "
        f"({view.target_ratio:.0%}); coverage over {view.num_samples} images: "
        f"context {view.mean_context_ratio:.3f}, target {view.mean_target_ratio:.3f}"
    )


def _wrap(text: str, width: int) -> str:
    import textwrap

    return "\n".join(textwrap.wrap(text, width)[:8])


def mask_explorer(image: torch.Tensor, num_coverage_samples: int = 512, **settings):
    """An ipywidgets UI around :class:`MaskExplorerState` (sliders, dropdowns and the figure).

    Returns the widget box; ``box.state`` is the explorer and ``box.last_view`` the view on screen.
    """
    import ipywidgets as widgets

    state = MaskExplorerState(image, num_coverage_samples, **settings)
    s = state.settings
    style = dict(description_width="130px")
    layout = widgets.Layout(width="420px")
    common = dict(continuous_update=False, style=style, layout=layout)
    controls = {
        "target_scale": widgets.FloatRangeSlider(value=_pair(s["target_scale"]), min=0.02, max=0.6, step=0.01,
                                                 description="target scale", readout_format=".2f", **common),
        "target_aspect_ratio": widgets.FloatRangeSlider(value=_pair(s["target_aspect_ratio"]), min=0.25, max=4.0,
                                                        step=0.05, description="target aspect h/w", **common),
        "num_targets": widgets.IntSlider(value=s["num_targets"], min=1, max=8, description="number of targets", **common),
        "context_scale": widgets.FloatRangeSlider(value=_pair(s["context_scale"]), min=0.2, max=1.0, step=0.01,
                                                  description="context scale", readout_format=".2f", **common),
        "patch_size": widgets.Dropdown(options=state.valid_patch_sizes(), value=s["patch_size"],
                                       description="patch size (px)", style=style, layout=layout),
        "seed": widgets.IntSlider(value=s["seed"], min=0, max=99, description="seed", **common),
        "mode": widgets.Dropdown(options=list(MultiBlockMasks.MODES), value=s["mode"], description="sampler mode",
                                 style=style, layout=layout),
        "batch_size": widgets.Dropdown(options=sorted({1, 8, 64, 256, s["batch_size"]}), value=s["batch_size"], description="batch size",
                                       style=style, layout=layout),
    }
    out = widgets.Output()
    summary = widgets.HTML()  # wraps, unlike a Label
    box = widgets.VBox([widgets.HBox([widgets.VBox(list(controls.values())[:4]), widgets.VBox(list(controls.values())[4:])]),
                        summary, out])
    _add_classes(box, "minijepa-mask-explorer", summary, out)
    box.state = state
    box.controls = controls

    def refresh(_change=None):
        view = state.update(**{name: c.value for name, c in controls.items()})
        box.last_view = view
        _show_in(out, plot_mask_view, view)
        summary.value = html.escape(mask_view_summary(view))  # after the figure: new text, new figure

    for control in controls.values():
        control.observe(refresh, names="value")
    refresh()
    return box


def _add_classes(box, name: str, summary, out) -> None:
    """CSS classes by which a page (or a browser test) finds an explorer, its text and its figure."""
    box.add_class(name)
    summary.add_class("minijepa-summary")
    out.add_class("minijepa-figure")


def _show_in(out, plot, view) -> None:
    """Draw ``plot(view)`` into an ipywidgets Output, replacing what was there."""
    import matplotlib.pyplot as plt

    with out:
        out.clear_output(wait=True)
        fig = plot(view)
        try:
            from IPython.display import display

            display(fig)
        finally:
            plt.close(fig)


# ----------------------------------------------------------------------------------------------------
# Attention explorer
# ----------------------------------------------------------------------------------------------------


@dataclass
class AttentionView:
    """One attention row, as a picture: where does patch ``query`` look in (layer, head)?"""

    layer: int
    head: int | None  # None: the average over heads
    query: tuple[int, int]  # (row, col) of the query patch
    attention: np.ndarray  # (H, W) weights of the query's row, sum 1
    mean_distance: float  # of this head (or of the head average), in pixels, over all queries
    entropy: float  # of this query's row, in nats (log N = uniform)
    overlay: np.ndarray | None = None  # (S, S, 3) the image tinted by the attention map
    extra: dict = field(default_factory=dict)


class AttentionExplorer:
    """Attention maps of a ViT on one image: ``update(layer, head, query)`` -> :class:`AttentionView`.

    ``attentions`` is one (h, N, N) tensor per layer (rows sum to 1) for a ``grid`` of patches of
    ``patch_size`` pixels; :meth:`from_encoder` computes them with :meth:`VisionTransformer.forward_with_attention`.
    """

    def __init__(self, attentions: list[torch.Tensor], grid: tuple[int, int], patch_size: int,
                 image: torch.Tensor | None = None):
        if not attentions:
            raise ValueError("need at least one layer of attention weights")
        H, W = grid
        for layer, a in enumerate(attentions):
            if a.dim() != 3 or a.shape[1:] != (H * W, H * W):
                raise ValueError(f"layer {layer}: expected attention (heads, {H * W}, {H * W}), got {tuple(a.shape)}")
        self.attentions = [a.detach().float().cpu() for a in attentions]
        self.grid, self.patch_size = (int(H), int(W)), int(patch_size)
        self.image = None if image is None else image.detach().float().cpu().clamp(0, 1)
        self.settings = dict(layer=0, head=0, query=(H // 2, W // 2))

    @classmethod
    def from_encoder(cls, encoder, image: torch.Tensor, normalize: bool = True) -> "AttentionExplorer":
        """Run ``encoder`` once on ``image`` (3, H, W) in [0, 1] (ImageNet-normalised first if ``normalize``).

        The image may have another size than the one the encoder was built for (any multiple of the patch
        size): the grid is the image's."""
        from .data import normalize as imagenet_normalize

        x = imagenet_normalize(image)[None] if normalize else image[None]  # (1, 3, H, W)
        grid = encoder.patch_embed.check_input(x)  # (H/P, W/P); a clear error for a bad size
        was_training = encoder.training
        encoder.eval()
        _, maps = encoder.forward_with_attention(x)  # L x (1, h, N, N)
        encoder.train(was_training)
        return cls([m[0] for m in maps], grid, encoder.config.patch_size, image)

    @property
    def num_layers(self) -> int:
        return len(self.attentions)

    @property
    def num_heads(self) -> int:
        return self.attentions[0].shape[0]

    def mean_distances(self) -> np.ndarray:
        """(L, h) mean attention distance of every head of every layer, in pixels."""
        return torch.stack([attention_distance(a, self.grid, self.patch_size) for a in self.attentions]).numpy()

    def query_index(self, query) -> int:
        H, W = self.grid
        row, col = divmod(int(query), W) if isinstance(query, (int, np.integer)) else map(int, query)
        if not (0 <= row < H and 0 <= col < W):
            raise ValueError(f"query patch {query!r} is outside the {H}x{W} grid")
        return row * W + col

    def update(self, layer: int | None = None, head: int | None | str = "keep", query=None) -> AttentionView:
        """Change any of layer, head (an int, or None / "mean" for the head average) and query patch
        (an index in raster order or a (row, col) pair); unchanged controls keep their value."""
        if layer is not None:
            self.settings["layer"] = layer
        if head != "keep":
            self.settings["head"] = None if head in (None, "mean") else head
        if query is not None:
            self.settings["query"] = query
        layer, head, query = self.settings["layer"], self.settings["head"], self.settings["query"]
        if not 0 <= layer < self.num_layers:
            raise ValueError(f"layer {layer} is outside 0..{self.num_layers - 1}")
        if head is not None and not 0 <= head < self.num_heads:
            raise ValueError(f"head {head} is outside 0..{self.num_heads - 1}")
        q = self.query_index(query)
        a = self.attentions[layer]  # (h, N, N)
        a = a.mean(0) if head is None else a[head]  # (N, N)
        row = a[q]  # (N,)
        entropy = float(-(row * (row + 1e-12).log()).sum())
        H, W = self.grid
        return AttentionView(
            layer=layer,
            head=head,
            query=divmod(q, W),
            attention=row.reshape(H, W).numpy(),
            mean_distance=float(attention_distance(a, self.grid, self.patch_size)),
            entropy=entropy,
            overlay=self._overlay(row.reshape(H, W)),
        )

    def _overlay(self, attention: torch.Tensor) -> np.ndarray | None:
        if self.image is None:
            return None
        heat = attention / attention.max().clamp_min(1e-12)  # (H, W) in [0, 1]
        heat = torch.nn.functional.interpolate(heat[None, None], size=self.image.shape[-2:], mode="nearest")[0, 0]
        img = self.image.permute(1, 2, 0)  # (S, S, 3)
        out = img * (0.15 + 0.85 * heat[..., None])  # dark where the query does not look
        return out.numpy()  # (S, S, 3)


def plot_attention_view(view: AttentionView, explorer: AttentionExplorer | None = None, fig=None):
    """The query's attention over the photo, the raw map, and (with ``explorer``) the distances per layer."""
    import matplotlib.pyplot as plt

    panels = 3 if explorer is not None else 2
    if fig is None:
        fig = plt.figure(figsize=(3.6 * panels, 3.5))
    axes = fig.subplots(1, panels)
    name = "mean of heads" if view.head is None else f"head {view.head}"
    r, c = view.query
    if view.overlay is not None:
        p = view.overlay.shape[0] // view.attention.shape[0]
        axes[0].imshow(view.overlay)
        axes[0].add_patch(plt.Rectangle((c * p - 0.5, r * p - 0.5), p, p, fill=False, ec="yellow", lw=1.5))
        axes[0].set_xlabel("x (pixels)")
        axes[0].set_ylabel("y (pixels)")
    axes[0].set_title(f"layer {view.layer}, {name}: query patch ({r}, {c})", fontsize=8)
    im = axes[1].imshow(view.attention, cmap="viridis")
    axes[1].plot(c, r, marker="s", mfc="none", mec="red", ms=8, label="query")
    axes[1].set_title(f"attention weights (entropy {view.entropy:.2f} nats)", fontsize=8)
    axes[1].set_xlabel("key patch column")
    axes[1].set_ylabel("key patch row")
    axes[1].legend(fontsize=7, loc="lower right")
    fig.colorbar(im, ax=axes[1], fraction=0.046, pad=0.04)
    if explorer is not None:
        d = explorer.mean_distances()  # (L, h)
        for head in range(d.shape[1]):
            axes[2].scatter(np.arange(d.shape[0]), d[:, head], s=12, label=f"head {head}" if head < 6 else None)
        axes[2].axvline(view.layer, color="gray", ls=":", lw=1)
        uniform = float(patch_distances(explorer.grid, explorer.patch_size).mean())
        axes[2].axhline(uniform, color="k", ls="--", lw=1, label="uniform attention")
        axes[2].set_xlabel("layer")
        axes[2].set_ylabel("mean attention distance (px)")
        axes[2].set_title("how far each head looks", fontsize=8)
        axes[2].set_ylim(0, max(uniform, float(d.max())) * 1.15)
        axes[2].legend(fontsize=6, ncol=2)
    fig.tight_layout()
    return fig


def attention_view_summary(view: AttentionView) -> str:
    """One line of text under the attention explorer's figure."""
    name = "mean of heads" if view.head is None else f"head {view.head}"
    uniform = math.log(view.attention.size)
    return (
        f"layer {view.layer}, {name}, query patch ({view.query[0]}, {view.query[1]}): "
        f"entropy {view.entropy:.3f} nats (uniform {uniform:.3f}), mean attention distance {view.mean_distance:.1f} px"
    )


def attention_explorer(explorer: AttentionExplorer):
    """An ipywidgets UI around an :class:`AttentionExplorer`: layer, head and query-patch controls."""
    import ipywidgets as widgets

    H, W = explorer.grid
    s = explorer.settings
    style = dict(description_width="90px")
    row0, col0 = (divmod(s["query"], W) if isinstance(s["query"], int) else s["query"])
    controls = {
        "layer": widgets.IntSlider(value=s["layer"], min=0, max=explorer.num_layers - 1, description="layer",
                                   continuous_update=False, style=style),
        "head": widgets.Dropdown(options=[("mean", "mean")] + [(str(h), h) for h in range(explorer.num_heads)],
                                 value="mean" if s["head"] is None else s["head"], description="head", style=style),
        "row": widgets.IntSlider(value=row0, min=0, max=H - 1, description="query row", continuous_update=False, style=style),
        "col": widgets.IntSlider(value=col0, min=0, max=W - 1, description="query col", continuous_update=False, style=style),
    }
    out = widgets.Output()
    summary = widgets.HTML()  # wraps, unlike a Label
    box = widgets.VBox([widgets.HBox(list(controls.values())[:2]), widgets.HBox(list(controls.values())[2:]), summary, out])
    _add_classes(box, "minijepa-attention-explorer", summary, out)
    box.state = explorer
    box.controls = controls

    def refresh(_change=None):
        view = explorer.update(layer=controls["layer"].value, head=controls["head"].value,
                               query=(controls["row"].value, controls["col"].value))
        box.last_view = view
        _show_in(out, lambda v: plot_attention_view(v, explorer), view)
        summary.value = html.escape(attention_view_summary(view))

    for control in controls.values():
        control.observe(refresh, names="value")
    refresh()
    return box
