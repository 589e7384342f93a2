"""Training throughput on several processes: one process vs ``trainer=ddp`` vs Lightning's
plain DDP (the whole module in one DistributedDataParallel, ``find_unused_parameters=True``).

    python benchmarks/ddp.py [--epochs 1] [--devices 2]

Trains the default GAN on MNIST (metrics off, batch 64 per process) with each set-up and
prints images per second (every process's batches counted), G steps, and for DDP the
largest parameter difference between ranks at the end (0: the ranks stayed in step).
On a CPU the processes share the cores: each gets cores / devices threads.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, data_dir  # noqa: E402

PLAIN_DDP = ["trainer.strategy._target_=lightning.pytorch.strategies.DDPStrategy",
             "+trainer.strategy.find_unused_parameters=true"]


def train(extra: list[str], epochs: int) -> dict:
    out = tempfile.mkdtemp(prefix="gan-ddp-")
    args = [sys.executable, str(REPO / "train.py"), "metrics=none",
            f"trainer.max_epochs={epochs}", "callbacks.progress_bar.refresh_rate=0",
            "trainer.enable_model_summary=false", f"paths.output_root={out}", *extra]
    subprocess.run(args, cwd=REPO, check=True, capture_output=True,
                   env={**os.environ, "GAN_DATA_DIR": data_dir()})
    (path,) = Path(out).glob("runs/*/*/metrics.json")
    return json.loads(path.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--devices", type=int, default=2)
    args = parser.parse_args()
    ddp = ["trainer=ddp", f"trainer.devices={args.devices}"]
    cases = (("one process", [f"threads={os.cpu_count()}"], 1),
             ("gan_ddp", ddp, args.devices),
             ("lightning_ddp_find_unused", [*ddp, *PLAIN_DDP], args.devices))
    for name, extra, world in cases:
        record = train(extra, args.epochs)
        images = record["g_steps"] * 64 * world  # n_critic 1: a G step per batch
        spread = record.get("ddp", {}).get("max_param_diff_across_ranks", "-")
        print(f"{name}: status={record['status']} g_steps={record['g_steps']} "
              f"images_per_s={images / record['train_time_s']:.0f} "
              f"train_time_s={record['train_time_s']:.1f} param_diff={spread}")
    print(f"cpu_count={os.cpu_count()} devices={args.devices} epochs={args.epochs}")


if __name__ == "__main__":
    main()
