"""The explorers' standalone HTML pages, without a browser: frames, manifest, texts and the page itself.

(tests/test_browser.py opens the same pages in Chromium and moves their controls.)
"""

import itertools
import json
import re

import pytest
import torch

from minijepa.explorer_pages import Control, attention_page, main, mask_page, write_page
from minijepa.explorers import (
    AttentionExplorer,
    MaskExplorerState,
    attention_view_summary,
    mask_view_summary,
)
from minijepa.vit import vit_tiny

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def image():
    y, x = torch.meshgrid(torch.linspace(0, 1, 64), torch.linspace(0, 1, 64), indexing="ij")
    return torch.stack([x, y, 0.5 + 0.5 * torch.sin(12 * x * y)]).clamp(0, 1)


@pytest.fixture(scope="module")
def mask_site(image, tmp_path_factory):
    out = tmp_path_factory.mktemp("pages") / "mask"
    grid = dict(num_targets=[1, 2, 4], seed=[0, 1])
    return out, mask_page(out, image, num_coverage_samples=32, patch_size=8, grid=grid)


def _inline_manifest(page: str) -> dict:
    data = re.search(r'<script type="application/json" id="manifest">(.*?)</script>', page, re.S).group(1)
    return json.loads(data)


def test_mask_page_has_one_frame_per_combination(mask_site, image):
    out, manifest = mask_site
    assert json.loads((out / "manifest.json").read_text()) == manifest
    assert [c["name"] for c in manifest["controls"]] == ["num_targets", "seed"]
    assert manifest["controls"][0]["values"] == [1, 2, 4] and manifest["controls"][0]["labels"] == ["1", "2", "4"]
    keys = {f"{i}-{j}" for i, j in itertools.product(range(3), range(2))}
    assert set(manifest["frames"]) == keys
    assert sorted(p.name for p in (out / "frames").iterdir()) == sorted(f["image"].split("/")[1] for f in manifest["frames"].values())
    pngs = [(out / f["image"]).read_bytes() for f in manifest["frames"].values()]
    assert all(p.startswith(PNG) for p in pngs) and len(set(pngs)) == len(pngs)
    # the frame shown first is the explorer's default where the grid has it (4 targets, seed 0)
    assert manifest["initial"] == "2-0"


def test_mask_frames_show_what_the_explorer_computes(mask_site, image):
    _, manifest = mask_site
    state = MaskExplorerState(image, num_coverage_samples=32, patch_size=8)  # a fresh explorer, same settings
    for key, frame in manifest["frames"].items():
        i, j = map(int, key.split("-"))
        settings = dict(num_targets=[1, 2, 4][i], seed=[0, 1][j])
        assert frame["settings"] == settings
        assert frame["text"] == mask_view_summary(state.update(**settings))
    texts = [f["text"] for f in manifest["frames"].values()]
    assert len(set(texts)) == len(texts)
    assert "coverage over 32 images" in texts[0]


def test_page_is_self_contained(mask_site):
    out, manifest = mask_site
    page = (out / "index.html").read_text()
    assert _inline_manifest(page) == manifest  # inlined: works from file:// too
    assert "http:" not in page and "https:" not in page and "//" not in re.sub(r"<script.*?</script>", "", page, flags=re.S)
    assert 'Content-Security-Policy' in page  # and the browser is told not to load anything from elsewhere
    first = manifest["frames"][manifest["initial"]]
    assert f'src="{first["image"]}"' in page
    assert 'id="control-num_targets"' in page and 'max="2"' in page and 'value="2"' in page


def test_attention_page(image, tmp_path):
    torch.manual_seed(0)
    explorer = AttentionExplorer.from_encoder(vit_tiny(patch_size=8, image_size=64, depth=2, init_std=0.2), image)
    grid = dict(layers=[0, 1], heads=["mean", 2], rows=[1], cols=[0, 7])
    manifest = attention_page(tmp_path, explorer, grid)
    assert len(manifest["frames"]) == 8 and len(list((tmp_path / "frames").glob("*.png"))) == 8
    kinds = {c["name"]: c["kind"] for c in manifest["controls"]}
    assert kinds == {"layer": "slider", "head": "select", "row": "slider", "col": "slider"}
    frame = manifest["frames"]["1-1-0-1"]
    assert frame["settings"] == {"layer": 1, "head": 2, "row": 1, "col": 7}
    assert frame["text"] == attention_view_summary(explorer.update(layer=1, head=2, query=(1, 7)))
    assert frame["text"].startswith("layer 1, head 2, query patch (1, 7):")
    assert manifest["frames"]["0-0-0-0"]["text"].startswith("layer 0, mean of heads, query patch (1, 0):")


def test_write_page_replaces_an_older_page_and_checks_its_controls(tmp_path):
    import matplotlib.pyplot as plt

    def frame(settings):
        fig = plt.figure(figsize=(1, 1))
        fig.text(0.5, 0.5, str(settings["k"]))
        return fig, f"k = {settings['k']}"

    write_page(tmp_path, "t", "", [Control("k", "k", [1, 2, 3])], frame)
    manifest = write_page(tmp_path, "t", "", [Control("k", "k", [5])], frame, initial={"k": 5})
    assert list(manifest["frames"]) == ["0"] and len(list((tmp_path / "frames").iterdir())) == 1
    assert manifest["frames"]["0"]["text"] == "k = 5"
    with pytest.raises(ValueError, match="no values"):
        Control("k", "k", [])
    with pytest.raises(ValueError, match="must differ"):
        write_page(tmp_path, "t", "", [Control("k", "k", [1]), Control("k", "k", [2])], frame)
    with pytest.raises(ValueError, match="unknown controls"):
        write_page(tmp_path, "t", "", [Control("k", "k", [1])], frame, initial={"j": 1})


def test_impossible_settings_have_a_frame_too(image, tmp_path):
    grid = dict(num_targets=[8], target_scale=[(0.5, 0.6)])
    manifest = mask_page(tmp_path, image, num_coverage_samples=16, patch_size=8, context_scale=(0.3, 0.3), grid=grid)
    assert manifest["frames"]["0-0"]["text"].startswith("impossible settings:")


@pytest.mark.slow
def test_command_writes_both_pages_and_an_index(tmp_path, capsys):
    main(["--out", str(tmp_path), "--small"])
    for name in ("mask", "attention"):
        manifest = json.loads((tmp_path / name / "manifest.json").read_text())
        assert len(manifest["frames"]) == 2
        assert (tmp_path / name / "index.html").is_file()
    index = (tmp_path / "index.html").read_text()
    assert 'href="mask/index.html"' in index and 'href="attention/index.html"' in index
    assert "2 frames" in capsys.readouterr().out
