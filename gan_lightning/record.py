"""The run record: how a run ended (``Status``), the names of its scalars (``Tag``), the keys
of its ``metrics.json`` (``RunRecord``), and the one writer of that file.

Every producer of the record (``train.run``, the callbacks, the sweep launcher, the DDP
strategy) and its reader (``gan-report``) use these names; none spells them itself.
"""

from __future__ import annotations

import enum
import json
import math
from pathlib import Path
from typing import Any, TypedDict


class Status(str, enum.Enum):
    """How a run ended; ``metrics.json``'s ``status``. A ``str``, so it compares, formats and
    serialises as its value (``Status.OK == "ok"``)."""

    OK = "ok"
    COLLAPSED = "collapsed"  # D saturated; the health monitor stopped the run
    DIVERGED = "diverged"  # non-finite losses, weights or samples
    INTERRUPTED = "interrupted"  # a signal; last.ckpt resumes it
    STOPPED = "stopped"  # a budget (trainer.max_time) ended it before its schedule; resumable
    FAILED = "failed"  # an exception
    KILLED = "killed"  # the process died (the sweep launcher says so)
    # what the report infers for a folder without a readable metrics.json
    INCOMPLETE = "incomplete"
    UNREADABLE = "unreadable"

    def __str__(self) -> str:
        return self.value


class Tag:
    """Scalar names, as logged against the generator step (TensorBoard, CSV, ...)."""

    LOSS_D = "train/loss_d"
    LOSS_G = "train/loss_g"
    D_REAL = "train/d_real"
    D_FAKE = "train/d_fake"
    PENALTY = "train/penalty"
    R1 = "train/r1"
    LR_D = "train/lr_d"
    LR_G = "train/lr_g"
    G_STEP = "train/g_step"
    EPOCH = "train/epoch"
    DIVERSITY = "val/diversity"
    #: the per-class bar chart of the coverage metric (a TensorBoard image)
    CLASS_SHARES = "coverage/class_shares"
    #: what the report draws as training curves
    CURVES = (LOSS_D, LOSS_G, D_REAL, D_FAKE, DIVERSITY)

    @staticmethod
    def val(metric: str) -> str:
        """A sample-quality metric's tag (``val/fid``)."""
        return f"val/{metric}"

    @staticmethod
    def hparams(metric: str) -> str:
        """A final metric beside the hyper-parameters (TensorBoard's HParams tab)."""
        return f"hparams/{metric}"

    @staticmethod
    def short(tag: str) -> str:
        """The name a tag has in ``metrics.json``'s ``final`` (``loss_d``)."""
        return tag.split("/", 1)[1]


#: the sample-quality figures of a run, each ``{"final": x, ...}`` in the record
QUALITY_METRICS = ("fid", "fid_val", "kid", "kid_std", "is", "precision", "recall", "class_tv",
                   "class_kl", "classes_covered", "class_confidence", "cond_accuracy")


class RunRecord(TypedDict, total=False):
    """The keys of ``metrics.json``. Who writes what:

    ``train.run``: status, message, error, traceback, overrides, seed, threads, data_source,
    resumed_from, wall_time_s, train_time_s, g_steps_per_s, g_steps, epochs,
    optimizer_steps, final, speedups. The evaluation callback: fid, fid_val (against the
    held-out training images that choose the best epoch), kid(_std), is, precision, recall
    and the coverage figures (each ``{"final", "best", ...}``; ``class_shares`` also
    ``"real"``), metrics_history, metrics_protocol, eval_time_s, eval_setup_time_s. The
    health monitor: warnings, sample_diversity. The DDP strategy: ddp. The sweep launcher,
    for a job whose process died: status, message, overrides, exit_code.
    """

    status: str
    message: str
    error: str
    traceback: str
    overrides: list[str]
    seed: int
    threads: int
    data_source: str | None
    resumed_from: str
    wall_time_s: float
    train_time_s: float
    g_steps_per_s: float
    g_steps: int
    epochs: float
    optimizer_steps: int
    final: dict[str, float]
    fid: dict[str, float]
    fid_val: dict[str, float]
    kid: dict[str, float]
    kid_std: dict[str, float]
    # "is" is a Python keyword: the evaluation callback writes it under that key all the same
    precision: dict[str, float]
    recall: dict[str, float]
    class_tv: dict[str, float]
    class_kl: dict[str, float]
    classes_covered: dict[str, float]
    class_confidence: dict[str, float]
    class_shares: dict[str, list[float]]
    cond_accuracy: dict[str, float]
    cond_accuracy_per_class: dict[str, list[float]]
    metrics_history: list[dict[str, float]]
    metrics_protocol: dict[str, Any]
    eval_time_s: float
    eval_setup_time_s: float
    warnings: list[dict[str, Any]]
    sample_diversity: float
    ddp: dict[str, Any]
    exit_code: int | None
    speedups: list[str]


RECORD_FILE = "metrics.json"

#: where each figure the report shows sits in a record: name -> (key, key within it or None)
FIGURES: dict[str, tuple[str, str | None]] = {
    "fid": ("fid", "final"), "best_fid": ("fid", "best"), "best_epoch": ("fid", "best_epoch"),
    "fid_final_over_best": ("fid", "final_over_best"),
    "kid": ("kid", "final"), "kid_std": ("kid_std", "final"),
    "is": ("is", "final"), "precision": ("precision", "final"), "recall": ("recall", "final"),
    "loss_d": ("final", Tag.short(Tag.LOSS_D)), "loss_g": ("final", Tag.short(Tag.LOSS_G)),
    "epochs": ("epochs", None), "wall_time_s": ("wall_time_s", None),
    "steps_per_s": ("g_steps_per_s", None),
    **{k: (k, "final") for k in ("class_tv", "class_kl", "classes_covered",
                                 "class_confidence", "cond_accuracy")},
}


def final_over_best(final: Any, best: Any) -> float | None:
    """A final FID over the run's best (1.0: it ended at its best), where both are finite."""
    if not all(isinstance(v, int | float) and math.isfinite(v) for v in (final, best)):
        return None
    return final / best if best > 0 else None


def figure(record: dict[str, Any], name: str) -> float | None:
    """One number of a record by its ``FIGURES`` name (``None`` where the record has none)."""
    key, inner = FIGURES[name]
    value = record.get(key)
    if inner is not None:
        value = (value or {}).get(inner) if isinstance(value, dict | None) else None
    if value is None and name == "fid_final_over_best":  # records from before it was kept
        value = final_over_best(figure(record, "fid"), figure(record, "best_fid"))
    return value if isinstance(value, int | float) else None


def history(record: dict[str, Any], metric: str) -> tuple[list[int], list[float]]:
    """``(epochs, values)`` of a metric over the evaluations a record holds."""
    points = [h for h in record.get("metrics_history") or [] if metric in h]
    return [h["epoch"] for h in points], [h[metric] for h in points]


def write_record(path: Path, record: dict[str, Any]) -> None:
    """Write JSON atomically (temp file + rename); non-finite floats become strings."""

    def clean(value: Any) -> Any:
        if isinstance(value, enum.Enum):
            return value.value
        if isinstance(value, float) and not math.isfinite(value):
            return str(value)
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        if isinstance(value, list):
            return [clean(v) for v in value]
        return value

    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(clean(record), indent=2, sort_keys=True) + "\n")
    tmp.replace(path)


def read_record(path: Path) -> tuple[Status, dict[str, Any]]:
    """A run folder's record and status: ``incomplete`` without ``metrics.json``,
    ``unreadable`` when it does not parse; an unknown status string is kept as written."""
    file = path / RECORD_FILE
    if not file.is_file():
        return Status.INCOMPLETE, {}
    try:
        record = json.loads(file.read_text())
    except (OSError, ValueError):
        return Status.UNREADABLE, {}
    value = str(record.get("status", Status.INCOMPLETE))
    try:
        return Status(value), record
    except ValueError:
        return value, record  # type: ignore[return-value]  # a newer writer's status
