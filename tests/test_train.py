"""End to end through the real ``train.py``, on a tiny MNIST the tests write themselves."""

import json
import time

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from conftest import FAST, NO_METRICS, run_train

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
    _, _, run_dir = single_run
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["status"] == "ok" and metrics["data_source"] == "full"
    assert metrics["g_steps"] == 256 // 32 and metrics["optimizer_steps"] == 2 * 8
    assert set(metrics["final"]) == {"loss_d", "loss_g", "d_real", "d_fake"}
    assert metrics["warnings"] == []
    assert metrics["fid"]["final"] > 0 and metrics["fid"]["best_epoch"] == 1
    assert "trainer.max_epochs=1" in metrics["overrides"]
    assert metrics["g_steps_per_s"] > 0 and metrics["wall_time_s"] > 0

    grid = (run_dir / "samples.png").read_bytes()
    assert grid[:8] == b"\x89PNG\r\n\x1a\n"
    ckpt = torch.load(run_dir / "last.ckpt", weights_only=False)
    assert ckpt["g_step"] == 8 and "fixed_z" in ckpt["state_dict"]
    assert (run_dir / "best.ckpt").is_file() and (run_dir / "config.yaml").is_file()

    events = read_events(run_dir)
    assert set(events.Tags()["scalars"]) >= SCALARS
    assert events.Tags()["images"] == ["samples/fixed_noise"]
    steps = [e.step for e in events.Scalars("train/loss_d")]
    assert steps == list(range(1, 9))  # one point per generator step (log_every_n_steps=1)
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
    run_train(["-m", "z_dim=20,0", *NO_METRICS], tiny_data, tmp_path)
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
    assert time.perf_counter() - start < 90
    assert proc.returncode != 0
    text = proc.stdout + proc.stderr
    assert "mnist" in text and str(empty) in text
    assert not list((tmp_path / "out").glob("**/last.ckpt"))
    assert list(empty.iterdir()) == []  # no partial download left behind
