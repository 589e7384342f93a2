"""Standing statistics (Brock et al. 2019): the BatchNorm statistics of a generator
re-estimated on its own outputs before it draws in eval mode.

In training, a BatchNorm layer keeps a momentum average of its batches' statistics (momentum
0.1: mostly the last ten or so batches), so what a generator draws in eval mode depends on
which batches came last; an EMA generator's statistics are copied from G, whose weights are
not the average's. Either way a run's figures jump between evaluations for reasons that are
not its weights. Re-estimated as the plain mean over many batches of the drawing
generator's own outputs, the statistics belong to the weights that draw.
"""

from __future__ import annotations

import torch
from torch import nn

#: the layers whose running statistics are re-estimated
NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)


@torch.no_grad()
def stand(net: nn.Module, z_dim: int, batches: int, batch_size: int, num_classes: int = 0,
          device: torch.device | str = "cpu", seed: int = 0) -> bool:
    """Re-estimate ``net``'s BatchNorm running statistics over ``batches`` batches of
    ``batch_size`` seeded latents (conditional generators, ``num_classes``: the classes in
    turn); ``net(z)`` or ``net(z, labels)`` as ``GANModule.generate`` calls it. The caller's
    RNG and ``net``'s mode are left as they were. Returns whether there was anything to do."""
    norms = [m for m in net.modules() if isinstance(m, NORMS) and m.track_running_stats]
    if batches < 1 or not norms:
        return False
    momenta = [m.momentum for m in norms]
    was_training = net.training
    rng = torch.Generator().manual_seed(seed)
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # a plain mean over the batches, not a momentum average
    net.train()
    try:
        for i in range(batches):
            z = torch.randn(batch_size, z_dim, generator=rng).to(device)
            if num_classes:
                labels = (torch.arange(batch_size) + i * batch_size) % num_classes
                net(z, labels.to(device))
            else:
                net(z)
    finally:
        for m, momentum in zip(norms, momenta, strict=True):
            m.momentum = momentum
        net.train(was_training)
    return True
