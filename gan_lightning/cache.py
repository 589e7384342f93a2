"""Where the project caches what it computes once per dataset (decoded images, the metrics'
classifier and reference features): ``<data root>/.gan_lightning``, or
``~/.cache/gan-lightning`` when the data root is read-only."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch


def default_cache_dir(data_dir: str | Path) -> Path:
    """``<data root>/.gan_lightning``, or ``~/.cache/gan-lightning`` if the root is read-only."""
    candidate = Path(data_dir).expanduser() / ".gan_lightning"
    try:
        candidate.mkdir(parents=True, exist_ok=True)
        if os.access(candidate, os.W_OK):
            return candidate
    except OSError:
        pass
    return Path.home() / ".cache" / "gan-lightning"


def save_atomically(obj: Any, path: Path) -> None:
    """``torch.save`` beside ``path``, then rename over it: a reader (a parallel job) never
    sees a half-written file."""
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
    torch.save(obj, tmp)
    tmp.replace(path)
