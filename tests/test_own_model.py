"""Your own networks, loss and configs, from your own project folder: ``examples/own_model``
copied outside the checkout and run as a user runs it (``gan-train``, ``gan-sample``)."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from conftest import REPO, write_idx_dataset

#: small, quick settings for the example's experiment
QUICK = ["trainer.max_epochs=1", "+trainer.limit_train_batches=4", "dataset.batch_size=16",
         "trainer.log_every_n_steps=1", "trainer.enable_model_summary=false",
         "callbacks.progress_bar.refresh_rate=0", "metrics=none"]


def command(name: str) -> list[str]:
    """A console command of this install (beside the interpreter), or its module."""
    script = Path(sys.executable).parent / name
    if script.is_file():
        return [str(script)]
    module = {"gan-train": "gan_lightning.cli", "gan-sample": "gan_lightning.sample",
              "gan-eval": "gan_lightning.evaluate"}[name]
    return [sys.executable, "-m", module]


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """The example project in an empty folder outside the checkout, with a tiny MNIST."""
    root = tmp_path_factory.mktemp("user")
    shutil.copytree(REPO / "examples" / "own_model", root / "project")
    write_idx_dataset(root / "data")
    return root / "project"


def run(project: Path, name: str, *args: str, check: bool = True,
        timeout: int = 300) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(GAN_DATA_DIR=str(project.parent / "data"), PYTHONWARNINGS="ignore")
    proc = subprocess.run([*command(name), *args], cwd=project, env=env, capture_output=True,
                          text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"{name} {' '.join(args)} failed ({proc.returncode}):\n"
                             f"{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
    return proc


@pytest.fixture(scope="module")
def trained(project) -> Path:
    """One run of the user's own G, D and loss: its folder."""
    run(project, "gan-train", "--config-dir", "conf", "experiment=tiny_mnist", *QUICK,
        "hydra.run.dir=outputs/own")
    return project / "outputs" / "own"


def test_gan_train_trains_the_users_own_networks_and_loss_from_their_folder(trained):
    record = json.loads((trained / "metrics.json").read_text())
    assert record["status"] == "ok" and record["g_steps"] == 4
    config = (trained / "config.yaml").read_text()
    for target in ("mylab.nets.TinyG", "mylab.nets.TinyD", "mylab.losses.MarginHingeLoss"):
        assert f"_target_: {target}" in config
    assert (trained / "samples.png").is_file() and (trained / "last.ckpt").is_file()
    # the framework's EMA ran on the user's G: the checkpoint holds its average
    import torch

    state = torch.load(trained / "last.ckpt", weights_only=True)["state_dict"]
    assert any(k.startswith("generator_ema.average.net.") for k in state)


def test_a_sweep_of_the_users_own_config_key_ends_with_its_report(project):
    proc = run(project, "gan-train", "--config-dir", "conf", "-m", "experiment=tiny_mnist",
               "loss.margin=0.5,1.0", *QUICK, "hydra.sweep.dir=outputs/sweep")
    sweep = project / "outputs" / "sweep"
    records = [json.loads(p.read_text()) for p in sorted(sweep.glob("*/metrics.json"))]
    assert [r["status"] for r in records] == ["ok", "ok"], proc.stderr[-2000:]
    assert [[o for o in r["overrides"] if o.startswith("loss.margin")] for r in records] == [
        ["loss.margin=0.5"], ["loss.margin=1.0"]]
    assert "loss.margin" in (sweep / "report.html").read_text()


def test_gan_sample_draws_the_users_generator_only_when_trusted(project, trained):
    refused = run(project, "gan-sample", f"ckpt={trained / 'last.ckpt'}", check=False)
    assert refused.returncode == 2
    assert "trust=mylab" in refused.stderr and len(refused.stderr.strip().splitlines()) == 1
    run(project, "gan-sample", f"ckpt={trained / 'last.ckpt'}", "trust=mylab", "n=16",
        "out=grid.png")
    from PIL import Image

    assert Image.open(project / "grid.png").size == (8 * 30 + 2, 2 * 30 + 2)


#: a quick metrics protocol on the tiny data (its classifier trains for one epoch)
EVAL = ["+metrics.classifier.epochs=1", "metrics.fid.num_real=64", "metrics.kid.enabled=false",
        "metrics.precision_recall.enabled=false", "progress=false"]


def test_gan_eval_measures_the_users_checkpoint_and_a_npz_on_one_protocol(project, trained):
    ckpt = trained / "last.ckpt"
    refused = run(project, "gan-eval", f"ckpt={ckpt}", "n=64", *EVAL, check=False)
    assert refused.returncode == 2 and "trust=mylab" in refused.stderr
    run(project, "gan-eval", f"ckpt={ckpt}", "trust=mylab", "n=64", *EVAL, "out=ckpt.json")
    measured = json.loads((project / "ckpt.json").read_text())
    assert measured["source"]["generator"] == "ema" and measured["source"]["g_step"] == 4
    assert measured["protocol"]["feature"] == "classifier"
    # images from any other tool, measured on the same protocol
    import numpy as np

    images = np.random.default_rng(0).integers(0, 256, (64, 28, 28, 1), dtype=np.uint8)
    np.savez(project / "other_tool.npz", images)
    run(project, "gan-eval", "fake=other_tool.npz", "dataset=mnist", "n=64", *EVAL,
        "out=npz.json")
    other = json.loads((project / "npz.json").read_text())
    assert other["source"]["kind"] != "checkpoint"
    for key in ("feature", "classifier_cache", "reference", "num_reference"):
        assert other["protocol"][key] == measured["protocol"][key], key
    assert math.isfinite(other["figures"]["fid"]) and math.isfinite(measured["figures"]["fid"])
    assert other["figures"]["fid"] != measured["figures"]["fid"]


def one_line_refusal(proc: subprocess.CompletedProcess) -> str:
    lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    return lines[0]


def test_a_network_that_breaks_the_contract_is_named_in_one_line_before_any_folder(project):
    (project / "mylab" / "broken.py").write_text(
        "import torch\n"
        "class FlatG(torch.nn.Module):\n"
        "    def __init__(self, z_dim, img_shape):\n"
        "        super().__init__()\n"
        "        self.net = torch.nn.Linear(z_dim, 784)\n"
        "    def forward(self, z):\n"
        "        return torch.tanh(self.net(z))\n")
    line = one_line_refusal(run(
        project, "gan-train", "--config-dir", "conf", "experiment=tiny_mnist", *QUICK,
        "model.generator._target_=mylab.broken.FlatG", "~model.generator.width",
        "hydra.run.dir=outputs/broken", check=False))
    assert line == ("config error: the generator (mylab.broken.FlatG) maps z (2, 100) to "
                    "(2, 784); the dataset's samples are (1, 28, 28), so G must return "
                    "(2, 1, 28, 28) (B, *img_shape)")
    assert not (project / "outputs" / "broken").exists()


def test_a_target_that_does_not_import_is_named_in_one_line(project):
    line = one_line_refusal(run(
        project, "gan-train", "--config-dir", "conf", "experiment=tiny_mnist", *QUICK,
        "model.discriminator._target_=nolab.nets.D", "hydra.run.dir=outputs/missing",
        check=False))
    assert line.startswith("config error: model.discriminator._target_='nolab.nets.D' cannot "
                           "be imported: No module named 'nolab'; is the folder that holds it "
                           "on PYTHONPATH")
    assert not (project / "outputs" / "missing").exists()


def test_an_option_that_needs_images_is_refused_on_points(project):
    line = one_line_refusal(run(project, "gan-train", "experiment=gaussian2d",
                                "augment.policy=[color,translation,cutout]", check=False))
    assert line.startswith("config error: augment.policy=['color', 'translation', 'cutout'] "
                           "needs images; dataset 'gaussian2d' has points of shape [2]")


def test_the_wheel_holds_every_config(tmp_path):
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-v",
                            "-w", str(tmp_path), str(REPO)], check=True, capture_output=True,
                           text=True, timeout=300)
    # every config group is listed as a package: setuptools has nothing to warn about
    assert "would be ignored" not in build.stdout + build.stderr
    groups = {".".join(("gan_lightning", *p.relative_to(REPO).parts))
              for p in (REPO / "conf").rglob("*") if p.is_dir()}
    listed = (REPO / "pyproject.toml").read_text()
    assert [g for g in sorted(groups) if f'"{g}"' not in listed] == []
    (wheel,) = tmp_path.glob("gan_lightning-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    configs = {f"gan_lightning/conf/{p.relative_to(REPO / 'conf').as_posix()}"
               for p in (REPO / "conf").rglob("*.yaml")}
    assert len(configs) > 50 and configs <= names
    modules = {f"{p.relative_to(REPO).as_posix()}" for p in (REPO / "gan_lightning").rglob("*.py")}
    assert modules <= names  # every subpackage is listed in pyproject.toml
    assert "hydra_plugins/gan_lightning_launcher/parallel_launcher.py" in names


@pytest.mark.ddp
def test_a_ddp_job_of_the_users_model_starts_its_ranks_with_the_users_configs(project):
    """The ranks gan-train starts find the packaged groups, the user's --config-dir and the
    user's package (``distributed.job_command``)."""
    run(project, "gan-train", "--config-dir", "conf", "experiment=tiny_mnist", *QUICK,
        "trainer=ddp", "hydra.run.dir=outputs/ddp")
    record = json.loads((project / "outputs" / "ddp" / "metrics.json").read_text())
    assert record["status"] == "ok" and record["ddp"] == {"world_size": 2,
                                                          "max_param_diff_across_ranks": 0.0}


def test_every_stabilizer_applies_to_the_users_networks_and_loss(project):
    run(project, "gan-train", "--config-dir", "conf", "experiment=tiny_mnist", *QUICK,
        "spectral_norm=true", "ema.decay=0.9", "r1.gamma=1", "r1.every=2", "n_critic=2",
        "augment.policy=[color,translation,cutout]", "hydra.run.dir=outputs/every")
    out = project / "outputs" / "every"
    record = json.loads((out / "metrics.json").read_text())
    assert record["status"] == "ok" and record["g_steps"] == 2  # 4 batches, n_critic 2
    assert record["final"]["r1"] > 0  # R1 on the user's D, with the user's loss
    import torch

    state = torch.load(out / "last.ckpt", weights_only=True)["state_dict"]
    # the framework normalised both of mylab's conv layers and its linear one
    normalised = {k.split(".parametrizations")[0] for k in state
                  if k.startswith("discriminator.") and "parametrizations.weight.original" in k}
    assert normalised == {"discriminator.net.0", "discriminator.net.2", "discriminator.net.5"}
    assert any(k.startswith("generator_ema.average.") for k in state)
