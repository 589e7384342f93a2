"""Hydra callback: at the end of a multirun, list each job's status and write the report."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from gan_lightning.record import Status
from gan_lightning.report.build import build_report
from gan_lightning.report.runs import load_sweep

log = logging.getLogger(__name__)


#: how a job ends that makes the sweep's command exit non-zero (after its report)
FAILURES = (Status.FAILED, Status.KILLED, Status.INCOMPLETE, Status.UNREADABLE)


class SweepReport(Callback):
    """``hydra.callbacks.report``: a sweep ends with its summary and ``report.html``.

    A report that cannot be built is logged, never raised: the runs are already done. When
    a job failed or was killed, the command then exits with status 1, so a job chain or CI
    notices (collapsed, diverged, interrupted or stopped runs are outcomes, not failures).
    """

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        if not self.enabled:
            return
        sweep_dir = Path(config.hydra.sweep.dir)
        runs = []
        try:
            runs = load_sweep(sweep_dir)
            bad = [r for r in runs if r.status != Status.OK]
            log.info("sweep %s: %d runs, %d ok", sweep_dir, len(runs), len(runs) - len(bad))
            for run in bad:
                log.warning("  %s: %s", run.name, run.status)
            out = build_report(sweep_dir)
            log.info("report: %s (gan-report %s rebuilds it)", out["html"], sweep_dir)
        except Exception:  # noqa: BLE001
            log.exception("could not write the sweep report; `gan-report %s` retries", sweep_dir)
        failed = [r.name for r in runs if r.status in FAILURES]
        if failed:
            log.error("%d of %d jobs failed or were killed: %s", len(failed), len(runs),
                      ", ".join(failed))
            sys.exit(1)
