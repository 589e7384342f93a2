"""Building blocks shared by generators and discriminators."""

from torch import nn


def mlp(dims: list[int], slope: float = 0.2) -> list[nn.Module]:
    """Linear layers through ``dims`` with LeakyReLU(slope) between them (none after the last)."""
    layers: list[nn.Module] = []
    for i, (d_in, d_out) in enumerate(zip(dims[:-1], dims[1:])):
        layers.append(nn.Linear(d_in, d_out))
        if i < len(dims) - 2:
            layers.append(nn.LeakyReLU(slope))
    return layers
