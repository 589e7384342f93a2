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
