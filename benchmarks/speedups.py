"""What each ``fast=true`` speed-up (``gan_lightning.speedups``) saves, in one process.

    python benchmarks/speedups.py [--model mlp_small] [--steps 1500] [--repeats 3]

Times the framework's training path (as ``throughput.py`` builds it: FID off, the default
callbacks and logger) over the same generator steps after a warm-up, with every speed-up on,
with none, and with all but one, for each; the arms of a repeat run back to back, in a
rotating order, so the machine's drift mostly cancels. Prints seconds per generator step
and, per speed-up, ``saving=<(s/step without it - s/step with all) / s/step with all>``, the
median over repeats.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile

import torch

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent))
from throughput import StepTimer  # noqa: E402

from common import compose_config  # noqa: E402
from gan_lightning.speedups import SPEEDUPS  # noqa: E402
from gan_lightning.train import build  # noqa: E402


def seconds_per_step(cfg, fast: tuple[str, ...], steps: int, warmup: int) -> float:
    datamodule, module, trainer = build(cfg)
    module.fast = fast
    timer = StepTimer(warmup)
    trainer.callbacks.append(timer)
    trainer.fit(module, datamodule=datamodule)
    assert module.speedups == list(fast), (module.speedups, fast)
    return (timer.end - timer.start) / timer.steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="mlp_small")
    parser.add_argument("--steps", type=int, default=1500, help="timed generator steps")
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("overrides", nargs="*", help="extra config overrides")
    args = parser.parse_args()
    torch.manual_seed(0)
    cfg = compose_config([f"model={args.model}", "metrics=none", "trainer.max_epochs=-1",
                          f"max_g_steps={args.steps + args.warmup}", *args.overrides],
                         tempfile.mkdtemp(prefix="gan-speedups-"))
    arms = {"all": SPEEDUPS, "none": (),
            **{f"all but {n}": tuple(s for s in SPEEDUPS if s != n) for n in SPEEDUPS}}
    print(f"threads={torch.get_num_threads()} model={args.model} steps={args.steps} "
          f"arms={len(arms)} repeats={args.repeats}")
    times: dict[str, list[float]] = {name: [] for name in arms}
    savings: dict[str, list[float]] = {name: [] for name in arms if name != "all"}
    names = list(arms)
    for r in range(args.repeats):
        order = names[r % len(names):] + names[: r % len(names)]
        this = {name: seconds_per_step(cfg, arms[name], args.steps, args.warmup)
                for name in order}
        for name, t in this.items():
            times[name].append(t)
            if name != "all":
                savings[name].append((t - this["all"]) / this["all"])
        print(f"repeat {r + 1}: " + "  ".join(f"{n} {1e3 * t:.3f} ms" for n, t in this.items()),
              flush=True)
    for name in names:
        line = f"{name:>22}: {1e3 * statistics.median(times[name]):.3f} ms/step"
        if name != "all":
            what = "all" if name == "none" else name.removeprefix("all but ")
            line += f"   saving of {what}={statistics.median(savings[name]):+.3f}"
        print(line)


if __name__ == "__main__":
    main()
