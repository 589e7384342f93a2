"""GAN losses. Discriminators emit logits; each loss owns the step from logits to its objective.

Every loss has ``d_loss(real_logits, fake_logits)`` and ``g_loss(fake_logits)``, and
``prob(logits)``, the discriminator's belief that an input is real, which the module logs as
``train/d_real`` / ``train/d_fake`` and the health monitor reads. Losses whose D is a critic,
its scores not probabilities (``CriticLoss``: LSGAN, hinge, WGAN-GP), log the raw mean score
there. A loss may add ``penalty(critic, real, fake)`` to D's loss (WGAN-GP's gradient penalty).
Any object with ``d_loss`` and ``g_loss`` is a loss to ``GANModule`` (your own included);
``prob``, ``probabilistic`` and ``penalty`` are optional (``prob_reading``). The R1 penalty on
real data (``r1_penalty``) is the framework's, for any loss (``r1.gamma``).
Every loss is a float32 scalar, also when D's logits are half precision (mixed precision).
"""

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F


def r1_penalty(critic, real: torch.Tensor, gamma: float, every: int = 1) -> torch.Tensor:
    """The R1 penalty (Mescheder et al. 2018) at the real batch ``real``:
    ``every * gamma / 2 * E[||grad_x D(x)||^2]``. ``every``: it is computed every this many D
    steps only ("lazy" regularisation, StyleGAN2), so it is scaled by that to keep its pull."""
    real = real.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(real).float().sum(), real, create_graph=True)
    return (every * gamma / 2) * grad.float().flatten(1).pow(2).sum(1).mean()


class GANLoss:
    """Base: the discriminator's output read as a probability through a sigmoid (a critic's
    unbounded score is read as it is: ``CriticLoss``)."""

    #: whether ``prob`` is a probability (False for critics, whose scores are unbounded)
    probabilistic = True

    def prob(self, logits: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(logits) if self.probabilistic else logits

    def d_loss(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def g_loss(self, fake_logits: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    #: a regulariser of D's loss (``penalty(critic, real, fake)``), e.g. WGAN-GP's; None: none
    penalty = None


class CriticLoss(GANLoss):
    """Base of the losses whose D is a critic: its output is an unbounded score, not a
    probability, so ``prob`` reads it as it is (``train/d_real`` logs the raw mean score) and
    the health monitor's saturation checks, which need probabilities, are off."""

    probabilistic = False


def prob_reading(loss: Any) -> tuple[Callable[[torch.Tensor], torch.Tensor], bool]:
    """How the module reads D's logits under ``loss`` (any object with ``d_loss`` and
    ``g_loss``): its ``prob`` (without one, the raw score) and whether that is a probability
    (its ``probabilistic``; without it, whether it has a ``prob``)."""
    prob = getattr(loss, "prob", None) or (lambda logits: logits)
    return prob, bool(getattr(loss, "probabilistic", hasattr(loss, "prob")))


def _report_bce(logits: torch.Tensor, target: float) -> torch.Tensor:
    """``nn.BCELoss()(nn.Sigmoid()(logits), target)``: torch's own kernel (log clamped at -100,
    its gradient epsilon), in float32 outside autocast, and NaN-transparent.

    Float32: under mixed precision a half-precision sigmoid saturates to exactly 0 or 1 far
    sooner than the report's float32 one; and CUDA autocast refuses ``binary_cross_entropy``
    outright ("unsafe to autocast"). NaN: ``F.binary_cross_entropy`` rejects it, and a NaN
    loss must reach the health monitor, which reports the run as diverged. On the CPU the
    rejection is an exception (no result, nothing recorded for autograd), so the plain
    kernel runs and NaN takes the slower NaN-safe path only when it occurs (run on every step,
    its extra kernels show in the report MLP's step time: ``benchmarks/interleaved.py``);
    elsewhere the rejection is a device assert, so the NaN-safe path is always taken.
    """
    device = logits.device.type
    if torch.is_autocast_enabled(device):
        with torch.autocast(device, enabled=False):
            return _report_bce(logits, target)
    p = torch.sigmoid(logits.float())
    full = torch.full_like(p, target)
    if device == "cpu":
        try:
            return F.binary_cross_entropy(p, full)
        except RuntimeError:  # "all elements of input should be between 0 and 1": NaN
            pass
    return _nan_safe_bce(p, full)


def _nan_safe_bce(p: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``F.binary_cross_entropy(p, target)``, NaN where ``p`` has NaN instead of an error: NaN
    is swapped for 0.5 and added back as a zero-gradient NaN term."""
    finite = torch.nan_to_num(p, nan=0.5)
    return F.binary_cross_entropy(finite, target) + (p - finite).sum()


class ReportBCELoss(GANLoss):
    """The source report's loss, numerics included: ``Sigmoid`` then ``nn.BCELoss``.

    D loss is the *sum* ``BCE(D(x), 1) + BCE(D(G(z)), 0)``; G loss is ``BCE(D(G(z')), 1)``.
    The sigmoid is applied before the log on purpose: like the report's ``nn.BCELoss`` it
    saturates to exactly 0 or 1, where BCE clamps ``log`` at -100, so a saturated term reads
    100 and its gradient vanishes. That is how the report's SGD lr 0.3 set-up collapses, and
    this loss reproduces it rather than hiding it (``loss=ns`` is the stable alternative).
    """

    #: the value a saturated BCE term takes (torch clamps log at -100)
    clamp = 100.0

    def __init__(self, real_label: float = 1.0, fake_label: float = 0.0) -> None:
        self.real_label = real_label
        self.fake_label = fake_label

    def d_loss(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        return (_report_bce(real_logits, self.real_label)
                + _report_bce(fake_logits, self.fake_label))

    def g_loss(self, fake_logits: torch.Tensor) -> torch.Tensor:
        return _report_bce(fake_logits, self.real_label)


class NonSaturatingLoss(GANLoss):
    """Goodfellow et al.'s non-saturating GAN loss on logits (numerically stable).

    D loss is the *mean* of the real and fake BCE terms (as in the PyTorch and d2l tutorials);
    G maximises ``log D(G(z))``. ``real_label``/``fake_label`` < 1 / > 0 give label smoothing
    (the Keras DCGAN tutorial uses 0.9 / 0.1, and trains G toward ``real_label`` too).
    """

    def __init__(self, real_label: float = 1.0, fake_label: float = 0.0) -> None:
        self.real_label = real_label
        self.fake_label = fake_label

    def d_loss(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        real_logits, fake_logits = real_logits.float(), fake_logits.float()
        loss_real = F.binary_cross_entropy_with_logits(
            real_logits, torch.full_like(real_logits, self.real_label)
        )
        loss_fake = F.binary_cross_entropy_with_logits(
            fake_logits, torch.full_like(fake_logits, self.fake_label)
        )
        return (loss_real + loss_fake) / 2

    def g_loss(self, fake_logits: torch.Tensor) -> torch.Tensor:
        fake_logits = fake_logits.float()
        return F.binary_cross_entropy_with_logits(
            fake_logits, torch.full_like(fake_logits, self.real_label)
        )


class MinimaxLoss(NonSaturatingLoss):
    """The original (saturating) minimax game: G *minimises* ``log(1 - D(G(z)))``.

    Its generator gradient vanishes while D confidently rejects fakes, which is why the
    non-saturating form is used in practice; kept for completeness and ablations.
    """

    def g_loss(self, fake_logits: torch.Tensor) -> torch.Tensor:
        # log(1 - sigmoid(l)) = -softplus(l)
        return -F.softplus(fake_logits.float()).mean()


class LSGANLoss(CriticLoss):
    """Least-squares GAN (Mao et al. 2017): D regresses real to 1 and fake to 0, G pulls its
    fakes toward 1."""

    def d_loss(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        real_logits, fake_logits = real_logits.float(), fake_logits.float()
        return 0.5 * ((real_logits - 1) ** 2).mean() + 0.5 * (fake_logits ** 2).mean()

    def g_loss(self, fake_logits: torch.Tensor) -> torch.Tensor:
        return 0.5 * ((fake_logits.float() - 1) ** 2).mean()


class HingeLoss(CriticLoss):
    """Hinge loss (Lim & Ye 2017; SAGAN, BigGAN): D wants real >= 1 and fake <= -1."""

    def d_loss(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        return F.relu(1 - real_logits.float()).mean() + F.relu(1 + fake_logits.float()).mean()

    def g_loss(self, fake_logits: torch.Tensor) -> torch.Tensor:
        return -fake_logits.float().mean()


class WGANGPLoss(CriticLoss):
    """Wasserstein loss with gradient penalty (Gulrajani et al. 2017).

    The critic's scores are unbounded (no sigmoid): D minimises ``E[D(G(z))] - E[D(x)]`` plus
    ``weight * E[(||grad D(x_hat)|| - 1)^2]`` at random interpolates ``x_hat`` of real and
    fake; G minimises ``-E[D(G(z))]``. The paper pairs it with n_critic 5 and Adam lr 1e-4,
    betas (0, 0.9) (``experiment=wgan_gp``).
    """

    def __init__(self, weight: float = 10.0) -> None:
        self.weight = weight

    def d_loss(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        return fake_logits.float().mean() - real_logits.float().mean()

    def g_loss(self, fake_logits: torch.Tensor) -> torch.Tensor:
        return -fake_logits.float().mean()

    def penalty(self, critic, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        # one mixing weight per sample, broadcast over the sample's other dimensions
        alpha = torch.rand(len(real), *[1] * (real.ndim - 1), device=real.device, dtype=real.dtype)
        mixed = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
        (grad,) = torch.autograd.grad(critic(mixed).sum(), mixed, create_graph=True)
        return self.weight * ((grad.float().flatten(1).norm(2, dim=1) - 1) ** 2).mean()
