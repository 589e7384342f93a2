"""``hydra/launcher=slurm`` points here (Hydra registers a launcher under the module that
defines it); the launcher itself is ``gan_lightning.slurm``."""

from gan_lightning.slurm import CheckedSlurmLauncher as _CheckedSlurmLauncher


class CheckedSlurmLauncher(_CheckedSlurmLauncher):
    """Hydra's submitit launcher, refusing a request no node can satisfy."""
