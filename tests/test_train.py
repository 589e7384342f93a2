"""End to end through the real ``train.py``, on a tiny MNIST the tests write themselves."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from conftest import FAST, NO_METRICS, REPO, compose_cfg, run_train
from gan_lightning.errors import ConfigError, SetupError
from gan_lightning.train import build, run

SCALARS = {"train/loss_d", "train/loss_g", "train/d_real", "train/d_fake", "val/fid", "val/is"}


def run_dirs(root, kind="runs"):
    return sorted(p.parent for p in root.glob(f"{kind}/*/*/**/metrics.json"))


def read_events(run_dir):
    acc = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"images": 0,
                                                                         "scalars": 0})
    acc.Reload()
    return acc


@pytest.fixture(scope="module")
def single_run(tmp_path_factory):
    from conftest import write_idx_dataset

    data = write_idx_dataset(tmp_path_factory.mktemp("data"))
    out = tmp_path_factory.mktemp("out")
    run_train(FAST, data, out)
    (run_dir,) = run_dirs(out)
    return data, out, run_dir


def test_single_run_writes_everything(single_run):
    _, out, run_dir = single_run
    assert list(out.glob("runs/*/*")) == [run_dir]  # exactly one run folder
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["status"] == "ok" and metrics["data_source"] == "full"
    assert metrics["g_steps"] == 256 // 32 and metrics["optimizer_steps"] == 2 * 8
    assert set(metrics["final"]) == {"loss_d", "loss_g", "d_real", "d_fake"}
    assert metrics["warnings"] == []
    assert metrics["fid"]["final"] > 0 and metrics["fid"]["best_epoch"] == 1
    assert metrics["fid"]["final_over_best"] == 1.0  # one evaluation: the final is the best
    assert "trainer.max_epochs=1" in metrics["overrides"]
    assert metrics["g_steps_per_s"] > 0 and metrics["wall_time_s"] > 0

    grid = (run_dir / "samples.png").read_bytes()
    assert grid[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(run_dir / "samples.png") as image:
        image.load()
        # 64 fixed latents in an 8x8 grid of 28px images with make_grid's 2px padding
        assert image.size == (8 * 30 + 2, 8 * 30 + 2)
    ckpt = torch.load(run_dir / "last.ckpt", weights_only=False)
    assert ckpt["g_step"] == 8 and "fixed_z" in ckpt["state_dict"]
    assert (run_dir / "best.ckpt").is_file() and (run_dir / "config.yaml").is_file()

    events = read_events(run_dir)
    assert set(events.Tags()["scalars"]) >= SCALARS
    assert set(events.Tags()["images"]) == {"samples/fixed_noise", "coverage/class_shares"}
    steps = [e.step for e in events.Scalars("train/loss_d")]
    assert steps == list(range(1, 9))  # one point per generator step (log_every_n_steps=1)
    for tag in ("train/loss_g", "train/d_real", "train/d_fake"):
        assert max(e.step for e in events.Scalars(tag)) <= metrics["g_steps"]
    (logged,) = events.Images("samples/fixed_noise")
    assert logged.step == 8 and (logged.width, logged.height) == (242, 242)
    assert logged.encoded_image_string == grid  # the file's PNG, encoded once
    assert [e.step for e in events.Scalars("val/fid")] == [8]


def test_resume_continues_the_run(single_run, tmp_path):
    data, _, run_dir = single_run
    run_train([*FAST, "trainer.max_epochs=2", f"ckpt_path={run_dir / 'last.ckpt'}"], data,
              tmp_path)
    (resumed,) = run_dirs(tmp_path)
    metrics = json.loads((resumed / "metrics.json").read_text())
    assert metrics["status"] == "ok" and metrics["g_steps"] == 16
    # the FID history carried over from the first run's checkpoint
    assert [h["epoch"] for h in metrics["metrics_history"]] == [1, 2]


def test_multirun_makes_one_folder_per_combination(tiny_data, tmp_path):
    run_train(["-m", "optimizer=sgd,adam", "z_dim=20,50", *NO_METRICS], tiny_data,
              tmp_path)
    dirs = run_dirs(tmp_path, "multirun")
    assert len(dirs) == 4
    combos = set()
    for d in dirs:
        m = json.loads((d / "metrics.json").read_text())
        opt = next(o for o in m["overrides"] if o.startswith("optimizer="))
        z = next(o for o in m["overrides"] if o.startswith("z_dim="))
        combos.add((opt, z))
        assert m["status"] in ("ok", "collapsed")
    assert combos == {(f"optimizer={o}", f"z_dim={z}") for o in ("sgd", "adam") for z in (20, 50)}


def test_failing_job_does_not_stop_the_sweep(tiny_data, tmp_path):
    proc = run_train(["-m", "z_dim=20,0", *NO_METRICS], tiny_data, tmp_path, check=False)
    assert proc.returncode == 1  # every job ran; then the command says one failed
    assert len(run_dirs(tmp_path, "multirun")) == 2
    records = {json.loads((d / "metrics.json").read_text())["overrides"][0]:
               json.loads((d / "metrics.json").read_text()) for d in run_dirs(tmp_path, "multirun")}
    assert records["z_dim=20"]["status"] == "ok"
    assert records["z_dim=0"]["status"] == "failed"
    assert "z_dim" in records["z_dim=0"]["error"]


def test_missing_data_offline_fails_fast(tmp_path):
    empty = tmp_path / "nodata"
    empty.mkdir()
    start = time.perf_counter()
    proc = run_train(["dataset.source=torchvision"], empty, tmp_path / "out", check=False)
    assert time.perf_counter() - start < 60
    assert proc.returncode != 0
    text = proc.stdout + proc.stderr
    assert "mnist" in text and str(empty) in text
    assert not list((tmp_path / "out").glob("**/last.ckpt"))
    assert list(empty.iterdir()) == []  # no partial download left behind


def test_sweep_with_many_overrides_runs(tiny_data, tmp_path):
    """A sweep with a dozen overrides runs: the job folders are named after the overrides, and
    a name past the file system's 255-byte limit is shortened (``short_name``), not refused
    with ``OSError: [Errno 36] File name too long``."""
    extra = ["+trainer.limit_train_batches=1", "callbacks.health.patience=5",
             "callbacks.health.eps=0.02", "callbacks.samples.every_n_epochs=1",
             "optimizer.d.lr=0.05", "optimizer.g.lr=0.05"]
    run_train(["-m", "z_dim=20,30", *NO_METRICS, *extra], tiny_data, tmp_path)
    dirs = run_dirs(tmp_path, "multirun")
    assert len(dirs) == 2
    for d in dirs:
        assert json.loads((d / "metrics.json").read_text())["status"] == "ok"


def test_blown_up_run_with_the_default_loss_is_reported_as_diverged(tiny_data, tmp_path):
    """An absurd learning rate makes the weights non-finite in the first steps. With loss=bce
    (the default), whose torch kernel rejects NaN input, the run is still stopped as
    'diverged', not crashed: exit 0, and a message suggesting a lower learning rate."""
    proc = run_train([*NO_METRICS, "optimizer=sgd", "optimizer.lr=1e30"], tiny_data, tmp_path,
                     check=False)
    (path,) = tmp_path.glob("runs/*/*/metrics.json")
    metrics = json.loads(path.read_text())
    assert metrics["status"] == "diverged", metrics.get("error")
    assert "lower learning rate" in metrics["message"]
    assert proc.returncode == 0


@pytest.mark.parametrize(("n_critic", "batch_size", "max_g_steps"),
                         [(1, 48, 7), (2, 48, 6), (3, 64, 3)])
def test_max_g_steps_counts_generator_steps(tiny_data, tmp_path, n_critic, batch_size,
                                            max_g_steps):
    """``max_g_steps`` must stop the run after exactly that many G steps. build() translates it
    to ``max_steps = max_g_steps * (n_critic + 1)``, which is only right when n_critic divides
    the batches per epoch: 256 images / 64 = 4 batches with n_critic=3 give 4 D + 1 G = 5
    optimizer steps per epoch (not 4), so max_steps=12 is reached after 2 G steps."""
    cfg = compose_cfg([*NO_METRICS, f"n_critic={n_critic}", f"dataset.batch_size={batch_size}",
                       f"max_g_steps={max_g_steps}", "trainer.max_epochs=50", "logger=csv"],
                      tiny_data, tmp_path)
    datamodule, module, trainer = build(cfg)
    trainer.fit(module, datamodule=datamodule)
    assert module.g_step == max_g_steps


def test_run_outside_hydra_records_a_failure_and_raises(tiny_data, tmp_path):
    """``run`` on a composed config: a single (non-sweep) run that fails still writes
    metrics.json (status failed, the error) and re-raises, so train.py exits non-zero."""
    cfg = compose_cfg([*NO_METRICS, "z_dim=0"], tiny_data, tmp_path)
    with pytest.raises(ValueError, match="z_dim"):
        run(cfg)
    record = json.loads((tmp_path / "metrics.json").read_text())
    assert record["status"] == "failed" and record["error"].startswith("ConfigError: z_dim=0")
    assert "Traceback" in record["traceback"] and record["overrides"] == []
    assert (tmp_path / "config.yaml").is_file()


def test_parallel_launcher_shares_the_cores(tiny_data, tmp_path):
    import os

    run_train(["-m", "hydra/launcher=parallel", "z_dim=20,50", *NO_METRICS], tiny_data, tmp_path)
    records = [json.loads((d / "metrics.json").read_text()) for d in run_dirs(tmp_path, "multirun")]
    assert [r["status"] for r in records] == ["ok", "ok"]
    expected = max(1, (os.cpu_count() or 1) // 2)
    assert [r["threads"] for r in records] == [expected, expected]


def test_a_run_alone_uses_every_core(single_run, tmp_path):
    """A plain run, and a sweep that runs one job at a time (a sweep of one job), train on
    torch's default threads (every core), not on the parallel launcher's share of them."""
    default = int(subprocess.run([sys.executable, "-c", "import torch; print("
                                  "torch.get_num_threads())"], capture_output=True, text=True,
                                 check=True).stdout)
    data, _, run_dir = single_run
    run_train(["-m", "hydra/launcher=parallel", "z_dim=20", *NO_METRICS], data, tmp_path)
    records = [json.loads((d / "metrics.json").read_text())
               for d in [run_dir, *run_dirs(tmp_path, "multirun")]]
    assert [r["threads"] for r in records] == [default, default]


def test_train_py_imports_without_collecting_and_freezes_what_they_made():
    """``train.py`` imports torch, Lightning and Hydra with the collector off (each full
    collection would walk every object made so far) and then freezes those objects, so later
    collections skip them; the collector is on again before any run starts."""
    from conftest import REPO

    # a finder first on sys.meta_path notes the collector's state when torch is imported
    probe = f"""
import gc, runpy, sys
seen = {{}}
class Note:
    def find_spec(self, name, path=None, target=None):
        seen.setdefault(name, gc.isenabled())
sys.meta_path.insert(0, Note())
runpy.run_path({str(REPO / 'train.py')!r})
print(seen['torch'], seen['lightning'], gc.isenabled(), gc.get_freeze_count())
"""
    torch_gc, lightning_gc, enabled, frozen = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True,
        cwd=REPO).stdout.split()
    assert (torch_gc, lightning_gc) == ("False", "False")
    assert enabled == "True"
    assert int(frozen) > 100_000  # torch alone leaves several hundred thousand


def test_interrupted_and_resumed_run_ends_with_the_same_weights(tiny_data, tmp_path):
    """2 epochs straight vs 1 epoch, then resumed from last.ckpt for the second: G, D, both
    optimizers, g_step and the latent RNG are restored, so the weights match."""
    import lightning as L

    def train(out, epochs, ckpt=None):
        cfg = compose_cfg([*NO_METRICS, f"trainer.max_epochs={epochs}", "optimizer=adam",
                           "seed=5"], tiny_data, out)
        L.seed_everything(cfg.seed, verbose=False)
        datamodule, module, trainer = build(cfg)
        trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt)
        return module

    straight = train(tmp_path / "a", 2)
    train(tmp_path / "b", 1)
    torch.randn(1000)  # a new process would not share this one's RNG position either
    resumed = train(tmp_path / "b2", 2, ckpt=tmp_path / "b" / "last.ckpt")
    assert resumed.g_step == straight.g_step == 16
    for (name, a), b in zip(straight.state_dict().items(), resumed.state_dict().values(),
                            strict=True):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=0, msg=name)


def test_checkpoint_writes_are_atomic(tiny_data, tmp_path, monkeypatch):
    """A save that dies half-way leaves the previous last.ckpt whole and loadable."""
    import lightning as L

    cfg = compose_cfg([*NO_METRICS, "trainer.max_epochs=2"], tiny_data, tmp_path)
    datamodule, module, trainer = build(cfg)
    real_save = L.Trainer.save_checkpoint
    calls = []

    def dying_save(self, filepath, weights_only=False, storage_options=None):
        calls.append(filepath)
        if len(calls) == 3:  # the initial save, epoch 1's, then epoch 2's: half a file, die
            real_save(self, filepath, weights_only)
            data = Path(filepath).read_bytes()
            Path(filepath).write_bytes(data[: len(data) // 2])
            raise OSError("killed during the save")
        return real_save(self, filepath, weights_only)

    monkeypatch.setattr(L.Trainer, "save_checkpoint", dying_save)
    with pytest.raises(OSError, match="killed"):
        trainer.fit(module, datamodule=datamodule)
    assert all(str(c).endswith(".tmp") for c in calls)  # never written in place
    checkpoint = torch.load(tmp_path / "last.ckpt", weights_only=True)
    assert checkpoint["g_step"] == 8  # the first epoch's, intact


@pytest.mark.parametrize(("override", "said"), [
    ("model.generator._target_=mylab_missing.nets.TinyG",
     "cannot be imported: No module named 'mylab_missing'; is the folder that holds it on "
     "PYTHONPATH"),
    ("model.generator._target_=gan_lightning.models.NoSuchGenerator",
     "cannot be imported: module 'gan_lightning.models' has no attribute 'NoSuchGenerator'"),
    ("+logger.extra._target_=nowhere_to_be_found.Logger", "No module named 'nowhere_to_be_found'"),
])
def test_a_target_that_does_not_import_is_named_in_one_line(override, said, tiny_data,
                                                           tmp_path):
    key = override.lstrip("+").split("=")[0]
    cfg = compose_cfg([*NO_METRICS, override], tiny_data, tmp_path)
    with pytest.raises(ConfigError) as caught:
        build(cfg)
    message = str(caught.value)
    assert message.startswith(f"{key}=") and said in message and "\n" not in message


def test_every_shipped_target_imports(tiny_data, tmp_path):
    from gan_lightning.targets import check_importable

    for experiment in sorted(p.stem for p in (REPO / "conf" / "experiment").glob("*.yaml")):
        check_importable(compose_cfg([f"experiment={experiment}"], tiny_data, tmp_path))


def test_optuna_search_minimises_fid_and_continues_its_study(tiny_data, tmp_path):
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper")
    import optuna

    args = ["hparams_search=optuna_fid", "hydra.sweeper.n_trials=3", *FAST,
            "+trainer.limit_train_batches=2"]
    run_train(args, tiny_data, tmp_path)
    storage = f"sqlite:///{tmp_path}/optuna/gan_fid.db"
    study = optuna.load_study(study_name="gan_fid", storage=storage)
    assert len(study.trials) == 3
    records = [json.loads(p.read_text()) for p in (tmp_path / "optuna" / "gan_fid").glob(
        "*/metrics.json")]
    assert sorted(t.value for t in study.trials) == sorted(r["fid"]["final"] for r in records)
    assert {"n_critic", "z_dim", "optimizer.d.lr"} <= set(study.trials[0].params)
    run_train([*args[:1], "hydra.sweeper.n_trials=1", *args[2:]], tiny_data, tmp_path)
    assert len(optuna.load_study(study_name="gan_fid", storage=storage).trials) == 4


def test_all_loggers_at_once_and_the_hparams_tab(tiny_data, tmp_path):
    pytest.importorskip("mlflow")
    pytest.importorskip("wandb")
    run_train(["logger=[tensorboard,csv,mlflow,wandb]", *FAST], tiny_data, tmp_path)
    (run_dir,) = run_dirs(tmp_path)
    record = json.loads((run_dir / "metrics.json").read_text())
    assert record["status"] == "ok"
    # TensorBoard: HParams summary with the final metrics beside the hyper-parameters
    events = read_events(run_dir)
    assert set(events.PluginTagToContent("hparams")) >= {"_hparams_/experiment",
                                                          "_hparams_/session_start_info"}
    assert events.Scalars("hparams/fid")[-1].value == pytest.approx(record["fid"]["final"])
    # CSV: the same scalars, final FID included
    rows = (run_dir / "csv" / "metrics.csv").read_text().splitlines()
    assert "train/loss_d" in rows[0] and "hparams/fid" in rows[0]
    # MLflow: a local file store under the output root, with the training scalars
    (mlflow_run,) = [p for p in (tmp_path / "mlruns").glob("*/*") if (p / "metrics").is_dir()]
    assert (mlflow_run / "metrics" / "train" / "loss_d").is_file()
    assert (mlflow_run / "metrics" / "hparams" / "fid").is_file()
    # Weights & Biases: offline, inside the run folder
    assert list((run_dir / "wandb").glob("offline-run-*"))


@pytest.mark.parametrize("sig", ["SIGINT"])  # SIGTERM: the KillAt tests below
def test_a_signal_checkpoints_flushes_and_resumes(sig, tiny_data, tmp_path):
    import os
    import signal
    import subprocess
    import sys

    from conftest import REPO

    args = [sys.executable, str(REPO / "train.py"), *NO_METRICS, "trainer.max_epochs=60",
            f"paths.output_root={tmp_path}"]
    env = {**os.environ, "GAN_DATA_DIR": str(tiny_data), "PYTHONWARNINGS": "ignore"}
    proc = subprocess.Popen(args, cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 120
    while not list(tmp_path.glob("runs/*/*/last.ckpt")) and time.time() < deadline:
        time.sleep(0.2)
    time.sleep(0.5)  # mid-training, a few epochs in
    proc.send_signal(getattr(signal, sig))
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 128 + getattr(signal, sig), out[-2000:]
    (run_dir,) = run_dirs(tmp_path)
    record = json.loads((run_dir / "metrics.json").read_text())
    assert record["status"] == "interrupted" and sig in record["message"]
    checkpoint = torch.load(run_dir / "last.ckpt", weights_only=True)
    assert 0 < checkpoint["g_step"] == record["g_steps"] < 60 * 8
    # TensorBoard was flushed: the scalars up to the interruption are on disk
    assert read_events(run_dir).Scalars("train/loss_d")[-1].step == record["g_steps"]
    # the same command with ckpt_path picks the run up and finishes it
    resumed = run_train([*NO_METRICS, "trainer.max_epochs=60",
                         f"ckpt_path={run_dir / 'last.ckpt'}"], tiny_data, tmp_path / "again")
    assert resumed.returncode == 0
    (again,) = run_dirs(tmp_path / "again")
    final = json.loads((again / "metrics.json").read_text())
    assert final["status"] == "ok" and final["g_steps"] == 60 * 8


def test_nan_before_the_first_log_point_ends_the_run_diverged(tiny_data, tmp_path):
    """A learning rate that blows the critic up within a few steps, in a run shorter than one
    log interval: the health monitor never sees a log point, yet the epoch's end must not hand
    NaN to the metrics (a NaN covariance crashes LAPACK), the sample grid or last.ckpt."""
    proc = run_train([*FAST, "trainer.log_every_n_steps=50", "loss=lsgan", "optimizer.lr=1000",
                      "trainer.max_steps=20"], tiny_data, tmp_path, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run_dir,) = run_dirs(tmp_path)
    record = json.loads((run_dir / "metrics.json").read_text())
    assert record["status"] == "diverged" and "non-finite" in record["message"]
    assert record["metrics_history"] == [] and not (run_dir / "samples.png").exists()
    ckpt = torch.load(run_dir / "last.ckpt", weights_only=True)
    assert ckpt["g_step"] == 0  # the initial weights: no epoch ended finite
    assert all(torch.isfinite(v).all() for v in ckpt["state_dict"].values())
    assert not read_events(run_dir).Tags()["images"]


def test_a_run_that_fails_mid_training_still_records_why(tiny_data, tmp_path, monkeypatch):
    from gan_lightning.callbacks import SampleGrid

    def broken(*args):
        raise RuntimeError("disk full")

    monkeypatch.setattr(SampleGrid, "on_train_epoch_end", broken)
    cfg = compose_cfg(NO_METRICS, tiny_data, tmp_path)
    with pytest.raises(RuntimeError, match="disk full"):
        run(cfg)
    record = json.loads((tmp_path / "metrics.json").read_text())
    assert record["status"] == "failed" and record["error"] == "RuntimeError: disk full"
    assert record["g_steps"] == 8  # what the run got through is recorded too


def test_a_resume_from_a_checkpoint_carrying_code_is_refused_without_running_it(tiny_data,
                                                                                tmp_path):
    """A resume rebuilds the networks from the composed config, never from the file, and the
    file is read weights-only first (Lightning 2.5 would unpickle it in full): pickled code in
    it is refused, in one line, not run."""
    from test_sample import Sentinel

    sentinel, bad = tmp_path / "sentinel", tmp_path / "bad.ckpt"
    torch.save({"state_dict": {}, "payload": Sentinel(str(sentinel))}, bad)
    cfg = compose_cfg([*NO_METRICS, f"ckpt_path={bad}"], tiny_data, tmp_path / "run")
    with pytest.raises(SetupError, match="is not a plain checkpoint .refused: it would need to "
                                         "run code to load"):
        run(cfg)
    assert not sentinel.exists()


class KillAt:
    """A callback (its source, for a subprocess's PYTHONPATH) that sends this process SIGTERM
    when a given batch of a given epoch starts: an interruption at a known place."""

    SOURCE = '''
import os, signal
import lightning as L

class KillAt(L.Callback):
    def __init__(self, epoch, batch):
        self.at = (epoch, batch)
    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if (trainer.current_epoch, batch_idx) == self.at and trainer.global_rank == 0:
            os.kill(os.getpid(), signal.SIGTERM)
'''


def interrupted_then_resumed(common, tiny_data, tmp_path, epoch=None, batch=None, cuts=(),
                             whole=None):
    """``common`` run straight (into ``whole``, unless a run is there already), and cut by
    SIGTERM at (epoch, batch) (or at each of ``cuts`` in turn, resumed after each) then
    resumed to its end: the two final checkpoints and the first cut's record."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "killer.py").write_text(KillAt.SOURCE)
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    whole = whole or tmp_path / "whole"
    if not (whole / "last.ckpt").is_file():
        run_train([*common, "hydra.run.dir=" + str(whole)], tiny_data, tmp_path)
    record = None
    for i, (at_epoch, at_batch) in enumerate(cuts or [(epoch, batch)]):
        cut = run_train([*common, "+callbacks.kill._target_=killer.KillAt",
                         f"+callbacks.kill.epoch={at_epoch}", f"+callbacks.kill.batch={at_batch}",
                         "hydra.run.dir=" + str(tmp_path / "cut"), f"resume={i > 0}"],
                        tiny_data, tmp_path, check=False, env=env)
        assert cut.returncode == 143, cut.stderr[-3000:]
        record = record or json.loads((tmp_path / "cut" / "metrics.json").read_text())
    run_train([*common, f"ckpt_path={tmp_path / 'cut' / 'last.ckpt'}",
               "hydra.run.dir=" + str(tmp_path / "resumed")], tiny_data, tmp_path)
    return (torch.load(whole / "last.ckpt", weights_only=True),
            torch.load(tmp_path / "resumed" / "last.ckpt", weights_only=True), record)


def assert_same_run(whole, resumed):
    assert whole["g_step"] == resumed["g_step"] and whole["global_step"] == resumed["global_step"]
    assert whole["state_dict"].keys() == resumed["state_dict"].keys()
    for key, value in whole["state_dict"].items():
        assert torch.equal(resumed["state_dict"][key], value), key  # bit-identical on a CPU


def test_a_run_interrupted_mid_epoch_resumes_at_the_next_batch_exactly(tiny_data, tmp_path):
    """Cut inside an epoch (a D-only batch of n_critic 2, with every stabilizer drawing from
    the random state), resumed from last.ckpt: the same g_steps and bit-identical weights as
    a run never cut. The loader starts the interrupted epoch at its next batch."""
    common = [*NO_METRICS, "trainer.max_epochs=2", "dataset.batch_size=64", "n_critic=2",
              "model=dcgan", "model.generator.ngf=8", "model.discriminator.ndf=8",
              "optimizer=adam", "augment.policy=[color,translation,cutout]", "ema.decay=0.9",
              "r1.gamma=1", "r1.every=3", "seed=3"]
    whole, resumed, cut = interrupted_then_resumed(common, tiny_data, tmp_path, epoch=1, batch=1)
    # 4 batches an epoch; cut after batch 1 of epoch 1 (the SIGTERM's batch is finished)
    assert cut["status"] == "interrupted" and cut["epochs"] == 1.5 and cut["g_steps"] == 3
    assert "resumes at the next batch" in cut["message"]
    assert read_events(tmp_path / "cut").Scalars("train/loss_d")[-1].step == 3  # flushed
    assert whole["g_step"] == 4
    assert_same_run(whole, resumed)

    # Cut on the last batch of epoch 0, resumed, cut again at the first batch of epoch 1,
    # resumed. (A checkpoint written at the last batch's end, not the epoch's, resumed into
    # an epoch 1 that Lightning never counted as started; the next resume then trained epoch
    # 1 again from its first batch.)
    whole, resumed, cut = interrupted_then_resumed(common, tiny_data, tmp_path / "twice",
                                                   cuts=[(0, 3), (1, 0)],
                                                   whole=tmp_path / "whole")
    assert cut["status"] == "interrupted" and cut["epochs"] == 1.0
    assert_same_run(whole, resumed)


def test_a_run_cut_short_by_a_time_budget_is_stopped_not_ok(tiny_data, tmp_path):
    """trainer.max_time ends a run before its schedule: its record says so, and how far."""
    cfg = compose_cfg([*NO_METRICS, "trainer.max_epochs=100000", "+trainer.max_time=00:00:00:03"],
                      tiny_data, tmp_path)
    record = run(cfg)
    assert record["status"] == "stopped" and 0 < record["g_steps"] < 100000 * 8
    assert record["message"].startswith("stopped before its schedule ended")
    finished = run(compose_cfg([*NO_METRICS, "trainer.max_epochs=1"], tiny_data,
                               tmp_path / "whole"))
    assert finished["status"] == "ok"
