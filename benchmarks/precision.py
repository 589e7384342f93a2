"""Mixed precision on a GPU: every loss at every precision trains, and how fast.

    python benchmarks/precision.py [--model dcgan] [--steps 200]

For each precision (``32-true``, ``16-mixed``, ``bf16-mixed``) and loss (``bce``, ``ns``,
``hinge``, ``wgan_gp``) it runs ``python train.py model=<model> loss=<loss>
trainer.precision=<p> trainer.accelerator=gpu max_g_steps=<steps> optimizer=adam
metrics=none`` (full MNIST, a process each, so a crash is a row, not the end) and prints a
table of status and generator steps/s (measured by the run over its training loop). Needs a
CUDA GPU; without one it says so and exits. (CUDA autocast refuses
``F.binary_cross_entropy``: ``loss=bce`` computes it in float32 outside autocast, which the
``16-mixed`` and ``bf16-mixed`` rows check on real hardware.)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, data_dir  # noqa: E402

PRECISIONS = ("32-true", "16-mixed", "bf16-mixed")
LOSSES = ("bce", "ns", "hinge", "wgan_gp")


def run(model: str, loss: str, precision: str, steps: int) -> dict:
    out = tempfile.mkdtemp(prefix="gan-precision-")
    proc = subprocess.run(
        [sys.executable, "train.py", f"model={model}", f"loss={loss}",
         f"trainer.precision={precision}", "trainer.accelerator=gpu", f"max_g_steps={steps}",
         "optimizer=adam", "metrics=none", "callbacks.progress_bar.refresh_rate=0",
         f"paths.output_root={out}"],
        cwd=REPO, capture_output=True, text=True, env={**os.environ, "GAN_DATA_DIR": data_dir()})
    found = list(Path(out).glob("runs/*/*/metrics.json"))
    record = json.loads(found[0].read_text()) if found else {}
    record.setdefault("status", f"exit {proc.returncode}")
    if proc.returncode != 0 and "error" not in record:
        record["error"] = (proc.stderr.strip().splitlines() or [""])[-1]
    return record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="dcgan")
    parser.add_argument("--steps", type=int, default=200)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("no CUDA GPU here: not run (the mixed-precision rows need one)")
        return
    print(f"gpu={torch.cuda.get_device_name()} model={args.model} g_steps={args.steps}")
    print(f"| precision | {' | '.join(LOSSES)} |")
    print(f"| --- |{' --- |' * len(LOSSES)}")
    for precision in PRECISIONS:
        cells = []
        for loss in LOSSES:
            r = run(args.model, loss, precision, args.steps)
            speed = f", {r['g_steps_per_s']:.1f} steps/s" if "g_steps_per_s" in r else ""
            error = f" ({r['error'][:80]})" if r.get("error") else ""
            cells.append(f"{r['status']}{speed}{error}")
        print(f"| {precision} | {' | '.join(cells)} |", flush=True)


if __name__ == "__main__":
    main()
