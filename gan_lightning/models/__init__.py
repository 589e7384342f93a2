"""Plain ``nn.Module`` generators and discriminators, built by Hydra from ``conf/model``."""

from gan_lightning.models.discriminators import (
    ConditionalMLPDiscriminator,
    DCGANDiscriminator,
    DCGANMNISTDiscriminator,
    MLPDiscriminator,
)
from gan_lightning.models.generators import (
    ConditionalMLPGenerator,
    DCGANGenerator,
    DCGANMNISTGenerator,
    MLPGenerator,
)

__all__ = [
    "ConditionalMLPDiscriminator",
    "ConditionalMLPGenerator",
    "DCGANDiscriminator",
    "DCGANGenerator",
    "DCGANMNISTDiscriminator",
    "DCGANMNISTGenerator",
    "MLPDiscriminator",
    "MLPGenerator",
]
