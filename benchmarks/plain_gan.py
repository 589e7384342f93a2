"""The report's MLP GAN as a user would write it by hand: plain PyTorch, no framework.

    python benchmarks/plain_gan.py [--epochs 20] [--z-dim 100] [--optimizer default|sgd|adam]

The same model, data, batch, optimizer and epochs as ``python train.py`` with its defaults:
G z->128->784 (LeakyReLU 0.2, Tanh), D 784->128->1 (LeakyReLU 0.2, Sigmoid), ``nn.BCELoss``
with D's loss the sum of its real and fake terms, full MNIST loaded with torchvision (as the
report does) and held in memory in [-1, 1] (no DataLoader: faster than the report's), batch
64 reshuffled every epoch, torch's default threads (every core).
``--optimizer``: ``default`` SGD lr 0.1, ``sgd`` SGD lr 0.3 (the report's), ``adam`` lr 2e-4,
betas (0.5, 0.999). It imports nothing of this project, so ``benchmarks/end_to_end.py`` can
time it as a whole process beside ``train.py``. Prints the epochs, steps and wall time.
"""

from __future__ import annotations

import argparse
import os
import time

import torch
import torchvision
from torch import nn


def mnist_images(data_dir: str) -> torch.Tensor:
    """The report's data: torchvision's MNIST, Normalize(0.5, 0.5) to [-1, 1], held in memory
    as ``(60000, 784)`` floats."""
    mnist = torchvision.datasets.MNIST(data_dir, train=True, download=True)
    return mnist.data.flatten(1).float() / 127.5 - 1.0


class PlainGAN:
    """The report's networks, optimizers and loss, and one training step, written by hand."""

    def __init__(self, z_dim: int = 100, optimizer: str = "default") -> None:
        self.z_dim = z_dim
        self.generator = nn.Sequential(nn.Linear(z_dim, 128), nn.LeakyReLU(0.2),
                                       nn.Linear(128, 784), nn.Tanh())
        self.discriminator = nn.Sequential(nn.Linear(784, 128), nn.LeakyReLU(0.2),
                                           nn.Linear(128, 1), nn.Sigmoid())
        g, d = self.generator.parameters(), self.discriminator.parameters()
        if optimizer == "adam":
            self.opt_g = torch.optim.Adam(g, lr=2e-4, betas=(0.5, 0.999))
            self.opt_d = torch.optim.Adam(d, lr=2e-4, betas=(0.5, 0.999))
        else:
            lr = 0.3 if optimizer == "sgd" else 0.1
            self.opt_g, self.opt_d = torch.optim.SGD(g, lr=lr), torch.optim.SGD(d, lr=lr)
        self.bce = nn.BCELoss()

    def step(self, real: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One D update and one G update on the batch ``real``; their losses."""
        generator, discriminator, bce = self.generator, self.discriminator, self.bce
        ones, zeros = torch.ones(len(real), 1), torch.zeros(len(real), 1)

        # Discriminator: real toward 1, fake (no gradient into G) toward 0.
        fake = generator(torch.randn(len(real), self.z_dim)).detach()
        loss_d = bce(discriminator(real), ones) + bce(discriminator(fake), zeros)
        self.opt_d.zero_grad()
        loss_d.backward()
        self.opt_d.step()

        # Generator: fresh noise, scored by the updated discriminator, toward 1.
        loss_g = bce(discriminator(generator(torch.randn(len(real), self.z_dim))), ones)
        self.opt_g.zero_grad()
        loss_g.backward()
        self.opt_g.step()
        return loss_d, loss_g


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--z-dim", type=int, default=100)
    parser.add_argument("--optimizer", choices=("default", "sgd", "adam"), default="default")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--data-dir", default=os.environ.get("GAN_DATA_DIR", "data"))
    args = parser.parse_args()
    start = time.perf_counter()
    torch.manual_seed(args.seed)
    images = mnist_images(args.data_dir)
    gan = PlainGAN(args.z_dim, args.optimizer)

    steps = 0
    loss_d = loss_g = torch.tensor(float("nan"))  # --epochs 0: start-up alone
    for _ in range(args.epochs):
        order = torch.randperm(len(images))
        for first in range(0, len(images), args.batch_size):
            loss_d, loss_g = gan.step(images[order[first:first + args.batch_size]])
            steps += 1
    print(f"epochs={args.epochs} g_steps={steps} threads={torch.get_num_threads()} "
          f"loss_d={loss_d.item():.3f} loss_g={loss_g.item():.3f} "
          f"wall_s={time.perf_counter() - start:.1f}")


if __name__ == "__main__":
    main()
