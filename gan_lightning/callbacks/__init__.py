"""Callbacks: sample grids, training health, checkpoints, signals, the progress bar and the
sample-quality evaluation. The module trains and publishes its scalars; callbacks draw
pictures, score the generator and decide when a run has gone wrong."""

from gan_lightning.callbacks.checkpoint import RunCheckpoint
from gan_lightning.callbacks.evaluation import Evaluator
from gan_lightning.callbacks.health import HealthMonitor, diversity
from gan_lightning.callbacks.progress import GANProgressBar
from gan_lightning.callbacks.samples import SampleGrid, sample_grid, scatter_plot
from gan_lightning.callbacks.shutdown import GracefulShutdown

__all__ = [
    "Evaluator",
    "GANProgressBar",
    "GracefulShutdown",
    "HealthMonitor",
    "RunCheckpoint",
    "SampleGrid",
    "diversity",
    "sample_grid",
    "scatter_plot",
]
