"""Shared set-up of the benchmark scripts: compose the real config outside a Hydra run."""

from __future__ import annotations

import os
from pathlib import Path

from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, open_dict

REPO = Path(__file__).resolve().parents[1]


def data_dir() -> str:
    """``$GAN_DATA_DIR``, else the shared data beside the checkout, else ``./data``."""
    if os.environ.get("GAN_DATA_DIR"):
        return os.environ["GAN_DATA_DIR"]
    shared = REPO.parent / "shared" / "data"
    return str(shared) if (shared / "MNIST" / "raw").is_dir() else str(REPO / "data")


def compose_config(overrides: list[str], output_dir: str) -> DictConfig:
    """The real ``conf/config.yaml`` with ``overrides``, writing into ``output_dir``."""
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=[f"paths.data_dir={data_dir()}", *overrides])
    with open_dict(cfg):
        cfg.paths.output_dir = output_dir
    return cfg
