"""Ship a run's results with the course: its target and context encoders (float16), report and metrics.

    make train                                   # writes runs/cpu_default/
    python tools/export_course_encoder.py        # -> assets/cpu_default/

Notebooks 07, 08 and 10 read assets/cpu_default/ so that a reader sees a trained model without training
one first; after `make train` on your machine they can use your run instead (same config, same seed: the
CPU run is deterministic, so the result is the same up to float16 rounding).
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from minijepa.pretrained import save_encoder  # noqa: E402
from minijepa.build import load_trained_model  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", default=str(ROOT / "runs" / "cpu_default"), help="the run folder")
    parser.add_argument("--out", default=str(ROOT / "assets" / "cpu_default"), help="where to write")
    args = parser.parse_args(argv)
    run, out = Path(args.run), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    ijepa, cfg, state = load_trained_model(run / "checkpoint.pt")
    save_encoder(ijepa.target_encoder, out / "target_encoder.pt", step=state["step"], config=state["config"])
    save_encoder(ijepa.context_encoder, out / "context_encoder.pt", step=state["step"], config=state["config"])
    for name in ("report.json", "report.png", "metrics.jsonl", "config.yaml"):
        shutil.copyfile(run / name, out / name)
    for path in sorted(out.iterdir()):
        print(f"{path}: {path.stat().st_size / 1e6:.2f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
