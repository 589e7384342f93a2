"""Training throughput of the framework against a hand-written PyTorch loop, in one process.

    python benchmarks/throughput.py [--model mlp_small] [--steps 1500] [--repeats 3]

Alternates (a) a minimal PyTorch loop with the same generator, discriminator, loss,
optimizers, batch size and in-memory data and (b) the framework's training path exactly as
``train.py`` builds it (GANModule + GANDataModule + Trainer, default logging and callbacks,
FID off), several times each. Both are timed over the same generator steps after a warm-up.
Prints steps/s of each, the peak RSS, and last ``ratio=<framework s/step / plain s/step>``,
the median over repeats of the ratio within each repeat (the two arms of a repeat run back
to back, so the machine's drift, up to 2x here, cancels).
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import tempfile
import time

import lightning as L
import torch

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent))
from common import compose_config  # noqa: E402
from gan_lightning.pixels import unit_float  # noqa: E402
from gan_lightning.train import build  # noqa: E402


class StepTimer(L.Callback):
    """Wall time from the start of batch ``warmup`` to the end of the last batch."""

    def __init__(self, warmup: int) -> None:
        self.warmup = warmup
        self.start = self.end = 0.0
        self.steps = 0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.fit_loop.total_batch_idx == self.warmup:
            self.start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.end = time.perf_counter()
        self.steps = trainer.fit_loop.total_batch_idx + 1 - self.warmup


def plain_loop(cfg, images: torch.Tensor, steps: int, warmup: int, device: str) -> float:
    """Seconds per generator step of a hand-written loop; the report's code, minus Lightning."""
    from hydra.utils import instantiate

    g = instantiate(cfg.model.generator).to(device)
    d = instantiate(cfg.model.discriminator).to(device)
    loss = instantiate(cfg.loss)
    opt_g = instantiate(cfg.optimizer.g)(g.parameters())
    opt_d = instantiate(cfg.optimizer.d)(d.parameters())
    images = unit_float(images).to(device)  # uint8 storage: the plain loop holds floats
    batch, z_dim = cfg.dataset.batch_size, cfg.z_dim
    n_batches = -(-len(images) // batch)
    start = 0.0
    for step in range(steps + warmup):
        if step == warmup:
            if device == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
        i = step % n_batches
        if i == 0:  # a new epoch: reshuffle, as the report's DataLoader(shuffle=True) does
            order = torch.randperm(len(images), device=images.device)
        real = images[order[i * batch : (i + 1) * batch]]
        with torch.no_grad():
            fake = g(torch.randn(len(real), z_dim, device=device))
        loss_d = loss.d_loss(d(real), d(fake))
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()
        d.requires_grad_(False)
        loss_g = loss.g_loss(d(g(torch.randn(len(real), z_dim, device=device))))
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        d.requires_grad_(True)
    if device == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / steps


def framework(cfg, steps: int, warmup: int) -> tuple[float, torch.Tensor]:
    """Seconds per generator step of the framework's own training path."""
    datamodule, module, trainer = build(cfg)
    timer = StepTimer(warmup)
    trainer.callbacks.append(timer)
    trainer.fit(module, datamodule=datamodule)
    return (timer.end - timer.start) / timer.steps, datamodule.images


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="mlp_small")
    parser.add_argument("--steps", type=int, default=1500, help="timed generator steps")
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--optimizer", default="default",
                        help="default: SGD lr 0.1 (the report's lr 0.3 collapses and stops)")
    parser.add_argument("overrides", nargs="*", help="extra config overrides")
    args = parser.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    out = tempfile.mkdtemp(prefix="gan-bench-")
    overrides = [f"model={args.model}", f"optimizer={args.optimizer}", "metrics=none",
                 f"max_g_steps={args.steps + args.warmup}", "trainer.max_epochs=-1",
                 *args.overrides]
    cfg = compose_config(overrides, out)
    print(f"device={device} threads={torch.get_num_threads()} model={args.model} "
          f"optimizer={args.optimizer} batch={cfg.dataset.batch_size} steps={args.steps}")
    plain, fw, ratios = [], [], []
    for r in range(args.repeats):
        t_fw, images = framework(cfg, args.steps, args.warmup)
        t_plain = plain_loop(cfg, images, args.steps, args.warmup, device)
        plain.append(t_plain)
        fw.append(t_fw)
        ratios.append(t_fw / t_plain)
        print(f"repeat {r + 1}: plain {1 / t_plain:7.1f} steps/s   framework "
              f"{1 / t_fw:7.1f} steps/s   ratio {t_fw / t_plain:.3f}", flush=True)
    t_plain, t_fw = statistics.median(plain), statistics.median(fw)
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"median: plain {1 / t_plain:.1f} steps/s, framework {1 / t_fw:.1f} steps/s")
    print(f"peak_rss_mb={rss_mb:.0f}")
    # paired: each repeat's two arms ran back to back, so machine drift cancels in the ratio
    print(f"ratio={statistics.median(ratios):.3f}")


if __name__ == "__main__":
    main()
