"""``hydra/launcher=parallel``: jobs side by side, each a process; a killed job is recorded."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import NO_METRICS, REPO


def children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def test_a_killed_job_is_recorded_and_the_sweep_goes_on(tiny_data, tmp_path):
    env = {**os.environ, "GAN_DATA_DIR": str(tiny_data), "PYTHONWARNINGS": "ignore"}
    args = [sys.executable, str(REPO / "train.py"), "-m", "hydra/launcher=parallel",
            *NO_METRICS, "trainer.max_epochs=100", "seed=1,2,3",
            f"paths.output_root={tmp_path}"]
    sweep = subprocess.Popen(args, cwd=REPO, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 120
    while (len(children(sweep.pid)) < 2 or not list(tmp_path.glob("multirun/*/*/*/last.ckpt"))
           ) and sweep.poll() is None and time.time() < deadline:
        time.sleep(0.1)
    jobs = children(sweep.pid)
    assert len(jobs) == 2, "two jobs run side by side, a process each"
    os.kill(jobs[0], signal.SIGKILL)  # as the out-of-memory killer would
    out, _ = sweep.communicate(timeout=300)
    assert sweep.returncode == 1, out[-3000:]  # the sweep goes on, then says a job died

    records = {p.parent.name[0]: json.loads(p.read_text())
               for p in tmp_path.glob("multirun/*/*/*/metrics.json")}
    statuses = sorted(r["status"] for r in records.values())
    assert statuses == ["killed", "ok", "ok"]  # the third job still ran
    (killed,) = [r for r in records.values() if r["status"] == "killed"]
    assert "SIGKILL" in killed["message"] and killed["exit_code"] == -signal.SIGKILL
    assert all(r["g_steps"] == 100 * 8 for r in records.values() if r["status"] == "ok")
    (report,) = tmp_path.glob("multirun/*/*/report.md")
    assert "3 runs (1 killed, 2 ok)" in report.read_text()
