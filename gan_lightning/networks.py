"""A run's two networks: built from ``cfg.model``, given the options the framework applies to any
network (``spectral_norm`` on D), and checked against the contract before anything runs.

The contract, for this package's networks and yours alike:

- **G** maps latents ``z`` of shape ``(B, z_dim)`` to samples of the dataset's shape
  ``(B, *img_shape)``: ``(B, 1, 28, 28)`` for MNIST, ``(B, 3, 32, 32)`` for CIFAR-10, ``(B, 2)``
  for 2-D points; in [-1, 1], the range the data is scaled to (a Tanh output).
- **D** maps such samples to logits of shape ``(B, 1)``; the loss turns them into its objective.
- **Conditional** models: G has an attribute ``num_classes`` and is called ``G(z, labels)``,
  D is called ``D(x, labels)``, with ``labels`` of shape ``(B,)`` (int64 classes).

``check_contract`` calls both on a batch of two (eval mode, no gradients, latents from a
private generator: the run's random state is untouched) and names the shapes when they differ.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torch import nn

from gan_lightning.errors import ConfigError
from gan_lightning.models.layers import spectral_normed


class ContractError(ConfigError):
    """A network that does not fit the contract (one line: which, the shapes, what is expected)."""


def build_networks(cfg: DictConfig) -> tuple[nn.Module, nn.Module]:
    """``(generator, discriminator)`` from ``cfg.model``, spectrally normalised where
    ``cfg.spectral_norm``, checked against the contract for ``cfg.dataset``. A constructor's
    complaint (an image size the model cannot make, a missing argument) becomes one line."""
    try:
        generator = instantiate(cfg.model.generator)
        discriminator = instantiate(cfg.model.discriminator)
    except InstantiationException as error:
        cause = error.__cause__ or error
        model = OmegaConf.select(cfg, "model.generator._target_", default="?").rsplit(".", 1)[-1]
        dataset = OmegaConf.select(cfg, "dataset.name", default="?")
        raise ConfigError(f"the model ({model}) cannot be built for dataset '{dataset}': "
                          f"{' '.join(str(cause).split())}") from error
    # right after D is made: the random state its normalisation draws from is the one a
    # constructor argument would have used
    spectral_normed(discriminator, bool(cfg.get("spectral_norm", False)))
    check_contract(generator, discriminator, cfg.z_dim, list(cfg.dataset.img_shape))
    return generator, discriminator


def _name(net: nn.Module) -> str:
    return f"{type(net).__module__}.{type(net).__qualname__}"


def _shape(x: Any) -> str:
    return str(tuple(x.shape)) if isinstance(x, torch.Tensor) else f"a {type(x).__name__}"


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return f"{type(error).__name__}: {text.splitlines()[0] if text else ''}"


def check_contract(generator: nn.Module, discriminator: nn.Module, z_dim: int,
                   img_shape: Sequence[int], batch: int = 2) -> None:
    """Raise ``ContractError`` when G or D does not map the contract's shapes (module doc)."""
    conditional = int(getattr(generator, "num_classes", 0) or 0)
    expected = (batch, *img_shape)
    z = torch.randn(batch, z_dim, generator=torch.Generator().manual_seed(0))
    labels = torch.arange(batch) % max(conditional, 1) if conditional else None
    g_name, d_name = _name(generator), _name(discriminator)
    modes = generator.training, discriminator.training
    generator.eval()
    discriminator.eval()
    try:
        with torch.no_grad():
            try:
                fake = generator(z, labels) if conditional else generator(z)
            except Exception as error:  # noqa: BLE001 - the user's network: name it, one line
                call = f"G(z {tuple(z.shape)}, labels {tuple(labels.shape)})" if conditional \
                    else f"G(z {tuple(z.shape)})"
                raise ContractError(f"the generator ({g_name}) fails on {call}: "
                                    f"{_first_line(error)}") from None
            if not isinstance(fake, torch.Tensor) or tuple(fake.shape) != expected:
                raise ContractError(
                    f"the generator ({g_name}) maps z {tuple(z.shape)} to {_shape(fake)}; the "
                    f"dataset's samples are {tuple(img_shape)}, so G must return {expected} "
                    f"(B, *img_shape)")
            try:
                logits = discriminator(fake, labels) if conditional else discriminator(fake)
            except Exception as error:  # noqa: BLE001
                raise ContractError(f"the discriminator ({d_name}) fails on samples "
                                    f"{expected}: {_first_line(error)}") from None
            if not isinstance(logits, torch.Tensor) or tuple(logits.shape) != (batch, 1):
                raise ContractError(
                    f"the discriminator ({d_name}) maps samples {expected} to {_shape(logits)}; "
                    f"D must return logits ({batch}, 1) (B, 1)")
    finally:
        generator.train(modes[0])
        discriminator.train(modes[1])
