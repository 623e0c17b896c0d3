"""tools/sweep.py: every run recorded (failures included), both encoders probed, baselines once, resumable."""

import json
import sys
from pathlib import Path

import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

from test_train import TINY  # noqa: E402

import sweep  # noqa: E402


def test_sweep_records_every_run_and_resumes(tmp_path, capsys):
    spec = {
        "base": "configs/cpu_default.yaml",
        "common": TINY + ["optim.epochs=1", "run.probe_every=4"],
        "seeds": [0],
        "runs": {"default": [], "smooth-l1": ["model.loss=smooth_l1"], "bad": ["model.loss=l3"]},
    }
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(spec))
    out, runs = tmp_path / "tiny.jsonl", tmp_path / "runs"
    assert sweep.main([str(path), "--out", str(out), "--runs", str(runs)]) == 0
    records = [json.loads(line) for line in out.read_text().splitlines()]
    done = {r["name"]: r for r in records if r["kind"] == "run"}
    assert set(done) == {"default", "smooth-l1", "bad"}
    assert done["bad"]["status"] == "failed" and "l3" in done["bad"]["error"]
    for name in ("default", "smooth-l1"):
        r = done[name]
        assert r["status"] == "ok" and r["steps"] == 8 and r["config"]["run"]["seed"] == 0
        assert set(r["probes"]) == {"target", "context"}
        assert {"linear_probe", "knn", "val_accuracy"} <= set(r["probes"]["target"]["shape"])
        assert r["context_use"] > 0 and r["rank_end"] > 0 and [p["step"] for p in r["probe_curve"]] == [0, 4, 8]
    assert done["smooth-l1"]["config"]["model"]["loss"] == "smooth_l1"
    # One baseline (random init and pixels) for the two runs that share architecture and data.
    baselines = [r for r in records if r["kind"] == "baseline"]
    assert len(baselines) == 1 and set(baselines[0]["probes"]) == {"random init", "pixels"}
    assert done["default"]["baseline_key"] == baselines[0]["key"]
    table = capsys.readouterr().out
    assert "FAILED" in table and "default" in table and "smooth-l1" in table
    # The README's Markdown table: one row per run of the sweep file, in its order, then the baselines.
    assert sweep.main([str(path), "--out", str(out), "--runs", str(runs), "--table", "--markdown"]) == 0
    rows = capsys.readouterr().out.strip().splitlines()
    assert rows[0].startswith("| run | seeds | shape, validation | shape, test | count | position | size |")
    order = list(yaml.safe_load(path.read_text())["runs"])  # the file's order (here: bad, default, smooth-l1)
    row = {name: rows[2 + order.index(name)] for name in order}
    assert row["default"].startswith("| none") and row["smooth-l1"].startswith("| `model.loss=smooth_l1`")
    assert " | 1 | " in row["default"] and " | 1 | " in row["smooth-l1"]
    assert "| 0 | failed: UserError: model.loss='l3'" in row["bad"]
    assert rows[5].startswith("| random init (same probe) |") and rows[6].startswith("| pixels (same probe) |")
    assert all(row.count("|") == rows[0].count("|") for row in rows)
    test_shape = 100 * done["default"]["probes"][sweep.best_encoder(done["default"], "shape")]["shape"]["linear_probe"]
    assert row["default"].split(" | ")[3] == f"{test_shape:.1f}"
    # A second call trains nothing that already succeeded; only the failed run is tried again.
    assert sweep.main([str(path), "--out", str(out), "--runs", str(runs)]) == 0
    again = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["name"] for r in again[len(records):]] == ["bad"]
    # Records made on another version of the embedded images do not count as done (nor share a baseline).
    import minijepa.data as data_lib

    version = data_lib.ShapesDataset.VERSION
    try:
        data_lib.ShapesDataset.VERSION = version + 1
        assert sweep.main([str(path), "--out", str(out), "--runs", str(runs), "--only", "default"]) == 0
    finally:
        data_lib.ShapesDataset.VERSION = version
    rerun = [json.loads(line) for line in out.read_text().splitlines()][len(again):]
    assert [r["kind"] for r in rerun] == ["baseline", "run"] and rerun[1]["name"] == "default"
    assert json.loads(rerun[0]["key"])["data"]["shapes_version"] == version + 1
    # ...and the run folder trained on the other images is set aside, not resumed: the rerun trained anew.
    aside = runs / f"default-s0.data_v{version}"
    assert (aside / "checkpoint.pt").exists()
    fresh = torch.load(runs / "default-s0" / "checkpoint.pt", map_location="cpu", weights_only=False)
    assert fresh["data_version"] == version + 1 and fresh["step"] == 8
    old_key = json.dumps({**json.loads(done["default"]["baseline_key"]), "data": {
        k: v for k, v in json.loads(done["default"]["baseline_key"])["data"].items() if k != "shapes_version"}})
    v1_key = json.dumps({**json.loads(old_key), "data": {**json.loads(old_key)["data"], "shapes_version": 1}})
    assert sweep.same_data(old_key, v1_key)  # keys from before versions: version 1
    assert sweep.same_data(old_key, done["default"]["baseline_key"]) == (version == 1)
    # Ranking uses validation accuracy, never the test split.
    a, b = done["default"], done["smooth-l1"]
    for enc in ("target", "context"):
        a["probes"][enc]["shape"].update(val_accuracy=0.9 if enc == "context" else 0.1, linear_probe=0.0)
    assert sweep.best_encoder(a, "shape") == "context"
    b["probes"]["target"]["shape"].update(val_accuracy=0.2, linear_probe=1.0)
    b["probes"]["context"]["shape"].update(val_accuracy=0.2, linear_probe=1.0)
    lines = sweep.table([a, b] + baselines).splitlines()
    assert lines[1].startswith("default") and lines[2].startswith("smooth-l1")


def test_readme_levers_table_is_the_shipped_records(capsys):
    """The README's levers table is what `sweep.py --table --markdown` prints from assets/sweeps/levers.jsonl
    (only the first row's label is worded for the README), so a rerun of the sweep cannot leave it stale."""
    path = ROOT / "tools" / "sweeps" / "levers.yaml"
    assert sweep.main([str(path), "--table", "--markdown"]) == 0
    printed = capsys.readouterr().out.strip().splitlines()[2:]
    readme = (ROOT / "README.md").read_text()
    start = readme.index("| run: one change from `cpu_paper.yaml`, 256 steps |")
    shown = readme[start:].split("\n\n", 1)[0].splitlines()[2:]
    shown = [row for row in shown if not row.startswith("| chance")]
    assert [row.replace("| none (the paper's recipe) |", "| none |", 1) for row in shown] == printed
