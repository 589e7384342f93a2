from gan_lightning.slurm import CheckedSlurmLauncher

__all__ = ["CheckedSlurmLauncher"]
