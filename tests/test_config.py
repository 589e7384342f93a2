from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from conftest import REPO, compose_cfg, compose_hydra_cfg

GROUPS = ["dataset", "model", "loss", "optimizer", "trainer", "logger", "callbacks", "debug",
          "metrics", "experiment", "hparams_search"]
OPTIONS = [(g, p.stem) for g in GROUPS for p in sorted((REPO / "conf" / g).glob("*.yaml"))]


@pytest.mark.parametrize(("group", "option"), OPTIONS)
def test_every_option_composes_and_resolves(group, option, tmp_path):
    cfg = compose_cfg([f"{group}={option}"], tmp_path, tmp_path)
    resolved = OmegaConf.to_container(cfg, resolve=True)
    assert resolved["z_dim"] == (2 if (group, option) == ("experiment", "gaussian2d") else 100)
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


def test_default_choices(tmp_path):
    choices = compose_hydra_cfg([]).hydra.runtime.choices
    assert choices["dataset"] == "mnist" and choices["model"] == "mlp_small"
    assert choices["loss"] == "bce" and choices["logger"] == "tensorboard"
    cfg = compose_cfg([], tmp_path, tmp_path)
    assert cfg.model.generator._target_ == "gan_lightning.models.MLPGenerator"
    assert list(cfg.model.generator.img_shape) == [1, 28, 28] and cfg.model.generator.z_dim == 100


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "default"])
def test_shared_lr_reaches_both_torch_optimizers(optimizer, tmp_path):
    cfg = compose_cfg([f"optimizer={optimizer}", "optimizer.lr=0.1"], tmp_path, tmp_path)
    param = [torch.nn.Parameter(torch.zeros(1))]
    opt_g, opt_d = instantiate(cfg.optimizer.g)(param), instantiate(cfg.optimizer.d)(param)
    assert opt_g.param_groups[0]["lr"] == 0.1 and opt_d.param_groups[0]["lr"] == 0.1
    if optimizer == "adam":
        assert isinstance(opt_g, torch.optim.Adam) and opt_g.param_groups[0]["betas"] == (0.5,
                                                                                          0.999)


def test_per_network_lr_changes_only_that_network(tmp_path):
    cfg = compose_cfg(["optimizer=sgd", "optimizer.d.lr=0.05"], tmp_path, tmp_path)
    param = [torch.nn.Parameter(torch.zeros(1))]
    assert instantiate(cfg.optimizer.d)(param).param_groups[0]["lr"] == 0.05
    assert instantiate(cfg.optimizer.g)(param).param_groups[0]["lr"] == 0.3


@pytest.mark.parametrize(("group", "option"),
                         [o for o in OPTIONS if o[0] in ("model", "loss", "optimizer", "logger",
                                                          "callbacks")])
def test_every_option_instantiates(group, option, tmp_path):
    cfg = compose_cfg([f"{group}={option}"], tmp_path, tmp_path)
    node = cfg[group]
    if group == "model":
        g, d = instantiate(node.generator), instantiate(node.discriminator)
        labels = (torch.tensor([0, 9]),) if getattr(g, "num_classes", 0) else ()
        assert d(g(torch.randn(2, cfg.z_dim), *labels), *labels).shape == (2, 1)
    elif group == "loss":
        loss = instantiate(node)
        real, fake = torch.tensor([[2.0], [1.0]]), torch.tensor([[-1.0], [0.5]])
        # D's loss is lower when it scores real above fake than the other way round
        assert loss.d_loss(real, fake).item() < loss.d_loss(fake, real).item()
    elif group == "optimizer":
        for net in ("g", "d"):
            opt = instantiate(node[net])([torch.nn.Parameter(torch.zeros(1))])
            assert isinstance(opt, torch.optim.Optimizer)
    else:
        objects = [instantiate(c) for c in node.values()]
        assert objects and all(o is not None for o in objects)


def test_debug_fast_limits_batches(tmp_path):
    cfg = compose_cfg(["debug=fast"], tmp_path, tmp_path)
    assert cfg.trainer.limit_train_batches == 5 and cfg.trainer.max_epochs == 1
    assert cfg.trainer.log_every_n_steps == 1


def test_hydra_output_folders_live_under_output_root(tmp_path):
    cfg = compose_hydra_cfg([f"paths.output_root={tmp_path}"])
    run_dir = OmegaConf.select(cfg, "hydra.run.dir")
    sweep_dir = OmegaConf.select(cfg, "hydra.sweep.dir")
    assert run_dir.startswith(f"{tmp_path}/runs/") and sweep_dir.startswith(f"{tmp_path}/multirun/")
    excluded = cfg.hydra.job.config.override_dirname.exclude_keys
    assert {"paths.output_root", "paths.data_dir"} <= set(excluded)


@pytest.mark.parametrize(("override", "message"), [
    ("z_dim=abc", "z_dim='abc' is not valid: z_dim must be an integer >= 1"),
    ("z_dim=0", "z_dim=0 is not valid: z_dim must be an integer >= 1"),
    ("optimizer.lr=-0.1", "optimizer.lr=-0.1 is not valid: optimizer.lr must be a number > 0"),
    ("optimizer.d.lr=0", "optimizer.d.lr=0 is not valid: optimizer.d.lr must be a number > 0"),
    ("dataset.batch_size=0",
     "dataset.batch_size=0 is not valid: dataset.batch_size must be an integer >= 1"),
    ("n_critic=1.5", "n_critic=1.5 is not valid: n_critic must be an integer >= 1"),
    ("trainer.max_epochs=abc", "trainer.max_epochs='abc' is not valid: trainer.max_epochs must "
                               "be null or an integer >= -1 (-1: no limit)"),
    ("max_g_steps=-3", "max_g_steps=-3 is not valid: max_g_steps must be null or an integer >= 1"),
    ("loss.real_label=1.5", "loss.real_label=1.5 is not valid: loss.real_label must be a number "
                            "in [0, 1]"),
    ("seed=-5", "seed=-5 is not valid: seed must be an integer in [0, 2**32 - 1]"),
    ("seed=4294967296", "seed=4294967296 is not valid: seed must be an integer in "
                        "[0, 2**32 - 1]"),
])
def test_bad_values_are_named_with_what_is_allowed(override, message, tmp_path):
    from gan_lightning.validate import ConfigError, validate

    with pytest.raises(ConfigError) as error:
        validate(compose_cfg([override], tmp_path, tmp_path))
    assert str(error.value) == message


@pytest.mark.parametrize("override", ["z_dim=abc", "dataset.batch_size=0"])
def test_a_bad_value_stops_train_py_in_one_line_before_any_folder(override, tmp_path):
    from conftest import run_train

    proc = run_train([override], tmp_path / "nodata", tmp_path / "out", check=False)
    assert proc.returncode == 2
    key = override.split("=")[0]
    assert proc.stderr.strip().splitlines()[-1].startswith(f"config error: {key}=")
    assert not (tmp_path / "out").exists()  # no run folder was made, no data was read


@pytest.mark.parametrize(("override", "message"), [
    ("optimizer=rmsprop", "Available options in 'optimizer'"),
    ("zdim=100", "Key 'zdim' is not in struct"),
])
def test_unknown_options_and_keys_name_what_exists(override, message, tmp_path):
    from conftest import run_train

    proc = run_train([override], tmp_path, tmp_path / "out", check=False)
    assert proc.returncode != 0 and message in proc.stderr
    assert not (tmp_path / "out").exists()


def test_a_bad_job_of_a_sweep_fails_alone(tmp_path):
    from gan_lightning.validate import ConfigError, validate

    validate(compose_cfg(["z_dim=7"], tmp_path, tmp_path))
    with pytest.raises(ConfigError, match="z_dim"):
        validate(compose_cfg(["z_dim=-1"], tmp_path, tmp_path))


@pytest.mark.parametrize(("overrides", "message"), [
    (["model=cgan", "dataset=gaussian2d"],
     "a conditional model needs a labelled dataset: dataset 'gaussian2d' has no classes"),
    (["model=dcgan", "dataset=gaussian2d"],
     "the model (DCGANGenerator) cannot be built for dataset 'gaussian2d': dcgan needs images "
     "(channels, height, width); the dataset's items have shape [2]"),
    (["model=dcgan_mnist", "dataset=cifar10"],
     "the model (DCGANMNISTGenerator) cannot be built for dataset 'cifar10': dcgan_mnist "
     "generates 28x28 images"),
])
def test_a_model_that_does_not_fit_the_dataset_is_refused(overrides, message, tmp_path):
    from gan_lightning.validate import ConfigError, validate

    with pytest.raises(ConfigError) as error:
        validate(compose_cfg(overrides, tmp_path, tmp_path))
    assert str(error.value).startswith(message)


@pytest.mark.parametrize("args", [["model=cgan", "dataset=gaussian2d"],
                                  ["+z_dimm=20"], ["-m", "+z_dimm=20,50"]])
def test_bad_runs_and_sweeps_are_refused_before_any_folder(args, tmp_path):
    from conftest import run_train

    proc = run_train(args, tmp_path / "nodata", tmp_path / "out", check=False)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert proc.stderr.strip().splitlines()[-1].startswith("config error: ")
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists()


def is_group(key: str) -> bool:
    return (REPO / "conf" / key.replace(".", "/")).is_dir()


@pytest.mark.parametrize(("override", "message"), [
    ("+z_dimm=20", "+z_dimm=20 adds a key that nothing reads (did you mean z_dim?)"),
    ("+trainer.limt_train_batches=3", "+trainer.limt_train_batches=3 adds a key that nothing "
                                      "reads (did you mean trainer.limit_train_batches?)"),
    ("+optimizer.d.wd=1", "+optimizer.d.wd=1 adds a key that nothing reads (torch.optim.SGD "
                          "takes: dampening, differentiable"),
    ("+dataset.batchsize=8", "+dataset.batchsize=8 adds a key that nothing reads (did you mean "
                             "dataset.batch_size?)"),
    ("+optimizer.lrate=0.1", "+optimizer.lrate=0.1 adds a key that nothing reads (optimizer "
                             "has: d, g, lr)"),
])
def test_an_added_key_that_nothing_reads_is_refused(override, message, tmp_path):
    from gan_lightning.validate import ConfigError, check_added_keys

    cfg = compose_cfg([override], tmp_path, tmp_path)
    with pytest.raises(ConfigError) as error:
        check_added_keys(cfg, [override], is_group)
    assert str(error.value).startswith(message)


@pytest.mark.parametrize("override", [
    "+trainer.limit_train_batches=3",  # a lightning.Trainer argument
    "+optimizer.d.weight_decay=0.01",  # a torch.optim.SGD argument
    "+metrics.classifier.epochs=1",  # inside a dict argument, which checks its own keys
    "++z_dim=20",  # ++ overrides or adds on purpose
    "+callbacks.extra._target_=gan_lightning.callbacks.GracefulShutdown",  # a new object
])
def test_an_added_key_that_is_read_passes(override, tmp_path):
    from gan_lightning.validate import check_added_keys

    check_added_keys(compose_cfg([override], tmp_path, tmp_path), [override], is_group)


def test_an_added_config_group_is_not_a_key(tmp_path):
    from gan_lightning.validate import check_added_keys

    # as a group in no defaults list would be added: +debug=fast names an option of conf/debug
    check_added_keys(compose_cfg(["debug=fast"], tmp_path, tmp_path), ["+debug=fast"], is_group)
