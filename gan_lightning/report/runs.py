"""A sweep folder read back: one ``Run`` per job folder, from ``metrics.json`` and TensorBoard.

Nothing here trusts a run to have finished: a folder without ``metrics.json`` is
``incomplete``, an unreadable one is ``unreadable``, and missing event files mean no curves.
"""

from __future__ import annotations

import itertools
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from gan_lightning.record import RECORD_FILE, Status, Tag, figure, history, read_record


@dataclass
class Run:
    """One job of a sweep: its folder, overrides, status, final figures and curves."""

    path: Path
    overrides: dict[str, str]
    status: Status
    record: dict[str, Any] = field(default_factory=dict)
    curves: dict[str, tuple[list[int], list[float]]] = field(default_factory=dict)
    #: event files whose curves could not be read (damaged, truncated), with why
    unreadable: list[str] = field(default_factory=list)
    #: the sweep folder's name, where a report reads several
    sweep: str = ""

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def job(self) -> str:
        """The job number Hydra put before the overrides in the folder name (``3_...``),
        after the sweep's name where a report reads several (``extra/3``)."""
        number = self.name.split("_", 1)[0]
        return f"{self.sweep}/{number}" if self.sweep else number

    @property
    def samples(self) -> Path | None:
        path = self.path / "samples.png"
        return path if path.is_file() else None

    def figure(self, key: str) -> float | None:
        """A number of the run by report column name (``None`` where the run has none)."""
        return figure(self.record, key)

    def fid_history(self) -> tuple[list[int], list[float]]:
        return history(self.record, "fid")


def job_order(path: Path) -> tuple[int, str]:
    """Hydra names job folders ``<num>_<overrides>``; sort by the number, then the name."""
    match = re.match(r"(\d+)", path.name)
    return (int(match.group(1)) if match else 1 << 30, path.name)


def find_runs(sweep_dir: Path) -> list[Path]:
    """Job folders of a sweep: those holding ``metrics.json`` or Hydra's ``.hydra`` record."""
    found = {p.parent for p in sweep_dir.glob(f"*/{RECORD_FILE}")}
    found |= {p.parent for p in sweep_dir.glob("*/.hydra") if p.is_dir()}
    return sorted(found, key=job_order)


def read_overrides(path: Path, record: dict[str, Any]) -> dict[str, str]:
    """``key=value`` overrides of a job, from ``metrics.json`` or else ``.hydra/overrides.yaml``."""
    items = record.get("overrides")
    if items is None:
        hydra_file = path / ".hydra" / "overrides.yaml"
        try:
            items = yaml.safe_load(hydra_file.read_text()) or []
        except (OSError, yaml.YAMLError):
            items = []
    pairs = (str(item).split("=", 1) for item in items if "=" in str(item))
    return {key.lstrip("+~"): value for key, value in pairs}


#: a run's training curves outside TensorBoard: what a committed study keeps of its events
CURVES_FILE = "curves.json"


def damaged_at(event_file: Path) -> int | None:
    """The byte offset of the first record of a TensorBoard event file whose length or data
    fails its checksum, or that is cut short (None: the file is whole). TensorBoard's reader
    stops quietly at such a record; the curves then end there."""
    import struct

    import google_crc32c

    def masked(data: bytes) -> int:
        crc = google_crc32c.value(data)
        return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF

    data = event_file.read_bytes()
    offset = 0
    while offset < len(data):
        header = data[offset:offset + 12]
        if len(header) < 12 or struct.unpack("<I", header[8:])[0] != masked(header[:8]):
            return offset
        length = struct.unpack("<Q", header[:8])[0]
        body = data[offset + 12:offset + 12 + length + 4]
        if len(body) < length + 4 or struct.unpack("<I", body[length:])[0] != masked(
                body[:length]):
            return offset
        offset += 12 + length + 4
    return None


def read_curves(path: Path, unreadable: list[str] | None = None
                ) -> dict[str, tuple[list[int], list[float]]]:
    """Training scalars from the run's TensorBoard event files, else from its ``curves.json``
    (``export_curves``): ``{tag: (g_steps, values)}``. An event folder that cannot be read is
    skipped and named, with why, in ``unreadable``."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    curves: dict[str, dict[int, float]] = {}
    for event_file in sorted(path.rglob("events.out.tfevents.*")):
        offset = damaged_at(event_file) if unreadable is not None else None
        if offset is not None:
            unreadable.append(f"{event_file.relative_to(path)} is damaged at byte {offset} of "
                              f"{event_file.stat().st_size}; its curves end there")
    for event_dir in sorted({p.parent for p in path.rglob("events.out.tfevents.*")}):
        try:
            # images are the bulk of an event file and the report reads samples.png instead
            events = EventAccumulator(str(event_dir), size_guidance={"scalars": 0, "images": 1})
            events.Reload()
            tags = [t for t in Tag.CURVES if t in events.Tags()["scalars"]]
            for tag in tags:
                for event in events.Scalars(tag):
                    curves.setdefault(tag, {})[event.step] = event.value
        except Exception as error:  # noqa: BLE001 - damaged: the report names it
            if unreadable is not None:
                unreadable.append(f"{event_dir.relative_to(path)}: {type(error).__name__}: "
                                  f"{' '.join(str(error).split())[:160]}")
            continue
    if not curves and (path / CURVES_FILE).is_file():
        try:
            stored = json.loads((path / CURVES_FILE).read_text())
            return {tag: (list(steps), list(values)) for tag, (steps, values) in stored.items()}
        except (ValueError, TypeError):
            return {}
    return {tag: (sorted(points), [points[s] for s in sorted(points)])
            for tag, points in curves.items()}


def export_curves(path: Path, points: int = 500) -> Path:
    """Write the run's curves (at most ``points`` per tag, evenly picked) to ``curves.json``,
    so that a study committed without its event files still draws them."""
    out = {}
    for tag, (steps, values) in read_curves(path).items():
        every = max(1, -(-len(steps) // points))
        out[tag] = [steps[::every], [round(v, 5) for v in values[::every]]]
    file = path / CURVES_FILE
    file.write_text(json.dumps(out, separators=(",", ":")) + "\n")
    return file


def load_run(path: Path) -> Run:
    status, record = read_record(path)
    unreadable: list[str] = []
    curves = read_curves(path, unreadable)
    return Run(path, read_overrides(path, record), status, record, curves, unreadable)


def load_sweep(sweep_dir: Path) -> list[Run]:
    return [load_run(path) for path in find_runs(sweep_dir)]


SWEEP = "sweep"


def load_sweeps(sweep_dirs: list[Path]) -> list[Run]:
    """The runs of several sweep folders as one sweep. Runs of different folders that share
    their overrides (seed included) would be pooled as repeats of one setting, which they are
    not: then every run gets a ``sweep`` axis, its folder's name, that tells them apart."""
    if len(sweep_dirs) == 1:
        return load_sweep(sweep_dirs[0])
    names = [p.resolve().name for p in sweep_dirs]
    if len(set(names)) < len(names):  # two folders of one name: number them
        names = [f"{i}:{n}" for i, n in enumerate(names, start=1)]
    runs = []
    for name, folder in zip(names, sweep_dirs, strict=True):
        for run in load_sweep(folder):
            run.sweep = name
            runs.append(run)
    seen: dict[tuple[tuple[str, str], ...], str] = {}
    for run in runs:
        key = tuple(sorted(run.overrides.items()))
        if seen.setdefault(key, run.sweep) != run.sweep:
            for each in runs:
                each.overrides[SWEEP] = each.sweep
            break
    return runs


def swept_axes(runs: list[Run]) -> tuple[list[str], dict[str, str]]:
    """Override keys whose values differ between runs (in first-seen order), and the fixed ones."""
    keys: list[str] = []
    for run in runs:
        keys += [k for k in run.overrides if k not in keys]
    swept = [k for k in keys if len({r.overrides.get(k) for r in runs}) > 1]
    fixed = {k: runs[0].overrides[k] for k in keys
             if k not in swept and k in runs[0].overrides}
    return swept, fixed


def nested(runs: list[Run], inner: list[str], outer: list[str]) -> bool:
    """Whether each value the ``inner`` axes were set to occurs with one value of ``outer``
    only (``optimizer.lr=1e-3`` only with ``optimizer=adam``): they were not crossed."""
    seen: dict[tuple[str, ...], set[tuple[str, ...]]] = {}
    for run in runs:
        value = tuple(run.overrides.get(a, "") for a in inner)
        if any(value):  # runs that left the inner axes unset do not tell
            seen.setdefault(value, set()).add(tuple(run.overrides.get(a, "") for a in outer))
    return bool(seen) and all(len(with_outer) == 1 for with_outer in seen.values())


def combine_nested(runs: list[Run], axes: list[str]) -> list[str]:
    """Axes swept together but not crossed (``optimizer=sgd`` beside ``optimizer=adam
    optimizer.lr=1e-3``) become one axis, ``optimizer+optimizer.lr``, whose values name the
    runs' settings of both: apart, each would be compared within settings of the other that
    hold one value only. Each run gets the combined override; the new axis list is returned."""
    groups = [[a] for a in axes]
    merged = True
    while merged:
        merged = False
        for first, second in itertools.combinations(groups, 2):
            if nested(runs, second, first) or nested(runs, first, second):
                groups.remove(second)
                first += second
                merged = True
                break
    for group in groups:
        if len(group) > 1:
            name = "+".join(group)
            for run in runs:
                run.overrides[name] = " ".join(f"{a}={run.overrides[a]}" for a in group
                                               if run.overrides.get(a))
    return ["+".join(group) for group in groups]


def named(axis: str, value: str) -> str:
    """``z_dim=50`` for a bare value; a combined axis's values name their keys already."""
    return value if "=" in value else f"{axis}={value}"


def axis_values(runs: list[Run], axis: str) -> list[str]:
    """An axis's values in a natural order: numbers numerically, otherwise first-seen order."""
    values: list[str] = []
    for run in runs:
        value = run.overrides.get(axis, "")
        if value not in values:
            values.append(value)
    try:
        return sorted(values, key=float)
    except ValueError:
        return values
