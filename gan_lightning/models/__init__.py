"""Plain ``nn.Module`` generators and discriminators, built by Hydra from ``conf/model``."""

from gan_lightning.models.discriminators import (
    ConditionalMLPDiscriminator,
    DCGANDiscriminator,
    DCGANMNISTDiscriminator,
    InfoGANDiscriminator,
    MLPDiscriminator,
)
from gan_lightning.models.generators import (
    ConditionalMLPGenerator,
    DCGANGenerator,
    DCGANMNISTGenerator,
    InfoGANGenerator,
    MLPGenerator,
)

__all__ = [
    "ConditionalMLPDiscriminator",
    "ConditionalMLPGenerator",
    "DCGANDiscriminator",
    "DCGANGenerator",
    "DCGANMNISTDiscriminator",
    "DCGANMNISTGenerator",
    "InfoGANDiscriminator",
    "InfoGANGenerator",
    "MLPDiscriminator",
    "MLPGenerator",
]
