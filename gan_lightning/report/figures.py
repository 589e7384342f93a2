"""Matplotlib figures of a sweep: curves overlaid per swept axis, FID against epoch.

Each figure has one panel per combination of the *other* swept axes and one line per value of
its own axis; seeds are averaged (the line) and their spread shaded. PNGs are written without
a timestamp so that a regenerated report is byte-identical.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from gan_lightning.record import Tag, history  # noqa: E402
from gan_lightning.report.runs import Run, axis_values, named  # noqa: E402

Series = Callable[[Run], tuple[Sequence[float], Sequence[float]]]
PNG_METADATA = {"Software": None}


def smooth(y: np.ndarray, points: int = 100) -> np.ndarray:
    """Running mean over about ``len(y) / points`` samples: ~100 readable points per curve."""
    window = max(1, len(y) // points)
    if window == 1:
        return y
    kernel = np.ones(window) / window
    # pad at the edges so the curve keeps its length and its ends stay put
    padded = np.pad(y, (window // 2, window - 1 - window // 2), mode="edge")
    return np.convolve(padded, kernel, mode="valid")


def wide_range(values: np.ndarray, ratio: float = 20.0) -> bool:
    """Non-negative values whose top is ``ratio`` times their median: a log axis shows them."""
    values = values[np.isfinite(values)]
    return (bool(len(values)) and values.min() >= 0
            and values.max() > ratio * max(float(np.median(values)), 1e-12))


def seed_band(runs: list[Run], series: Series) -> tuple[np.ndarray, ...] | None:
    """Mean, min and max over runs at each x any of them reached (runs may stop early)."""
    points: dict[float, list[float]] = {}
    for run in runs:
        xs, ys = series(run)
        for x, y in zip(xs, ys, strict=True):
            if np.isfinite(y):
                points.setdefault(x, []).append(y)
    if not points:
        return None
    xs = np.array(sorted(points))
    values = [points[x] for x in xs]
    return (xs, np.array([np.mean(v) for v in values]), np.array([min(v) for v in values]),
            np.array([max(v) for v in values]))


def panels(runs: list[Run], axes: list[str], axis: str | None) -> list[tuple[str, list[Run]]]:
    """Runs split by the values of the swept axes other than ``axis`` (and the seed)."""
    others = [a for a in axes if a != axis]
    if not others:
        return [("", runs)]
    out = []
    for combo in itertools.product(*(axis_values(runs, a) for a in others)):
        chosen = [r for r in runs if all(r.overrides.get(a) == v for a, v in zip(others, combo,
                                                                                   strict=True))]
        if chosen:
            out.append((", ".join(named(a, v) for a, v in zip(others, combo, strict=True)), chosen))
    return out


def overlay(path: Path, runs: list[Run], axes: list[str], axis: str | None,
            rows: list[tuple[str, Series, bool, bool]], xlabel: str,
            title: str) -> Path | None:
    """One figure: rows of series (label, getter, smooth?, log axis?), panels by the other
    axes, lines by ``axis`` (or by run when nothing but seeds was swept)."""
    columns = panels(runs, axes, axis)
    fig, grid = plt.subplots(len(rows), len(columns), squeeze=False, sharex="col",
                             figsize=(4.2 * len(columns) + 0.8, 2.8 * len(rows) + 0.6))
    drawn = False
    for col, (panel_title, panel_runs) in enumerate(columns):
        if axis is None:
            groups = [(run_label(r), [r]) for r in panel_runs]
        else:
            groups = [(named(axis, v), [r for r in panel_runs if r.overrides.get(axis) == v])
                      for v in axis_values(panel_runs, axis)]
        for row, (ylabel, series, smoothed, log_y) in enumerate(rows):
            ax = grid[row][col]
            for index, (label, group) in enumerate(groups):
                band = seed_band(group, series)
                if band is None:
                    continue
                xs, mean, low, high = band
                if smoothed:
                    mean, low, high = smooth(mean), smooth(low), smooth(high)
                color = f"C{index % 10}"
                seeds = f" ({len(group)} runs)" if len(group) > 1 else ""
                ax.plot(xs, mean, color=color, lw=1.3, label=label + seeds)
                if len(group) > 1:
                    ax.fill_between(xs, low, high, color=color, alpha=0.15, lw=0)
                drawn = True
            ax.set_ylabel(ylabel)
            lines = [line.get_ydata() for line in ax.get_lines()]
            if lines and log_y and np.concatenate(lines).min() > 0:
                ax.set_yscale("log")
            elif lines and wide_range(np.concatenate(lines)):
                # a collapsed run's clamped loss (100) would flatten every healthy curve
                ax.set_yscale("symlog", linthresh=1.0)  # linear below 1: zeros stay in view
            ax.grid(alpha=0.3)
            if row == 0 and panel_title:
                ax.set_title(panel_title, fontsize=10)
            if row == len(rows) - 1:
                ax.set_xlabel(xlabel)
        if len(grid[0][col].get_lines()) > 1:
            grid[0][col].legend(fontsize=8)
    if not drawn:
        plt.close(fig)
        return None
    if axis is None:  # one line a run: nothing is averaged
        title = title.split("\n")[0]
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=90, metadata=PNG_METADATA)
    plt.close(fig)
    return path


def run_label(run: Run) -> str:
    """``run 3`` or ``run 3 (seed 2)``: job number, and the seed where one was set."""
    seed = f" (seed {run.overrides['seed']})" if "seed" in run.overrides else ""
    return f"run {run.job}{seed}"


def curve(tag: str) -> Series:
    return lambda run: run.curves.get(tag, ([], []))


def loss_figure(path: Path, runs: list[Run], axes: list[str], axis: str | None) -> Path | None:
    rows = [("D loss", curve(Tag.LOSS_D), True, False),
            ("G loss", curve(Tag.LOSS_G), True, False)]
    if any(Tag.DIVERSITY in r.curves for r in runs):
        rows.append(("sample diversity", curve(Tag.DIVERSITY), False, False))
    by = f" by {axis}" if axis else ""
    return overlay(path, runs, axes, axis, rows, "generator step",
                   f"Losses{by}\n(mean over seeds, shaded min-max; running mean)")


def fid_figure(path: Path, runs: list[Run], axes: list[str], axis: str | None) -> Path | None:
    rows = [("FID (log scale)", Run.fid_history, False, True)]
    by = f" by {axis}" if axis else ""
    return overlay(path, runs, axes, axis, rows, "epoch",
                   f"FID{by}\n(mean over seeds, shaded min-max)")


def metric_history(metric: str) -> Series:
    return lambda run: history(run.record, metric)


def quality_figure(path: Path, runs: list[Run], axes: list[str],
                   axis: str | None) -> Path | None:
    """Precision, recall, IS and KID at each evaluation (those the runs have): where FID
    moves, which of fidelity and diversity moved."""
    rows = [(label, metric_history(metric), False, False)
            for label, metric in (("precision", "precision"), ("recall", "recall"), ("IS", "is"),
                                  ("KID", "kid"))
            if any(history(r.record, metric)[0] for r in runs)]
    if not rows:
        return None
    by = f" by {axis}" if axis else ""
    return overlay(path, runs, axes, axis, rows, "epoch",
                   f"{', '.join(row[0] for row in rows)}{by}\n(mean over seeds, shaded min-max)")


def class_share_figure(path: Path, runs: list[Run], settings: list[str]) -> Path | None:
    """Per setting, the mean share of each class among the samples, beside the real mix."""
    groups: dict[str, list[list[float]]] = {}
    real = None
    for run in runs:
        shares = (run.record.get("class_shares") or {})
        if isinstance(shares.get("final"), list):
            label = ", ".join(named(a, run.overrides.get(a, "")) for a in settings) or run.name
            groups.setdefault(label, []).append(shares["final"])
            real = real or shares.get("real")
    if not groups or not real:
        return None
    k = len(real)
    width = 0.8 / (len(groups) + 1)
    fig, ax = plt.subplots(figsize=(max(6.0, 0.7 * k * (len(groups) + 1) / 2 + 2), 3.6))
    x = np.arange(k)
    ax.bar(x, real, width, label="real", color="0.6")
    for i, (label, values) in enumerate(groups.items(), start=1):
        seeds = f" ({len(values)} runs)" if len(values) > 1 else ""
        ax.bar(x + i * width, np.mean(values, axis=0), width, label=label + seeds,
               color=f"C{(i - 1) % 10}")
    ax.set_xticks(x + width * len(groups) / 2, [str(c) for c in range(k)])
    ax.set_xlabel("class")
    ax.set_ylabel("share of samples")
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=8)
    fig.suptitle("Classes drawn (final evaluation)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=90, metadata=PNG_METADATA)
    plt.close(fig)
    return path
