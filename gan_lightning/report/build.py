"""Sweep folder -> ``report.md`` + ``report.html`` (+ ``report_files/`` figures) in that folder."""

from __future__ import annotations

import itertools
import logging
import math
import statistics
from collections import Counter
from pathlib import Path

from gan_lightning.record import RECORD_FILE, Status
from gan_lightning.report.document import (
    Block,
    Heading,
    Image,
    ImageGrid,
    Table,
    Text,
    to_html,
    to_markdown,
)
from gan_lightning.report.figures import class_share_figure, fid_figure, loss_figure
from gan_lightning.report.runs import Run, axis_values, load_sweep, swept_axes

log = logging.getLogger(__name__)

SEED = "seed"
# (column, Run.figure key, format)
COLUMNS = [
    # 4 significant digits: image FIDs (108.6) and 2-D point FIDs (0.03817) alike
    ("final FID", "fid", "{:.4g}"),
    ("best FID", "best_fid", "{:.4g}"),
    ("IS", "is", "{:.2f}"),
    ("D loss", "loss_d", "{:.3f}"),
    ("G loss", "loss_g", "{:.3f}"),
    ("epochs", "epochs", "{:g}"),
    ("wall time (s)", "wall_time_s", "{:.0f}"),
    ("G steps/s", "steps_per_s", "{:.0f}"),
    # mode coverage (labelled datasets): how far the classes drawn are from the real mix
    ("class TV", "class_tv", "{:.3f}"),
    ("classes covered", "classes_covered", "{:g}"),
    ("cond. accuracy", "cond_accuracy", "{:.3f}"),
]
SUMMARY_COLUMNS = [c for c in COLUMNS if c[1] not in ("wall_time_s", "epochs")]


#: columns shown only when some run has the figure (coverage needs labelled data)
OPTIONAL = {"class_tv", "classes_covered", "cond_accuracy"}


def present(columns: list[tuple[str, str, str]], runs: list[Run]) -> list[tuple[str, str, str]]:
    """The columns to show: all but the optional ones no run has a figure for."""
    return [c for c in columns
            if c[1] not in OPTIONAL or any(r.figure(c[1]) is not None for r in runs)]


def fmt(value: float | None, spec: str) -> str:
    return "-" if value is None or not math.isfinite(value) else spec.format(value)


def mean_std(values: list[float], spec: str) -> str:
    values = [v for v in values if v is not None and math.isfinite(v)]
    if not values:
        return "-"
    if len(values) == 1:
        return spec.format(values[0])
    return f"{spec.format(statistics.mean(values))} ± {spec.format(statistics.stdev(values))}"


def setting_of(run: Run, axes: list[str]) -> tuple[str, ...]:
    return tuple(run.overrides.get(a, "") for a in axes)


def statuses(runs: list[Run]) -> str:
    counts = Counter(r.status for r in runs)
    return ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))


def runs_table(runs: list[Run], axes: list[str]) -> Table:
    columns = present(COLUMNS, runs)
    header = ["run", *axes, "status", *(c[0] for c in columns), "best epoch"]
    rows = []
    for run in runs:
        rows.append([run.job, *setting_of(run, axes), run.status,
                     *(fmt(run.figure(key), spec) for _, key, spec in columns),
                     fmt(run.figure("best_epoch"), "{:.0f}")])
    return Table(header, rows)


def summary_table(runs: list[Run], settings: list[str]) -> Table:
    columns = present(SUMMARY_COLUMNS, runs)
    header = [*settings, "runs", "status", *(f"{c[0]} (mean ± std)" for c in columns)]
    groups: dict[tuple[str, ...], list[Run]] = {}
    for run in runs:
        groups.setdefault(setting_of(run, settings), []).append(run)
    rows = []
    for setting in itertools.product(*(axis_values(runs, a) for a in settings)):
        group = groups.get(setting)
        if group:
            rows.append([*setting, str(len(group)), statuses(group),
                         *(mean_std([r.figure(key) for r in group], spec)
                           for _, key, spec in columns)])
    return Table(header, rows)


def problems(runs: list[Run]) -> Table:
    """Runs not ``ok`` and the first sentence of why (the whole text is in their metrics.json)."""
    rows = []
    for run in runs:
        if run.status == Status.OK:
            continue
        why = run.record.get("message") or run.record.get("error") or {
            Status.INCOMPLETE: f"no {RECORD_FILE}: still running, or killed before the end",
            Status.UNREADABLE: f"{RECORD_FILE} could not be parsed",
        }.get(run.status, "")
        why = (" ".join(str(why).split()).split(": ", 1)[-1] if run.status == Status.FAILED
               else why)
        first = " ".join(str(why).split()).split(". ")[0]
        rows.append([run.job, run.status, first[:240]])
    return Table(["run", "status", "why"], rows)


def sample_grid(runs: list[Run], settings: list[str]) -> ImageGrid:
    """Final sample grids, rows by the first swept axis, columns by the last; lowest seed."""
    def pick(group: list[Run]) -> tuple[Path | None, str]:
        if not group:
            return None, "no run"
        run = min(group, key=lambda r: float(r.overrides.get(SEED, 0) or 0))
        seed = f"seed {run.overrides[SEED]}, " if SEED in run.overrides else ""
        return run.samples, f"{seed}{run.status}" + ("" if run.samples else ", no samples")

    if not settings:
        return ImageGrid([""], [r.name for r in runs], [[pick([r]) for r in runs]])
    row_axes, col_axis = settings[:-1], settings[-1]
    cols = axis_values(runs, col_axis)
    row_combos = list(itertools.product(*(axis_values(runs, a) for a in row_axes)))
    cells = []
    for combo in row_combos:
        cells.append([pick([r for r in runs if setting_of(r, settings) == (*combo, c)])
                      for c in cols])
    labels = [", ".join(f"{a}={v}" for a, v in zip(row_axes, combo, strict=True))
              for combo in row_combos]
    return ImageGrid(labels or [""], [f"{col_axis}={c}" for c in cols], cells)


def build_report(sweep_dir: str | Path) -> dict[str, Path]:
    """Write ``report.md``, ``report.html`` and ``report_files/*.png`` into ``sweep_dir``."""
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise FileNotFoundError(f"sweep folder not found: {sweep_dir}")
    runs = load_sweep(sweep_dir)
    if not runs:
        raise FileNotFoundError(f"no runs in {sweep_dir}: expected job folders with metrics.json "
                                "(or .hydra/) as `python train.py -m ...` makes them")
    axes, fixed = swept_axes(runs)
    settings = [a for a in axes if a != SEED]
    files = sweep_dir / "report_files"
    files.mkdir(exist_ok=True)
    for stale in files.glob("*.png"):
        stale.unlink()

    title = f"Sweep report: {sweep_dir.resolve().name}"
    protocol = next((r.record["metrics_protocol"] for r in runs
                     if r.record.get("metrics_protocol")), {})
    blocks: list[Block] = [Heading(title, 1), Text(
        f"{len(runs)} runs ({statuses(runs)}). Swept: {', '.join(axes) or 'nothing'}. "
        f"Fixed overrides: {', '.join(f'{k}={v}' for k, v in fixed.items()) or 'none'}. "
        f"FID features: {protocol.get('feature', 'n/a')} (see README, Metrics); "
        "losses and D outputs are the last logged values.")]
    blocks += [Heading("Runs"), runs_table(runs, axes)]
    trouble = problems(runs)
    if trouble.rows:
        blocks += [Heading("Runs that did not finish ok", 3), trouble]
    if SEED in axes or len({setting_of(r, settings) for r in runs}) < len(runs):
        blocks += [Heading("Over seeds" if SEED in axes else "Over repeats"),
                   summary_table(runs, settings)]

    blocks.append(Heading("Curves"))
    for axis in settings or [None]:
        stem = axis or "runs"
        for kind, draw in (("losses", loss_figure), ("fid", fid_figure)):
            path = draw(files / f"{kind}_{stem}.png".replace("/", "_"), runs, settings, axis)
            if path is not None:
                blocks.append(Image(path, f"{kind} by {stem}"))
    shares = class_share_figure(files / "class_shares.png", runs, settings)
    if shares is not None:
        blocks += [Heading("Classes drawn"), Text(
            "The share of each class among the final evaluation's samples (FID's), by the "
            "metrics' classifier, mean over seeds, beside the real mix: a class near zero is a "
            "dropped mode, which FID alone does not show."), Image(shares, "class shares")]
    blocks += [Heading("Final samples"), Text(
        "Each run's samples.png (fixed noise, last epoch); where seeds were swept, the lowest "
        "seed's."), sample_grid(runs, settings)]

    md = sweep_dir / "report.md"
    md.write_text(to_markdown(blocks, sweep_dir))
    page = sweep_dir / "report.html"
    page.write_text(to_html(blocks, title))
    log.info("report: %s, %s", md, page)
    return {"markdown": md, "html": page, "files": files}
