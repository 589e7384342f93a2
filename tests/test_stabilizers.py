"""The stabilizers: EMA generator, spectral norm, R1, DiffAugment, lr schedules, KID."""

import json

import pytest
import torch
from test_module import loader, make_module, trainer
from torch import nn

from conftest import FAST, run_train
from gan_lightning.augment import DiffAugment
from gan_lightning.ema import EMA
from gan_lightning.losses import NonSaturatingLoss, r1_penalty
from gan_lightning.metrics.features import IdentityFeatures
from gan_lightning.metrics.quality import SampleQuality
from gan_lightning.models import (
    DCGANDiscriminator,
    InfoGANDiscriminator,
    InfoGANGenerator,
    MLPDiscriminator,
)
from gan_lightning.module import GANModule
from gan_lightning.sample import load_generator
from gan_lightning.schedules import linear_decay
from gan_lightning.standing import stand


def test_ema_differs_from_g_and_moves_toward_it(tmp_path):
    module = make_module()
    module.generator_ema = EMA(module.generator, decay=0.9, start=0)
    trainer(tmp_path).fit(module, loader())
    g = torch.cat([p.flatten() for p in module.generator.parameters()])
    avg = torch.cat([p.flatten() for p in module.generator_ema.average.parameters()])
    assert not torch.equal(g, avg)
    # one more update moves every parameter of the average a tenth of the way toward G
    before = avg.clone()
    module.generator_ema.update(module.generator, step=10_000)
    after = torch.cat([p.flatten() for p in module.generator_ema.average.parameters()])
    assert torch.allclose(after, before + 0.1 * (g - before), atol=1e-6)
    assert (after - g).abs().sum() < (before - g).abs().sum()


def test_ema_copies_g_until_start_and_draws_every_sample():
    torch.manual_seed(0)
    g = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4))
    ema = EMA(g, decay=0.99, start=5)
    with torch.no_grad():
        g[0].weight.add_(1.0)
        g[1].running_mean.add_(3.0)
    ema.update(g, step=5)  # not past start: a copy
    assert torch.equal(ema.average[0].weight, g[0].weight)
    assert torch.equal(ema.average[1].running_mean, g[1].running_mean)
    module = make_module()
    module.generator_ema = EMA(module.generator, 0.5)
    with torch.no_grad():
        for p in module.generator_ema.average.parameters():
            p.zero_()
    # the average's (zeroed) weights draw: tanh(0) everywhere
    assert torch.equal(module.fixed_samples(), torch.zeros_like(module.fixed_samples()))
    assert module.sampler is module.generator_ema.average
    assert not any(p.requires_grad for p in module.generator_ema.parameters())
    with pytest.raises(ValueError, match="ema.decay"):
        EMA(g, decay=1.0)


@pytest.mark.parametrize("make", [
    lambda: MLPDiscriminator([1, 8, 8], [32], spectral_norm=True),
    lambda: DCGANDiscriminator([1, 28, 28], ndf=8, batch_norm=False, spectral_norm=True),
    lambda: InfoGANDiscriminator([1, 28, 28], width=8, hidden=32, batch_norm=False,
                                 spectral_norm=True),
])
def test_spectral_norm_bounds_the_largest_singular_value(make):
    torch.manual_seed(0)
    net = make()
    layers = [m for m in net.modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    assert layers and all(hasattr(m, "parametrizations") for m in layers)
    with torch.no_grad():  # weights far above norm 1: what the normalisation must undo
        for m in layers:
            m.parametrizations.weight.original.mul_(50.0)
    net.train()
    x = torch.randn(4, *([1, 8, 8] if isinstance(net, MLPDiscriminator) else [1, 28, 28]))
    for _ in range(30):  # power iterations converge over forward passes
        net(x)
    for m in layers:
        raw = torch.linalg.matrix_norm(m.parametrizations.weight.original.flatten(1), ord=2)
        sigma = torch.linalg.matrix_norm(m.weight.detach().flatten(1), ord=2)
        assert raw > 2 and 0.95 <= sigma <= 1.05, (m, raw, sigma)


def test_r1_matches_a_hand_computed_value():
    # D(x) = w.x + b: grad_x D = w for every sample, so R1 = gamma / 2 * ||w||^2
    critic = nn.Linear(6, 1)
    real = torch.randn(5, 6)
    w = critic.weight.detach().flatten()
    assert r1_penalty(critic, real, 3.0).item() == pytest.approx(1.5 * float(w @ w), rel=1e-6)
    lazy = r1_penalty(critic, real, 3.0, every=4)  # lazy: scaled by the interval
    assert lazy.item() == pytest.approx(6.0 * float(w @ w), rel=1e-6)
    # a quadratic critic: D(x) = sum(x^2) / 2, grad = x, R1 = gamma / 2 * mean ||x||^2
    r1 = r1_penalty(lambda x: (x ** 2).sum(1) / 2, real, 2.0)
    assert r1.item() == pytest.approx(float((real ** 2).sum(1).mean()), rel=1e-6)


def test_r1_is_added_to_d_loss_every_k_steps(tmp_path, monkeypatch):
    module = make_module()
    module.r1_gamma, module.r1_every = 1.0, 3
    calls = []
    original = r1_penalty
    monkeypatch.setattr("gan_lightning.module.r1_penalty",
                        lambda *args: calls.append(args[2:]) or original(*args))
    trainer(tmp_path).fit(module, loader(n=48, batch=8))  # 6 D steps
    assert calls == [(1.0, 3), (1.0, 3)]  # D steps 0 and 3


@pytest.mark.parametrize("policy", [["color"], ["translation"], ["cutout"],
                                    "color,translation,cutout"])
def test_diffaugment_keeps_shapes_and_is_differentiable(policy):
    torch.manual_seed(0)
    augment = DiffAugment(policy)
    x = (torch.rand(6, 3, 16, 16) * 2 - 1).requires_grad_(True)
    y = augment(x)
    assert y.shape == x.shape and not torch.equal(y, x)
    (grad,) = torch.autograd.grad((y * torch.randn_like(y)).sum(), x)
    assert grad.abs().sum() > 0
    assert DiffAugment([])(x) is x and not DiffAugment("")
    with pytest.raises(ValueError, match="unknown transform"):
        DiffAugment(["flip"])


def test_translation_shifts_whole_images():
    torch.manual_seed(1)
    x = torch.zeros(8, 1, 16, 16)
    x[:, :, 6:10, 6:10] = 1.0  # a square, away from the edges
    y = DiffAugment(["translation"])(x)
    assert torch.equal(y.sum(dim=(1, 2, 3)), x.sum(dim=(1, 2, 3)))  # moved, not cut


def test_linear_decay_reaches_zero_at_the_end():
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.2)
    schedule = linear_decay(opt, total_steps=10, start=0.5)
    lrs = []
    for _ in range(10):
        lrs.append(schedule.get_last_lr()[0])
        opt.step()
        schedule.step()
    assert lrs[:5] == [0.2] * 5
    assert lrs[5:] == pytest.approx([0.2, 0.16, 0.12, 0.08, 0.04])
    assert schedule.get_last_lr()[0] == pytest.approx(0.0)


def test_module_steps_each_schedule_with_its_network(tmp_path):
    module = make_module(n_critic=2)
    module.lr_schedules = (lambda o, total_steps: linear_decay(o, total_steps),
                           lambda o, total_steps: linear_decay(o, total_steps))
    trainer(tmp_path, max_epochs=2).fit(module, loader(n=48, batch=8))  # 12 D, 6 G steps
    d, g = module._schedulers
    assert d.last_epoch == 12 and g.last_epoch == 6
    assert d.get_last_lr()[0] == pytest.approx(0.0) and g.get_last_lr()[0] == pytest.approx(0.0)


def test_kid_of_a_set_against_itself_is_about_zero():
    torch.manual_seed(0)
    features = torch.randn(600, 16)
    quality = SampleQuality(IdentityFeatures(16), num_real={"kid": 600}, num_fake={"kid": 600},
                            kid_subsets=20, kid_subset_size=200)
    quality.set_reference(features)
    same = quality.score(features)
    other_draw = quality.score(torch.randn(600, 16))  # the same distribution
    shifted = quality.score(features + 1.0)  # one standard deviation off
    assert shifted["kid"] > 5 and shifted["kid"] > 10 * shifted["kid_std"]
    assert abs(same["kid"]) < 0.01 * shifted["kid"]
    assert abs(other_draw["kid"]) < 0.01 * shifted["kid"]
    assert quality.score(features) == same  # reproducible: the subsets are seeded


def test_infogan_networks_fit_mnist():
    g, d = InfoGANGenerator(16, [1, 28, 28], width=8, hidden=32), InfoGANDiscriminator(
        [1, 28, 28], width=8, hidden=32)
    x = g(torch.randn(4, 16))
    assert x.shape == (4, 1, 28, 28) and d(x).shape == (4, 1)
    with pytest.raises(ValueError, match="28x28"):
        InfoGANGenerator(16, [1, 32, 32])


def test_a_run_with_every_stabilizer_records_kid_and_samples_from_the_ema(tiny_data, tmp_path):
    run_train(["model=dcgan", "model.generator.ngf=8", "model.discriminator.ndf=8",
               "spectral_norm=true", "ema.decay=0.9", "loss=ns",
               "augment.policy=[color,translation,cutout]", "r1.gamma=1",
               "r1.every=2", "lr_schedule=linear", "standing_stats.batches=3", *FAST,
               "trainer.max_epochs=2",
               "metrics.kid.every_n_epochs=1", "hydra.run.dir=" + str(tmp_path / "run")],
              tiny_data, tmp_path)
    record = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert record["status"] == "ok"
    assert [h["epoch"] for h in record["metrics_history"] if "kid" in h] == [1, 2]
    assert record["kid"]["final"] == record["metrics_history"][-1]["kid"]
    assert "kid_std" in record
    generator, _ = load_generator(tmp_path / "run" / "last.ckpt")
    raw, _ = load_generator(tmp_path / "run" / "last.ckpt", raw=True)
    state = torch.load(tmp_path / "run" / "last.ckpt", weights_only=True)["state_dict"]
    key = next(k for k in state if k.startswith("generator_ema.average."))
    name = key.removeprefix("generator_ema.average.")
    assert torch.equal(generator.state_dict()[name], state[key])
    assert torch.equal(raw.state_dict()[name], state["generator." + name])
    assert not torch.equal(state[key], state["generator." + name])
    # gan-sample re-estimates the drawing G's BatchNorm statistics, as the run's metrics did:
    # from a checkpoint whose statistics are off, it draws with those of the weights
    checkpoint = torch.load(tmp_path / "run" / "last.ckpt", weights_only=True)
    for k in checkpoint["state_dict"]:
        if k.endswith("running_mean"):
            checkpoint["state_dict"][k].fill_(7.0)
    torch.save(checkpoint, tmp_path / "off.ckpt")
    stood, config = load_generator(tmp_path / "off.ckpt")
    assert config["standing_stats"]["batches"] == 3
    for m in generator.modules():
        if isinstance(m, nn.BatchNorm2d | nn.BatchNorm1d):
            m.running_mean.fill_(7.0)
    stand(generator, config["z_dim"], 3, 64)
    assert all(torch.equal(v, stood.state_dict()[k]) for k, v in generator.state_dict().items())
    assert not any(v.eq(7.0).all() for k, v in stood.state_dict().items() if "running_mean" in k)


def test_the_stabilizers_are_refused_with_bad_values(tiny_data, tmp_path):
    for bad in ("ema.decay=1.5", "r1.gamma=-1", "augment.policy=[flip]"):
        proc = run_train([bad, *FAST], tiny_data, tmp_path, check=False)
        assert proc.returncode != 0
        assert bad.split("=")[0] in proc.stderr and "Traceback" not in proc.stderr


def test_gan_module_accepts_the_stabilizers_as_arguments():
    module = GANModule(
        generator=InfoGANGenerator(8, [1, 28, 28], width=4, hidden=16),
        discriminator=InfoGANDiscriminator([1, 28, 28], width=4, hidden=16),
        loss=NonSaturatingLoss(), optimizer_g=torch.optim.Adam,
        optimizer_d=torch.optim.Adam, z_dim=8, augment=DiffAugment(["translation"]),
        ema_decay=0.99, ema_start=10, r1_gamma=1.0, r1_every=2, spectral_norm=True)
    assert (module.r1_gamma, module.r1_every) == (1.0, 2)
    assert all(nn.utils.parametrize.is_parametrized(m, "weight")
               for m in module.discriminator.modules() if isinstance(m, nn.Conv2d | nn.Linear))
    assert module.generator_ema.start == 10 and module.augment.names == ["translation"]


def test_standing_statistics_are_the_mean_over_the_drawing_generators_own_batches():
    """stand() sets each BatchNorm's running statistics to the plain mean of its batch
    statistics over the given batches of seeded latents, from any starting values; the
    caller's RNG, the net's mode and its momentum are left as they were."""
    torch.manual_seed(0)
    g = nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6), nn.ReLU(), nn.Linear(6, 3))
    with torch.no_grad():
        g[1].running_mean.fill_(5.0)
        g[1].running_var.fill_(9.0)
    g.eval()
    rng = torch.random.get_rng_state()
    assert stand(g, z_dim=4, batches=5, batch_size=16, seed=3)
    assert torch.equal(torch.random.get_rng_state(), rng)
    assert not g.training and g[1].momentum == 0.1
    z = torch.randn(5, 16, 4, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        h = g[0](z)  # (batches, batch_size, 6): what the BatchNorm saw
    assert torch.allclose(g[1].running_mean, h.mean(1).mean(0), atol=1e-6)
    assert torch.allclose(g[1].running_var, h.var(1, unbiased=True).mean(0), atol=1e-5)
    assert not stand(nn.Linear(4, 3), z_dim=4, batches=5, batch_size=16)  # nothing to do


def test_standing_statistics_make_samples_independent_of_the_last_training_batches(
        monkeypatch):
    """Two generators with the same weights but different running statistics (as two runs
    whose last batches differed) draw different samples, unless standing statistics are on;
    the estimate is made once per generator step, and gan-sample repeats it."""
    def module(batches):
        torch.manual_seed(0)
        return GANModule(
            generator=InfoGANGenerator(8, [1, 28, 28], width=4, hidden=16),
            discriminator=InfoGANDiscriminator([1, 28, 28], width=4, hidden=16),
            loss=NonSaturatingLoss(), optimizer_g=torch.optim.Adam,
            optimizer_d=torch.optim.Adam, z_dim=8, num_fixed=4, standing_batches=batches,
            standing_batch_size=8)

    for batches, same in ((0, False), (20, True)):
        a, b = module(batches), module(batches)
        for m in b.generator.modules():
            if isinstance(m, nn.BatchNorm2d | nn.BatchNorm1d):
                m.running_mean.add_(0.5)
        assert torch.equal(a.fixed_samples(), b.fixed_samples()) == same
    calls = []
    monkeypatch.setattr("gan_lightning.module.stand", lambda *args: calls.append(args))
    a.fixed_samples(), a.fixed_samples()
    assert len(calls) == 0  # estimated at this step already
    a.g_step += 1
    a.fixed_samples(), a.fixed_samples()
    assert len(calls) == 1
