"""``RunState``: what the parts of one training run tell each other while it trains.

The module publishes its scalars here at each log point; the health monitor reads them and
ends the run here (``collapsed``, ``diverged``); the evaluation callback and the health
monitor log their figures through it; the progress bar shows what it holds; ``train.run``
reads how the run ended. One object, made by ``train.build`` and handed to the module
(``GANModule.run``), which every callback reaches through the module it is given.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gan_lightning.record import Status, Tag


@dataclass
class RunState:
    """How a run stands: its end (if decided), its latest scalars, its progress-bar figures."""

    #: set when something ends the run early (``collapsed``, ``diverged``, ``interrupted``)
    status: Status | None = None
    message: str = ""
    #: the scalars of the latest log point (Python floats) and the generator step they are of
    latest: dict[str, float] = field(default_factory=dict)
    latest_step: int = -1
    #: what the progress bar shows, under short names
    progress: dict[str, float] = field(default_factory=dict)

    #: scalars shown in the progress bar, under their short names
    PROGRESS_BAR = {Tag.LOSS_D: "loss_d", Tag.LOSS_G: "loss_g", Tag.val("fid"): "fid"}

    def end(self, status: Status, message: str) -> None:
        self.status, self.message = status, message

    def publish(self, scalars: dict[str, float], g_step: int) -> None:
        """The training scalars of a log point (what the health monitor judges)."""
        self.latest, self.latest_step = scalars, g_step

    def log(self, trainer: Any, scalars: dict[str, float]) -> None:
        """Scalars against the generator step to every logger of ``trainer``, and to the
        progress bar.

        Straight to the loggers rather than through ``LightningModule.log``: Lightning would
        otherwise re-collect every logged value after every batch, whether or not it changed.
        """
        g_step = trainer.lightning_module.g_step
        for logger in trainer.loggers:
            logger.log_metrics({**scalars, Tag.G_STEP: g_step, Tag.EPOCH: trainer.current_epoch},
                               step=g_step)
        for key, value in scalars.items():
            if key in self.PROGRESS_BAR:
                self.progress[self.PROGRESS_BAR[key]] = value
