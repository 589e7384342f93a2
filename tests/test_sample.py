"""``gan-sample``: grids, classes, interpolations and GIFs from nothing but the files."""

import subprocess
import sys

import lightning as L
import numpy as np
import pytest
import torch
from PIL import Image

from conftest import NO_METRICS, REPO, compose_cfg
from gan_lightning.sample import SampleError, generate, load_generator, main
from gan_lightning.train import build


def train(tmp_path, data, *overrides):
    cfg = compose_cfg([*NO_METRICS, "max_g_steps=3", "dataset.batch_size=8", *overrides],
                      data, tmp_path)
    L.seed_everything(cfg.seed, verbose=False)
    datamodule, module, trainer = build(cfg)
    trainer.fit(module, datamodule=datamodule)
    return module, tmp_path / "last.ckpt"


def test_sample_grid_matches_the_trained_generator(tiny_data, tmp_path):
    module, ckpt = train(tmp_path, tiny_data)
    generator, config = load_generator(ckpt)
    torch.testing.assert_close(generator(module.fixed_z[:4]), module.generator.eval()(
        module.fixed_z[:4]))
    assert config["z_dim"] == 100 and config["dataset"]["img_shape"] == [1, 28, 28]
    out = tmp_path / "grid.png"
    assert main([f"ckpt={ckpt}", "n=16", f"out={out}", "seed=3"]) == 0
    assert Image.open(out).size == (8 * 30 + 2, 2 * 30 + 2)
    # seeded: the same seed gives the same samples, another seed others
    a, b = generate(generator, config, 4, seed=1), generate(generator, config, 4, seed=1)
    assert torch.equal(a, b) and not torch.equal(a, generate(generator, config, 4, seed=2))


def test_conditional_class_and_interpolation(tiny_data, tmp_path):
    _, ckpt = train(tmp_path, tiny_data, "model=cgan")
    generator, config = load_generator(ckpt)
    seen = []
    generator.register_forward_pre_hook(lambda _, args: seen.append(args[1].clone()))
    generate(generator, config, 6, klass=7)
    assert seen[-1].tolist() == [7] * 6
    images = generate(generator, config, 16, interpolate=True, steps=8)
    assert images.shape == (16, 1, 28, 28)
    # each row of 8 has one class; a row's ends differ, its neighbours change gradually
    assert seen[-1].tolist() == [0] * 8 + [1] * 8
    steps = (images[1:8] - images[:7]).abs().mean((1, 2, 3))
    assert steps.max() < (images[7] - images[0]).abs().mean()
    out = tmp_path / "interp.png"
    assert main([f"ckpt={ckpt}", "interpolate=true", "n=24", "steps=8", f"out={out}"]) == 0
    assert Image.open(out).size == (8 * 30 + 2, 3 * 30 + 2)
    with pytest.raises(SampleError, match="out of range"):
        generate(generator, config, 2, klass=10)


def test_class_on_an_unconditional_model_is_an_error(tiny_data, tmp_path, capsys):
    _, ckpt = train(tmp_path, tiny_data)
    assert main([f"ckpt={ckpt}", "class=3", f"out={tmp_path / 'x.png'}"]) == 2
    assert "conditional" in capsys.readouterr().err


def test_progress_gif_from_a_runs_grids(tiny_data, tmp_path):
    cfg_overrides = ["trainer.max_epochs=3", "max_g_steps=null"]
    train(tmp_path, tiny_data, *cfg_overrides)
    out = tmp_path / "progress.gif"
    assert main([f"run={tmp_path}", f"out={out}"]) == 0
    gif = Image.open(out)
    assert gif.n_frames == 3


class Sentinel:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))  # loading would create the sentinel file


def test_a_checkpoint_carrying_code_is_refused_without_running_it(tmp_path, capsys):
    sentinel = tmp_path / "sentinel"
    bad = tmp_path / "bad.ckpt"
    torch.save({"state_dict": {}, "gan_config": {}, "payload": Sentinel(str(sentinel))}, bad)
    assert main([f"ckpt={bad}"]) == 2
    assert "refused" in capsys.readouterr().err
    assert not sentinel.exists()


@pytest.mark.parametrize(("node", "trust", "refusal"), [
    ({"_target_": "os.system", "command": "touch pwned"}, None, "outside gan_lightning"),
    # trusting the module is not enough: a checkpoint builds nn.Module classes only
    ({"_target_": "os.system", "command": "touch pwned"}, "os", "not an nn.Module class"),
    ({"_target_": "gan_lightning.cli.user_code_on_path", "folder": "pwned"}, None,
     "not an nn.Module class"),
    # nested targets are judged too
    ({"_target_": "torch.nn.Sequential",
      "_args_": [{"_target_": "subprocess.run", "args": ["touch", "pwned"]}]}, None,
     "'subprocess.run' is outside"),
    ({"_target_": "gan_lightning.models.MLPGenerator", "_partial_": True}, None, "_partial_"),
])
def test_a_config_naming_foreign_code_is_refused(node, trust, refusal, tiny_data, tmp_path,
                                                 monkeypatch):
    monkeypatch.chdir(tmp_path)
    _, ckpt = train(tmp_path, tiny_data)
    checkpoint = torch.load(ckpt, weights_only=True)
    checkpoint["gan_config"]["model"]["generator"] = node
    torch.save(checkpoint, tmp_path / "evil.ckpt")
    with pytest.raises(SampleError, match=refusal):
        load_generator(tmp_path / "evil.ckpt", trust=trust)
    assert not (tmp_path / "pwned").exists()


def test_a_trusted_module_of_your_own_builds_its_generator(tiny_data, tmp_path, monkeypatch):
    """A generator class outside the package loads only when its module is trusted."""
    (tmp_path / "mylab_trusted.py").write_text(
        "from gan_lightning.models import MLPGenerator\n"
        "class MyGenerator(MLPGenerator):\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    module, ckpt = train(tmp_path, tiny_data)
    checkpoint = torch.load(ckpt, weights_only=True)
    checkpoint["gan_config"]["model"]["generator"]["_target_"] = "mylab_trusted.MyGenerator"
    torch.save(checkpoint, tmp_path / "own.ckpt")
    with pytest.raises(SampleError, match="trust=mylab_trusted"):
        load_generator(tmp_path / "own.ckpt")
    generator, _ = load_generator(tmp_path / "own.ckpt", trust="mylab_trusted")
    assert type(generator).__name__ == "MyGenerator"
    torch.testing.assert_close(generator(module.fixed_z[:4]),
                               module.generator.eval()(module.fixed_z[:4]))


def test_toy_checkpoint_gives_a_scatter(tmp_path):
    _, ckpt = train(tmp_path, tmp_path, "experiment=gaussian2d", "dataset.batch_size=8")
    out = tmp_path / "points.png"
    assert main([f"ckpt={ckpt}", "n=200", f"out={out}"]) == 0
    assert np.asarray(Image.open(out)).shape[0] > 300


def test_cli_arguments_are_checked(capsys):
    assert main(["ckpt=x.ckpt", "colour=red"]) == 2
    assert "colour=red" in capsys.readouterr().err
    assert main(["n=4"]) == 2
    assert main(["ckpt=/nonexistent.ckpt"]) == 2
    assert "not found" in capsys.readouterr().err


def test_console_script_module_entry(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "gan_lightning.sample", "--help"],
                          capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0 and "gan-sample ckpt=" in proc.stdout
