"""The user's view of speed: whole ``python train.py`` processes against a hand-written script.

    python benchmarks/end_to_end.py [--epochs 20] [--pairs 3] [--sweep-epochs 2] [--baseline REV]

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

``--baseline REV`` adds a third arm to every pair: ``python train.py`` of the git revision
REV (checked out into a temporary ``git worktree``, run with the same interpreter and
packages), the three in rotating order, so that two versions of the framework are compared on
the same machine in the same minutes; it prints the per-pair ratios of REV over the plain
script and ``baseline_ratio=``.
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
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, data_dir  # noqa: E402

PLAIN = REPO / "benchmarks" / "plain_gan.py"


#: CPU seconds (user + system) of the last process ``timed`` ran
last_cpu = 0.0


def timed(args: list[str], cwd: Path = REPO) -> tuple[float, subprocess.CompletedProcess]:
    """Wall seconds of one whole process (and the process), run from ``cwd`` (the repository
    root); its CPU seconds in ``last_cpu`` (a steadier measure of its work on a machine whose
    speed drifts: time the host gives to others is not counted)."""
    global last_cpu
    env = {**os.environ, "GAN_DATA_DIR": data_dir()}
    if cwd != REPO:  # another checkout's package, not the one installed from this one
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(cwd), env.get("PYTHONPATH")]))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    last_cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return wall, proc


def records(out: str) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(Path(out).glob("**/metrics.json"))]


@contextmanager
def checkout(rev: str) -> Iterator[Path]:
    """A temporary ``git worktree`` of revision ``rev`` of this repository."""
    folder = Path(tempfile.mkdtemp(prefix="gan-e2e-baseline-")) / "repo"
    subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(folder), rev],
                   check=True, capture_output=True)
    try:
        yield folder
    finally:
        subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(folder)],
                       check=False, capture_output=True)


def single(epochs: int, pairs: int, baseline: Path | None = None) -> float:
    arms = ["train.py", "plain", *(["baseline"] if baseline else [])]
    walls: dict[str, list[float]] = {arm: [] for arm in arms}
    cpus: dict[str, list[float]] = {arm: [] for arm in arms}
    for pair in range(pairs):
        notes = {}
        # The arms' order turns every pair (for two, ABBA: train.py first, then plain first),
        # so that a machine slowing down (or speeding up) does not always fall on one arm.
        turn = pair % len(arms)
        for arm in arms[turn:] + arms[:turn]:
            if arm == "plain":
                wall, proc = timed([sys.executable, str(PLAIN), f"--epochs={epochs}"])
                notes[arm] = proc.stdout.strip()
            else:
                out = tempfile.mkdtemp(prefix="gan-e2e-")
                cwd = baseline if arm == "baseline" else REPO
                wall, _ = timed([sys.executable, "train.py", f"trainer.max_epochs={epochs}",
                                 "metrics=none", f"paths.output_root={out}"], cwd=cwd)
                (record,) = records(out)
                notes[arm] = (f"status {record['status']}, {record['g_steps']} G steps, "
                              f"{record['threads']} threads, training "
                              f"{record['train_time_s']:.1f} s")
            walls[arm].append(wall)
            cpus[arm].append(last_cpu)
        print(f"pair {pair + 1}: " + " | ".join(
            f"{arm} {walls[arm][-1]:.1f} s, {cpus[arm][-1]:.1f} CPU s ({notes[arm]})"
            for arm in arms), flush=True)

    def ratios(arm: str, of: dict[str, list[float]]) -> list[float]:
        return [a / b for a, b in zip(of[arm], of["plain"], strict=True)]

    print(f"single run, {epochs} epochs, {pairs} pairs: train.py median "
          f"{statistics.median(walls['train.py']):.1f} s, plain median "
          f"{statistics.median(walls['plain']):.1f} s, per-pair ratios "
          f"{', '.join(f'{r:.3f}' for r in ratios('train.py', walls))}")
    print(f"CPU time per-pair ratios {', '.join(f'{r:.3f}' for r in ratios('train.py', cpus))}, "
          f"cpu_ratio={statistics.median(ratios('train.py', cpus)):.3f}")
    if baseline:
        print(f"baseline median {statistics.median(walls['baseline']):.1f} s, per-pair ratios "
              f"{', '.join(f'{r:.3f}' for r in ratios('baseline', walls))} (CPU time "
              f"{', '.join(f'{r:.3f}' for r in ratios('baseline', cpus))}), "
              f"baseline_ratio={statistics.median(ratios('baseline', walls)):.3f}")
    return statistics.median(ratios("train.py", walls))


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
    parser.add_argument("--baseline", metavar="REV",
                        help="also time train.py of this git revision in every pair")
    args = parser.parse_args()
    print(f"cpu_count={os.cpu_count()} data={data_dir()}", flush=True)
    if args.sweep_epochs:
        sweep(args.sweep_epochs)
    if args.baseline:
        with checkout(args.baseline) as baseline:
            ratio = single(args.epochs, args.pairs, baseline)
    else:
        ratio = single(args.epochs, args.pairs)
    print(f"ratio={ratio:.3f}")


if __name__ == "__main__":
    main()
