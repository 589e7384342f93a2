"""Wall time of the report's z_dim study: one run after another vs the parallel launcher.

    python benchmarks/sweep.py [--epochs 2] [--jobs 2]

Runs ``train.py -m z_dim=20,50,100,200`` (MNIST, default settings and metrics, a fixed
number of epochs) three times: with Hydra's basic launcher (sequential, torch's default
threads), with ``hydra/launcher=parallel`` (``--jobs`` processes, cores / jobs threads each)
and with the parallel launcher but every job at the cores' count of threads (oversubscribed).
Prints the wall times and ``speedup=<sequential / parallel>``,
``oversubscribed_speedup=<sequential / oversubscribed>``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, data_dir  # noqa: E402


def sweep(extra: list[str], epochs: int) -> tuple[float, list[dict]]:
    out = tempfile.mkdtemp(prefix="gan-sweep-")
    args = [sys.executable, str(REPO / "train.py"), "-m", "z_dim=20,50,100,200",
            f"trainer.max_epochs={epochs}", "callbacks.progress_bar.refresh_rate=0",
            f"paths.output_root={out}", *extra]
    start = time.perf_counter()
    subprocess.run(args, cwd=REPO, check=True, capture_output=True,
                   env={**os.environ, "GAN_DATA_DIR": data_dir()})
    wall = time.perf_counter() - start
    files = sorted(Path(out).glob("multirun/**/metrics.json"))
    records = [json.loads(p.read_text()) for p in files]
    return wall, records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    parallel = ["hydra/launcher=parallel", f"hydra.launcher.n_jobs={args.jobs}"]
    seq, seq_runs = sweep(["hydra/launcher=basic"], args.epochs)
    par, par_runs = sweep(parallel, args.epochs)
    over, over_runs = sweep([*parallel, f"threads={os.cpu_count()}"], args.epochs)
    for name, wall, runs in (("sequential", seq, seq_runs), ("parallel", par, par_runs),
                             ("oversubscribed", over, over_runs)):
        statuses = [r["status"] for r in runs]
        threads = sorted({r.get("threads") for r in runs})
        print(f"{name}: {len(runs)} runs {statuses} threads/run={threads} wall_s={wall:.1f}")
    print(f"cpu_count={os.cpu_count()} jobs={args.jobs} epochs={args.epochs}")
    print(f"speedup={seq / par:.2f}")
    print(f"oversubscribed_speedup={seq / over:.2f}")


if __name__ == "__main__":
    main()
