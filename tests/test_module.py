import csv

import lightning as L
import pytest
import torch

from gan_lightning.loader import InMemoryLoader
from gan_lightning.losses import ReportBCELoss
from gan_lightning.models import MLPDiscriminator, MLPGenerator
from gan_lightning.module import GANModule, frozen


def make_module(n_critic=1, seed=0, lr=0.1):
    torch.manual_seed(seed)
    return GANModule(
        generator=MLPGenerator(8, [1, 4, 4], [16]),
        discriminator=MLPDiscriminator([1, 4, 4], [16]),
        loss=ReportBCELoss(),
        optimizer_g=lambda p: torch.optim.SGD(p, lr=lr),
        optimizer_d=lambda p: torch.optim.SGD(p, lr=lr),
        z_dim=8, n_critic=n_critic, num_fixed=4, seed=seed, log_every_n_steps=1,
    )


def loader(n=48, batch=8):
    x = torch.rand(n, 1, 4, 4) * 2 - 1
    return InMemoryLoader(x, torch.zeros(n, dtype=torch.long), batch_size=batch)


def trainer(tmp_path, max_epochs=1, **kwargs):
    return L.Trainer(max_epochs=max_epochs, logger=False, enable_checkpointing=False,
                     enable_progress_bar=False, enable_model_summary=False,
                     default_root_dir=tmp_path, **kwargs)


def snapshot(net):
    return [p.detach().clone() for p in net.parameters()]


def same(a, b):
    return all(torch.equal(x, y) for x, y in zip(a, b))


def grads(net):
    return [None if p.grad is None else p.grad.clone() for p in net.parameters()]


def same_grads(a, b):
    return all((x is None and y is None) or (x is not None and y is not None and torch.equal(x, y))
               for x, y in zip(a, b))


class Recording(GANModule):
    """Records, at every optimizer step, which weights changed and whether the backward of
    this update wrote gradients into the other network."""

    def configure_optimizers(self):
        opt_d, opt_g = super().configure_optimizers()
        self.record = []
        nets = {"d": self.discriminator, "g": self.generator}
        after = {"d": grads(self.discriminator), "g": grads(self.generator)}
        for name, opt in (("d", opt_d), ("g", opt_g)):
            step = opt.step
            other = "g" if name == "d" else "d"

            def wrapped(*args, _step=step, _name=name, _other=other, **kwargs):
                before_g, before_d = snapshot(self.generator), snapshot(self.discriminator)
                other_untouched = same_grads(grads(nets[_other]), after[_other])
                out = _step(*args, **kwargs)
                after[_name] = grads(nets[_name])
                self.record.append((_name, not same(before_g, snapshot(self.generator)),
                                    not same(before_d, snapshot(self.discriminator)),
                                    other_untouched))
                return out

            opt.step = wrapped
        return opt_d, opt_g


@pytest.mark.parametrize("n_critic", [1, 2])
def test_updates_touch_only_their_network(tmp_path, n_critic):
    """A D update leaves G's weights (and gradients) alone, a G update D's.

    Every ``optimizer.step`` is wrapped: weights of both nets are snapshot just before and
    compared just after, so each record says which network that one step changed.
    """
    torch.manual_seed(0)
    module = Recording(
        generator=MLPGenerator(8, [1, 4, 4], [16]),
        discriminator=MLPDiscriminator([1, 4, 4], [16]),
        loss=ReportBCELoss(),
        optimizer_g=lambda p: torch.optim.SGD(p, lr=0.1),
        optimizer_d=lambda p: torch.optim.SGD(p, lr=0.1),
        z_dim=8, n_critic=n_critic, log_every_n_steps=1,
    )
    trainer(tmp_path, limit_train_batches=4).fit(module, loader())
    # D on every batch; G after every n_critic-th (n_critic=2: batch 0 updates D only)
    expected = {1: ["d", "g"] * 4, 2: ["d", "d", "g"] * 2}[n_critic]
    assert [r[0] for r in module.record] == expected
    assert module.g_step == 4 // n_critic
    for name, g_changed, d_changed, other_grads_untouched in module.record:
        if name == "d":
            assert d_changed and not g_changed
        else:
            assert g_changed and not d_changed
        assert other_grads_untouched


def test_frozen_parameters_get_no_gradient_and_thaw_after():
    """G's loss back-propagates through a frozen D: G gets its gradients, D's weights none.
    After the block (an error in it too) D's parameters take gradients again; one that was
    frozen before stays frozen."""
    g, d = torch.nn.Linear(2, 3), torch.nn.Linear(3, 1)
    d.bias.requires_grad_(False)
    with frozen(list(d.parameters())):
        assert not any(p.requires_grad for p in d.parameters())
        d(g(torch.randn(4, 2))).sum().backward()
    assert g.weight.grad is not None and d.weight.grad is None
    assert d.weight.requires_grad and not d.bias.requires_grad
    with pytest.raises(RuntimeError), frozen([d.weight]):
        raise RuntimeError
    assert d.weight.requires_grad


def test_first_batch_with_n_critic_2_changes_only_d(tmp_path):
    module = make_module(n_critic=2)
    g_before, d_before = snapshot(module.generator), snapshot(module.discriminator)
    trainer(tmp_path, limit_train_batches=1).fit(module, loader())
    assert same(g_before, snapshot(module.generator))
    assert not same(d_before, snapshot(module.discriminator))
    assert module.g_step == 0 and module.run.latest == {}


@pytest.mark.parametrize("n_critic", [1, 3])
def test_n_critic_counts_generator_steps(tmp_path, n_critic):
    module = make_module(n_critic=n_critic)
    tr = trainer(tmp_path)
    tr.fit(module, loader(n=48, batch=8))  # 6 batches
    assert module.g_step == 6 // n_critic
    # Lightning's global_step counts every optimizer step: 6 D steps + the G steps
    assert tr.global_step == 6 + 6 // n_critic


@pytest.mark.parametrize("n_critic", [2, 4])
def test_max_g_steps_stops_at_exactly_that_many_generator_steps(tmp_path, n_critic):
    module = make_module(n_critic=n_critic)
    module.max_g_steps = 4
    # 6 batches an epoch: with n_critic=4 the epochs do not split into whole G steps
    trainer(tmp_path, max_epochs=10).fit(module, loader(n=48, batch=8))
    assert module.g_step == 4


def test_fixed_noise_is_a_seeded_buffer():
    a, b, c = make_module(seed=1), make_module(seed=1), make_module(seed=2)
    assert "fixed_z" in dict(a.named_buffers())
    assert torch.equal(a.fixed_z, b.fixed_z)
    assert not torch.equal(a.fixed_z, c.fixed_z)
    assert "fixed_z" in a.state_dict()


def test_g_step_and_scalars_survive_a_checkpoint(tmp_path):
    module = make_module()
    tr = trainer(tmp_path)
    tr.fit(module, loader())
    path = tmp_path / "m.ckpt"
    tr.save_checkpoint(path)
    assert torch.load(path, weights_only=False)["g_step"] == 6
    fresh = make_module()
    fresh.on_load_checkpoint(torch.load(path, weights_only=False))
    assert fresh.g_step == 6
    # D's step count too: lazy R1 (loss.r1_every) keeps its phase across a resume
    assert fresh._d_steps == module._d_steps == 6
    assert set(module.run.latest) == {"train/loss_d", "train/loss_g", "train/d_real",
                                      "train/d_fake"}


def test_invalid_arguments():
    with pytest.raises(ValueError, match="z_dim"):
        GANModule(MLPGenerator(1, [1, 4, 4], [4]), MLPDiscriminator([1, 4, 4], [4]),
                  ReportBCELoss(), torch.optim.SGD, torch.optim.SGD, z_dim=0)
    with pytest.raises(ValueError, match="n_critic"):
        GANModule(MLPGenerator(1, [1, 4, 4], [4]), MLPDiscriminator([1, 4, 4], [4]),
                  ReportBCELoss(), torch.optim.SGD, torch.optim.SGD, z_dim=1, n_critic=0)


class BatchRecorder(GANModule):
    """Remembers the first item of every batch it trains on, per epoch."""

    def training_step(self, batch, batch_idx):
        self.seen = getattr(self, "seen", {})
        self.seen.setdefault(self.current_epoch, []).append(batch[1][0].item())
        return super().training_step(batch, batch_idx)


def recorder():
    torch.manual_seed(0)
    return BatchRecorder(
        generator=MLPGenerator(8, [1, 4, 4], [16]),
        discriminator=MLPDiscriminator([1, 4, 4], [16]),
        loss=ReportBCELoss(),
        optimizer_g=lambda p: torch.optim.SGD(p, lr=0.1),
        optimizer_d=lambda p: torch.optim.SGD(p, lr=0.1),
        z_dim=8, log_every_n_steps=1,
    )


def indexed_loader(n=48, batch=8):
    return InMemoryLoader(torch.rand(n, 1, 4, 4) * 2 - 1, torch.arange(n), batch_size=batch, seed=5)


def test_resume_from_checkpoint_continues_g_step_and_batch_order(tmp_path):
    """Resuming with ckpt_path restores g_step, and the loader's order for the next epoch is
    the one an uninterrupted run would have seen (Lightning calls sampler.set_epoch)."""
    straight = recorder()
    trainer(tmp_path / "a", max_epochs=2).fit(straight, indexed_loader())
    assert straight.g_step == 12
    assert straight.seen[0] != straight.seen[1]  # a fresh permutation each epoch

    first = recorder()
    tr = trainer(tmp_path / "b", max_epochs=1)
    tr.fit(first, indexed_loader())
    tr.save_checkpoint(tmp_path / "epoch1.ckpt")
    resumed = recorder()
    assert resumed.g_step == 0
    trainer(tmp_path / "c", max_epochs=2).fit(resumed, indexed_loader(),
                                               ckpt_path=tmp_path / "epoch1.ckpt")
    assert resumed.g_step == 12
    assert list(resumed.seen) == [1]  # only the second epoch ran
    assert resumed.seen[1] == straight.seen[1]
    assert torch.equal(resumed.fixed_z, straight.fixed_z)


def test_scalars_are_logged_at_generator_steps(tmp_path):
    from lightning.pytorch.loggers import CSVLogger

    module = make_module(n_critic=2)
    module._log_every = 2
    logger = CSVLogger(tmp_path, name="csv", version="")
    L.Trainer(max_epochs=1, logger=logger, enable_checkpointing=False, enable_progress_bar=False,
              enable_model_summary=False, default_root_dir=tmp_path).fit(module, loader(n=64))
    # 8 batches, n_critic 2 -> 4 G steps; logged every 2nd: at G steps 2 and 4
    assert module.g_step == 4 and module.run.latest_step == 4
    with open(tmp_path / "csv" / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    steps = sorted({int(r["step"]) for r in rows if r.get("train/loss_d")})
    assert steps == [2, 4]
    assert {float(r["train/g_step"]) for r in rows if r.get("train/loss_d")} == {2.0, 4.0}
    latest = module.run.latest
    assert 0 <= latest["train/d_real"] <= 1 and 0 <= latest["train/d_fake"] <= 1


def test_joint_discriminator_pass_matches_separate_passes():
    module = make_module()
    real, fake = torch.rand(8, 1, 4, 4), torch.rand(5, 1, 4, 4)
    d_real, d_fake = module.score(real, fake)
    assert torch.allclose(d_real, module.discriminator(real), atol=1e-6)
    assert torch.allclose(d_fake, module.discriminator(fake), atol=1e-6)
    assert not module._batch_dependent_d


def test_batchnorm_discriminator_scores_batches_separately():
    d = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 4), torch.nn.BatchNorm1d(4),
                            torch.nn.Linear(4, 1))
    module = GANModule(MLPGenerator(8, [1, 4, 4], [16]), d, ReportBCELoss(), torch.optim.SGD,
                       torch.optim.SGD, z_dim=8)
    assert module._batch_dependent_d
    real, fake = torch.rand(8, 1, 4, 4), torch.rand(8, 1, 4, 4) + 3
    d_real, _ = module.score(real, fake)
    assert torch.allclose(d_real, d(real), atol=1e-6)  # real batch normalised on its own


class OptimizerStepSpy(L.Callback):
    def __init__(self):
        self.calls = 0

    def on_before_optimizer_step(self, trainer, pl_module, optimizer):
        self.calls += 1


@pytest.mark.parametrize("extra", [[], ["trainer.precision=bf16-mixed"], ["spy"]],
                         ids=["plain", "bf16", "hook"])
def test_fast_updates_give_the_same_weights(extra, tiny_data, tmp_path):
    """fast=true skips Lightning's backward / optimizer-step wrappers only where nothing depends
    on them; either way the weights, the step counts and the run's path are bit-identical."""
    from conftest import NO_METRICS, compose_cfg
    from gan_lightning.train import build

    def train(fast, out):
        overrides = [o for o in extra if o != "spy"]
        cfg = compose_cfg([*NO_METRICS, "trainer.max_epochs=2", "optimizer=adam",
                           f"fast={fast}", *overrides], tiny_data, out)
        L.seed_everything(3, verbose=False)
        datamodule, module, trainer = build(cfg)
        spy = OptimizerStepSpy()
        if "spy" in extra:
            trainer.callbacks.append(spy)
        trainer.fit(module, datamodule=datamodule)
        return module, trainer, spy

    fast, fast_trainer, fast_spy = train("true", tmp_path / "a")
    slow, slow_trainer, slow_spy = train("false", tmp_path / "b")
    assert fast._direct == (extra == []) and not slow._direct
    assert fast_trainer.global_step == slow_trainer.global_step == 32  # 16 D + 16 G steps
    assert fast.g_step == slow.g_step == 16
    if "spy" in extra:  # a callback on an update hook is still called
        assert fast_spy.calls == slow_spy.calls == 32
    for (name, a), b in zip(fast.state_dict().items(), slow.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
