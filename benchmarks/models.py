"""Each image model of the source material, trained for the same generator-step budget on full
MNIST with its experiment's settings; prints FID (classifier features), losses and speed.

    python benchmarks/models.py                      # every image experiment, 500 G steps
    python benchmarks/models.py --steps 2000 --only dcgan cgan
    python benchmarks/models.py --only "dcgan model.generator.ngf=32 dataset.batch_size=64"

An ``--only`` entry is an experiment name, optionally followed by overrides (one quoted string).

A regression in a model, a loss or the training step shows as a worse FID at equal budget.
One line per model:  experiment=X g_steps=N fid=F loss_d=.. loss_g=.. steps_per_s=.. time_s=..
"""

from __future__ import annotations

import argparse
import tempfile
import time

import lightning as L
import torch

from common import compose_config
from gan_lightning.train import build

IMAGE_EXPERIMENTS = ["report_mlp", "mlp_gan", "cgan", "dcgan_mnist", "dcgan", "wgan_gp",
                     "conv_mnist_plain", "conv_mnist"]


def bench(entry: str, steps: int, seed: int, threads: int | None) -> dict[str, float]:
    experiment, *overrides = entry.split()
    with tempfile.TemporaryDirectory() as out:
        cfg = compose_config([
            f"experiment={experiment}", *overrides, f"max_g_steps={steps}", f"seed={seed}",
            "logger=csv", "callbacks.progress_bar=null", "+trainer.enable_progress_bar=false",
            "trainer.enable_model_summary=false", "callbacks.health.stop_on_collapse=false",
            "dataset.source=torchvision",
            # one evaluation, at the end: the budget, not the schedule, decides
            "metrics.fid.every_n_epochs=1000", "metrics.is.enabled=false",
            "metrics.precision_recall.enabled=false", "metrics.kid.enabled=false",
        ], out)
        if threads:
            torch.set_num_threads(threads)
        L.seed_everything(seed, verbose=False)
        datamodule, module, trainer = build(cfg)
        start = time.perf_counter()
        trainer.fit(module, datamodule=datamodule)
        elapsed = time.perf_counter() - start
        evaluator = next(c for c in trainer.callbacks if hasattr(c, "history"))
        fid = evaluator.history[-1]["fid"] if evaluator.history else float("nan")
        return {"g_steps": module.g_step, "fid": fid, **{k.split("/")[1]: v for k, v in
                module.run.latest.items() if k in ("train/loss_d", "train/loss_g")},
                "steps_per_s": module.g_step / elapsed, "time_s": elapsed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=500, help="generator steps per model")
    parser.add_argument("--only", nargs="*", default=IMAGE_EXPERIMENTS, metavar="EXPERIMENT")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    for experiment in args.only:
        r = bench(experiment, args.steps, args.seed, args.threads)
        print(f"experiment={experiment!r} g_steps={r['g_steps']} fid={r['fid']:.1f} "
              f"loss_d={r.get('loss_d', float('nan')):.3f} "
              f"loss_g={r.get('loss_g', float('nan')):.3f} "
              f"steps_per_s={r['steps_per_s']:.1f} time_s={r['time_s']:.0f}", flush=True)


if __name__ == "__main__":
    main()
