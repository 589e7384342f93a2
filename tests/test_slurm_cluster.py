"""The cluster path on a real SLURM queue (``scripts/slurm_cluster.sh start``): sweeps, jobs
preempted mid-epoch and requeued, DDP jobs. Marked ``slurm``; skipped where no cluster
answers (``pytest -m slurm`` runs them; ``.ci/run`` starts the cluster first)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from conftest import NO_METRICS, REPO, run_train

pytestmark = pytest.mark.slurm


def sinfo() -> str | None:
    try:
        out = subprocess.run(["sinfo", "-h", "-o", "%P %c %m %T"], capture_output=True,
                             text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 and out.stdout.strip() else None


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    partition = sinfo()
    if partition is None:
        pytest.skip("no SLURM cluster answers (scripts/slurm_cluster.sh start)")
    done = threading.Event()
    waker = threading.Thread(target=start_requeued_jobs_now, args=(done,), daemon=True)
    waker.start()
    yield partition.split()[0].rstrip("*")
    done.set()
    waker.join()


def start_requeued_jobs_now(done: threading.Event) -> None:
    """SLURM holds a requeued job for two minutes (its begin time) before it may run again;
    these tests requeue jobs several times, so a requeued job is made eligible sooner
    (``scontrol update StartTime=now``: its begin time). Not at once: slurmd refuses a job
    started within the second its previous attempt's credential was revoked ("Job credential
    revoked"), so a job is released once it has waited ``settle`` seconds. What the job does
    when it runs again is unchanged."""
    settle, waiting = 3.0, {}
    while not done.wait(0.5):
        pending = subprocess.run(["squeue", "-h", "-t", "PD", "-o", "%i %r"],
                                 capture_output=True, text=True).stdout.split("\n")
        held = {job for job, _, reason in (line.partition(" ") for line in pending)
                if reason == "BeginTime"}
        waiting = {job: waiting.get(job, time.time()) for job in held}
        for job, since in waiting.items():
            if time.time() - since >= settle:
                subprocess.run(["scontrol", "update", f"JobId={job}", "StartTime=now"],
                               capture_output=True)


#: a callback that sleeps after each batch (not a computation: the weights are the same), so
#: that a job trains long enough to be interrupted however fast the machine is
THROTTLE = """
import time
import lightning as L

class Throttle(L.Callback):
    def __init__(self, seconds):
        self.seconds = seconds
    def on_train_batch_end(self, *args):
        time.sleep(self.seconds)
"""


def throttled(tmp_path: Path, seconds: float) -> tuple[list[str], dict[str, str]]:
    """Overrides and environment that slow each batch of a job by ``seconds``."""
    (tmp_path / "throttle.py").write_text(THROTTLE)
    return (["+callbacks.throttle._target_=throttle.Throttle",
             f"+callbacks.throttle.seconds={seconds}"],
            {**os.environ, "PYTHONPATH": str(tmp_path)})


def sweep(args: list[str], data: Path, sweep_dir: Path, partition: str,
          env: dict[str, str] | None = None, wait: bool = True):
    """``train.py -m hydra/launcher=slurm ...`` (a Popen when not ``wait``)."""
    command = [sys.executable, str(REPO / "train.py"), "-m", "hydra/launcher=slurm",
               f"hydra.launcher.partition={partition}", "hydra.launcher.cpus_per_task=1",
               "hydra.launcher.mem_gb=2", f"hydra.sweep.dir={sweep_dir}", *args]
    env = {**(env or os.environ), "GAN_DATA_DIR": str(data), "PYTHONWARNINGS": "ignore"}
    if wait:
        return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True,
                              timeout=600)
    return subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


@contextlib.contextmanager
def sweep_in_background(args: list[str], data: Path, sweep_dir: Path, partition: str,
                        env: dict[str, str] | None = None):
    """A sweep running while the block acts on its job; then its end (exit status 0)."""
    proc = sweep(args, data, sweep_dir, partition, env=env, wait=False)
    out = ""
    try:
        yield proc
        out, _ = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:  # the block failed: leave nothing running
            proc.kill()
            subprocess.run(["scancel", "--user", "root"], check=False)
    assert proc.returncode == 0, out[-3000:]


def records(sweep_dir: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(sweep_dir.glob("*/metrics.json"))]


def test_a_two_job_sweep_on_the_queue_ends_ok_with_its_report(cluster, tiny_data, tmp_path):
    proc = sweep(["trainer.max_steps=10", "metrics=none", "seed=1,2"], tiny_data,
                 tmp_path / "sweep", cluster)
    assert proc.returncode == 0, proc.stderr[-3000:]
    done = records(tmp_path / "sweep")
    assert [r["status"] for r in done] == ["ok", "ok"]
    assert all(r.get("slurm_job_id") for r in done)  # they ran as SLURM jobs
    assert (tmp_path / "sweep" / "report.html").is_file()


def job_id(sweep_dir: Path) -> str:
    """The SLURM id of the sweep's (first) job: the folder submitit made for it. Not the
    first line of ``squeue``, which may still list the job of a test before, completing."""
    deadline = time.time() + 120
    while time.time() < deadline:
        jobs = sorted(p.name for p in (sweep_dir / ".submitit").glob("*") if p.is_dir())
        if jobs:
            return jobs[0]
        time.sleep(0.2)
    raise AssertionError(f"no job was submitted under {sweep_dir}/.submitit")


def job_state(job: str) -> dict[str, str]:
    text = subprocess.run(["scontrol", "show", "job", job], capture_output=True, text=True,
                          timeout=30).stdout
    return dict(item.split("=", 1) for item in text.split() if "=" in item)


def wait_training(sweep_dir: Path, job: str, restarts: int, seen: set[Path],
                  timeout: float = 240) -> set[Path]:
    """Until attempt ``restarts`` of ``job`` runs and trains: a new TensorBoard events file
    of its own has scalars in it. Returns every events file seen by then."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        state = job_state(job)
        if state.get("JobState") == "RUNNING" and int(state.get("Restarts", -1)) == restarts:
            events = set(sweep_dir.glob("0_*/tensorboard/events.out.tfevents.*"))
            if any(e.stat().st_size > 3000 for e in events - seen):
                return events
        time.sleep(0.3)
    raise AssertionError(f"attempt {restarts} of job {job} did not train in {timeout} s: "
                         f"{state.get('JobState')}, {state.get('Reason')}, "
                         f"Restarts={state.get('Restarts')}")


def assert_ends_as_never_stopped(record: dict, common: list[str], data: Path, tmp_path: Path,
                                 g_steps: int) -> None:
    """The sweep's job ended with the g_steps and bit-identical weights of the same run
    trained here without a stop."""
    from test_train import assert_same_run

    run_train([*common, "hydra.run.dir=" + str(tmp_path / "never_stopped")], data, tmp_path)
    whole = torch.load(tmp_path / "never_stopped" / "last.ckpt", weights_only=True)
    resumed = torch.load(next((tmp_path / "sweep").glob("0_*")) / "last.ckpt",
                         weights_only=True)
    assert record["g_steps"] == whole["g_step"] == g_steps
    assert_same_run(whole, resumed)


def test_a_job_requeued_twice_mid_epoch_ends_as_if_never_stopped(cluster, tiny_data, tmp_path):
    """``scontrol requeue`` (what a preemption does): SIGTERM, last.ckpt at the next batch
    end, the job back in the queue and run again in its own folder, resumed (resume=auto)
    at the next batch. Twice; then it ends ``ok`` with the g_steps and the weights of the
    same run never stopped (threads=1 both, so the arithmetic is the same)."""
    common = [*NO_METRICS, "dataset.batch_size=4", "trainer.max_epochs=25", "seed=7",
              "threads=1", "trainer.log_every_n_steps=1", "loss=ns",
              "callbacks.health.stop_on_collapse=false"]
    slow, env = throttled(tmp_path, 0.01)
    with sweep_in_background([*common, *slow], tiny_data, tmp_path / "sweep", cluster, env):
        job, seen = job_id(tmp_path / "sweep"), set()
        for restarts in range(2):
            seen = wait_training(tmp_path / "sweep", job, restarts, seen)
            subprocess.run(["scontrol", "requeue", job], check=True, timeout=30)
    (record,) = records(tmp_path / "sweep")
    assert record["status"] == "ok", record.get("error")
    assert record["slurm_restarts"] == 2 and record["resumed_from"].endswith("last.ckpt")
    assert_ends_as_never_stopped(record, common, tiny_data, tmp_path, 25 * 64)


def test_a_request_no_node_can_satisfy_is_refused_at_submission(cluster, tiny_data, tmp_path):
    proc = sweep(["metrics=none", "seed=1,2", "hydra.launcher.cpus_per_task=64"], tiny_data,
                 tmp_path / "sweep", cluster)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr[-2000:]
    assert lines[0].startswith("config error: hydra.launcher asks each node for 64 CPUs")
    assert not (tmp_path / "sweep" / ".submitit").exists()  # nothing was submitted


def test_a_job_past_its_time_limit_is_requeued_until_done_as_if_never_stopped(
        cluster, tiny_data, tmp_path):
    """The time limit's warning (SIGUSR2 ``signal_delay_s`` before it) each time: last.ckpt,
    submitit requeues the job, the next attempt resumes at the next batch, until it ends."""
    common = [*NO_METRICS, "dataset.batch_size=4", "trainer.max_epochs=45", "seed=8",
              "threads=1", "trainer.log_every_n_steps=50", "loss=ns",
              "callbacks.health.stop_on_collapse=false"]
    # 2,880 steps: 58 s of sleep at the least, where an attempt trains < 20 s before its
    # warning: three attempts or more
    slow, env = throttled(tmp_path, 0.02)
    proc = sweep([*common, *slow, "hydra.launcher.timeout_min=1",
                  "hydra.launcher.signal_delay_s=40", "hydra.launcher.max_num_timeout=20"],
                 tiny_data, tmp_path / "sweep", cluster, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (record,) = records(tmp_path / "sweep")
    assert record["status"] == "ok" and record["slurm_restarts"] >= 2, record
    assert_ends_as_never_stopped(record, common, tiny_data, tmp_path, 45 * 64)


def test_a_ddp_job_of_two_cpu_ranks_on_the_queue_ends_ok(cluster, tiny_data, tmp_path):
    proc = sweep(["trainer=ddp", "trainer.max_epochs=2", "metrics=none", "seed=1"], tiny_data,
                 tmp_path / "sweep", cluster)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (record,) = records(tmp_path / "sweep")
    assert record["status"] == "ok" and record["g_steps"] == 4  # 128 images a rank, batch 64
    assert record["ddp"] == {"world_size": 2, "max_param_diff_across_ranks": 0.0}


def catches_usr2(sweep_dir: Path) -> bool:
    """Whether the Python of the sweep's job runs and has a SIGUSR2 handler installed (bit 12
    of its caught-signals mask): from the first line of ``sitecustomize`` on."""
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            argv = (proc / "cmdline").read_bytes().decode().split("\0")
            command = " ".join(argv)
            # the job's Python itself, not srun (whose command line names the same)
            if (not Path(argv[0]).name.startswith("python")
                    or "submitit.core._submit" not in command or str(sweep_dir) not in command):
                continue
            caught = next(line for line in (proc / "status").read_text().splitlines()
                          if line.startswith("SigCgt:"))
        except (OSError, StopIteration):
            continue
        if int(caught.split()[1], 16) & (1 << (signal.SIGUSR2 - 1)):
            return True
    return False


def test_a_warning_signal_while_the_job_starts_requeues_it(cluster, tiny_data, tmp_path):
    """SIGUSR2 as soon as the job's Python can catch it (its start-up handler), before submitit
    or the training has one: the job is requeued (gan_lightning/slurm_startup), not lost,
    and ends ok."""
    with sweep_in_background([*NO_METRICS, "trainer.max_epochs=3", "seed=1"], tiny_data,
                             tmp_path / "sweep", cluster):
        job, deadline = job_id(tmp_path / "sweep"), time.time() + 120
        while time.time() < deadline and not catches_usr2(tmp_path / "sweep"):
            time.sleep(0.02)
        subprocess.run(["scancel", "--signal=USR2", job], check=True, timeout=30)
    (record,) = records(tmp_path / "sweep")
    assert record["status"] == "ok" and record["slurm_restarts"] >= 1, record
    assert record["g_steps"] == 3 * 8  # 256 images, batches of 32
