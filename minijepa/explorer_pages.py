"""The explorers as standalone HTML pages, for readers without a running kernel (a driver: it writes files).

    python -m minijepa.explorer_pages --out site/explorers          # or: make explorers-html
    python -m minijepa.explorer_pages --checkpoint runs/cpu_default/checkpoint.pt   # your trained encoder

Each page holds frames precomputed for a grid of control values: one PNG per combination (the figure the
notebook's explorer draws, :func:`~minijepa.explorers.plot_mask_view` / :func:`~minijepa.explorers.plot_attention_view`)
and its line of text (:func:`~minijepa.explorers.mask_view_summary` / :func:`~minijepa.explorers.attention_view_summary`).
A few lines of JavaScript show the frame of the current control values. The page loads nothing from the
network; it opens from disk (``file://``) or from any static web server.

Written to ``OUT``::

    index.html                      links to both pages
    mask/index.html                 the page (the manifest inlined, so that it works from file://)
    mask/manifest.json              controls, their values and every frame: {key: {image, text, settings}}
    mask/frames/0000.png ...
    attention/...

A frame's key is the index of every control's value, joined by "-" in the order of ``controls``.
The grids below keep each page to a few MB (frames are PNGs reduced to a 128-colour palette).
"""

from __future__ import annotations

import argparse
import html
import io
import itertools
import json
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from .explorers import (
    AttentionExplorer,
    MaskExplorerState,
    attention_view_summary,
    mask_view_summary,
    plot_attention_view,
    plot_mask_view,
)

__all__ = ["Control", "write_page", "mask_page", "attention_page", "write_index", "main"]

# The notebooks' plot style (tools/build_notebooks.py), so that a frame looks like the notebook's figure.
STYLE = {"figure.dpi": 72, "savefig.dpi": 72, "font.size": 9, "axes.titlesize": 10}

# Default grids of control values (frames = product of the lengths).
MASK_GRID = dict(
    num_targets=[1, 2, 3, 4, 5, 6],
    target_scale=[(0.05, 0.1), (0.1, 0.15), (0.15, 0.2), (0.2, 0.3), (0.3, 0.4)],
    mode=["unbiased", "reference"],
    seed=[0, 1],
)  # 120 frames, about 2 MB
ATTENTION_GRID = dict(layers=[0, 5, 11], heads=["mean", 0, 1, 2], rows=[3, 7, 10], cols=[3, 7, 10])  # 108 frames


@dataclass
class Control:
    """One control of a page: a slider over ``values`` (or a drop-down list when ``kind`` is "select")."""

    name: str  # the setting it changes
    label: str
    values: list
    kind: str = "slider"
    labels: list[str] = field(default_factory=list)  # what the page shows for each value

    def __post_init__(self):
        if not self.values:
            raise ValueError(f"control {self.name!r} has no values")
        if self.kind not in ("slider", "select"):
            raise ValueError(f"control kind must be 'slider' or 'select', got {self.kind!r}")
        self.values = list(self.values)
        self.labels = self.labels or [_label(v) for v in self.values]


def _label(value) -> str:
    if isinstance(value, (tuple, list)):
        return " – ".join(_label(v) for v in value)
    return f"{value:g}" if isinstance(value, float) else str(value)


def _plain(value):
    """JSON-friendly settings: tuples become lists."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    return value


def figure_png(fig, colors: int | None = 128) -> bytes:
    """The figure as PNG bytes, reduced to a palette of ``colors`` colours (None: full colour)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", bbox_inches="tight")
    if colors is None:
        return buffer.getvalue()
    from PIL import Image

    image = Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")
    out = io.BytesIO()
    image.quantize(colors, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(out, format="png", optimize=True)
    return out.getvalue()


def write_page(out_dir: Path, title: str, intro: str, controls: list[Control],
               frame: Callable[[dict], tuple[object, str]], initial: dict | None = None,
               colors: int | None = 128) -> dict:
    """Render ``frame(settings) -> (figure, text)`` for every combination of the controls' values.

    Writes ``out_dir``/index.html, manifest.json and frames/NNNN.png (replacing an earlier page there) and
    returns the manifest. ``initial`` (settings) picks the frame shown first; by default each control's first value.
    """
    import matplotlib
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    if (out_dir / "frames").exists():
        shutil.rmtree(out_dir / "frames")
    (out_dir / "frames").mkdir(parents=True)
    names = [c.name for c in controls]
    if len(set(names)) != len(names):
        raise ValueError(f"control names must differ: {names}")
    frames = {}
    with matplotlib.rc_context(STYLE):
        for number, index in enumerate(itertools.product(*(range(len(c.values)) for c in controls))):
            settings = {c.name: c.values[i] for c, i in zip(controls, index)}
            fig, text = frame(dict(settings))
            try:
                png = figure_png(fig, colors)
            finally:
                plt.close(fig)
            image = f"frames/{number:04d}.png"
            (out_dir / image).write_bytes(png)
            frames["-".join(map(str, index))] = {"image": image, "text": text, "settings": _plain(settings)}
    initial = initial or {}
    unknown = set(initial) - set(names)
    if unknown:
        raise ValueError(f"initial settings for unknown controls {sorted(unknown)}")
    start = "-".join(str(c.values.index(initial[c.name]) if c.name in initial else 0) for c in controls)
    manifest = {
        "title": title,
        "controls": [{"name": c.name, "label": c.label, "kind": c.kind, "values": _plain(c.values), "labels": c.labels}
                     for c in controls],
        "initial": start,
        "frames": frames,
    }
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=1))
    (out_dir / "index.html").write_text(_html(title, intro, manifest))
    return manifest


def _html(title: str, intro: str, manifest: dict) -> str:
    rows = []
    for c in manifest["controls"]:
        start = int(manifest["initial"].split("-")[len(rows)])
        if c["kind"] == "slider":
            widget = (f'<input type="range" id="control-{c["name"]}" data-name="{c["name"]}" min="0" '
                      f'max="{len(c["values"]) - 1}" step="1" value="{start}">')
        else:
            options = "".join(f'<option value="{i}"{" selected" if i == start else ""}>{html.escape(label)}</option>'
                              for i, label in enumerate(c["labels"]))
            widget = f'<select id="control-{c["name"]}" data-name="{c["name"]}">{options}</select>'
        rows.append(f'<label for="control-{c["name"]}">{html.escape(c["label"])}</label>{widget}'
                    f'<output id="value-{c["name"]}"></output>')
    data = json.dumps(manifest).replace("</", "<\\/")  # safe inside <script>
    first = manifest["frames"][manifest["initial"]]
    return _PAGE.format(
        title=html.escape(title), intro=intro, controls="\n".join(f'<div class="row">{r}</div>' for r in rows),
        manifest=data, image=first["image"], text=html.escape(first["text"]),
    )


_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'">
<title>{title}</title>
<style>
 body {{ font-family: sans-serif; margin: 1.5em; max-width: 1100px; color: #222; }}
 .controls {{ display: grid; gap: 0.3em; margin: 1em 0; }}
 .row {{ display: grid; grid-template-columns: 12em 22em 8em; align-items: center; gap: 0.8em; }}
 #summary {{ font-family: monospace; margin: 0.8em 0; min-height: 2.5em; }}
 img {{ max-width: 100%; }}
</style>
</head>
<body>
<h1>{title}</h1>
<p>{intro}</p>
<div class="controls">
{controls}
</div>
<div id="summary">{text}</div>
<img id="frame" src="{image}" alt="explorer figure">
<script type="application/json" id="manifest">{manifest}</script>
<script>
"use strict";
const manifest = JSON.parse(document.getElementById("manifest").textContent);
const inputs = manifest.controls.map(c => document.getElementById("control-" + c.name));
function show() {{
  const key = inputs.map(input => input.value).join("-");
  const frame = manifest.frames[key];
  manifest.controls.forEach((c, i) => {{
    document.getElementById("value-" + c.name).textContent = c.labels[Number(inputs[i].value)];
  }});
  document.getElementById("frame").src = frame.image;
  document.getElementById("summary").textContent = frame.text;
  document.body.dataset.frame = key;
}}
inputs.forEach(input => input.addEventListener("input", show));
show();
</script>
</body>
</html>
"""


# ----------------------------------------------------------------------------------------------------
# The two explorers
# ----------------------------------------------------------------------------------------------------


def mask_page(out_dir: Path, image: torch.Tensor, num_coverage_samples: int = 512, grid: dict | None = None,
              colors: int | None = 128, **settings) -> dict:
    """The mask explorer (:class:`MaskExplorerState` on ``image``) over ``grid`` (default :data:`MASK_GRID`).

    ``grid`` maps some of the explorer's settings to the values the page offers; ``settings`` fixes others.
    """
    grid = dict(MASK_GRID if grid is None else grid)
    state = MaskExplorerState(image, num_coverage_samples, **settings)
    labels = {"num_targets": "number of targets", "target_scale": "target scale", "target_aspect_ratio": "target aspect h/w",
              "context_scale": "context scale", "patch_size": "patch size (px)", "seed": "seed", "mode": "sampler mode",
              "batch_size": "batch size", "min_keep": "min. kept patches"}
    controls = [Control(name, labels.get(name, name), values,
                        kind="select" if name in ("mode", "patch_size", "batch_size") else "slider")
                for name, values in grid.items()]

    def frame(changes):
        view = state.view({**state.settings, **changes})
        return plot_mask_view(view), mask_view_summary(view)

    initial = {name: state.settings[name] for name in grid if state.settings[name] in grid[name]}
    intro = ("I-JEPA's multi-block masks on a photograph (notebook 03): context blue, target blocks coloured, unused "
             f"patches dark; the heat maps show how often each patch is context or target over {num_coverage_samples} "
             "images. Frames were computed in advance for the values the controls offer.")
    return write_page(out_dir, "Mask explorer", intro, controls, frame, initial, colors)


def attention_page(out_dir: Path, explorer: AttentionExplorer, grid: dict | None = None, colors: int | None = 128,
                   description: str = "a ViT") -> dict:
    """The attention explorer over ``grid`` = dict(layers, heads ("mean" or an int), rows, cols) of query patches."""
    grid = dict(ATTENTION_GRID if grid is None else grid)
    controls = [
        Control("layer", "layer", grid["layers"]),
        Control("head", "head", grid["heads"], kind="select", labels=[str(h) for h in grid["heads"]]),
        Control("row", "query row", grid["rows"]),
        Control("col", "query col", grid["cols"]),
    ]

    def frame(s):
        view = explorer.update(layer=s["layer"], head=s["head"], query=(s["row"], s["col"]))
        return plot_attention_view(view, explorer), attention_view_summary(view)

    intro = (f"Where does one query patch look? Attention weights of {html.escape(description)} (notebook 02), for a "
             "layer, a head (or the mean of the heads) and a query patch (red square); right: every head's mean "
             "attention distance per layer. Frames were computed in advance for the values the controls offer.")
    return write_page(out_dir, "Attention explorer", intro, controls, frame, colors=colors)


def write_index(out_dir: Path, pages: dict[str, str]) -> Path:
    """``out_dir``/index.html linking to the pages ({folder: title})."""
    links = "\n".join(f'<li><a href="{folder}/index.html">{html.escape(title)}</a></li>' for folder, title in pages.items())
    path = Path(out_dir) / "index.html"
    path.write_text(f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>minijepa explorers</title></head>\n'
                    f"<body><h1>minijepa explorers</h1>\n<ul>\n{links}\n</ul></body></html>\n")
    return path


def _attention_explorer(checkpoint: Path | None) -> tuple[AttentionExplorer, str]:
    """The notebook's explorer: a random-init ViT-Tiny on the cat photo, or the target encoder of a checkpoint."""
    from .data import load_photo

    if checkpoint is None:
        from .vit import vit_tiny

        torch.manual_seed(0)  # as notebook 02
        encoder = vit_tiny(patch_size=16, image_size=224).eval()
        return AttentionExplorer.from_encoder(encoder, load_photo("chelsea", 224)), "a random-init ViT-Tiny"
    from .build import load_trained_model  # checks the file: a clear error for a broken or foreign one

    model, _, _ = load_trained_model(checkpoint)
    encoder = model.target_encoder
    image = load_photo("chelsea", encoder.config.image_size[0])
    return AttentionExplorer.from_encoder(encoder, image), f"the target encoder of {checkpoint}"


def main(argv=None) -> int:
    """The command line; user errors print one line and exit 2 (minijepa.errors)."""
    from .errors import run_command

    return run_command(_main, argv)


def _main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Write the explorers as standalone HTML pages (precomputed frames).")
    parser.add_argument("--out", type=Path, default=Path("site/explorers"), help="output folder (default site/explorers)")
    parser.add_argument("--only", choices=["mask", "attention"], help="write one page only")
    parser.add_argument("--checkpoint", type=Path, help="explore the target encoder of this training checkpoint "
                        "(default: a random-init ViT-Tiny, as notebook 02)")
    parser.add_argument("--small", action="store_true", help="two frames per page (a quick check of the command)")
    args = parser.parse_args(argv)
    from .data import load_photo

    pages = {}
    if args.only in (None, "mask"):
        grid = dict(num_targets=[4, 2]) if args.small else None
        manifest = mask_page(args.out / "mask", load_photo("astronaut", 224), grid=grid)  # as notebook 03
        pages["mask"] = manifest["title"]
        _report(args.out / "mask", manifest)
    if args.only in (None, "attention"):
        explorer, description = _attention_explorer(args.checkpoint)
        grid = None
        if args.small:
            grid = dict(layers=[explorer.num_layers - 1], heads=["mean"], rows=[explorer.grid[0] // 2], cols=[1, 2])
        elif args.checkpoint is not None:  # another depth and grid than ViT-Tiny/16 at 224
            L, (H, W) = explorer.num_layers, explorer.grid
            grid = dict(layers=sorted({0, L // 2, L - 1}), heads=["mean", *range(explorer.num_heads)],
                        rows=sorted({H // 4, H // 2, 3 * H // 4}), cols=sorted({W // 4, W // 2, 3 * W // 4}))
        manifest = attention_page(args.out / "attention", explorer, grid, description=description)
        pages["attention"] = manifest["title"]
        _report(args.out / "attention", manifest)
    print(f"wrote {write_index(args.out, pages)}")
    return 0


def _report(folder: Path, manifest: dict) -> None:
    size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    print(f"wrote {folder / 'index.html'}: {len(manifest['frames'])} frames, {size / 2**20:.1f} MiB")


if __name__ == "__main__":
    sys.exit(main())
