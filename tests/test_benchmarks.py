"""The benchmarks run and print their tables (tiny sizes, --quick). No timing is asserted: speed is measured
by the benchmarks themselves, on an idle machine (benchmarks/README.md)."""

import json
import subprocess
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import bench_train  # noqa: E402


def run(*args, timeout=120):
    result = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_run_all_quick_prints_every_table(tmp_path):
    out = run("benchmarks/run_all.py", "--quick", "--no-memory", "--threads", "1", "--json", str(tmp_path / "r.json"))
    for column in ("ms/batch", "masks/s", "speed-up"):  # bench_masks
        assert column in out, column
    for column in bench_train.COLUMNS:  # bench_train
        assert column in out, column
    for phase in ("target forward", "context forward", "predictor forward + loss", "backward", "optimizer step",
                  "EMA update"):  # fmt: skip
        assert phase in out, phase
    assert "summary: ours vs the official code" in out and "course: images/s" in out and "paper: images/s" in out
    results = json.loads((tmp_path / "r.json").read_text())
    rows = {(r["setting"], r["row"]) for r in results["train"]}
    assert {("course", "ours"), ("course", "ours, own masks"), ("paper", "ours")} <= rows
    assert all(r["GFLOP/step"] > 0 and r["ms/step"] > 0 for r in results["train"])


def test_memory_probe_reports_step_memory():
    out = run("benchmarks/bench_train.py", "--quick", "--threads", "1", "--probe-memory", "course", "ours")
    probe = json.loads(out.strip().splitlines()[-1])
    assert probe["step_mib"] >= 0 and probe["peak_rss_mib"] > 0


def test_flop_count_includes_cpu_fused_attention():
    """FlopCounterMode alone counts PyTorch's CPU attention kernel as zero; the benchmark registers it."""
    q = torch.randn(2, 3, 16, 8, requires_grad=True)

    def step():
        torch.nn.functional.scaled_dot_product_attention(q, q, q).sum().backward()

    with torch.utils.flop_counter.FlopCounterMode(display=False, custom_mapping=bench_train.CPU_SDPA_FLOPS) as counter:
        step()
    forward = 2 * (2 * 2 * 3 * 16 * 16 * 8)  # q @ k^T and weights @ v, per image and head: 2 * 16 * 16 * 8 each
    # backward: four products (grads of weights, v, q, k), as the explicit attention of the official code
    assert counter.get_total_flops() == forward + 2 * forward
