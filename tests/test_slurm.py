"""SLURM without a cluster: the launcher config, the resume rules, a requeued job's resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from conftest import NO_METRICS, REPO, compose_cfg, compose_hydra_cfg, run_train
from gan_lightning.callbacks import GracefulShutdown
from gan_lightning.train import resume_checkpoint, run


@pytest.mark.parametrize(("overrides", "tasks", "gpus"), [
    ([], 1, None),
    (["trainer=ddp"], 2, None),
    (["trainer=gpu", "trainer.devices=4"], 4, 4),
])
def test_slurm_launcher_asks_for_a_task_per_device(overrides, tasks, gpus):
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    launcher = compose_hydra_cfg(["hydra/launcher=slurm", *overrides]).hydra.launcher
    assert launcher._target_.endswith("slurm_launcher.CheckedSlurmLauncher")
    assert (launcher.tasks_per_node, launcher.gpus_per_node) == (tasks, gpus)
    assert (launcher.cpus_per_task, launcher.mem_gb) == (2, 4)  # fits a small node
    assert launcher.max_num_timeout > 0 and launcher.signal_delay_s > 0  # requeue on time-out


def touch(path: Path, age_s: float) -> Path:
    path.write_bytes(b"")
    stamp = time.time() - age_s
    os.utime(path, (stamp, stamp))
    return path


def test_the_newest_checkpoint_of_the_run_folder_is_resumed(tmp_path, monkeypatch):
    monkeypatch.delenv("SLURM_RESTART_COUNT", raising=False)
    assert resume_checkpoint(True, tmp_path) is None  # nothing to resume: a fresh start
    touch(tmp_path / "last.ckpt", 60)
    hpc = touch(tmp_path / "hpc_ckpt_2.ckpt", 10)  # Lightning's requeue checkpoint, newer
    assert resume_checkpoint(True, tmp_path) == hpc
    assert resume_checkpoint(False, tmp_path) is None
    assert resume_checkpoint("auto", tmp_path) is None  # not requeued
    monkeypatch.setenv("SLURM_RESTART_COUNT", "1")
    assert resume_checkpoint("auto", tmp_path) == hpc
    last = touch(tmp_path / "last.ckpt", 0)  # written after it (a later SIGUSR2)
    assert resume_checkpoint("auto", tmp_path) == last


def test_a_requeued_sweep_job_resumes_in_its_own_folder(tiny_data, tmp_path):
    """SIGUSR2 (SLURM's warning) stops the job with last.ckpt; the job run again in the same
    folder, as submitit requeues it, with SLURM_RESTART_COUNT set, resumes and finishes."""
    sweep = tmp_path / "sweep"
    args = ["-m", "hydra/launcher=basic", f"hydra.sweep.dir={sweep}", *NO_METRICS,
            "trainer.max_epochs=40", "seed=3"]
    env = {**os.environ, "GAN_DATA_DIR": str(tiny_data), "PYTHONWARNINGS": "ignore"}
    env.pop("SLURM_RESTART_COUNT", None)
    proc = subprocess.Popen([sys.executable, str(REPO / "train.py"), *args,
                             f"paths.output_root={tmp_path}"], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 120
    while (not list(sweep.glob("0_*/last.ckpt")) and proc.poll() is None
           and time.time() < deadline):
        time.sleep(0.2)
    time.sleep(0.5)
    proc.send_signal(signal.SIGUSR2)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGUSR2, out[-2000:]
    (job,) = sweep.glob("0_*")
    first = json.loads((job / "metrics.json").read_text())
    assert first["status"] == "interrupted" and "SIGUSR2" in first["message"]
    assert 0 < first["g_steps"] < 40 * 8

    env["SLURM_RESTART_COUNT"] = "1"
    run_train(args, tiny_data, tmp_path, env=env)
    assert list(sweep.glob("0_*")) == [job]  # the same folder, no new one
    final = json.loads((job / "metrics.json").read_text())
    assert final["status"] == "ok" and final["resumed_from"] == str(job / "last.ckpt")
    assert final["g_steps"] == 40 * 8  # the whole run, not 40 epochs more


def test_sigusr2_saves_then_hands_over_to_the_cluster_handler(tiny_data, tmp_path,
                                                                monkeypatch):
    """submitit's own SIGUSR2 handler (requeue, then exit) runs after last.ckpt is written."""
    calls = []

    def submitit_like(signum, frame):
        calls.append(signum)
        raise SystemExit(-1)

    def send_at_batch_4(self, trainer, pl_module, batch, batch_idx):
        if pl_module.g_step == 3:
            os.kill(os.getpid(), signal.SIGUSR2)

    monkeypatch.setattr(GracefulShutdown, "on_train_batch_start", send_at_batch_4)
    cfg = compose_cfg([*NO_METRICS, "trainer.max_epochs=5"], tiny_data, tmp_path / "run")
    previous = signal.signal(signal.SIGUSR2, submitit_like)
    try:
        with pytest.raises(SystemExit):
            run(cfg)
    finally:
        signal.signal(signal.SIGUSR2, previous)
    assert calls == [signal.SIGUSR2]  # handed over once, after training stopped
    record = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert record["status"] == "interrupted"
    ckpt = torch.load(tmp_path / "run" / "last.ckpt", weights_only=True)
    assert ckpt["g_step"] == record["g_steps"] == 4  # the batch in flight finished, then saved


def test_the_launcher_asks_for_the_runs_threads():
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    launcher = compose_hydra_cfg(["hydra/launcher=slurm", "threads=3"]).hydra.launcher
    assert launcher.cpus_per_task == 3


@pytest.mark.parametrize(("params", "refused"), [
    ({"cpus_per_task": 2, "mem_gb": 4}, None),
    ({"cpus_per_task": 4, "mem_gb": 4}, "4 CPUs"),
    ({"cpus_per_task": 1, "mem_gb": 32}, "32768 MB"),
    ({"cpus_per_task": 1, "tasks_per_node": 2, "mem_gb": 4}, None),
    ({"cpus_per_task": 2, "tasks_per_node": 2, "mem_gb": 4}, "4 CPUs"),
    ({"cpus_per_task": 1, "mem_gb": 4, "gpus_per_node": 1}, "1 GPUs"),
])
def test_a_request_no_node_can_satisfy_is_named(params, refused):
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    from gan_lightning.slurm import unsatisfiable

    nodes = [(2, 23081, 0), (1, 8000, 0)]
    problem = unsatisfiable({"partition": "debug", **params}, nodes)
    if refused is None:
        assert problem is None
    else:
        assert refused in problem and "largest node of debug has 2 CPUs, 23081 MB and 0 GPUs" \
            in problem
    assert unsatisfiable(params, None) is None  # no cluster to ask: not checked
