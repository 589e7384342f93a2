"""Plain ``nn.Module`` generators and discriminators, built by Hydra from ``conf/model``."""

from gan_lightning.models.discriminators import DCGANMNISTDiscriminator, MLPDiscriminator
from gan_lightning.models.generators import DCGANMNISTGenerator, MLPGenerator

__all__ = ["DCGANMNISTDiscriminator", "DCGANMNISTGenerator", "MLPDiscriminator", "MLPGenerator"]
