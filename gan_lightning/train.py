"""compose -> instantiate -> fit -> ``metrics.json``; the top-level ``train.py`` calls ``run``."""

from __future__ import annotations

import logging
import math
import os
import resource
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning as L
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from hydra.utils import instantiate
from lightning.fabric.utilities.rank_zero import _get_rank
from lightning.pytorch.loggers import TensorBoardLogger
from omegaconf import DictConfig, OmegaConf

from gan_lightning.errors import ConfigError, SetupError
from gan_lightning.module import GANModule
from gan_lightning.networks import build_networks
from gan_lightning.record import QUALITY_METRICS, RECORD_FILE, Status, Tag, write_record
from gan_lightning.run_state import RunState
from gan_lightning.targets import load_plain_checkpoint
from gan_lightning.utils import print_config
from gan_lightning.validate import validate

log = logging.getLogger(__name__)


def main_task(cfg: DictConfig) -> float | None:
    """What ``python train.py`` and ``gan-train`` do with the config Hydra composed: train
    (``run``), and return the figure a hyper-parameter sweeper minimises (None without one)."""
    try:
        record = run(cfg)
    except SetupError as error:  # how the run was set up, not a bug: one line, no traceback
        kind = "config error" if isinstance(error, ConfigError) else "error"
        print(f"{kind}: {error}", file=sys.stderr)
        sys.exit(2)
    return objective(cfg, record)


def build(cfg: DictConfig) -> tuple[L.LightningDataModule, GANModule, L.Trainer]:
    """Instantiate data, module and trainer from a composed config. Reads the data (fails fast)."""
    validate(cfg, networks=False, files=True)
    generator, discriminator = build_networks(cfg)
    datamodule = instantiate(cfg.dataset)
    datamodule.setup("fit")  # missing or unreachable data fails here, in seconds
    module = GANModule(
        generator=generator,
        discriminator=discriminator,
        loss=instantiate(cfg.loss),
        optimizer_g=instantiate(cfg.optimizer.g),
        optimizer_d=instantiate(cfg.optimizer.d),
        z_dim=cfg.z_dim,
        n_critic=cfg.n_critic,
        seed=cfg.seed,
        max_g_steps=cfg.get("max_g_steps"),
        fast=cfg.get("fast", True),
        run=RunState(),
        checkpoint_config=checkpoint_config(cfg),
        augment=instantiate(cfg.augment) if cfg.get("augment") else None,
        ema_decay=OmegaConf.select(cfg, "ema.decay", default=None),
        ema_start=OmegaConf.select(cfg, "ema.start", default=0),
        standing_batches=OmegaConf.select(cfg, "standing_stats.batches", default=0),
        standing_batch_size=OmegaConf.select(cfg, "standing_stats.batch_size", default=64),
        lr_schedule_d=schedule(cfg, "d"),
        lr_schedule_g=schedule(cfg, "g"),
        # build_networks has normalised D already, at the random state a constructor would
        spectral_norm=cfg.get("spectral_norm", False),
        r1_gamma=OmegaConf.select(cfg, "r1.gamma", default=0.0),
        r1_every=OmegaConf.select(cfg, "r1.every", default=1),
    )
    # an entry set to null (callbacks.samples=null) is switched off
    callbacks = [instantiate(c) for c in (cfg.get("callbacks") or {}).values() if c]
    # metrics=none leaves no _target_ (an experiment may still have set some of its keys)
    if cfg.get("metrics") and cfg.metrics.get("_target_"):
        callbacks.append(instantiate(cfg.metrics))
    loggers = [instantiate(c) for c in (cfg.get("logger") or {}).values() if c]
    trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)
    return datamodule, module, trainer


def schedule(cfg: DictConfig, net: str) -> Any:
    """The learning-rate schedule factory of network ``net`` (``lr_schedule.d`` / ``.g``)."""
    node = OmegaConf.select(cfg, f"lr_schedule.{net}", default=None)
    return instantiate(node) if node else None


def checkpoint_config(cfg: DictConfig) -> dict[str, Any]:
    """What a checkpoint needs to rebuild its networks: model, dataset shape, z_dim, seed."""
    plain = OmegaConf.to_container(cfg, resolve=True)
    keep = ("model", "z_dim", "seed", "n_critic", "loss", "ema", "standing_stats",
            "spectral_norm", "r1")
    out = {k: plain[k] for k in keep if k in plain}
    out["dataset"] = {k: plain["dataset"].get(k) for k in ("name", "img_shape", "num_classes")}
    return out


def hparams(cfg: DictConfig, data_source: str | None) -> dict[str, Any]:
    """The run's settings as flat ``a/b: value`` pairs, for the loggers' hyper-parameter tabs."""
    flat: dict[str, Any] = {"data_source": data_source}

    def walk(node: Any, prefix: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key not in ("_target_", "_partial_"):
                    walk(value, f"{prefix}{key}/" if prefix or key else "")
        else:
            plain = isinstance(node, int | float | str | bool)
            flat[prefix.rstrip("/")] = node if plain else str(node)

    walk({k: v for k, v in OmegaConf.to_container(cfg, resolve=True).items()
          if k not in ("paths", "callbacks", "logger", "hydra")}, "")
    return flat


def run(cfg: DictConfig) -> dict[str, Any] | None:
    """Train one run from a composed config; write ``metrics.json``; return its record.

    In a multirun, an exception is recorded (status ``failed``) and the sweep goes on. Under
    DDP every rank runs this; only rank 0 writes ``config.yaml`` and ``metrics.json``.
    """
    rank_zero = not _get_rank()  # the rank Lightning's launcher gave this process, if any
    run_dir = Path(cfg.paths.output_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    multirun = HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN
    overrides = list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []
    record: dict[str, Any] = {"status": Status.FAILED, "overrides": overrides, "seed": cfg.seed}
    if os.environ.get("SLURM_JOB_ID"):  # which job, and how often SLURM requeued it
        record["slurm_job_id"] = os.environ["SLURM_JOB_ID"]
        record["slurm_restarts"] = int(os.environ.get("SLURM_RESTART_COUNT") or 0)

    def prepare() -> Prepared:
        if rank_zero:
            print_config(cfg, run_dir / "config.yaml")
        # else the CPUs SLURM gave the task, torch's default, or the parallel launcher's share
        threads = cfg.get("threads") or int(os.environ.get("SLURM_CPUS_PER_TASK") or 0)
        if threads:
            torch.set_num_threads(threads)
        record["threads"] = torch.get_num_threads()
        L.seed_everything(cfg.seed, workers=True)
        datamodule, module, trainer = build(cfg)
        params = hparams(cfg, datamodule.source_used)
        ckpt_path = cfg.get("ckpt_path") or resume_checkpoint(cfg.get("resume", False), run_dir)
        if ckpt_path:
            # refused here if it carries code: Lightning before 2.6 unpickles it in full
            load_plain_checkpoint(ckpt_path)
        return datamodule, module, trainer, params, ckpt_path

    return record_run(run_dir, prepare, record, multirun, rank_zero)


#: what a run trains with: datamodule, module, trainer, hyper-parameters, checkpoint to resume
Prepared = tuple[L.LightningDataModule, GANModule, L.Trainer, dict[str, Any], Any]


def fit(module: GANModule, datamodule: L.LightningDataModule, trainer: L.Trainer,
        run_dir: str | Path, ckpt_path: str | Path | None = None,
        params: dict[str, Any] | None = None) -> dict[str, Any]:
    """``trainer.fit`` for objects built in Python, recorded as ``python train.py`` records a
    run: ``<run_dir>/metrics.json`` (status, steps, throughput, final losses, metrics) and the
    final figures beside ``params`` (the hyper-parameters to log; default: z_dim, n_critic and
    seed) in every logger. A failure is recorded (status ``failed``) and raised.
    ``examples/python_api.py`` shows it in use."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    params = params or {"z_dim": module.z_dim, "n_critic": module.n_critic, "seed": module.seed,
                        "data_source": getattr(datamodule, "source_used", None)}
    return record_run(run_dir, lambda: (datamodule, module, trainer, params, ckpt_path),
                      {"status": Status.FAILED, "seed": module.seed}, multirun=False,
                      rank_zero=trainer.is_global_zero)


def record_run(run_dir: Path, prepare: Callable[[], Prepared], record: dict[str, Any],
               multirun: bool, rank_zero: bool) -> dict[str, Any]:
    """Prepare a run, train it and write its record (``metrics.json``), whatever happens.
    ``record``: what is known beforehand (status ``failed`` until training ends); ``prepare``
    may add to it."""
    start = time.perf_counter()
    module = trainer = params = summary_error = None
    try:
        datamodule, module, trainer, params, ckpt_path = prepare()
        record["data_source"] = getattr(datamodule, "source_used", None)
        for logger in trainer.loggers:
            logger.log_hyperparams(params)
        fit_start = time.perf_counter()
        if ckpt_path:
            record["resumed_from"] = str(ckpt_path)
            log.info("resuming from %s", ckpt_path)
        trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path)
        record["train_time_s"] = time.perf_counter() - fit_start
        record["g_steps_per_s"] = module.g_step / record["train_time_s"]
        record["status"] = module.run.status or (
            Status.INTERRUPTED if trainer.interrupted else
            Status.OK if schedule_done(module, trainer) else Status.STOPPED)
        if record["status"] == Status.STOPPED:
            module.run.message = (
                f"stopped before its schedule ended (trainer.max_time or another budget): "
                f"{module.g_step} generator steps, epoch {trainer.current_epoch} of "
                f"{trainer.max_epochs}; ckpt_path=<run folder>/last.ckpt goes on")
    except Exception as error:
        record["error"] = f"{type(error).__name__}: {error}"
        record["traceback"] = traceback.format_exc()
        if not multirun:
            raise
        if isinstance(error, SetupError):  # the message says it all
            log.error("run failed; the sweep goes on: %s", error)
        else:
            log.exception("run failed; the sweep goes on")
    finally:
        record["wall_time_s"] = time.perf_counter() - start
        # this process's peak resident memory (Linux reports kilobytes): what to ask a
        # scheduler for (hydra.launcher.mem_gb)
        record["peak_rss_gb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 3)
        if module is not None and module.run.status == Status.INTERRUPTED:
            # also when the cluster's handler ended training with SystemExit (a requeue)
            record["status"] = Status.INTERRUPTED
        try:
            if module is not None:  # prepare() made module and trainer together
                record.update(summarize(module, trainer))
                if params is not None and record["status"] != Status.FAILED:
                    log_final_metrics(trainer, params, record)
        except Exception as error:  # the record is still written, with what went wrong
            record["status"] = Status.FAILED
            record.setdefault("error", f"{type(error).__name__}: {error}")
            record.setdefault("traceback", traceback.format_exc())
            summary_error = error
        if rank_zero and (trainer is None or trainer.is_global_zero):
            write_record(run_dir / RECORD_FILE, record)
    if summary_error is not None:
        if not multirun:
            raise summary_error
        log.error("summarising the run failed; the sweep goes on: %s", record["error"])
    if record["status"] != Status.OK:
        log.warning("run ended with status %s: %s", record["status"], record.get("message", ""))
    signum = next((c.signum for c in (trainer.callbacks if trainer else [])
                   if getattr(c, "signum", None)), None)
    if record["status"] == Status.INTERRUPTED and signum:
        raise SystemExit(128 + signum)  # the shell's convention: 143 SIGTERM, 130 SIGINT
    return record


def schedule_done(module: GANModule, trainer: L.Trainer) -> bool:
    """Whether training reached the end it was given (``max_g_steps``, ``trainer.max_steps``
    or ``trainer.max_epochs``), rather than being cut short by a time budget."""
    if module.max_g_steps and module.g_step >= module.max_g_steps:
        return True
    if trainer.max_steps not in (None, -1) and trainer.global_step >= trainer.max_steps:
        return True
    return trainer.max_epochs not in (None, -1) and trainer.current_epoch >= trainer.max_epochs


def resume_checkpoint(resume: bool | str, run_dir: Path) -> Path | None:
    """The checkpoint a run resumes from when no ``ckpt_path`` is given, or None.

    ``resume=true``: the newest checkpoint in the run's folder (``last.ckpt``, written each
    epoch and on SIGTERM; Lightning's ``hpc_ckpt_N.ckpt``, written on SLURM's requeue signal).
    ``resume=auto``: the same, only in a job SLURM has requeued (``SLURM_RESTART_COUNT`` > 0),
    which the submitit launcher runs again in the job's own folder. ``false``: never.
    """
    if resume == "auto":
        resume = int(os.environ.get("SLURM_RESTART_COUNT") or 0) > 0
    if resume is not True:
        return None
    found = [*run_dir.glob("hpc_ckpt_*.ckpt"), run_dir / "last.ckpt"]
    found = [p for p in found if p.is_file()]
    return max(found, key=lambda p: p.stat().st_mtime_ns) if found else None


def objective(cfg: DictConfig, record: dict[str, Any] | None) -> float | None:
    """``optimized_metric`` of a finished run (e.g. ``fid``: its final FID) for Optuna.

    A run without that figure (failed, collapsed before any evaluation) scores +inf, the
    worst value for a minimised metric, so the search moves away from it.
    """
    name = cfg.get("optimized_metric")
    if not name:
        return None
    value = ((record or {}).get(name) or {}).get("final")
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else math.inf


def log_final_metrics(trainer: L.Trainer, params: dict[str, Any],
                      record: dict[str, Any]) -> None:
    """Final FID / IS / precision / recall to every logger, and beside the hyper-parameters in
    TensorBoard's HParams tab, so the runs of a sweep can be compared there."""
    final = {Tag.hparams(k): record[k]["final"] for k in QUALITY_METRICS
             if isinstance(record.get(k), dict) and "final" in record[k]}
    if not final:
        return
    for logger in trainer.loggers:
        if isinstance(logger, TensorBoardLogger):
            logger.log_hyperparams(params, final)  # writes the HParams summary and the values
        else:
            logger.log_metrics(final, step=record.get("g_steps", 0))
        logger.save()


def summarize(module: GANModule, trainer: L.Trainer | None) -> dict[str, Any]:
    """Steps, throughput, final scalars and health of a run that got as far as training."""
    out: dict[str, Any] = {"g_steps": module.g_step}
    if trainer is not None:
        # batches trained over batches per epoch: 1.5 means stopped half-way through epoch 2
        batches = trainer.fit_loop.total_batch_idx + 1 if module.g_step else 0
        per_epoch = trainer.num_training_batches
        if per_epoch and per_epoch != float("inf"):
            out["epochs"] = round(batches / per_epoch, 3)
        out["optimizer_steps"] = trainer.global_step
    if module.run.message:
        out["message"] = module.run.message
    out["final"] = {Tag.short(k): v for k, v in module.run.latest.items()}
    out["speedups"] = module.speedups
    for part in [*trainer.callbacks, trainer.strategy] if trainer else []:
        if hasattr(part, "run_summary"):
            out.update(part.run_summary())
    return out

