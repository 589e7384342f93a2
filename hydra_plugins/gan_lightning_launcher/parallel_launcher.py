"""Hydra finds launchers only under the ``hydra_plugins`` namespace: this is where
``hydra/launcher=parallel`` points. The launcher itself is ``gan_lightning.launcher``."""

from gan_lightning.launcher import ProcessLauncher


class ParallelLauncher(ProcessLauncher):
    """A sweep's jobs side by side, a process each (see ``gan_lightning.launcher``)."""
