"""gan-lightning without Hydra: your own networks in a plain ``lightning.Trainer``.

    python examples/python_api.py --out runs/api --epochs 5

``GANModule`` trains any generator and discriminator that meet the contract (G: ``(B, z_dim)``
-> ``(B, *img_shape)`` in [-1, 1]; D: images -> ``(B, 1)`` logits; ``gan_lightning.networks``)
with any loss object that has ``d_loss`` and ``g_loss``. This project's datamodule, callbacks
and metrics plug into the Trainer as they are; ``gan_lightning.train.fit`` runs
``trainer.fit`` and writes the run's ``metrics.json``. The run folder then holds what
``gan-train`` writes: ``metrics.json``, ``samples.png``, ``last.ckpt``, ``best.ckpt`` and
TensorBoard events with the same tags (``tensorboard --logdir runs/api``).
"""

import argparse
import math
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.loggers import TensorBoardLogger
from torch import nn

from gan_lightning.callbacks import (
    Evaluator,
    GANProgressBar,
    HealthMonitor,
    RunCheckpoint,
    SampleGrid,
)
from gan_lightning.data import GANDataModule
from gan_lightning.losses import NonSaturatingLoss
from gan_lightning.module import GANModule
from gan_lightning.networks import check_contract
from gan_lightning.train import fit


class Generator(nn.Module):
    def __init__(self, z_dim: int, img_shape: tuple[int, ...]) -> None:
        super().__init__()
        self.img_shape = img_shape
        self.net = nn.Sequential(nn.Linear(z_dim, 256), nn.LeakyReLU(0.2),
                                 nn.Linear(256, math.prod(img_shape)), nn.Tanh())

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).view(len(z), *self.img_shape)


class Discriminator(nn.Module):
    def __init__(self, img_shape: tuple[int, ...]) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(math.prod(img_shape), 256),
                                 nn.LeakyReLU(0.2), nn.Linear(256, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="runs/api", help="the run folder")
    parser.add_argument("--data-dir", default="./data", help="where MNIST is (or goes)")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batches", type=int, default=None, help="batches per epoch (all)")
    parser.add_argument("--fid-samples", type=int, default=10_000)
    parser.add_argument("--log-every", type=int, default=50, help="generator steps per log")
    args = parser.parse_args()

    run_dir, z_dim, seed = Path(args.out), 64, 0
    L.seed_everything(seed)
    datamodule = GANDataModule(name="mnist", data_dir=args.data_dir, batch_size=64, seed=seed,
                               img_shape=[1, 28, 28], num_classes=10)
    generator, discriminator = Generator(z_dim, (1, 28, 28)), Discriminator((1, 28, 28))
    check_contract(generator, discriminator, z_dim, [1, 28, 28])  # one line if they do not fit
    module = GANModule(
        generator=generator,
        discriminator=discriminator,
        loss=NonSaturatingLoss(),  # or any object with d_loss and g_loss
        optimizer_g=lambda params: torch.optim.Adam(params, lr=2e-4, betas=(0.5, 0.999)),
        optimizer_d=lambda params: torch.optim.Adam(params, lr=2e-4, betas=(0.5, 0.999)),
        z_dim=z_dim,
        seed=seed,
        # the framework's stabilizers work on any networks
        spectral_norm=True,
        ema_decay=0.999,
    )
    trainer = L.Trainer(
        max_epochs=args.epochs,
        limit_train_batches=args.batches,
        log_every_n_steps=args.log_every,
        default_root_dir=run_dir,
        logger=TensorBoardLogger(run_dir, name="tensorboard", version="", default_hp_metric=False),
        callbacks=[
            RunCheckpoint(dirpath=run_dir, save_last=True, save_top_k=0),
            SampleGrid(out_dir=run_dir),
            HealthMonitor(),
            GANProgressBar(),
            Evaluator(fid={"num_fake": args.fid_samples, "num_real": args.fid_samples},
                      out_dir=str(run_dir), seed=seed),
        ],
    )
    record = fit(module, datamodule, trainer, run_dir)
    print(f"{record['status']}: {record['g_steps']} generator steps, FID "
          f"{record.get('fid', {}).get('final', float('nan')):.1f}; see {run_dir}/metrics.json")


if __name__ == "__main__":
    main()
