"""``gan-eval``: a checkpoint, or a set of images from any tool, measured after training."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import scipy.linalg
import torch
from PIL import Image

import gan_lightning
from conftest import FAST, REPO, compose_cfg, write_idx_dataset
from gan_lightning.callbacks.evaluation import latent_batches
from gan_lightning.data import GaussianDataModule
from gan_lightning.evaluate import main
from gan_lightning.record import QUALITY_METRICS
from gan_lightning.sample import load_generator

#: the protocol the run below was trained with (FAST's metrics settings)
PROTOCOL = [o for o in FAST if "metrics." in o]
#: the same without KID (seconds of kernel sums that these tests need not repeat)
QUICK = [*PROTOCOL, "metrics.kid.enabled=false", "progress=false"]
GAN_EVAL = str(Path(sys.executable).parent / "gan-eval")


def trained(root: Path, *overrides: str) -> SimpleNamespace:
    """One epoch on the tiny MNIST, with the metrics of ``FAST``: its folder and files."""
    from gan_lightning.train import run

    data = write_idx_dataset(root / "data")
    run(compose_cfg([*FAST, "logger=[]", "callbacks.samples=null", *overrides], data,
                    root / "run"))
    return SimpleNamespace(data=data, dir=root / "run", ckpt=root / "run" / "last.ckpt")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """The default GAN with a moving average of G."""
    return trained(tmp_path_factory.mktemp("eval"), "ema.decay=0.9")


def gan_eval(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def written(out: str) -> dict:
    """The JSON whose path gan-eval printed last."""
    return json.loads(Path(out.strip().splitlines()[-1].removeprefix("wrote ")).read_text())


def samples_of(ckpt: Path, n: int, raw: bool = False) -> torch.Tensor:
    """The checkpoint's evaluation samples, drawn here as the training's evaluation draws them."""
    generator, config = load_generator(ckpt, raw)
    with torch.no_grad():
        return torch.cat([generator(z) for z in latent_batches(n, config["z_dim"], 1000,
                                                               config["seed"])])


def test_the_runs_protocol_gives_the_runs_own_figures(run, capsys):
    code, out, _ = gan_eval(capsys, f"ckpt={run.ckpt}", f"paths.data_dir={run.data}",
                            *PROTOCOL, "progress=false")
    assert code == 0
    # named after the protocol, beside the checkpoint
    path = run.dir / "eval-fid128-classifier-test-last.json"
    assert out.strip().endswith(f"wrote {path}")
    record = json.loads(path.read_text())
    trained = json.loads((run.dir / "metrics.json").read_text())
    final = {k: trained[k]["final"] for k in QUALITY_METRICS if k in trained}
    assert {"fid", "kid", "is", "precision", "recall", "class_tv"} <= set(final)
    assert record["figures"] == pytest.approx(final, rel=1e-6, abs=1e-12)
    assert record["details"]["class_shares"] == trained["class_shares"]["final"]
    source, protocol = record["source"], record["protocol"]
    assert source["g_step"] == trained["g_steps"] and source["generator"] == "ema"
    assert protocol["reference"] == "test split" and protocol["seed"] == 42
    assert protocol["fid"] == {"enabled": True, "num_fake": 128, "num_real": 128}
    assert protocol["classifier_cache"] == trained["metrics_protocol"]["classifier_cache"]
    assert record["gan_lightning_version"] == gan_lightning.__version__
    assert record["timing"]["s_per_1000_fakes"] > 0
    printed = dict(line.split() for line in out.splitlines()[1:-1])
    assert float(printed["fid"]) == pytest.approx(final["fid"], rel=1e-5)


def test_a_conditional_run_too_with_its_class_balanced_samples(tmp_path, capsys):
    cgan = trained(tmp_path, "model=cgan", "metrics.kid.enabled=false")
    code, out, err = gan_eval(capsys, f"ckpt={cgan.ckpt}", f"paths.data_dir={cgan.data}",
                              *QUICK)
    assert code == 0, err
    record = written(out)
    trained_record = json.loads((cgan.dir / "metrics.json").read_text())
    final = {k: trained_record[k]["final"] for k in QUALITY_METRICS if k in trained_record}
    assert "cond_accuracy" in final  # the classes the samples were drawn for were scored
    assert record["figures"] == pytest.approx(final, rel=1e-6, abs=1e-12)
    assert record["details"]["cond_accuracy_per_class"] == pytest.approx(
        trained_record["cond_accuracy_per_class"]["final"])


def test_raw_g_and_its_average_are_told_apart(run, tmp_path, capsys):
    _, out, _ = gan_eval(capsys, f"ckpt={run.ckpt}", f"paths.data_dir={run.data}", *QUICK)
    ema = written(out)
    code, out, _ = gan_eval(capsys, f"ckpt={run.ckpt}", "raw=true", f"paths.data_dir={run.data}",
                            *QUICK)
    assert code == 0 and out.strip().endswith("eval-fid128-classifier-test-last-raw.json")
    raw = written(out)
    assert (ema["source"]["generator"], raw["source"]["generator"]) == ("ema", "raw")
    assert raw["figures"]["fid"] != ema["figures"]["fid"]


def test_the_train_split_as_reference(run, capsys):
    _, out, _ = gan_eval(capsys, f"ckpt={run.ckpt}", f"paths.data_dir={run.data}", *QUICK)
    test = written(out)
    code, out, _ = gan_eval(capsys, f"ckpt={run.ckpt}", "reference=train",
                            f"paths.data_dir={run.data}", *QUICK)
    assert code == 0 and "eval-fid128-classifier-train-last.json" in out
    train = written(out)
    assert train["protocol"]["reference"] == "train split"
    assert train["figures"]["fid"] != test["figures"]["fid"]


def test_a_fake_set_of_the_generators_samples_scores_as_the_checkpoint(run, tmp_path, capsys,
                                                                       monkeypatch):
    samples = samples_of(run.ckpt, 128)  # (128, 1, 28, 28) in [-1, 1]
    np.savez(tmp_path / "float.npz", samples.numpy())  # NCHW float
    pixels = ((samples + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)
    np.savez(tmp_path / "uint8.npz", pixels.permute(0, 2, 3, 1).numpy())  # NHWC, as StyleGAN
    folder = tmp_path / "pngs"
    folder.mkdir()
    for i, image in enumerate(pixels[:, 0].numpy()):
        # half as RGB with equal channels, as torchvision's save_image writes grayscale
        Image.fromarray(image).convert("RGB" if i % 2 else "L").save(folder / f"{i:04d}.png")

    monkeypatch.chdir(tmp_path)  # fake sets' JSON goes to the current folder
    figures = {}
    for source in (f"ckpt={run.ckpt}", "fake=float.npz", "fake=uint8.npz", "fake=pngs"):
        code, out, err = gan_eval(capsys, source, "dataset=mnist",
                                  f"paths.data_dir={run.data}", *QUICK)
        assert code == 0, err
        figures[source.split("=")[1]] = written(out)
    assert (tmp_path / "eval-fid128-classifier-test-uint8.json").is_file()
    assert figures["float.npz"]["source"]["layout"] == "NCHW float"
    assert figures["uint8.npz"]["source"]["layout"] == "NHWC uint8"
    assert figures["pngs"]["source"]["kind"] == "folder"
    checkpoint = figures[str(run.ckpt)]["figures"]
    assert figures["float.npz"]["figures"] == pytest.approx(checkpoint, rel=1e-6, abs=1e-12)
    # the same pixels from a file or from PNGs; within rounding of the float samples
    assert figures["pngs"]["figures"] == figures["uint8.npz"]["figures"]
    assert figures["uint8.npz"]["figures"]["fid"] == pytest.approx(checkpoint["fid"], rel=0.02)


def test_points_are_scored_by_the_frechet_distance_of_their_gaussians(tmp_path, capsys):
    # gaussian2d: identity features, so FID is the closed-form distance of fitted Gaussians
    data = GaussianDataModule(seed=42)
    fake = data.draw(500, seed=7) + torch.tensor([0.5, 0.0])
    np.savez(tmp_path / "points.npz", fake.numpy())
    code, out, err = gan_eval(capsys, f"fake={tmp_path / 'points.npz'}", "dataset=gaussian2d",
                              "n=500", "metrics.fid.num_real=500", "metrics.kid.enabled=false",
                              "metrics.precision_recall.num_real=500", "progress=false",
                              f"out={tmp_path / 'points.json'}")
    assert code == 0, err
    record = json.loads((tmp_path / "points.json").read_text())
    assert record["protocol"]["feature"] == "identity" and "is" not in record["figures"]
    real = data.reference_images(500).double().numpy()
    x = fake.double().numpy()
    s1, s2 = np.cov(real, rowvar=False), np.cov(x, rowvar=False)
    expected = (np.sum((real.mean(0) - x.mean(0)) ** 2)
                + np.trace(s1 + s2 - 2 * scipy.linalg.sqrtm(s1 @ s2).real))
    assert record["figures"]["fid"] == pytest.approx(expected, rel=1e-6)


def untrusted_copy(run, tmp_path) -> Path:
    checkpoint = torch.load(run.ckpt, weights_only=True)
    checkpoint["gan_config"]["model"]["generator"]["_target_"] = "mylab.nets.TinyG"
    torch.save(checkpoint, tmp_path / "theirs.ckpt")
    return tmp_path / "theirs.ckpt"


def offline_inception(monkeypatch) -> None:
    """No download of the Inception weights, wherever the tests run."""
    import torch_fidelity.feature_extractor_inceptionv3 as fe

    def unreachable(*args, **kwargs):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(fe, "load_state_dict_from_url", unreachable)


def wrong_shape(tmp_path) -> Path:
    np.savez(tmp_path / "cifar.npz", np.zeros((8, 32, 32, 3), np.uint8))
    return tmp_path / "cifar.npz"


def one_png(tmp_path, side: int) -> Path:
    (tmp_path / "pngs").mkdir()
    Image.new("L", (side, side)).save(tmp_path / "pngs" / "0.png")
    return tmp_path / "pngs"


ERRORS = {
    "missing checkpoint": (lambda run, tmp: [f"ckpt={tmp / 'none.ckpt'}"], "not found"),
    "unknown key": (lambda run, tmp: [f"ckpt={run.ckpt}", "model=dcgan"],
                    "bad argument 'model=dcgan'"),
    "untrusted generator": (lambda run, tmp: [f"ckpt={untrusted_copy(run, tmp)}"],
                            "trust=mylab"),
    "npz of another shape": (lambda run, tmp: [f"fake={wrong_shape(tmp)}", "dataset=mnist"],
                             "images of shape [32, 32, 3]"),
    "png of another size": (lambda run, tmp: [f"fake={one_png(tmp, 32)}", "dataset=mnist",
                                              "n=2"], "is 32x32"),
    "too few fakes": (lambda run, tmp: [f"fake={one_png(tmp, 28)}", "dataset=mnist"],
                      "give n=1 or more"),
    "inception offline": (lambda run, tmp: [f"ckpt={run.ckpt}", "metrics=inception"],
                          "metrics.fid.weights_path"),
    "no train split": (lambda run, tmp: [f"fake={wrong_shape(tmp)}", "dataset=gaussian2d",
                                         "reference=train"], "one reference set only"),
    "raw for a fake set": (lambda run, tmp: [f"fake={wrong_shape(tmp)}", "dataset=mnist",
                                             "raw=true"], "fake= has none"),
    "metrics off": (lambda run, tmp: [f"ckpt={run.ckpt}", "metrics=none", "n=5"],
                    "nothing to measure"),
}


@pytest.mark.parametrize("case", ERRORS)
def test_mistakes_end_in_one_line_and_status_2(case, run, tmp_path, capsys, monkeypatch):
    offline_inception(monkeypatch)
    argv, message = ERRORS[case]
    code, out, err = gan_eval(capsys, *argv(run, tmp_path), f"paths.data_dir={run.data}",
                              "progress=false")
    assert code == 2 and "Traceback" not in err and not out
    assert err.strip().splitlines()[-1].startswith("gan-eval: ")
    assert message in err.strip().splitlines()[-1]


def test_help_is_the_module_docstring(capsys):
    assert main(["--help"]) == 0
    assert "fake=PATH" in capsys.readouterr().out


@pytest.mark.slow
def test_inception_with_a_local_weights_file(run, tmp_path, capsys, monkeypatch):
    from test_metrics import random_inception_weights

    offline_inception(monkeypatch)
    weights = tmp_path / "inception.pth"
    random_inception_weights(weights, monkeypatch)  # random: the real file is not here
    code, out, err = gan_eval(capsys, f"ckpt={run.ckpt}", f"paths.data_dir={run.data}",
                              "metrics=inception", f"metrics.fid.weights_path={weights}",
                              "n=10", "metrics.fid.num_real=10", "metrics.kid.enabled=false",
                              "metrics.precision_recall.enabled=false", "progress=false",
                              f"out={tmp_path / 'inception.json'}")
    assert code == 0, err
    record = json.loads((tmp_path / "inception.json").read_text())
    assert record["protocol"]["feature"] == "inception"
    assert record["protocol"]["weights_path"] == str(weights)
    assert np.isfinite(record["figures"]["fid"]) and record["figures"]["is"] > 0


def console(*argv, data: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "GAN_DATA_DIR": str(data), "PYTHONWARNINGS": "ignore"}
    return subprocess.run([GAN_EVAL, *map(str, argv)], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=300)


def test_the_console_command_on_a_checkpoint(run):
    proc = console(f"ckpt={run.ckpt}", *QUICK[:-1], data=run.data)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.splitlines()[1].startswith("fid ")
    # the progress bars go to stderr
    assert "sampling: 100%" in proc.stderr and "features+metrics: 100%" in proc.stderr
    record = json.loads((run.dir / "eval-fid128-classifier-test-last.json").read_text())
    assert "kid" not in record["figures"]  # this process's file (KID off), not an earlier one


def test_the_console_command_on_an_npz_and_its_exit_status(run, tmp_path):
    pixels = ((samples_of(run.ckpt, 128) + 1) * 127.5).round().to(torch.uint8)
    np.savez(tmp_path / "samples.npz", pixels.numpy())  # NCHW uint8
    out = tmp_path / "samples.json"
    proc = console(f"fake={tmp_path / 'samples.npz'}", "dataset=mnist", *QUICK,
                   f"out={out}", data=run.data)
    assert proc.returncode == 0, proc.stderr[-3000:]
    record = json.loads(out.read_text())
    assert record["source"]["layout"] == "NCHW uint8"
    assert f"fid               {record['figures']['fid']:.6g}" in proc.stdout
    proc = console(f"ckpt={tmp_path / 'none.ckpt'}", data=run.data)
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"gan-eval: checkpoint not found: {tmp_path / 'none.ckpt'}"
