"""Sweep folder -> ``report.md`` + ``report.html`` (+ ``report_files/`` figures) in that folder."""

from __future__ import annotations

import itertools
import json
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
from gan_lightning.report.figures import (
    class_share_figure,
    fid_figure,
    loss_figure,
    quality_figure,
)
from gan_lightning.report.runs import (
    Run,
    axis_values,
    combine_nested,
    load_sweeps,
    named,
    swept_axes,
)
from gan_lightning.report.verdicts import (
    METHOD,
    METRICS,
    PRIMARY,
    Comparison,
    comparisons,
    headlines,
    jsonable,
    number,
    p_text,
)

log = logging.getLogger(__name__)

SEED = "seed"
# (column, Run.figure key, format)
COLUMNS = [
    # 4 significant digits: image FIDs (108.6) and 2-D point FIDs (0.03817) alike
    ("final FID", "fid", "{:.4g}"),
    ("best FID", "best_fid", "{:.4g}"),
    # 1.00: the run ended at its best evaluation; 1.30: its final FID is 30% above its best
    ("final / best FID", "fid_final_over_best", "{:.2f}"),
    ("KID", "kid", "{:.4g}"),
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


#: columns shown only when some run has the figure (coverage needs labelled data; KID came
#: later than the first committed studies)
OPTIONAL = {"kid", "class_tv", "classes_covered", "cond_accuracy"}


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
    """Runs not ``ok`` and the first sentence of why (the whole text is in their metrics.json),
    and runs whose curves could not be read from their event files."""
    rows = []
    for run in runs:
        for damaged in run.unreadable:
            rows.append([run.job, run.status, f"curves not drawn, event file unreadable: "
                                              f"{damaged}"[:240]])
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
    labels = [", ".join(named(a, v) for a, v in zip(row_axes, combo, strict=True))
              for combo in row_combos]
    return ImageGrid(labels or [""], [named(col_axis, c) for c in cols], cells)


def effects_table(found: list[Comparison]) -> Table:
    """One axis's comparisons: each value's figures (mean [95% CI]) and its gap to the best."""
    context = list(found[0].context)
    metrics = [m for m in METRICS if any(e.n for c in found for e in c.estimates[m.key].values())]
    header = [*context, found[0].axis, "runs: ok / all", f"{PRIMARY.label} [95% CI]",
              "gap to best [95% CI]", "p (Holm)",
              *(f"{m.label} [95% CI]" for m in metrics if m is not PRIMARY)]
    rows = []
    for c in found:
        gaps = {d.value: d for d in c.differences.get(PRIMARY.key, [])}
        for arm in c.arms:
            gap = gaps.get(arm.value)
            rows.append([
                *c.context.values(), arm.value, f"{len(arm.ok)} / {len(arm.runs)}",
                c.estimates[PRIMARY.key][arm.value].text(),
                "best" if arm.value == c.best else
                (f"{number(gap.diff)} [{number(gap.low)}, {number(gap.high)}]" if gap else "-"),
                p_text(gap.p_holm) if gap else "-",
                *(c.estimates[m.key][arm.value].text() for m in metrics if m is not PRIMARY)])
    return Table(header, rows)


def verdict_blocks(runs: list[Run], settings: list[str]) -> tuple[list[Block], list[Comparison]]:
    if not settings:
        return [Heading("Verdicts"), Text("Nothing but seeds was swept: no axis to judge.")], []
    found = comparisons(runs, settings)
    blocks: list[Block] = [Heading("Verdicts")]
    blocks += [Text(line) for line in headlines(found)] or [Text(
        "No axis has two values in one setting of the others: nothing to compare.")]
    blocks.append(Text(METHOD))
    for axis in settings:
        of_axis = [c for c in found if c.axis == axis]
        if of_axis:
            blocks += [Heading(f"Effects: {axis}", 3), effects_table(of_axis)]
    return blocks, found


def feature_extractor(run) -> str | None:
    """Which feature extractor measured a run's figures, in words (None: no figures). A
    classifier is named by its weights (older records: by its test accuracy, which differs
    between classifiers trained apart)."""
    protocol = run.record.get("metrics_protocol") or {}
    feature = protocol.get("feature")
    if feature == "classifier":
        weights = protocol.get("classifier_weights")
        which = (f"weights {weights}" if weights else
                 f"test accuracy {protocol.get('classifier_test_accuracy')}")
        return f"classifier {protocol.get('classifier_cache', '?')} ({which})"
    if feature == "inception":
        return f"inception ({protocol.get('weights_path') or 'torch-fidelity weights'})"
    return feature


def best_chosen_on(run) -> str | None:
    """Which reference chose a run's best epoch (None: no figures). Records from before
    held-out images existed chose it on the test split."""
    protocol = run.record.get("metrics_protocol") or {}
    if not protocol:
        return None
    return protocol.get("best_chosen_on", "test split")


def choice_text(chosen: Counter) -> str:
    """What chose the runs' best epochs, and what reported their figures, in words."""
    reported = "every FID in this report is measured against the test split"
    if set(chosen) == {"test split"}:
        return ("Best FID and best epoch: chosen on the test split, the reference the FIDs are "
                "reported on, so the best FIDs are optimistic (dataset.validation holds "
                "training images out to choose on; see docs/metrics.md).")
    if len(chosen) == 1:
        return (f"Best FID and best epoch: the epoch with the lowest FID against images held "
                f"out of training ({next(iter(chosen))}); {reported}.")
    counts = "; ".join(f"{c}: {n} run" + "s" * (n > 1) for c, n in sorted(chosen.items()))
    return (f"Best FID and best epoch: chosen on different references ({counts}); those "
            f"chosen on the test split are optimistic; {reported}.")


def build_report(sweep_dirs: str | Path | list[str | Path],
                 out: str | Path | None = None) -> dict[str, Path]:
    """Write ``report.md``, ``report.html``, ``report.json`` and ``report_files/*.png`` into
    ``out`` (default: the first sweep folder) from the runs of one or more sweep folders."""
    dirs = [Path(d) for d in (sweep_dirs if isinstance(sweep_dirs, list) else [sweep_dirs])]
    for sweep_dir in dirs:
        if not sweep_dir.is_dir():
            raise FileNotFoundError(f"sweep folder not found: {sweep_dir}")
    runs = load_sweeps(dirs)
    if not runs:
        raise FileNotFoundError(f"no runs in {', '.join(map(str, dirs))}: expected job folders "
                                "with metrics.json (or .hydra/) as `python train.py -m ...` "
                                "makes them")
    sweep_dir = Path(out) if out is not None else dirs[0]
    sweep_dir.mkdir(parents=True, exist_ok=True)
    axes, fixed = swept_axes(runs)
    settings = combine_nested(runs, [a for a in axes if a != SEED])
    axes = [*settings, SEED] if SEED in axes else settings
    files = sweep_dir / "report_files"
    files.mkdir(exist_ok=True)
    for stale in files.glob("*.png"):
        stale.unlink()

    title = f"Sweep report: {', '.join(d.resolve().name for d in dirs)}"
    protocol = next((r.record["metrics_protocol"] for r in runs
                     if r.record.get("metrics_protocol")), {})
    blocks: list[Block] = [Heading(title, 1), Text(
        f"{len(runs)} runs ({statuses(runs)}). Swept: {', '.join(axes) or 'nothing'}. "
        f"Fixed overrides: {', '.join(f'{k}={v}' for k, v in fixed.items()) or 'none'}. "
        f"FID features: {protocol.get('feature', 'n/a')} (see gan-lightning's "
        "docs/metrics.md); losses and D outputs are the last logged values.")]
    chosen = Counter(c for c in map(best_chosen_on, runs) if c)
    if chosen:
        blocks.append(Text(choice_text(chosen)))
    used = Counter(e for e in map(feature_extractor, runs) if e)
    if len(used) > 1:
        blocks.append(Text(
            f"Caution: these runs' figures come from {len(used)} different feature "
            f"extractors ({'; '.join(f'{e}: {n} runs' for e, n in sorted(used.items()))}). "
            "FID, KID, IS and precision/recall compare only between runs measured with the "
            "same one, so verdicts across them are not sound; `gan-eval` measures a "
            "checkpoint again with one extractor."))
    judged, found = verdict_blocks(runs, settings)
    blocks += judged
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
        for kind, draw in (("losses", loss_figure), ("fid", fid_figure),
                           ("quality", quality_figure)):
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
    summary = sweep_dir / "report.json"
    summary.write_text(json.dumps({
        "sweeps": [str(d) for d in dirs], "axes": settings, "runs": len(runs),
        "statuses": dict(Counter(str(r.status) for r in runs)), "method": METHOD,
        "feature_extractors": dict(sorted(used.items())),
        "best_chosen_on": dict(sorted(chosen.items())),
        "verdicts": headlines(found),
        "comparisons": [jsonable(c) for c in found]}, indent=2) + "\n")
    log.info("report: %s, %s, %s", md, page, summary)
    return {"markdown": md, "html": page, "json": summary, "files": files}
