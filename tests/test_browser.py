"""The explorers as a reader uses them: JupyterLab and the standalone pages in a real headless Chromium.

JupyterLab runs on 127.0.0.1 (free port, random token) over copies of notebooks 02 and 03; Chromium opens
each notebook, runs all its cells, moves the explorer's controls from the keyboard, and the test checks that
the figure changes and that the text under it becomes what :mod:`minijepa.explorers` computes in this process
for the same settings. Screenshots land in test-artifacts/browser/ (git-ignored).

Skipped when Chromium, Playwright or JupyterLab is missing, except where ``MINIJEPA_REQUIRE_BROWSER=1``
(set by .ci/run): there a missing browser fails. Run on their own (load-sensitive):
``pytest -p no:xdist -m browser tests/test_browser.py``.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import os
import re
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from minijepa.data import load_photo
from minijepa.explorers import (
    AttentionExplorer,
    MaskExplorerState,
    attention_view_summary,
    mask_view_summary,
    plot_attention_view,
    plot_mask_view,
)

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts" / "browser"


def _load_harness():
    spec = importlib.util.spec_from_file_location("minijepa_screenshots", ROOT / "tools" / "screenshots.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # (dataclasses look their module up)
    spec.loader.exec_module(module)
    return module


harness = _load_harness()


@pytest.fixture(scope="module")
def browser_ready():
    reason = harness.browser_missing()
    if reason:
        message = f"browser tests need Chromium, Playwright and JupyterLab: {reason}"
        if os.environ.get("MINIJEPA_REQUIRE_BROWSER") == "1":
            pytest.fail(f"{message} (MINIJEPA_REQUIRE_BROWSER=1: required here)", pytrace=False)
        pytest.skip(f"{message}; set MINIJEPA_REQUIRE_BROWSER=1 to make this a failure")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)


@pytest.fixture(scope="module")
def browser(browser_ready):
    with harness.chromium() as browser:
        yield browser


@pytest.fixture(scope="module")
def lab(browser_ready, tmp_path_factory):
    """JupyterLab over copies of the two notebooks; stopped (process group and kernels) whatever happens."""
    root = harness.copy_notebooks(tmp_path_factory.mktemp("lab"))
    with harness.jupyter_lab(root, log=ARTIFACTS / "jupyterlab.log") as lab:
        yield lab
    assert lab.process.poll() is not None, "JupyterLab still running after the fixture"


@pytest.fixture
def page(browser, request):
    """A fresh browser page; its last state is saved as a screenshot whatever the outcome."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(60_000)
    try:
        yield page
    finally:
        with contextlib.suppress(Exception):  # (a crashed page has no picture to give)
            page.screenshot(path=str(ARTIFACTS / f"{request.node.name}-last.png"), full_page=True)
        context.close()


def _rgb(png: bytes) -> np.ndarray:
    from PIL import Image

    image = Image.open(io.BytesIO(png)).convert("RGBA")
    white = Image.new("RGBA", image.size, (255, 255, 255, 255))
    return np.asarray(Image.alpha_composite(white, image).convert("RGB"), dtype=np.float32)


def _differs(before: bytes, after: bytes, columns=slice(None)) -> float:
    """Mean absolute pixel change between two PNGs (within ``columns`` as a fraction slice of the width)."""
    a, b = _rgb(before), _rgb(after)
    if a.shape != b.shape:
        return float("inf")
    width = a.shape[1]
    cols = slice(int((columns.start or 0) * width), int((columns.stop or 1) * width))
    return float(np.abs(a[:, cols] - b[:, cols]).mean())


def _drawn_here(plot, *args) -> bytes:
    """The figure ``plot(*args)`` as this process draws it, in the notebooks' plot style."""
    import matplotlib
    import matplotlib.pyplot as plt

    from minijepa.explorer_pages import STYLE, figure_png

    with matplotlib.rc_context(STYLE):
        fig = plot(*args)
        try:
            return figure_png(fig, colors=None)
        finally:
            plt.close(fig)


def _same_text(actual: str, expected: str, rel: float = 1e-3) -> bool:
    """Same text, decimals equal up to ``rel`` (float sums in another process may differ in the last digit)."""
    number = r"-?\d+\.\d+"
    if re.split(number, actual) != re.split(number, expected):
        return False
    pairs = zip(map(float, re.findall(number, actual)), map(float, re.findall(number, expected)))
    return all(abs(a - e) <= rel * max(1.0, abs(e)) for a, e in pairs)


# ---------------------------------------------------------------------------------------------------
# The explorers in JupyterLab
# ---------------------------------------------------------------------------------------------------


def test_mask_explorer_in_jupyterlab(lab, page):
    notebook = harness.NotebookPage(page, lab, harness.MASK_NOTEBOOK).open()
    notebook.run_all()
    explorer = notebook.explorer("minijepa-mask-explorer")
    # the notebook's call: mask_explorer(photo, num_coverage_samples=512), photo = the 224-pixel astronaut
    state = MaskExplorerState(load_photo("astronaut", 224), num_coverage_samples=512)
    assert explorer.summary() == mask_view_summary(state.update())
    page.screenshot(path=str(ARTIFACTS / "mask_explorer-0-initial.png"))

    steps = [
        ("number of targets: 4 -> 2", lambda: explorer.press_slider("number of targets", "ArrowLeft", 2), dict(num_targets=2)),
        ("seed: 0 -> 1", lambda: explorer.press_slider("seed", "ArrowRight"), dict(seed=1)),
        ("patch size: 16 -> 32", lambda: explorer.select("patch size (px)", "32"), dict(patch_size=32)),
    ]
    for number, (name, act, change) in enumerate(steps, start=1):
        before_src, before_png = explorer.figure_src(), explorer.figure_png()
        expected_view = state.update(**change)
        expected = mask_view_summary(expected_view)
        act()
        text, _ = explorer.wait_for(summary=expected, changed_from=before_src)
        after_png = explorer.figure_png()
        page.screenshot(path=str(ARTIFACTS / f"mask_explorer-{number}-{next(iter(change))}.png"))
        assert text == expected, name
        # the drawn masks (left third) and the coverage heat maps (right two thirds) both changed
        assert _differs(before_png, after_png, slice(0, 0.33)) > 0.5, f"{name}: the mask overlay did not change"
        assert _differs(before_png, after_png, slice(0.36, 1)) > 0.5, f"{name}: the coverage maps did not change"
        # and the kernel drew what minijepa draws here for these settings (same pixels, up to rounding)
        assert _differs(_drawn_here(plot_mask_view, expected_view), after_png) < 0.5, f"{name}: not the expected figure"
    assert explorer.slider_value("number of targets") == "2" and explorer.slider_value("seed") == "1"
    (ARTIFACTS / "mask_explorer-figure.png").write_bytes(after_png)  # the figure alone, as the kernel drew it


def test_attention_explorer_in_jupyterlab(lab, page):
    notebook = harness.NotebookPage(page, lab, harness.ATTENTION_NOTEBOOK).open()
    notebook.run_all()
    explorer = notebook.explorer("minijepa-attention-explorer")
    # the notebook's explorer: a random-init ViT-Tiny/16 (seed 0) on the 224-pixel cat, started at the last
    # layer, mean of the heads, query (7, 4)
    from minijepa.vit import vit_tiny

    torch.manual_seed(0)
    state = AttentionExplorer.from_encoder(vit_tiny(patch_size=16, image_size=224).eval(), load_photo("chelsea", 224))
    initial = attention_view_summary(state.update(layer=11, head="mean", query=(7, 4)))
    assert _same_text(explorer.summary(), initial), (explorer.summary(), initial)
    page.screenshot(path=str(ARTIFACTS / "attention_explorer-0-initial.png"))

    steps = [
        ("layer: 11 -> 9", lambda: explorer.press_slider("layer", "ArrowLeft", 2), dict(layer=9)),
        ("head: mean -> 1", lambda: explorer.select("head", "1"), dict(head=1)),
        ("query row: 7 -> 8", lambda: explorer.press_slider("query row", "ArrowRight"), dict(query=(8, 4))),
        ("query col: 4 -> 2", lambda: explorer.press_slider("query col", "ArrowLeft", 2), dict(query=(8, 2))),
    ]
    for number, (name, act, change) in enumerate(steps, start=1):
        before_src, before_png = explorer.figure_src(), explorer.figure_png()
        expected_view = state.update(**change)
        expected = attention_view_summary(expected_view)
        act()
        text, _ = explorer.wait_for(match=lambda t: _same_text(t, expected), changed_from=before_src)
        page.screenshot(path=str(ARTIFACTS / f"attention_explorer-{number}-{next(iter(change))}.png"))
        assert _same_text(text, expected), (name, text, expected)
        after_png = explorer.figure_png()
        assert _differs(before_png, after_png) > 0.05, f"{name}: the figure did not change"
        drawn_here = _drawn_here(plot_attention_view, expected_view, state)
        assert _differs(drawn_here, after_png) < 0.5, f"{name}: not the expected figure"



# ---------------------------------------------------------------------------------------------------
# The standalone pages (no kernel)
# ---------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_pages(tmp_path_factory):
    """Both pages with a few frames: a 64-pixel image, a 3-layer ViT (the full pages are built the same way)."""
    from minijepa.explorer_pages import attention_page, mask_page
    from minijepa.vit import vit_tiny

    y, x = torch.meshgrid(torch.linspace(0, 1, 64), torch.linspace(0, 1, 64), indexing="ij")
    image = torch.stack([x, y, 0.5 + 0.5 * torch.sin(12 * x * y)]).clamp(0, 1)
    out = tmp_path_factory.mktemp("pages")
    mask = mask_page(out / "mask", image, num_coverage_samples=64, patch_size=8,
                     grid=dict(num_targets=[1, 2], mode=["unbiased", "reference"]))
    torch.manual_seed(0)
    explorer = AttentionExplorer.from_encoder(vit_tiny(patch_size=8, image_size=64, depth=3, init_std=0.2), image)
    attention = attention_page(out / "attention", explorer,
                               grid=dict(layers=[0, 1], heads=["mean", 0], rows=[3], cols=[2, 5]))
    return {"mask": (out / "mask", mask), "attention": (out / "attention", attention)}


def _wait_for_frame(page, manifest, key):
    """Wait until a standalone page shows frame ``key`` (its image decoded, its caption) and says so."""
    frame = manifest["frames"][key]
    page.wait_for_function(
        """([image, text]) => {
            const img = document.getElementById('frame');
            return img.getAttribute('src') === image && img.complete && img.naturalWidth > 0
                && document.getElementById('summary').textContent === text;
        }""", arg=[frame["image"], frame["text"]])
    assert page.evaluate("() => document.body.dataset.frame") == key


@pytest.mark.parametrize("name, slider, select, option", [
    ("mask", "num_targets", "mode", "reference"),
    ("attention", "layer", "head", "0"),
])
def test_standalone_page_follows_its_controls(browser_ready, browser, small_pages, name, slider, select, option):
    folder, manifest = small_pages[name]
    context = browser.new_context(viewport={"width": 1200, "height": 800})
    page = context.new_page()
    requests = []

    def only_files(route):  # the page must not reach the network
        requests.append(route.request.url)
        if route.request.url.startswith("file://"):
            route.continue_()
        else:
            route.abort()

    page.route("**/*", only_files)
    try:
        page.goto((folder / "index.html").as_uri())
        names = [c["name"] for c in manifest["controls"]]

        def wait_for_frame(key):
            _wait_for_frame(page, manifest, key)

        start = manifest["initial"].split("-")
        wait_for_frame(manifest["initial"])
        page.screenshot(path=str(ARTIFACTS / f"page_{name}-0-initial.png"))

        # slider: one step to the right, from the keyboard
        index = list(start)
        index[names.index(slider)] = str(int(start[names.index(slider)]) + 1)
        page.locator(f"#control-{slider}").focus()
        page.keyboard.press("ArrowRight")
        wait_for_frame("-".join(index))
        value = manifest["controls"][names.index(slider)]["labels"][int(index[names.index(slider)])]
        assert page.locator(f"#value-{slider}").inner_text() == value
        page.screenshot(path=str(ARTIFACTS / f"page_{name}-1-{slider}.png"))

        # drop-down list
        page.locator(f"#control-{select}").select_option(label=option)
        index[names.index(select)] = str(manifest["controls"][names.index(select)]["labels"].index(option))
        wait_for_frame("-".join(index))
        page.screenshot(path=str(ARTIFACTS / f"page_{name}-2-{select}.png"))
        assert requests and all(url.startswith("file://") for url in requests), requests
    finally:
        context.close()


# ---------------------------------------------------------------------------------------------------
# The course website (make site): every page, offline, with its images, links and explorers
# ---------------------------------------------------------------------------------------------------


def _load_site_builder():
    spec = importlib.util.spec_from_file_location("minijepa_build_site", ROOT / "tools" / "build_site.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The website as `make site` builds it, with two frames per explorer page (the full grid takes minutes)."""
    pytest.importorskip("myst_nb")
    out = tmp_path_factory.mktemp("site")
    _load_site_builder().build_site(out / "site", small_explorers=True, cache=out / "cache")
    return out / "site"


SITE_PAGES = ["index.html", "README.html", "docs/exercises.html", "docs/notebooks.html", "benchmarks/README.html",
              "explorers/index.html", "explorers/mask/index.html", "explorers/attention/index.html",
              *(f"notebooks/{p.stem}.html" for p in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")))]


def _site_pages(site):
    return sorted(p for p in site.rglob("*.html") if "_static" not in p.parts)


def _references(html: str) -> list[tuple[str, str]]:
    """(tag, URL) of every link, image, script and stylesheet of a page."""
    from html.parser import HTMLParser

    found = []

    class Collect(HTMLParser):
        def handle_starttag(self, tag, attrs):
            attrs = dict(attrs)
            for name in ("href", "src"):
                if attrs.get(name) and tag in ("a", "img", "script", "link", "iframe", "source"):
                    found.append((tag, attrs[name]))

    Collect().feed(html)
    return found


def test_site_has_every_page_and_every_internal_link_resolves(site):
    from urllib.parse import unquote, urlsplit

    missing = [page for page in SITE_PAGES if not (site / page).is_file()]
    assert not missing, f"pages missing from the site: {missing}"
    home = (site / "README.html").read_text()
    assert all(f'href="notebooks/{p.stem}.html' in home for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    broken, checked, ids = [], 0, {}
    for page in _site_pages(site):
        for tag, url in _references(page.read_text(errors="replace")):
            parts = urlsplit(url)
            if parts.scheme in ("http", "https", "mailto", "data", "javascript", "about"):
                continue  # outside the site: a link a reader may follow, never loaded (see the offline test)
            target = (page.parent / unquote(parts.path)).resolve() if parts.path else page
            if target.is_dir():
                target = target / "index.html"
            checked += 1
            if not target.is_file() or not target.is_relative_to(site.resolve()):
                broken.append(f"{page.relative_to(site)}: <{tag}> {url}")
            elif parts.fragment and target.suffix == ".html" and tag == "a":
                if target not in ids:
                    ids[target] = target.read_text(errors="replace")
                if f'id="{unquote(parts.fragment)}"' not in ids[target]:
                    broken.append(f"{page.relative_to(site)}: <a> {url} (no such anchor)")
    assert checked > 500 and not broken, broken[:20]
    # The notebooks 02 and 03 link their standalone explorer pages.
    for notebook, explorer in (("02_attention_and_vit", "attention"), ("03_multiblock_masking", "mask")):
        assert f'href="../explorers/{explorer}/index.html"' in (site / "notebooks" / f"{notebook}.html").read_text()


def _offline_page(browser):
    context = browser.new_context(viewport={"width": 1200, "height": 800})
    page = context.new_page()
    outside = []

    def only_files(route):  # a page of the site must not reach the network
        url = route.request.url
        if url.startswith(("file://", "data:", "blob:", "about:")):
            route.continue_()
        else:
            outside.append(url)
            route.abort()

    page.route("**/*", only_files)
    return context, page, outside


def test_site_pages_load_offline_with_every_image_shown(browser_ready, browser, site):
    context, page, outside = _offline_page(browser)
    images = {}
    try:
        for path in _site_pages(site):
            if 'http-equiv="refresh"' in path.read_text(errors="replace"):
                continue  # index.html: a redirect to README.html (its link is checked above)
            page.goto(path.as_uri(), wait_until="load")
            # Images load lazily in some themes: scroll each into view, then wait until all are decoded.
            page.evaluate("() => document.querySelectorAll('img').forEach(img => { img.loading = 'eager'; })")
            page.wait_for_function("() => [...document.images].every(img => img.complete)", timeout=30_000)
            shown = page.evaluate("() => [...document.images].map(img => [img.getAttribute('src'), img.naturalWidth])")
            blank = [src for src, width in shown if width == 0]
            assert not blank, f"{path.relative_to(site)}: images not displayed: {blank}"
            images[str(path.relative_to(site))] = len(shown)
        page.goto((site / "notebooks" / "02_attention_and_vit.html").as_uri(), wait_until="load")  # MathJax typesets
        page.wait_for_function("() => document.querySelectorAll('.MathJax_Display, .MathJax').length > 0", timeout=30_000)
    finally:
        context.close()
    assert not outside, f"requests outside the site: {sorted(set(outside))[:10]}"
    assert all(images[f"notebooks/{p.stem}.html"] > 0 for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")), images
    assert images["README.html"] >= 2  # the two explorer screenshots


@pytest.mark.parametrize("name", ["mask", "attention"])
def test_site_explorer_pages_follow_their_controls(browser_ready, browser, site, name):
    import json

    folder = site / "explorers" / name
    manifest = json.loads((folder / "manifest.json").read_text())
    context, page, outside = _offline_page(browser)
    try:
        page.goto((folder / "index.html").as_uri())
        index = manifest["initial"].split("-")
        movable = next(i for i, c in enumerate(manifest["controls"]) if len(c["labels"]) > 1)
        control = manifest["controls"][movable]
        new = int(index[movable]) + 1 if int(index[movable]) + 1 < len(control["labels"]) else int(index[movable]) - 1

        _wait_for_frame(page, manifest, manifest["initial"])
        if control["kind"] == "slider":
            page.locator(f"#control-{control['name']}").focus()
            page.keyboard.press("ArrowRight" if new > int(index[movable]) else "ArrowLeft")
        else:
            page.locator(f"#control-{control['name']}").select_option(label=control["labels"][new])
        index[movable] = str(new)
        _wait_for_frame(page, manifest, "-".join(index))
        page.screenshot(path=str(ARTIFACTS / f"site_{name}.png"))
    finally:
        context.close()
    assert not outside, outside
