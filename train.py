"""Train a GAN: ``python train.py [group=option ...] [key=value ...]`` (``-m`` sweeps)."""

import hydra
from omegaconf import DictConfig

from gan_lightning.train import objective, run


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> float | None:
    # a number for hyper-parameter sweepers (hparams_search=...), None otherwise
    return objective(cfg, run(cfg))


if __name__ == "__main__":
    main()
