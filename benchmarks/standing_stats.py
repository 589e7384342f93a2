"""The same finished run scored with the drawing G's BatchNorm statistics as trained and with
standing statistics (``gan_lightning.standing``) over several numbers of batches: how much of
a final FID is the statistics, not the weights. "As trained" is what a run without
``standing_stats`` draws with: G's running statistics (an EMA generator copies them from G).

    GAN_DATA_DIR=../shared/data python benchmarks/standing_stats.py <run folder> [--batches 20 100]

The run folder needs its config.yaml and last.ckpt (a run of train.py). Prints one line per
setting:  statistics=<as trained | standing N> fid=.. fid_val=.. (fid_val: where the run held
images out of training) on the run's own metrics protocol (its Evaluator, its sample seed).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from omegaconf import OmegaConf

from gan_lightning.callbacks import Evaluator
from gan_lightning.standing import stand
from gan_lightning.train import build


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--batches", type=int, nargs="+", default=[20, 100])
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()
    cfg = OmegaConf.load(args.run / "config.yaml")
    cfg.paths.output_dir = str(args.run / "standing_stats")  # the Evaluator's best.ckpt folder
    cfg.logger = None
    datamodule, module, trainer = build(cfg)
    checkpoint = torch.load(args.run / "last.ckpt", weights_only=False, map_location="cpu")
    module.load_state_dict(checkpoint["state_dict"])
    module.g_step = checkpoint.get("g_step", 0)
    module.standing = (0, args.batch_size)  # scored as trained first: no re-estimate
    evaluator = next(c for c in trainer.callbacks if isinstance(c, Evaluator))
    evaluator.prepare(datamodule, "cpu")
    evaluator.load_reference(datamodule)
    if module.generator_ema is not None:  # as trained: the average's statistics are G's
        for average, own in zip(module.sampler.buffers(), module.generator.buffers(),
                                strict=True):
            average.copy_(own)
    trained = {k: v.clone() for k, v in module.sampler.state_dict().items()}

    def line(label: str) -> None:
        scores = evaluator.evaluate(module, {"fid"})
        print(f"statistics={label} fid={scores['fid']:.4f}"
              + (f" fid_val={scores['fid_val']:.4f}" if "fid_val" in scores else ""),
              flush=True)

    print(f"run={args.run.name} g_step={module.g_step}")
    line("as-trained")
    for batches in args.batches:
        module.sampler.load_state_dict(trained)
        stand(module.sampler, module.z_dim, batches, args.batch_size, module.num_classes)
        line(f"standing-{batches}x{args.batch_size}")


if __name__ == "__main__":
    main()
