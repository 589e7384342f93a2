"""The framework's step against a hand-written step, alternated every few dozen steps.

    python benchmarks/interleaved.py [--epochs 3] [--block 50] [overrides ...]

``end_to_end.py`` times whole processes, a minute each; this machine's speed drifts by 10-30%
between minutes, so its per-pair ratios scatter (0.9 to 1.4 for the same code) and a change of
a few percent cannot be seen in them. This script takes the drift out of the per-step part:
in one process it trains the framework exactly as ``train.py`` builds it (``build``, full
MNIST, ``metrics=none``) and, every ``--block`` batches, pauses it to run the same number of
steps of ``plain_gan.py``'s loop (the same model, optimizer, batch, data held in memory as
floats, ``nn.BCELoss``), so both arms are timed within the same second. It prints the
median over blocks of framework s/step, plain s/step, their ratio (with its quartiles), and
the same for ``training_step`` alone (the framework's step without Lightning's loop around
it). The last line is ``step_ratio=``. Start-up and epoch ends are not in it: those are
``end_to_end.py``'s.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import lightning as L
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import compose_config, data_dir  # noqa: E402
from gan_lightning.train import build  # noqa: E402
from plain_gan import PlainGAN, mnist_images  # noqa: E402


class PlainLoop:
    """``plain_gan.py``'s training loop (its ``PlainGAN`` and data), run ``steps`` at a time."""

    def __init__(self, batch_size: int = 64) -> None:
        self.images = mnist_images(data_dir())
        self.gan = PlainGAN()
        self.batch_size = batch_size
        self.order, self.next = torch.randperm(len(self.images)), 0

    def run(self, steps: int) -> float:
        """Seconds per step of ``steps`` steps."""
        start = time.perf_counter()
        for _ in range(steps):
            if self.next + self.batch_size > len(self.images):
                self.order, self.next = torch.randperm(len(self.images)), 0
            self.gan.step(self.images[self.order[self.next : self.next + self.batch_size]])
            self.next += self.batch_size
        return (time.perf_counter() - start) / steps


class Alternate(L.Callback):
    """Every ``block`` batches: the framework's s/step over the block just run (and its
    ``training_step``'s alone), then ``block`` plain steps."""

    def __init__(self, module: L.LightningModule, plain: PlainLoop, block: int) -> None:
        self.plain, self.block = plain, block
        self.framework, self.step_only, self.plain_s = [], [], []
        self.start: float | None = None
        self.in_step = 0.0
        step = module.training_step

        def timed_step(batch, batch_idx):
            start = time.perf_counter()
            try:
                return step(batch, batch_idx)
            finally:
                self.in_step += time.perf_counter() - start

        module.training_step = timed_step

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self.start = None  # blocks never span an epoch's end

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if batch_idx % self.block:
            return
        if self.start is not None:
            self.framework.append((time.perf_counter() - self.start) / self.block)
            self.step_only.append(self.in_step / self.block)
            self.plain_s.append(self.plain.run(self.block))
        self.start, self.in_step = time.perf_counter(), 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--block", type=int, default=50)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: all cores)")
    parser.add_argument("overrides", nargs="*", help="extra config overrides")
    args = parser.parse_args()
    threads = args.threads or torch.get_num_threads()
    cfg = compose_config(["metrics=none", f"trainer.max_epochs={args.epochs}", f"threads={threads}",
                          "callbacks.progress_bar.refresh_rate=0", *args.overrides],
                         tempfile.mkdtemp(prefix="gan-interleaved-"))
    datamodule, module, trainer = build(cfg)
    plain = PlainLoop()
    plain.run(2 * args.block)  # warm-up
    timer = Alternate(module, plain, args.block)
    trainer.callbacks.append(timer)
    trainer.fit(module, datamodule=datamodule)

    def summary(name: str, times: list[float]) -> float:
        ratios = [a / b for a, b in zip(times, timer.plain_s, strict=True)]
        q1, median, q3 = statistics.quantiles(ratios, n=4)
        print(f"{name}: {statistics.median(times) * 1e6:.0f} us/step against plain "
              f"{statistics.median(timer.plain_s) * 1e6:.0f} us/step; ratio median "
              f"{median:.3f} (quartiles {q1:.3f}-{q3:.3f})")
        return median

    print(f"threads={threads}, {len(timer.framework)} blocks of {args.block} steps, "
          f"module speed-ups {module.speedups}")
    summary("training_step alone", timer.step_only)
    ratio = summary("framework (Lightning's loop and the step)", timer.framework)
    print(f"step_ratio={ratio:.3f}")


if __name__ == "__main__":
    main()
