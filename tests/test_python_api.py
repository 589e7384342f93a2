"""``examples/python_api.py``: GANModule with hand-built networks in a plain lightning.Trainer
records what ``train.py`` records."""

import json
import os
import subprocess
import sys

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from conftest import FAST, REPO, run_train


def tags(run_dir):
    (events,) = {p.parent for p in run_dir.rglob("events.out.tfevents.*")}
    accumulator = EventAccumulator(str(events))
    accumulator.Reload()
    found = accumulator.Tags()
    return set(found["scalars"]), set(found["images"])


def test_the_python_api_example_writes_what_train_py_writes(tiny_data, tmp_path):
    api_dir = tmp_path / "api"
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run(
        [sys.executable, str(REPO / "examples" / "python_api.py"), "--out", str(api_dir),
         "--data-dir", str(tiny_data), "--epochs", "2", "--fid-samples", "128",
         "--log-every", "1"],
        capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    api = json.loads((api_dir / "metrics.json").read_text())
    assert api["status"] == "ok" and api["g_steps"] == 2 * 256 // 64
    assert proc.stdout.strip().splitlines()[-1].startswith(f"ok: {api['g_steps']} generator")
    for name in ("samples.png", "last.ckpt", "best.ckpt"):
        assert (api_dir / name).is_file(), name

    run_train([*FAST, "trainer.max_epochs=2", "hydra.run.dir=" + str(tmp_path / "cli")],
              tiny_data, tmp_path)
    cli = json.loads((tmp_path / "cli" / "metrics.json").read_text())
    # the same record, less what only a composed config knows
    assert set(cli) - set(api) == {"overrides", "threads"} and set(api) <= set(cli)
    assert api["metrics_history"][-1].keys() == cli["metrics_history"][-1].keys()
    assert [h["epoch"] for h in api["metrics_history"]] == [1, 2]
    assert tags(api_dir) == tags(tmp_path / "cli")
    assert api["speedups"] == cli["speedups"]
