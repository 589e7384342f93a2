import logging
import math
import subprocess
import sys

import numpy as np
import pytest
import scipy.linalg
import torch
from torchmetrics.image.fid import FrechetInceptionDistance

from conftest import REPO
from gan_lightning.cache import default_cache_dir
from gan_lightning.data import GANDataModule
from gan_lightning.metrics import features as features_mod
from gan_lightning.metrics import precision_recall
from gan_lightning.metrics.features import ClassifierFeatures, IdentityFeatures


def reference_fid(a: np.ndarray, b: np.ndarray) -> float:
    """The textbook Frechet distance (NumPy/SciPy), as in the original TTUR code."""
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean))


def fid_of(real: torch.Tensor, fake: torch.Tensor) -> float:
    metric = FrechetInceptionDistance(IdentityFeatures(real.shape[1]), reset_real_features=False)
    metric.update(real, real=True)
    metric.update(fake, real=False)
    return float(metric.compute())


def test_fid_of_a_set_against_itself_is_zero():
    x = torch.randn(2000, 8, dtype=torch.float64)
    assert abs(fid_of(x, x)) < 1e-3


def test_fid_matches_scipy_reference():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(3000, 6, generator=g, dtype=torch.float64)
    b = torch.randn(3000, 6, generator=g, dtype=torch.float64) @ torch.rand(6, 6, generator=g,
                                                                            dtype=torch.float64)
    b = b + 0.5
    assert fid_of(a, b) == pytest.approx(reference_fid(a.numpy(), b.numpy()), rel=1e-6)


def test_identity_fid_of_two_gaussians_matches_closed_form():
    # N(0, I) vs N(m, diag(s^2)): FID = |m|^2 + sum (1 - s)^2 in the limit of many samples
    g = torch.Generator().manual_seed(1)
    n = 200_000
    m, s = torch.tensor([1.0, -2.0]), torch.tensor([2.0, 0.5])
    a = torch.randn(n, 2, generator=g, dtype=torch.float64)
    b = torch.randn(n, 2, generator=g, dtype=torch.float64) * s + m
    expected = float((m**2).sum() + ((1 - s) ** 2).sum())
    assert fid_of(a, b) == pytest.approx(expected, rel=0.02)


def test_precision_recall_of_a_set_against_itself_is_one():
    x = torch.randn(500, 16)
    assert precision_recall(x, x, k=3) == (1.0, 1.0)


def test_one_repeated_image_has_no_recall():
    real = torch.randn(500, 16)
    fake = real[:1].repeat(500, 1)  # a collapsed generator: one real-looking sample
    precision, recall = precision_recall(real, fake, k=3)
    assert precision == 1.0
    assert recall < 0.02


def mnist_splits(root):
    """MNIST's labelled splits under ``root``, as the classifier metrics get them."""
    return GANDataModule("mnist", str(root), download=False, source="torchvision").labelled_splits


@pytest.fixture
def tiny_classifier_settings():
    return {"epochs": 1, "batch_size": 64}


def test_classifier_is_cached_and_reused(tiny_data, tmp_path, monkeypatch,
                                         tiny_classifier_settings):
    first = ClassifierFeatures("mnist", mnist_splits(tiny_data), tmp_path, "full",
                               [1, 28, 28], 10, **tiny_classifier_settings)
    assert first.path.exists() and 0 <= first.test_accuracy <= 1

    def no_training(*args, **kwargs):
        raise AssertionError("retrained although cached")

    monkeypatch.setattr(features_mod, "_train_classifier", no_training)
    second = ClassifierFeatures("mnist", mnist_splits(tiny_data), tmp_path, "full",
                                [1, 28, 28], 10, **tiny_classifier_settings)
    x = torch.rand(4, 1, 28, 28) * 2 - 1
    assert torch.equal(first(x), second(x))
    # another training setting is another cache entry
    with pytest.raises(AssertionError, match="retrained"):
        ClassifierFeatures("mnist", mnist_splits(tiny_data), tmp_path, "full",
                           [1, 28, 28], 10, epochs=2)


def test_concurrent_processes_produce_one_cache_file(tiny_data, tmp_path):
    code = (
        "import sys; from gan_lightning.metrics.features import ClassifierFeatures as C; "
        "from gan_lightning.data import GANDataModule as D; "
        "S = D('mnist', sys.argv[1], download=False, source='torchvision').labelled_splits; "
        "c = C('mnist', S, sys.argv[2], 'full', [1, 28, 28], 10, epochs=1); "
        "print(c.path)"
    )
    procs = [subprocess.Popen([sys.executable, "-c", code, str(tiny_data), str(tmp_path)],
                              cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outputs = [p.communicate(timeout=240) for p in procs]
    assert all(p.returncode == 0 for p in procs), outputs
    assert outputs[0][0] == outputs[1][0]
    assert len(list(tmp_path.glob("*.pt"))) == 1
    assert not list(tmp_path.glob("*.tmp*"))


def inception_weights(tmp_path, monkeypatch):
    """A random-weights InceptionV3 file (the real one cannot be downloaded here)."""
    path = tmp_path / "inception.pth"
    random_inception_weights(path, monkeypatch)
    return path


def random_inception_weights(path, monkeypatch):
    """Save a randomly initialised state dict of torch-fidelity's InceptionV3 to ``path``."""
    import torch_fidelity.feature_extractor_inceptionv3 as fe

    with monkeypatch.context() as patch:  # build the architecture without fetching weights
        patch.setattr(fe, "load_state_dict_from_url", lambda *a, **k: {})
        patch.setattr(fe.FeatureExtractorInceptionV3, "load_state_dict", lambda *a, **k: None)
        model = fe.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"])
    torch.save(model.state_dict(), path)


def test_inception_works_offline_with_a_local_weights_file(tmp_path, monkeypatch):
    pytest.importorskip("torch_fidelity")
    from gan_lightning.errors import SetupError
    from gan_lightning.metrics.features import InceptionFeatures

    # The real weights cannot be downloaded here; a random state dict of the same
    # architecture proves that the offline path loads a local file and computes features.
    weights = tmp_path / "inception.pth"
    random_inception_weights(weights, monkeypatch)
    extractor = InceptionFeatures(str(weights))
    x = torch.rand(2, 1, 28, 28) * 2 - 1  # grayscale, generator range
    with torch.no_grad():
        assert extractor(x).shape == (2, 2048)
        assert extractor.logits(x).shape == (2, 1008)
    with pytest.raises(SetupError, match="weights_path"):
        InceptionFeatures(str(tmp_path / "missing.pth"))
    # a torchmetrics without the one-pass forward: torch-fidelity's own, with a warning
    from torchmetrics.image.fid import NoTrainInceptionV3

    monkeypatch.delattr(NoTrainInceptionV3, "_torch_fidelity_forward")
    with pytest.warns(UserWarning, match="_torch_fidelity_forward"), torch.no_grad():
        features, logits = extractor.features_and_logits(x)
    assert features.shape == (2, 2048) and logits.shape == (2, 1008)


def test_evaluator_leaves_training_rng_and_memory_alone(tiny_data, tmp_path, caplog):
    import lightning as L

    from conftest import compose_cfg
    from gan_lightning.callbacks import Evaluator
    from gan_lightning.train import build

    cfg = compose_cfg(["trainer.max_epochs=1", "dataset.batch_size=64",
                       "trainer.enable_model_summary=false",
                       "callbacks.progress_bar.refresh_rate=0", "metrics.fid.num_fake=200",
                       "metrics.fid.num_real=128", "metrics.is.num_fake=200",
                       "metrics.precision_recall.num_fake=64",
                       "metrics.precision_recall.num_real=64",
                       "+metrics.classifier.epochs=1"], tiny_data, tmp_path)
    L.seed_everything(0)
    datamodule, module, trainer = build(cfg)
    trainer.fit(module, datamodule=datamodule)
    evaluator = next(c for c in trainer.callbacks if isinstance(c, Evaluator))
    state = torch.get_rng_state()
    first = evaluator.evaluate(module)
    assert torch.equal(state, torch.get_rng_state())  # training's RNG untouched
    sizes = [t.numel() for t in evaluator.quality.fid.metric_state.values()
             if isinstance(t, torch.Tensor)]
    for _ in range(3):
        again = evaluator.evaluate(module)
    assert again == first  # same latents, same generator: same numbers
    assert sizes == [t.numel() for t in evaluator.quality.fid.metric_state.values()
                     if isinstance(t, torch.Tensor)]
    assert evaluator.quality.inception.features == []  # reset after each evaluation
    assert int(evaluator.quality.fid.real_features_num_samples) == 128  # real stats kept, once

    # A generator gone NaN: NaN figures and a warning, never NaN handed to LAPACK (whose
    # eigenvalue routine crashes the process on NaN statistics)
    weights = {k: v.clone() for k, v in module.generator.state_dict().items()}
    with torch.no_grad():
        for p in module.generator.parameters():
            p.fill_(math.nan)
    with caplog.at_level(logging.WARNING, logger="gan_lightning.metrics.quality"):
        broken = evaluator.evaluate(module)
    assert set(broken) == set(first) and all(math.isnan(v) for v in broken.values())
    assert "non-finite features" in caplog.text
    module.generator.load_state_dict(weights)
    assert evaluator.evaluate(module) == first  # the metrics' states were left clean


@pytest.mark.mnist
def test_fid_separates_real_halves_from_noise(shared_mnist):
    from gan_lightning.datasets import load_images
    from gan_lightning.pixels import to_unit_range

    extractor = ClassifierFeatures("mnist", mnist_splits(shared_mnist),
                                   default_cache_dir(shared_mnist), "full", [1, 28, 28], 10)
    assert extractor.test_accuracy >= 0.99
    images, _, _ = load_images("mnist", shared_mnist, train=False, download=False)
    x = to_unit_range(images)
    metric = FrechetInceptionDistance(extractor, reset_real_features=False)
    with torch.no_grad():
        for b in x[:5000].split(1000):
            metric.update(b, real=True)
        for b in x[5000:].split(1000):
            metric.update(b, real=False)
        halves = float(metric.compute())
        metric.reset()
        noise = torch.rand(5000, 1, 28, 28, generator=torch.Generator().manual_seed(0)) * 2 - 1
        for b in noise.split(1000):
            metric.update(b, real=False)
        to_noise = float(metric.compute())
    assert halves * 50 < to_noise


def test_metrics_do_not_change_the_training_trajectory(tiny_data, tmp_path):
    import lightning as L

    from conftest import FAST, NO_METRICS, compose_cfg
    from gan_lightning.train import build

    weights = []
    for overrides in (FAST, NO_METRICS):
        cfg = compose_cfg(overrides, tiny_data, tmp_path / str(len(weights)))
        L.seed_everything(cfg.seed)
        datamodule, module, trainer = build(cfg)
        trainer.fit(module, datamodule=datamodule)
        weights.append(torch.cat([p.flatten() for p in module.generator.parameters()]))
    assert torch.equal(weights[0], weights[1])


def test_each_metric_follows_its_own_schedule(tiny_data, tmp_path):
    from conftest import FAST, compose_cfg
    from gan_lightning.callbacks import Evaluator
    from gan_lightning.train import build

    cfg = compose_cfg([*FAST, "trainer.max_epochs=3", "metrics.fid.every_n_epochs=2",
                       "metrics.is.enabled=false", "metrics.precision_recall.every_n_epochs=3"],
                      tiny_data, tmp_path)
    datamodule, module, trainer = build(cfg)
    trainer.fit(module, datamodule=datamodule)
    evaluator = next(c for c in trainer.callbacks if isinstance(c, Evaluator))
    history = evaluator.history
    assert [h["epoch"] for h in history] == [2, 3]  # every 2nd epoch, and the last
    assert all("is" not in h for h in history)
    assert "precision" not in history[0] and "recall" in history[1]
    summary = evaluator.run_summary()
    assert summary["metrics_protocol"]["fid"]["num_fake"] == 128
    assert (tmp_path / "best.ckpt").is_file()


def test_the_best_epoch_is_chosen_on_held_out_images_and_reported_on_the_test_split(
        tiny_data, tmp_path, monkeypatch):
    """With dataset.validation, FID is computed against the held-out training images too
    (fid_val, from the same samples); the best epoch is the lowest fid_val's, and its figure
    is that epoch's test-split FID. Scripted figures where the two references disagree on
    the best epoch (test: epoch 1; held out: epoch 2); then a real run's record."""
    from types import SimpleNamespace

    from conftest import FAST, compose_cfg
    from gan_lightning.callbacks import Evaluator
    from gan_lightning.train import build

    scripted = iter([{"fid": 5.0, "fid_val": 9.0}, {"fid": 7.0, "fid_val": 6.0},
                     {"fid": 8.0, "fid_val": 8.0}])
    evaluator = Evaluator(seed=0)
    evaluator.validation_size = 64
    monkeypatch.setattr(evaluator, "evaluate", lambda module, due: next(scripted))
    evaluator.quality = SimpleNamespace(details={})
    module = SimpleNamespace(check_finite=lambda: True, g_step=0,
                             run=SimpleNamespace(log=lambda trainer, values: None))
    for epoch in range(3):
        trainer = SimpleNamespace(current_epoch=epoch, max_epochs=3, should_stop=False)
        evaluator.on_train_epoch_end(trainer, module)
    summary = evaluator.run_summary()
    assert summary["fid"] == {"final": 8.0, "best": 7.0, "best_epoch": 2,
                              "final_over_best": 8.0 / 7.0}
    assert summary["fid_val"] == {"final": 8.0, "best": 6.0}
    assert summary["metrics_protocol"]["best_chosen_on"] == (
        "validation: 64 training images held out")
    assert summary["metrics_protocol"]["reference"] == "test split"

    for validation, chosen in ((64, "validation: 64 training images held out"),
                               (0, "test split")):
        cfg = compose_cfg([*FAST, "trainer.max_epochs=2", f"dataset.validation={validation}"],
                          tiny_data, tmp_path / str(validation))
        datamodule, module, trainer = build(cfg)
        trainer.fit(module, datamodule=datamodule)
        evaluator = next(c for c in trainer.callbacks if isinstance(c, Evaluator))
        summary = evaluator.run_summary()
        assert summary["metrics_protocol"]["best_chosen_on"] == chosen
        assert len(datamodule.images) == 256 - validation
        history = evaluator.history
        if validation:
            assert all(math.isfinite(h["fid_val"]) and h["fid_val"] != h["fid"]
                       for h in history)
            best = min(history, key=lambda h: h["fid_val"])
            assert summary["fid_val"]["best"] == best["fid_val"]
        else:
            assert all("fid_val" not in h for h in history) and "fid_val" not in summary
            best = min(history, key=lambda h: h["fid"])
        assert (summary["fid"]["best"], summary["fid"]["best_epoch"]) == (
            best["fid"], best["epoch"])


def test_bad_metric_settings_are_refused():
    from gan_lightning.callbacks import Evaluator

    with pytest.raises(ValueError, match="metrics.fid.num_fake"):
        Evaluator(fid={"num_fake": 1})
    with pytest.raises(ValueError, match="every_n_epochs"):
        Evaluator(precision_recall={"every_n_epochs": 0})
    with pytest.raises(TypeError, match="unknown"):
        Evaluator(lpips={})


DATASETS = sorted(p.stem for p in (REPO / "conf" / "dataset").glob("*.yaml"))


@pytest.mark.parametrize("dataset", DATASETS)
def test_every_dataset_works_with_the_default_metrics(dataset, tmp_path, monkeypatch):
    """``dataset=<any>`` with the default metrics group, no other flag: the metrics choose
    features that work for the data (the classifier for labelled images, the raw values for
    2-D points) and the run ends ok with a finite FID."""
    import json

    import torchvision.datasets.celeba
    import torchvision.datasets.cifar

    from conftest import (
        FAST,
        compose_cfg,
        write_celeba,
        write_cifar,
        write_idx_dataset,
        write_image_folder,
    )
    from gan_lightning.train import run

    root = tmp_path / "data"
    write_idx_dataset(root, folder="MNIST")
    write_idx_dataset(root, folder="FashionMNIST")
    write_cifar(root, n=64)
    write_celeba(root)
    # the real files pass torchvision's md5 checks; these tiny ones cannot
    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity", lambda *a, **k: True)
    monkeypatch.setattr(torchvision.datasets.celeba, "check_integrity", lambda *a, **k: True)
    extra = {
        # a folder with class subfolders: the classifier, trained on it
        "folder": [f"dataset.path={write_image_folder(tmp_path / 'photos')}",
                   "dataset.resolution=32"],
        # unlabelled faces: Inception (offline: a local weights file; random weights here),
        # on few samples since it is slow on a CPU
        "celeba": [f"metrics.fid.weights_path={inception_weights(tmp_path, monkeypatch)}",
                   "dataset.resolution=32", "metrics.fid.num_fake=8", "metrics.is.num_fake=8",
                   "metrics.precision_recall.num_fake=8", "metrics.precision_recall.num_real=8",
                   "metrics.fid.num_real=8"],
    }.get(dataset, [])
    cfg = compose_cfg([*FAST, f"dataset={dataset}", "trainer.max_epochs=1", *extra], root,
                      tmp_path / "out")
    assert cfg.metrics.fid.feature == "auto"
    record = run(cfg)
    assert record["status"] == "ok", record.get("error")
    expected = {"gaussian2d": "identity", "celeba": "inception"}.get(dataset, "classifier")
    saved = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert saved["metrics_protocol"]["feature"] == expected
    assert math.isfinite(saved["fid"]["final"])
