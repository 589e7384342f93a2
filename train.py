"""Train a GAN: ``python train.py [group=option ...] [key=value ...]`` (``-m`` sweeps)."""

import gc

# Importing torch, Lightning, Hydra and torchmetrics makes about 750,000 objects that live
# until exit, and each full collection during the imports walks all made so far (1.4 CPU s of
# start-up on a slow host, benchmarks/README.md). Nothing is collected while importing; what
# the imports made is then frozen, out of the collector's sight for the rest of the run.
gc.disable()

import hydra  # noqa: E402
from omegaconf import DictConfig  # noqa: E402

from gan_lightning.train import main_task  # noqa: E402

gc.freeze()
gc.enable()


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> float | None:
    return main_task(cfg)  # the same as gan-train's (gan_lightning/cli.py)


if __name__ == "__main__":
    main()
    # Everything is written and closed by now (loggers finalised, metrics.json renamed into
    # place; atexit handlers still run). What is left is the interpreter's final garbage
    # collection over the objects of torch, Lightning and torchvision's imports (its cost is
    # in benchmarks/README.md); frozen objects are not traversed.
    gc.freeze()
