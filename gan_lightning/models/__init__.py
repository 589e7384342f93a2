"""Plain ``nn.Module`` generators and discriminators, built by Hydra from ``conf/model``."""

from gan_lightning.models.discriminators import MLPDiscriminator
from gan_lightning.models.generators import MLPGenerator

__all__ = ["MLPDiscriminator", "MLPGenerator"]
