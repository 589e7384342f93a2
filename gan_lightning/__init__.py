"""gan-lightning: GAN experiments on PyTorch Lightning + Hydra."""

# registers the resolvers the configs use (short_name, made_dir, basename)
from gan_lightning import utils as _utils  # noqa: F401

__version__ = "0.1.0"
