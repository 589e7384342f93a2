"""Train a GAN: ``python train.py [group=option ...] [key=value ...]`` (``-m`` sweeps)."""

import hydra
from omegaconf import DictConfig

from gan_lightning.train import run


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> None:
    run(cfg)


if __name__ == "__main__":
    main()
