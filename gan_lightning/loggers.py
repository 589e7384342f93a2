"""Logger classes the ``logger`` group needs beyond Lightning's own."""

from __future__ import annotations

import os
from typing import Any

from lightning.pytorch.loggers import MLFlowLogger


class LocalMLFlowLogger(MLFlowLogger):
    """Lightning's ``MLFlowLogger`` on MLflow's local file store, which works offline.

    MLflow 3 refuses ``file:`` tracking URIs unless ``MLFLOW_ALLOW_FILE_STORE`` is set (its
    database store needs SQLAlchemy 2, which the Optuna sweeper's optuna 2.x cannot use).
    """

    def __init__(self, tracking_uri: str, **kwargs: Any) -> None:
        if tracking_uri.startswith("file:"):
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        super().__init__(tracking_uri=tracking_uri, **kwargs)
