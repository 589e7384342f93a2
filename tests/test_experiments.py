"""Every model x loss runs, every experiment config runs, conditional and toy GANs work."""

import json

import numpy as np
import pytest
import torch

from conftest import FAST, NO_METRICS, REPO, compose_cfg, run_train, write_cifar, write_image_folder
from gan_lightning.train import build

MODELS = sorted(p.stem for p in (REPO / "conf" / "model").glob("*.yaml"))
LOSSES = sorted(p.stem for p in (REPO / "conf" / "loss").glob("*.yaml"))
EXPERIMENTS = sorted(p.stem for p in (REPO / "conf" / "experiment").glob("*.yaml"))
FEW_STEPS = [*NO_METRICS, "max_g_steps=2", "dataset.batch_size=8",
             "callbacks.health.stop_on_collapse=false"]


def fit(cfg):
    import lightning as L

    L.seed_everything(cfg.seed, verbose=False)  # as train.run does
    datamodule, module, trainer = build(cfg)
    before = {k: v.clone() for k, v in module.state_dict().items()}
    trainer.fit(module, datamodule=datamodule)
    return module, before


def changed(module, before, prefix):
    return any(not torch.equal(v, before[k]) for k, v in module.state_dict().items()
               if k.startswith(prefix) and v.is_floating_point())


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("model", MODELS)
def test_every_model_trains_with_every_loss(model, loss, tiny_data, tmp_path):
    cfg = compose_cfg([f"model={model}", f"loss={loss}", *FEW_STEPS], tiny_data, tmp_path)
    module, before = fit(cfg)
    assert module.g_step == 2
    assert changed(module, before, "generator.") and changed(module, before, "discriminator.")
    assert all(np.isfinite(v) for v in module.run.latest.values())
    assert ("train/penalty" in module.run.latest) == (loss == "wgan_gp")


def test_every_loss_composes_with_n_critic(tiny_data, tmp_path):
    cfg = compose_cfg(["loss=wgan_gp", "n_critic=5", *FEW_STEPS], tiny_data, tmp_path)
    module, _ = fit(cfg)
    assert module.g_step == 2 and module.trainer.global_step == 2 * 5 + 2


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_experiment_runs(experiment, tiny_data, tmp_path):
    """``python train.py experiment=X`` for every X, cut to a few steps on tiny data."""
    extra = ["dataset.batch_size=8"] if experiment != "gaussian2d" else []
    if experiment.startswith("folder"):  # your own images: a small folder of them
        extra += [f"dataset.path={write_image_folder(tmp_path / 'photos')}",
                  "dataset.resolution=32"]
    overrides = [f"experiment={experiment}", *NO_METRICS, *extra, "max_g_steps=3",
                 "~trainer.limit_train_batches" if experiment == "dcgan_mnist" else "seed=0"]
    held_out = compose_cfg(overrides, tiny_data, tmp_path).dataset.get("validation")
    if isinstance(held_out, int) and held_out > 0:  # more than the tiny set: hold out a few
        overrides.append("dataset.validation=16")
    module, _ = fit(compose_cfg(overrides, tiny_data, tmp_path))
    assert module.g_step == 3 and module.run.status in (None, "collapsed")


def test_experiments_carry_their_sources_settings(tmp_path):
    def cfg(name):
        return compose_cfg([f"experiment={name}"], tmp_path, tmp_path)

    toy = cfg("gaussian2d")
    assert (toy.optimizer.d.lr, toy.optimizer.g.lr, toy.dataset.batch_size) == (0.05, 0.005, 8)
    assert toy.trainer.max_epochs == 20 and toy.z_dim == 2
    wgan = cfg("wgan_gp")
    assert (wgan.n_critic, wgan.loss.weight, wgan.optimizer.lr) == (5, 10.0, 1e-4)
    assert list(wgan.optimizer.betas) == [0.0, 0.9]
    keras = cfg("dcgan_mnist")
    assert (keras.loss.real_label, keras.loss.fake_label) == (0.9, 0.1)
    assert (keras.optimizer.lr, keras.optimizer.betas[0], keras.dataset.batch_size) == (1e-4, 0.3,
                                                                                      8)
    plain, stabilized = cfg("conv_mnist_plain"), cfg("conv_mnist")
    for conv in (plain, stabilized):  # one set-up, the stabilizers aside
        assert conv.model.generator._target_.endswith("InfoGANGenerator")
        assert (conv.model.generator.width, conv.model.generator.hidden) == (32, 512)
        assert (conv.dataset.batch_size, conv.optimizer.lr, conv.trainer.max_epochs) == (64, 2e-4,
                                                                                       25)
    assert plain.ema.decay is None and not plain.spectral_norm
    assert stabilized.ema.decay == 0.999 and stabilized.spectral_norm


def test_conditional_gan_uses_labels_and_draws_one_row_per_class(tiny_data, tmp_path):
    cfg = compose_cfg(["experiment=cgan", *FEW_STEPS], tiny_data, tmp_path)
    module, _ = fit(cfg)
    assert module.num_classes == 10
    assert module.fixed_labels.tolist() == [k for k in range(10) for _ in range(8)]
    from PIL import Image

    grid = Image.open(tmp_path / "samples.png")
    # make_grid: 8 per row, 2-pixel padding around 28-pixel digits -> 10 rows
    assert grid.size == (8 * 30 + 2, 10 * 30 + 2)
    # balanced classes when no labels are given (FID samples)
    z = torch.randn(20, cfg.z_dim)
    torch.testing.assert_close(module(z), module.generate(z, torch.arange(20) % 10))


def test_conditional_discriminator_sees_the_batch_labels(tiny_data, tmp_path):
    import lightning as L

    cfg = compose_cfg(["model=cgan", *FEW_STEPS, "max_g_steps=1"], tiny_data, tmp_path)
    datamodule, module, trainer = build(cfg)
    seen, batches = [], []
    module.discriminator.register_forward_pre_hook(lambda _, args: seen.append(args[1].clone()))

    class Batches(L.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            batches.append(batch[1].clone())

    trainer.callbacks.append(Batches())
    trainer.fit(module, datamodule=datamodule)
    labels = batches[0]
    # first D call: real and fake together; the real half carries the batch's own labels
    assert len(seen[0]) == 2 * len(labels) and torch.equal(seen[0][: len(labels)], labels)
    assert seen[0][len(labels):].max() < 10


def test_dcgan_on_cifar10_is_32x32_rgb(tmp_path, monkeypatch):
    import torchvision.datasets.cifar

    # the real files pass torchvision's md5 checks; these tiny ones cannot
    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity", lambda *a, **k: True)
    data = write_cifar(tmp_path / "data")
    cfg = compose_cfg(["experiment=dcgan", "dataset=cifar10", *FEW_STEPS], data,
                      tmp_path / "out")
    module, _ = fit(cfg)
    assert module.g_step == 2
    assert module.generate(module.fixed_z[:2]).shape == (2, 3, 32, 32)


def test_gaussian2d_data_is_the_d2l_distribution():
    from gan_lightning.data import GaussianDataModule

    dm = GaussianDataModule(n=200_000, seed=3)
    dm.setup()
    a = torch.tensor([[1.0, 2.0], [-0.1, 0.5]])
    assert dm.images.shape == (200_000, 2)
    torch.testing.assert_close(dm.images.mean(0), torch.tensor([1.0, 2.0]), atol=0.02, rtol=0)
    torch.testing.assert_close(torch.cov(dm.images.T), a.T @ a, atol=0.05, rtol=0)
    again = GaussianDataModule(n=200_000, seed=3)
    again.setup()
    assert torch.equal(again.images, dm.images)  # drawn from the seed
    assert not torch.equal(dm.reference_images(10), dm.images[:10])  # fresh points


def test_gaussian2d_run_logs_a_scatter_and_a_point_fid(tmp_path):
    proc_dir = tmp_path / "out"
    run_train(["experiment=gaussian2d", "trainer.max_epochs=2", *FAST[1:]], tmp_path, proc_dir)
    (run_dir,) = [p.parent for p in proc_dir.glob("runs/*/*/metrics.json")]
    record = json.loads((run_dir / "metrics.json").read_text())
    assert record["status"] == "ok" and record["metrics_protocol"]["feature"] == "identity"
    assert record["fid"]["final"] < 10  # the Frechet distance of 2-D Gaussians, not images
    from PIL import Image

    picture = np.asarray(Image.open(run_dir / "samples.png").convert("RGB"))
    assert picture.shape[0] > 300 and picture.shape[1] > 300  # a matplotlib scatter
    # both colours of the scatter (matplotlib C0 blue = real, C1 orange = generated) are there
    assert (np.abs(picture.astype(int) - [31, 119, 180]).sum(-1) < 60).sum() > 50
    assert (np.abs(picture.astype(int) - [255, 127, 14]).sum(-1) < 60).sum() > 50


def toy_errors(module, n=100_000):
    """|mean - b| and ||cov - A^T A||_F of the generator's points (n samples, seeded)."""
    a, b = torch.tensor([[1.0, 2.0], [-0.1, 0.5]]), torch.tensor([1.0, 2.0])
    with torch.no_grad():
        points = module(torch.randn(n, 2, generator=torch.Generator().manual_seed(0)))
    return (points.mean(0) - b).norm().item(), (torch.cov(points.T) - a.T @ a).norm().item()


@pytest.mark.slow
def test_toy_generator_learns_the_gaussian(tmp_path):
    """The d2l settings as written (experiment=gaussian2d, 20 epochs), seeds 1-4: the linear
    generator still oscillates around the target at the end, so not every seed lands near
    it; most (3 of 4) meet mean error < 0.2 and covariance error < 0.5, far from where an
    untrained generator starts."""
    passed = []
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # 2-D points: threads only add overhead
    for seed in (1, 2, 3, 4):
        cfg = compose_cfg(["experiment=gaussian2d", f"seed={seed}", "metrics=none",
                           "callbacks.progress_bar.refresh_rate=0", "logger.tensorboard=null",
                           "callbacks.samples=null", "trainer.enable_model_summary=false"],
                          tmp_path, tmp_path / f"out{seed}")
        module, _ = fit(cfg)
        mean_err, cov_err = toy_errors(module)
        passed.append(mean_err < 0.2 and cov_err < 0.5)
    torch.set_num_threads(threads)
    assert sum(passed) >= 3, passed
