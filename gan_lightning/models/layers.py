"""Building blocks shared by generators and discriminators."""

import torch
from torch import nn

ACTIVATIONS = {"leaky_relu": lambda slope: nn.LeakyReLU(slope), "relu": lambda _: nn.ReLU(),
               "tanh": lambda _: nn.Tanh()}


def mlp(dims: list[int], slope: float = 0.2, activation: str = "leaky_relu",
        dropout: float = 0.0) -> list[nn.Module]:
    """Linear layers through ``dims`` with an activation (and dropout) between them, none after
    the last. ``activation``: leaky_relu (with ``slope``), relu or tanh."""
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation '{activation}' unknown; choose one of {sorted(ACTIVATIONS)}")
    layers: list[nn.Module] = []
    for i, (d_in, d_out) in enumerate(zip(dims[:-1], dims[1:])):
        layers.append(nn.Linear(d_in, d_out))
        if i < len(dims) - 2:
            layers.append(ACTIVATIONS[activation](slope))
            if dropout:
                layers.append(nn.Dropout(dropout))
    return layers


def image_shape(img_shape: list[int], model: str) -> tuple[int, int, int]:
    """``(channels, height, width)`` of a convolutional model's images, or a ValueError that
    says the dataset's items are not images (``gaussian2d``'s 2-D points)."""
    if len(img_shape) != 3:
        raise ValueError(f"{model} needs images (channels, height, width); the dataset's items "
                         f"have shape {list(img_shape)}")
    channels, height, width = img_shape
    return channels, height, width


def dcgan_sizes(img_shape: list[int]) -> tuple[int, int]:
    """``(start, n_up)``: the DCGAN starts at ``start x start`` and doubles ``n_up`` times.

    Halve the image side while it stays even and at least 4: 32 -> 4 (3 doublings),
    28 -> 7 (2), 64 -> 4 (4).
    """
    _, height, width = image_shape(img_shape, "dcgan")
    if height != width:
        raise ValueError(f"dcgan needs square images; the dataset has {img_shape}")
    start, n_up = height, 0
    while start % 2 == 0 and start // 2 >= 4:
        start, n_up = start // 2, n_up + 1
    if n_up < 1:
        raise ValueError(f"dcgan needs an image side of 8 or more; got {height}")
    return start, n_up


def init_dcgan_weights(module: nn.Module) -> None:
    """Radford et al.: conv weights ~ N(0, 0.02), BatchNorm scale ~ N(1, 0.02), bias 0."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d | nn.Linear):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


class LabelCode(nn.Module):
    """Class labels -> ``num_classes``-wide vectors: ``onehot`` or a learned ``embedding``."""

    def __init__(self, num_classes: int, kind: str = "onehot") -> None:
        super().__init__()
        if kind not in ("onehot", "embedding"):
            raise ValueError(f"label code '{kind}' unknown; choose onehot or embedding")
        if not num_classes or num_classes < 2:
            raise ValueError(f"a conditional model needs a dataset with classes; got "
                             f"num_classes={num_classes}")
        self.num_classes = num_classes
        self.embedding = nn.Embedding(num_classes, num_classes) if kind == "embedding" else None

    def forward(self, labels: torch.Tensor) -> torch.Tensor:
        if self.embedding is not None:
            return self.embedding(labels)
        return nn.functional.one_hot(labels, self.num_classes).float()


def spectral_normed(module: nn.Module, enabled: bool = True) -> nn.Module:
    """Spectral normalisation (Miyato et al. 2018) of every conv and linear weight of
    ``module``: each is divided by its largest singular value (one power iteration per
    forward), which bounds the layer's Lipschitz constant by 1. Applied after initialisation;
    layers already normalised are left as they are."""
    if enabled:
        for m in list(module.modules()):
            if isinstance(m, nn.Conv2d | nn.ConvTranspose2d | nn.Linear) and not (
                    nn.utils.parametrize.is_parametrized(m, "weight")):
                nn.utils.parametrizations.spectral_norm(m)
    return module
