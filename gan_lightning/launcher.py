"""``hydra/launcher=parallel``: a sweep's jobs side by side, each in a process of its own.

Why not Hydra's joblib launcher, which this replaces: its jobs share a pool of loky workers,
and when one worker dies (SIGKILL, the out-of-memory killer, a segfault) joblib raises
``TerminatedWorkerError``, stops the jobs running beside it and never starts the rest; the
sweep ends without a report. Here every job is a forked process, watched by the sweep: a job
whose process dies is recorded as ``killed`` in its folder's ``metrics.json`` and the sweep
goes on. A job that fails in Python is recorded by ``train.run`` as before.
"""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.core.singleton import Singleton
from hydra.core.utils import (
    JobReturn,
    JobStatus,
    configure_log,
    filter_overrides,
    run_job,
    setup_globals,
)
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, open_dict

log = logging.getLogger(__name__)


class ProcessLauncher(Launcher):
    """Runs ``n_jobs`` jobs at a time (``-1``: one per core), one process each."""

    def __init__(self, n_jobs: int = 2) -> None:
        self.n_jobs = n_jobs
        self.config: DictConfig | None = None
        self.hydra_context: HydraContext | None = None
        self.task_function: TaskFunction | None = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction,
              config: DictConfig) -> None:
        self.config, self.hydra_context, self.task_function = config, hydra_context, task_function

    def launch(self, job_overrides: Sequence[Sequence[str]],
               initial_job_idx: int) -> Sequence[JobReturn]:
        setup_globals()
        assert self.config is not None
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        cores = os.cpu_count() or 1
        slots = self.n_jobs if self.n_jobs > 0 else cores
        # Jobs side by side share the cores: two jobs with two threads each on two cores
        # oversubscribe them and finish later than one job after the other. Only the jobs that
        # actually run at once share; a sweep of one job gets every core.
        threads = max(1, cores // min(slots, len(job_overrides) or 1))
        log.info("Launching %d jobs, %d at a time (%d torch threads each), sweep output dir: %s",
                 len(job_overrides), slots, threads, sweep_dir)
        for idx, overrides in enumerate(job_overrides):
            log.info("\t#%d : %s", initial_job_idx + idx, " ".join(filter_overrides(overrides)))

        # fork: the job inherits the task function and config without pickling them (the
        # sweep's process has imported torch but not started its thread pools)
        context = multiprocessing.get_context("fork")
        state = Singleton.get_state()
        queue = list(enumerate(job_overrides))
        running: dict[int, Job] = {}
        results: list[JobReturn | None] = [None] * len(job_overrides)
        try:
            while queue or running:
                while queue and len(running) < slots:
                    i, overrides = queue.pop(0)
                    running[i] = Job(context, initial_job_idx + i, list(overrides), self, state,
                                     threads)
                multiprocessing.connection.wait([job.process.sentinel
                                                 for job in running.values()])
                for i, job in list(running.items()):
                    if not job.process.is_alive():
                        results[i] = job.result(self.config)
                        del running[i]
        except KeyboardInterrupt:
            # Ctrl+C reached the jobs too: let them write their checkpoints, then stop
            for job in running.values():
                job.process.join(timeout=120)
            raise
        return [r for r in results if r is not None]


class Job:
    """One job's process, and what it reported through its pipe."""

    def __init__(self, context: Any, idx: int, overrides: list[str],
                 launcher: ProcessLauncher, state: dict, threads: int) -> None:
        self.idx, self.overrides = idx, overrides
        self.output_dir: str | None = None
        self._reply, child_end = context.Pipe(duplex=False)
        self.process = context.Process(
            target=_job_main, name=f"job-{idx}",
            args=(child_end, idx, overrides, launcher.hydra_context, launcher.config,
                  launcher.task_function, state, threads))
        self.process.start()
        child_end.close()

    def result(self, config: DictConfig) -> JobReturn:
        self.process.join()
        returned = None
        while self._reply.poll():
            try:
                kind, value = self._reply.recv()
            except EOFError:
                break
            if kind == "dir":
                self.output_dir = value
            elif kind == "return":
                returned = value
        if returned is None:
            return self._ended_without_result(config)
        ret = JobReturn(overrides=self.overrides, working_dir=returned["working_dir"],
                        task_name=returned["task_name"])
        ret.status, ret.return_value = returned["status"], returned["return_value"]
        return ret

    def _ended_without_result(self, config: DictConfig) -> JobReturn:
        """The process died (or exited) before ``run_job`` returned: say so in its folder."""
        from gan_lightning.record import RECORD_FILE, Status, write_record
        from gan_lightning.train import objective

        code = self.process.exitcode
        killed = code is not None and code < 0
        how = f"killed by {signal.Signals(-code).name}" if killed else f"exited with status {code}"
        message = (f"the job's process was {how} before the job could finish; nothing was "
                   f"recorded after its last checkpoint (out of memory? killed by hand?)")
        log.error("job #%d (%s): %s", self.idx, " ".join(self.overrides), message)
        if self.output_dir is not None:
            path = Path(self.output_dir) / RECORD_FILE
            if not path.is_file():  # an interrupted run wrote its own (status interrupted)
                write_record(path, {"status": Status.KILLED if killed else Status.FAILED,
                                    "message": message, "overrides": self.overrides,
                                    "exit_code": code})
        ret = JobReturn(overrides=self.overrides, working_dir=self.output_dir or "")
        # completed, for Hydra: a failed job would end the sweep; its folder says killed
        ret.status = JobStatus.COMPLETED
        ret.return_value = objective(config, None)  # a search scores it as a failed run
        return ret


def _job_main(reply: Any, idx: int, overrides: list[str], hydra_context: HydraContext,
              config: DictConfig, task_function: TaskFunction, state: dict,
              threads: int) -> None:
    """A job's process: Hydra's ``run_job`` for one set of overrides, the result piped back.

    The job trains on ``threads`` torch threads (its share of the cores) unless its config
    sets ``threads``.
    """
    import torch

    torch.set_num_threads(threads)
    setup_globals()
    Singleton.set_state(state)
    sweep_config = hydra_context.config_loader.load_sweep_config(config, overrides)
    with open_dict(sweep_config):
        sweep_config.hydra.job.id = f"{sweep_config.hydra.job.name}_{idx}"
        sweep_config.hydra.job.num = idx
    HydraConfig.instance().set_config(sweep_config)
    reply.send(("dir", str(Path(str(sweep_config.hydra.sweep.dir))
                           / str(sweep_config.hydra.sweep.subdir))))
    ret = run_job(hydra_context=hydra_context, task_function=task_function,
                  config=sweep_config, job_dir_key="hydra.sweep.dir",
                  job_subdir_key="hydra.sweep.subdir")
    # the fields a sweeper reads (a JobReturn's configs hold classes pickle cannot send)
    value = ret._return_value
    if ret.status == JobStatus.FAILED:
        value = RuntimeError(f"{type(value).__name__}: {value}")
    reply.send(("return", {"status": ret.status, "return_value": value,
                           "working_dir": ret.working_dir, "task_name": ret.task_name}))
