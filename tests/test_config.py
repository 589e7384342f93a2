from pathlib import Path

import pytest
from omegaconf import OmegaConf

from conftest import REPO, compose_cfg

GROUPS = ["dataset", "model", "loss", "optimizer", "trainer", "logger", "callbacks", "debug",
          "metrics"]
OPTIONS = [(g, p.stem) for g in GROUPS for p in sorted((REPO / "conf" / g).glob("*.yaml"))]


@pytest.mark.parametrize(("group", "option"), OPTIONS)
def test_every_option_composes_and_resolves(group, option, tmp_path):
    cfg = compose_cfg([f"{group}={option}"], tmp_path, tmp_path)
    resolved = OmegaConf.to_container(cfg, resolve=True)
    assert resolved["z_dim"] == 100
    if group == "optimizer":
        assert set(resolved["optimizer"]) >= {"g", "d", "lr"}


def test_defaults_reproduce_the_report(tmp_path):
    cfg = compose_cfg([], tmp_path, tmp_path)
    assert cfg.dataset.name == "mnist" and cfg.dataset.batch_size == 64 and cfg.dataset.shuffle
    assert cfg.z_dim == 100 and cfg.trainer.max_epochs == 100
    assert list(cfg.model.generator.hidden_dims) == [128]
    assert list(cfg.model.discriminator.hidden_dims) == [128]
    assert cfg.loss._target_.endswith("ReportBCELoss")
    # the default optimizer: the report's SGD at the lr that trains (README)
    assert cfg.optimizer.d._target_ == "torch.optim.SGD" and cfg.optimizer.d.lr == 0.1


def test_sgd_is_the_reports_lr(tmp_path):
    cfg = compose_cfg(["optimizer=sgd"], tmp_path, tmp_path)
    assert cfg.optimizer.g.lr == 0.3 and cfg.optimizer.d.lr == 0.3


def test_adam_settings(tmp_path):
    cfg = compose_cfg(["optimizer=adam"], tmp_path, tmp_path)
    assert cfg.optimizer.g.lr == 2e-4 and list(cfg.optimizer.d.betas) == [0.5, 0.999]


def test_shared_and_per_network_learning_rates(tmp_path):
    cfg = compose_cfg(["optimizer=sgd", "optimizer.lr=0.05"], tmp_path, tmp_path)
    assert (cfg.optimizer.g.lr, cfg.optimizer.d.lr) == (0.05, 0.05)
    cfg = compose_cfg(["optimizer=adam", "optimizer.d.lr=0.05"], tmp_path, tmp_path)
    assert (cfg.optimizer.g.lr, cfg.optimizer.d.lr) == (2e-4, 0.05)


def test_image_shape_flows_from_dataset(tmp_path):
    cfg = compose_cfg(["dataset=cifar10", "z_dim=20"], tmp_path, tmp_path)
    assert list(cfg.model.generator.img_shape) == [3, 32, 32]
    assert cfg.model.generator.z_dim == 20


def test_data_dir_from_environment(monkeypatch, tmp_path):
    from hydra import compose, initialize_config_dir

    monkeypatch.setenv("GAN_DATA_DIR", "/somewhere/data")
    with initialize_config_dir(config_dir=str(Path(REPO / "conf")), version_base="1.3"):
        cfg = compose("config")
    assert cfg.paths.data_dir == "/somewhere/data"
    monkeypatch.delenv("GAN_DATA_DIR")
    with initialize_config_dir(config_dir=str(Path(REPO / "conf")), version_base="1.3"):
        cfg = compose("config")
    assert cfg.paths.data_dir == "./data"
