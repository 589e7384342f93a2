"""The user's view of speed: whole ``python train.py`` processes against a hand-written script.

    python benchmarks/end_to_end.py [--epochs 20] [--pairs 3] [--sweep-epochs 2]

A user runs ``python train.py`` and waits; what counts is the whole process's wall time
(start-up, data loading, the training loop, checkpoints, sample grids, writing the record),
on the cores it actually uses. This script times, alternating so that the machine's drift
(up to 2x here) falls on both arms alike:

- ``python train.py trainer.max_epochs=N metrics=none`` (the report's MLP GAN, full MNIST,
  batch 64, SGD lr 0.1: the defaults), and
- ``python benchmarks/plain_gan.py --epochs N``: the same model, data, batch, optimizer and
  epochs written by hand in plain PyTorch, all cores,

``--pairs`` times each, and prints the median wall times and the median of the per-pair
ratios (the two arms of a pair run back to back, so the machine's drift cancels; every other
pair runs the plain script first). Before that, the sweep case, once each: ``python train.py
-m optimizer=sgd,adam z_dim=20,50,100,200`` (the default parallel launcher) at
``--sweep-epochs`` epochs against
the plain script run for the same 8 settings one after another. The sweep's collapse check
is switched off (``callbacks.health.stop_on_collapse=false``) so that both arms train every
step: SGD lr 0.3 collapses and would otherwise stop early. The last lines are
``cpu_ratio=`` (the same for the processes' CPU seconds, user + system: steadier on a host
whose speed drifts, since time it gives to others is not counted) and
``ratio=<framework wall / plain wall>`` of the single run, the median over pairs (goal at
N=20: <= 1.10).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, data_dir  # noqa: E402

PLAIN = REPO / "benchmarks" / "plain_gan.py"


#: CPU seconds (user + system) of the last process ``timed`` ran
last_cpu = 0.0


def timed(args: list[str]) -> tuple[float, subprocess.CompletedProcess]:
    """Wall seconds of one whole process (and the process), run from the repository root;
    its CPU seconds in ``last_cpu`` (a steadier measure of its work on a machine whose speed
    drifts: time the host gives to others is not counted)."""
    global last_cpu
    env = {**os.environ, "GAN_DATA_DIR": data_dir()}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    last_cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return wall, proc


def records(out: str) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(Path(out).glob("**/metrics.json"))]


def single(epochs: int, pairs: int) -> float:
    framework, plain, cpu_ratios = [], [], []
    for pair in range(pairs):
        out = tempfile.mkdtemp(prefix="gan-e2e-")

        def run_framework() -> tuple[float, float]:
            wall, _ = timed([sys.executable, "train.py", f"trainer.max_epochs={epochs}",
                             "metrics=none", f"paths.output_root={out}"])
            return wall, last_cpu

        def run_plain() -> tuple[float, float, subprocess.CompletedProcess]:
            wall, proc = timed([sys.executable, str(PLAIN), f"--epochs={epochs}"])
            return wall, last_cpu, proc

        # ABBA: every other pair runs the plain script first, so that a machine slowing down
        # (or speeding up) over the benchmark does not always fall on the same arm
        if pair % 2 == 0:
            (wall, cpu), (wall_plain, cpu_plain, proc) = run_framework(), run_plain()
        else:
            (wall_plain, cpu_plain, proc), (wall, cpu) = run_plain(), run_framework()
        (record,) = records(out)
        framework.append(wall)
        plain.append(wall_plain)
        cpu_ratios.append(cpu / cpu_plain)
        print(f"pair {pair + 1}: train.py {wall:.1f} s, {cpu:.1f} CPU s (status "
              f"{record['status']}, {record['g_steps']} G steps, {record['threads']} threads, "
              f"training {record['train_time_s']:.1f} s) | plain {wall_plain:.1f} s, "
              f"{cpu_plain:.1f} CPU s ({proc.stdout.strip()})", flush=True)
    ratios = [f / p for f, p in zip(framework, plain, strict=True)]
    print(f"single run, {epochs} epochs, {pairs} pairs: train.py median "
          f"{statistics.median(framework):.1f} s, plain median {statistics.median(plain):.1f} s, "
          f"per-pair ratios {', '.join(f'{r:.3f}' for r in ratios)}")
    print(f"CPU time per-pair ratios {', '.join(f'{r:.3f}' for r in cpu_ratios)}, "
          f"cpu_ratio={statistics.median(cpu_ratios):.3f}")
    return statistics.median(ratios)


def sweep(epochs: int) -> None:
    out = tempfile.mkdtemp(prefix="gan-e2e-sweep-")
    wall, _ = timed([sys.executable, "train.py", "-m", "optimizer=sgd,adam",
                     "z_dim=20,50,100,200", f"trainer.max_epochs={epochs}", "metrics=none",
                     "callbacks.health.stop_on_collapse=false", f"paths.output_root={out}"])
    runs = records(out)
    steps = sum(r.get("g_steps", 0) for r in runs)
    plain = 0.0
    for optimizer in ("sgd", "adam"):
        for z_dim in (20, 50, 100, 200):
            plain += timed([sys.executable, str(PLAIN), f"--epochs={epochs}",
                            f"--optimizer={optimizer}", f"--z-dim={z_dim}"])[0]
    print(f"sweep of 8, {epochs} epochs: train.py -m {wall:.1f} s ({len(runs)} runs, "
          f"{steps} G steps, threads/run {sorted({r.get('threads') for r in runs})}) | plain "
          f"one after another {plain:.1f} s | sweep_ratio={wall / plain:.3f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--sweep-epochs", type=int, default=2, help="0: skip the sweep case")
    args = parser.parse_args()
    print(f"cpu_count={os.cpu_count()} data={data_dir()}", flush=True)
    if args.sweep_epochs:
        sweep(args.sweep_epochs)
    ratio = single(args.epochs, args.pairs)
    print(f"ratio={ratio:.3f}")


if __name__ == "__main__":
    main()
