import math

import pytest
import torch

from gan_lightning.losses import MinimaxLoss, NonSaturatingLoss, ReportBCELoss


def t(*values):
    return torch.tensor(values).view(-1, 1)


def test_report_bce_is_a_sum_of_terms():
    loss = ReportBCELoss()
    assert loss.d_loss(t(0.0), t(0.0)).item() == pytest.approx(2 * math.log(2), rel=1e-6)
    # real logit 2 -> -log(sigmoid(2)); fake logit -2 -> -log(1 - sigmoid(-2))
    s = 1 / (1 + math.exp(-2))
    assert loss.d_loss(t(2.0), t(-2.0)).item() == pytest.approx(-2 * math.log(s), rel=1e-6)
    assert loss.g_loss(t(-2.0)).item() == pytest.approx(-math.log(1 - s), rel=1e-6)


def test_report_bce_saturates_at_the_clamp():
    loss = ReportBCELoss()
    # sigmoid(50) == 1.0 in float32, so BCE(., 0) hits torch's log clamp: exactly 100
    assert loss.d_loss(t(50.0), t(50.0)).item() == pytest.approx(100.0)
    assert loss.g_loss(t(50.0)).item() == pytest.approx(0.0, abs=1e-6)


def test_non_saturating_is_a_mean_and_stable():
    loss = NonSaturatingLoss()
    assert loss.d_loss(t(0.0), t(0.0)).item() == pytest.approx(math.log(2), rel=1e-6)
    logits = t(-3.0, 0.5)
    expected = torch.nn.functional.softplus(-logits).mean().item()
    assert loss.g_loss(logits).item() == pytest.approx(expected, rel=1e-6)
    # logits: no clamp, large values stay finite and exact
    assert loss.d_loss(t(50.0), t(50.0)).item() == pytest.approx(25.0, rel=1e-4)


def test_label_smoothing_targets():
    loss = NonSaturatingLoss(real_label=0.9, fake_label=0.1)
    p = 1 / (1 + math.exp(-1.0))
    real_term = -(0.9 * math.log(p) + 0.1 * math.log(1 - p))
    fake_term = -(0.1 * math.log(p) + 0.9 * math.log(1 - p))
    assert loss.d_loss(t(1.0), t(1.0)).item() == pytest.approx((real_term + fake_term) / 2,
                                                               rel=1e-6)
    assert loss.g_loss(t(1.0)).item() == pytest.approx(real_term, rel=1e-6)


def test_minimax_generator_loss():
    logits = t(-1.0, 2.0)
    expected = (math.log(1 - 1 / (1 + math.exp(1))) + math.log(1 - 1 / (1 + math.exp(-2)))) / 2
    assert MinimaxLoss().g_loss(logits).item() == pytest.approx(expected, rel=1e-6)


def test_report_bce_terms_by_hand():
    """D loss = BCE(sigmoid(real), 1) + BCE(sigmoid(fake), 0): each term computed with math.log."""
    loss = ReportBCELoss()
    sig = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731
    # real logits +2/-2 (mean over the batch), fake logits -2/+2
    real_term = -(math.log(sig(2.0)) + math.log(sig(-2.0))) / 2
    fake_term = -(math.log(1 - sig(-2.0)) + math.log(1 - sig(2.0))) / 2
    value = loss.d_loss(t(2.0, -2.0), t(-2.0, 2.0)).item()
    assert value == pytest.approx(real_term + fake_term, rel=1e-6)
    # a sum, not a mean: twice what the non-saturating (mean) loss gives for the same logits
    assert value == pytest.approx(2 * NonSaturatingLoss().d_loss(t(2.0, -2.0), t(-2.0, 2.0)).item(),
                                  rel=1e-5)
    assert loss.g_loss(t(2.0, -2.0)).item() == pytest.approx(
        -(math.log(sig(2.0)) + math.log(sig(-2.0))) / 2, rel=1e-6)


def test_report_bce_fake_term_is_exactly_the_clamp_when_saturated():
    loss = ReportBCELoss()
    # real logit 0 -> log 2; fake logit +50 -> sigmoid == 1.0 in float32 -> -log(0) clamped to 100
    assert torch.sigmoid(torch.tensor(50.0)).item() == 1.0
    assert loss.d_loss(t(0.0), t(50.0)).item() == pytest.approx(math.log(2) + 100.0, rel=1e-6)
    # the fake term alone: real logits so large that their term is exactly 0
    assert loss.d_loss(t(50.0, 50.0), t(50.0, 50.0)).item() == 100.0
    assert loss.clamp == 100.0
    # G's loss at the other end of the clamp: D says "fake" with certainty
    assert loss.g_loss(t(-200.0)).item() == 100.0


def test_report_bce_gradient_vanishes_at_the_clamp():
    """The collapse mechanism: a saturated term has no gradient left for its logits."""
    fake = torch.full((4, 1), 50.0, requires_grad=True)
    ReportBCELoss().d_loss(torch.zeros(4, 1), fake).backward()
    assert torch.all(fake.grad == 0)
    # the stable loss still pushes the same logits down
    fake2 = torch.full((4, 1), 50.0, requires_grad=True)
    NonSaturatingLoss().d_loss(torch.zeros(4, 1), fake2).backward()
    assert torch.all(fake2.grad > 0)


def test_non_saturating_g_loss_is_softplus_of_minus_logits():
    logits = t(-2.0, 0.0, 2.0)
    by_hand = sum(math.log(1 + math.exp(-x)) for x in (-2.0, 0.0, 2.0)) / 3
    assert NonSaturatingLoss().g_loss(logits).item() == pytest.approx(by_hand, rel=1e-6)
    # mean of the two terms: real 2 and fake -2 give log(1 + e^-2) each
    assert NonSaturatingLoss().d_loss(t(2.0), t(-2.0)).item() == pytest.approx(
        math.log(1 + math.exp(-2.0)), rel=1e-6)


def test_minimax_g_loss_is_minus_softplus():
    logits = t(-3.0, 0.0, 1.5)
    by_hand = -sum(math.log(1 + math.exp(x)) for x in (-3.0, 0.0, 1.5)) / 3
    assert MinimaxLoss().g_loss(logits).item() == pytest.approx(by_hand, rel=1e-6)
    assert torch.allclose(MinimaxLoss().g_loss(logits),
                          -torch.nn.functional.softplus(logits).mean())
    # its D loss is the non-saturating one
    assert MinimaxLoss().d_loss(t(1.0), t(-1.0)).item() == pytest.approx(
        NonSaturatingLoss().d_loss(t(1.0), t(-1.0)).item())


def test_every_loss_reads_logits_as_probabilities():
    for loss in (ReportBCELoss(), NonSaturatingLoss(), MinimaxLoss()):
        assert loss.probabilistic
        assert loss.prob(t(0.0)).item() == 0.5
        assert loss.prob(t(2.0)).item() == pytest.approx(1 / (1 + math.exp(-2.0)))


@pytest.mark.parametrize("loss", [ReportBCELoss(), NonSaturatingLoss(), MinimaxLoss()],
                         ids=["bce", "ns", "minimax"])
def test_losses_propagate_nan_instead_of_raising(loss):
    """A blown-up D gives NaN logits; the loss must return NaN (so the health monitor reports
    'diverged'), not raise. ReportBCELoss too: F.binary_cross_entropy rejects NaN input
    ("all elements of input should be between 0 and 1"), so NaN takes its NaN-safe path."""
    nan = t(math.nan, 0.0)
    assert math.isnan(loss.g_loss(nan).item())
    assert math.isnan(loss.d_loss(nan, t(0.0, 0.0)).item())
    assert math.isnan(loss.d_loss(t(0.0, 0.0), nan).item())


def test_nan_safe_path_of_the_report_bce_equals_the_kernel():
    """Off the CPU every step takes the NaN-safe path: for finite input it is the plain
    kernel's value and gradient; for NaN it is NaN with finite gradients elsewhere."""
    import torch.nn.functional as F

    from gan_lightning.losses import _nan_safe_bce

    for target in (1.0, 0.0, 0.9):
        p = torch.tensor([[1.0], [0.3], [1e-8], [0.0]], requires_grad=True)
        q = p.detach().clone().requires_grad_(True)
        full = torch.full_like(p, target)
        safe, plain = _nan_safe_bce(p, full), F.binary_cross_entropy(q, full)
        safe.backward()
        plain.backward()
        assert safe.item() == plain.item()
        # the same up to rounding: the NaN term adds and takes back 1 in each gradient
        assert torch.allclose(p.grad, q.grad, rtol=1e-6, atol=1e-6)
    p = torch.tensor([[math.nan], [0.3]], requires_grad=True)
    value = _nan_safe_bce(p, torch.ones_like(p))
    value.backward()
    assert math.isnan(value.item()) and torch.isfinite(p.grad[1]).all()


def test_lsgan_and_hinge_by_hand():
    from gan_lightning.losses import HingeLoss, LSGANLoss

    real, fake = torch.tensor([[2.0], [0.0]]), torch.tensor([[-2.0], [0.5]])
    ls = LSGANLoss()
    # 0.5 * mean((real - 1)^2) + 0.5 * mean(fake^2) = 0.5 * 1 + 0.5 * 2.125
    assert ls.d_loss(real, fake).item() == pytest.approx(0.5 * 1.0 + 0.5 * 2.125)
    assert ls.g_loss(fake).item() == pytest.approx(0.5 * (9 + 0.25) / 2)
    hinge = HingeLoss()
    # mean(relu(1 - real)) = (0 + 1) / 2; mean(relu(1 + fake)) = (0 + 1.5) / 2
    assert hinge.d_loss(real, fake).item() == pytest.approx(0.5 + 0.75)
    assert hinge.g_loss(fake).item() == pytest.approx(0.75)
    assert not ls.probabilistic and torch.equal(hinge.prob(real), real)


def test_wgan_gp_penalty_by_hand():
    from gan_lightning.losses import WGANGPLoss

    loss = WGANGPLoss(weight=10.0)
    # a linear critic D(x) = w . x has gradient w everywhere: penalty = 10 (|w| - 1)^2
    w = torch.tensor([3.0, 4.0])
    real, fake = torch.randn(6, 2), torch.randn(6, 2)
    assert loss.penalty(lambda x: x @ w, real, fake).item() == pytest.approx(10 * (5 - 1) ** 2)
    # D(x) = sum(x^2) at x_hat = real (= fake, so any mixing weight): grad = 2 x
    x = torch.tensor([[0.3, 0.4], [1.5, 2.0], [0.0, 0.5]])  # norms 0.5, 2.5, 0.5
    expected = 10 * ((2 * 0.5 - 1) ** 2 + (2 * 2.5 - 1) ** 2 + (2 * 0.5 - 1) ** 2) / 3
    critic = lambda v: (v ** 2).sum(1)  # noqa: E731
    assert loss.penalty(critic, x, x.clone()).item() == pytest.approx(expected)
    # the critic's loss: E[D(fake)] - E[D(real)]; G's: -E[D(fake)]
    real_s, fake_s = torch.tensor([[1.0], [3.0]]), torch.tensor([[0.0], [-1.0]])
    assert loss.d_loss(real_s, fake_s).item() == pytest.approx(-0.5 - 2.0)
    assert loss.g_loss(fake_s).item() == pytest.approx(0.5)


def test_wgan_gp_penalty_is_differentiable_in_the_critic():
    from gan_lightning.losses import WGANGPLoss

    critic = torch.nn.Linear(2, 1)
    penalty = WGANGPLoss().penalty(critic, torch.randn(4, 2), torch.randn(4, 2))
    penalty.backward()  # double backward: the penalty trains the critic
    assert critic.weight.grad is not None and critic.weight.grad.abs().sum() > 0


ALL_LOSSES = ["bce", "ns", "minimax", "lsgan", "hinge", "wgan_gp"]


def make_loss(name):
    from gan_lightning import losses

    return {"bce": losses.ReportBCELoss, "ns": losses.NonSaturatingLoss,
            "minimax": losses.MinimaxLoss, "lsgan": losses.LSGANLoss,
            "hinge": losses.HingeLoss, "wgan_gp": losses.WGANGPLoss}[name]()


@pytest.mark.parametrize("name", ALL_LOSSES)
def test_every_loss_is_finite_float32_under_autocast(name):
    """Mixed precision: D's logits come out in half precision; each loss (and WGAN-GP's
    penalty) must still be a finite float32 scalar."""
    loss = make_loss(name)
    critic = torch.nn.Linear(4, 1)
    real, fake = torch.randn(8, 4), torch.randn(8, 4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        real_logits, fake_logits = critic(real), critic(fake)
        assert real_logits.dtype == torch.bfloat16  # what a mixed-precision D emits
        values = [loss.d_loss(real_logits, fake_logits), loss.g_loss(fake_logits)]
        if loss.penalty is not None:
            values.append(loss.penalty(critic, real, fake))
    for value in values:
        assert value.dtype == torch.float32 and value.ndim == 0 and torch.isfinite(value)


def test_report_bce_runs_in_float32_outside_autocast(monkeypatch):
    """CUDA autocast refuses ``F.binary_cross_entropy`` ("unsafe to autocast"); the report's
    loss must call it with autocast off and float32 probabilities, the report's numerics."""
    import torch.nn.functional as F

    from gan_lightning import losses

    calls = []
    real_bce = F.binary_cross_entropy

    def spy(p, target, *args, **kwargs):
        calls.append((torch.is_autocast_enabled("cpu"), p.dtype))
        return real_bce(p, target, *args, **kwargs)

    monkeypatch.setattr(losses.F, "binary_cross_entropy", spy)
    logits = torch.tensor([[30.0], [-2.0]])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        value = ReportBCELoss().d_loss(logits.bfloat16(), logits.bfloat16())
    assert calls == [(False, torch.float32)] * 2
    # float32 sigmoid: 30 saturates to exactly 1 in float32 as in the report (fake term 100)
    expected = ReportBCELoss().d_loss(logits, logits)
    assert value.item() == pytest.approx(expected.item(), rel=1e-2)
