"""DDP: data shards, metrics synced across ranks, whole runs on 2 CPU processes (gloo)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from hydra.utils import instantiate

from conftest import FAST, NO_METRICS, REPO, compose_cfg
from gan_lightning.distributed import param_spread
from gan_lightning.loader import InMemoryLoader

#: 2 processes, a few steps, small metrics (the classifier trains for one epoch)
DDP = ["trainer=ddp", "hydra/launcher=basic", *FAST]


@pytest.mark.parametrize("shuffle", [True, False])
def test_ranks_get_disjoint_equal_shares_of_each_epoch(shuffle):
    images = torch.arange(103).float()
    shares = []
    for rank in range(3):
        loader = InMemoryLoader(images, batch_size=10, shuffle=shuffle, seed=1, rank=rank,
                                world_size=3)
        loader.sampler.set_epoch(2)
        batches = list(loader)
        assert len(batches) == len(loader) == 4  # 34 items each: the same number of batches
        shares.append(torch.cat([b for (b,) in batches]))
    every = torch.cat(shares)
    assert len(every) == 102 and len(set(every.tolist())) == 102  # disjoint, 1 item left out
    one = InMemoryLoader(images, batch_size=10, shuffle=shuffle, seed=1)
    one.sampler.set_epoch(2)
    order = torch.cat([b for (b,) in one])
    # rank r takes every 3rd item of the one-process order, starting at r
    assert torch.equal(shares[1], order[1::3][:34])


def _evaluate_on_ranks(rank: int, world: int, init: str, work: str) -> None:
    """One rank: join the group, evaluate the saved generator, save rank 0's figures."""
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=world)
    try:
        state = torch.load(Path(work) / "setup.pt", weights_only=False)
        results = {}
        for batch_size in (100, 1000):  # 3 batches for 2 ranks; 1 batch: rank 0 has none
            module, evaluator, trainer = state["make"](batch_size)
            evaluator.setup(trainer, module, "fit")
            results[batch_size] = evaluator.evaluate(module)
        torch.manual_seed(rank)
        spread_differ = param_spread(torch.nn.Linear(3, 3))
        spread_same = param_spread(module)
        if rank == 0:
            torch.save({"results": results, "differ": spread_differ, "same": spread_same},
                       Path(work) / "ranks.pt")
    finally:
        dist.destroy_process_group()


class _Maker:
    """Builds the same module (fixed weights) and a fresh evaluator in any process."""

    def __init__(self, cfg, weights):
        self.cfg, self.weights = cfg, weights

    def __call__(self, batch_size):
        from gan_lightning.train import build

        datamodule, module, _ = build(self.cfg)
        module.load_state_dict(self.weights)
        evaluator = instantiate(self.cfg.metrics, batch_size=batch_size)
        return module, evaluator, SimpleNamespace(datamodule=datamodule)


@pytest.mark.ddp
def test_metrics_on_two_ranks_equal_one_process(tiny_data, tmp_path):
    cfg = compose_cfg([*FAST, "metrics.fid.num_fake=300", "metrics.is.num_fake=300",
                       "metrics.fid.num_real=128"], tiny_data, tmp_path / "run")
    from gan_lightning.train import build

    _, module, _ = build(cfg)
    make = _Maker(cfg, module.state_dict())
    alone = {}
    for batch_size in (100, 1000):
        module, evaluator, trainer = make(batch_size)
        evaluator.setup(trainer, module, "fit")
        alone[batch_size] = evaluator.evaluate(module)
    torch.save({"make": make}, tmp_path / "setup.pt")

    mp.spawn(_evaluate_on_ranks, args=(2, f"file://{tmp_path / 'rendezvous'}", str(tmp_path)),
             nprocs=2, join=True)
    ranks = torch.load(tmp_path / "ranks.pt", weights_only=False)
    for batch_size, figures in alone.items():
        assert set(figures) == {"fid", "kid", "kid_std", "is", "precision", "recall", "class_tv",
                                "class_kl", "classes_covered", "class_confidence"}
        for key, value in figures.items():
            assert ranks["results"][batch_size][key] == pytest.approx(value, rel=1e-6), key
    assert ranks["same"] == 0.0
    assert ranks["differ"] > 0.0  # the check sees ranks whose weights differ


def read_metrics(run_dir: Path) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())


@pytest.mark.ddp
def test_ddp_sweep_trains_each_job_on_two_processes(tiny_data, tmp_path):
    from conftest import run_train

    run_train(["-m", *DDP, "trainer.max_epochs=2", "seed=1,2"], tiny_data, tmp_path)
    jobs = sorted(p for p in tmp_path.glob("multirun/*/*/*") if (p / ".hydra").is_dir())
    assert [p.name[:2] for p in jobs] == ["0_", "1_"]  # each job in its own folder
    assert not list(tmp_path.glob("runs"))  # no rank started a run folder of its own
    for job in jobs:
        record = read_metrics(job)
        assert record["status"] == "ok", record.get("error")
        # 256 images, 128 a rank, batches of 32: 4 G steps an epoch, not 8
        assert record["g_steps"] == 8 and record["epochs"] == 2.0
        assert record["ddp"] == {"world_size": 2, "max_param_diff_across_ranks": 0.0}
        assert len(record["metrics_history"]) == 2 and "fid" in record
        assert (job / "last.ckpt").is_file() and (job / "samples.png").is_file()
        assert {p.name for p in job.glob("*.log")} == {"train.log", "train_rank1.log"}
    assert json.loads((jobs[0] / "metrics.json").read_text())["seed"] == 1


@pytest.mark.ddp
def test_sigterm_to_rank_zero_stops_both_ranks_with_a_checkpoint(tiny_data, tmp_path):
    env = {**os.environ, "GAN_DATA_DIR": str(tiny_data), "PYTHONWARNINGS": "ignore"}
    args = [sys.executable, str(REPO / "train.py"), "trainer=ddp", *NO_METRICS,
            "trainer.max_epochs=10000", f"paths.output_root={tmp_path}"]
    # its own process group, so that a failure here leaves no rank training behind
    proc = subprocess.Popen(args, cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        deadline = time.time() + 300  # two DDP processes' start-up and first epoch, on 2 cores
        while (not list(tmp_path.glob("runs/*/*/last.ckpt")) and proc.poll() is None
               and time.time() < deadline):
            time.sleep(0.5)  # the first epoch ended on both ranks
        assert proc.poll() is None, proc.stdout.read()[-3000:]
        proc.send_signal(signal.SIGTERM)  # rank zero only, as SLURM or a user would
        out, _ = proc.communicate(timeout=120)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 143, out[-3000:]
    (run_dir,) = tmp_path.glob("runs/*/*")
    record = read_metrics(run_dir)
    assert record["status"] == "interrupted"
    assert record["ddp"]["max_param_diff_across_ranks"] == 0.0
    ckpt = torch.load(run_dir / "last.ckpt", weights_only=True)
    assert ckpt["g_step"] == record["g_steps"]  # saved at the stop, not at the last epoch end


def test_ranks_draw_different_latents_and_each_rank_the_same_again(tiny_data, tmp_path):
    """seed_everything seeds every rank alike; without a per-rank stream each global batch
    would hold every fake ``devices`` times."""
    from gan_lightning.train import build

    _, module, _ = build(compose_cfg(NO_METRICS, tiny_data, tmp_path))

    def draws(rank, epoch):
        module._trainer = SimpleNamespace(world_size=2, global_rank=rank, current_epoch=epoch)
        torch.manual_seed(0)  # as seed_everything leaves every rank
        module.on_train_epoch_start()
        return module.sample_z(4)

    assert not torch.equal(draws(0, 0), draws(1, 0))
    assert not torch.equal(draws(0, 0), draws(0, 1))
    assert torch.equal(draws(1, 3), draws(1, 3))


@pytest.mark.ddp
def test_ddp_runs_resumed_mid_epoch_and_at_an_epoch_boundary_end_as_never_stopped(tiny_data,
                                                                                 tmp_path):
    """Under DDP each rank draws from its own random state: a checkpoint keeps every rank's,
    and an epoch resumed mid-way goes on from them (no fresh per-epoch seeding mid-way); at
    an epoch boundary each rank draws its latents from (seed, epoch, rank). Either way the
    resumed run ends with the weights of the run never stopped (one run for both)."""
    from test_train import assert_same_run, interrupted_then_resumed

    from conftest import run_train

    common = ["trainer=ddp", *NO_METRICS, "trainer.max_epochs=2", "seed=4"]
    whole, resumed, cut = interrupted_then_resumed(common, tiny_data, tmp_path, epoch=1, batch=0)
    # 4 batches an epoch a rank; the ranks agree on the signal at batch 0 and stop after it
    assert cut["status"] == "interrupted" and cut["g_steps"] == 5 and cut["epochs"] == 1.25
    assert cut["ddp"]["max_param_diff_across_ranks"] == 0.0
    assert len(torch.load(tmp_path / "cut" / "last.ckpt", weights_only=True)["rng"][
        "torch_ranks"]) == 2
    assert_same_run(whole, resumed)

    half = [a if a != "trainer.max_epochs=2" else "trainer.max_epochs=1" for a in common]
    half.append("hydra.run.dir=" + str(tmp_path / "half"))
    run_train(half, tiny_data, tmp_path)
    run_train([*common, f"ckpt_path={tmp_path / 'half' / 'last.ckpt'}",
               "hydra.run.dir=" + str(tmp_path / "after_half")], tiny_data, tmp_path)
    after_half = torch.load(tmp_path / "after_half" / "last.ckpt", weights_only=True)
    assert whole["g_step"] == after_half["g_step"] == 8
    for key, value in whole["state_dict"].items():
        torch.testing.assert_close(after_half["state_dict"][key], value, rtol=0, atol=1e-6,
                                   msg=key)
