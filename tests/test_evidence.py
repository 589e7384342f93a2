"""Figures the documentation quotes are the committed records' figures.

The README's experiments table links, for each figure, the committed ``metrics.json`` or
``report.json`` it comes from; every number in its result column must be one of those
records' figures at the printed precision. Each committed study report is rebuilt from its
committed runs and must come out byte for byte the same.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import REPO, backticked_rows, committed_studies

README = REPO / "README.md"
EVIDENCE = ("metrics.json", "report.json")
NO_RECORD = ("no committed record", "not trained here")

LINK = re.compile(r"\[([^\]]*)\]\(([^)\s]+)\)")
NUMBER = r"-?\d[\d,]*(?:\.\d+)?"
# What a result cell may say. A backticked span selects a study's arm for the figures after it
# (`optimizer=default`, `optimizer=default z_dim=20`); every other number must be one of these.
FIGURE = re.compile(rf"""
    `(?P<arm>[^`]+)`
  | \b(?P<metric>best\ FID|FID|IS|KID|precision|recall|class\ TV)\s+(?P<value>{NUMBER})
      (?:\s*±\s*(?P<sd>{NUMBER}))?
  | (?P<count>\d+)\s+of\s+(?P<total>\d+)\s+collapsed
  | (?P<every>every\ run\ collapsed)
  | (?P<seeds>\d+)\s+seeds
  | (?P<steps>{NUMBER})\s+steps
  | (?P<samples>{NUMBER})\s+samples
  | (?P<minutes>{NUMBER})\s+min\b
  | (?P<nodiff>no\ difference\ detected)
""", re.X)
# metrics.json: figure name -> (key, inner key); report.json: figure name -> estimate key
RECORD_KEYS = {"FID": ("fid", "final"), "best FID": ("fid", "best"), "IS": ("is", "final"),
               "KID": ("kid", "final"), "precision": ("precision", "final"),
               "recall": ("recall", "final"), "class TV": ("class_tv", "final")}
KINDS = ("arm", "metric", "count", "every", "seeds", "steps", "samples", "minutes", "nodiff")
REPORT_KEYS = {"FID": "fid", "best FID": "best_fid", "IS": "is", "KID": "kid",
               "precision": "precision", "recall": "recall"}


def experiments_table() -> dict[str, str]:
    """``{experiment: result cell}`` of the README's experiments table."""
    return {name: cells[-1]
            for name, cells in backticked_rows(README.read_text(), "Experiments").items()}


def as_number(text: str) -> float:
    return float(text.replace(",", ""))


def agrees(printed: str, value: float | None) -> bool:
    """``printed`` is ``value`` rounded to the digits it shows."""
    if value is None:
        return False
    decimals = len(printed.split(".")[1]) if "." in printed else 0
    return abs(as_number(printed) - value) <= 0.5 * 10 ** -decimals + 1e-9


def arm_tokens(comparison: dict, arm: dict) -> frozenset[str]:
    """The overrides that name an arm of a report: its value (``20`` on axis ``z_dim`` is
    ``z_dim=20``; a combined axis's values name their keys) and its comparison's context."""
    own = {t if "=" in t else f"{comparison['axis']}={t}" for t in arm["value"].split()}
    return frozenset(own | {f"{k}={v}" for k, v in comparison["context"].items()})


class Evidence:
    """One committed record and the figures a clause may quote from it."""

    def __init__(self, path: Path):
        self.path = path
        self.data = json.loads(path.read_text())
        self.is_report = path.name == "report.json"

    def arms(self, selected: frozenset[str] | None, exact: bool = True) -> list[dict]:
        assert self.is_report, f"{self.path.name} has no arms"
        assert selected, "a figure of a study must follow the arm it is of, in backticks"
        return [arm for c in self.data["comparisons"] for arm in c["arms"]
                if (arm_tokens(c, arm) == selected if exact else selected <= arm_tokens(c, arm))]

    def check(self, match: re.Match, selected: frozenset[str] | None) -> str | None:
        """Why the figure ``match`` is not this record's (None: it is)."""
        kind = next(k for k in KINDS if match.group(k) is not None)
        text = match.group(0)
        if self.is_report:
            if kind == "nodiff":
                ok = any("no difference detected" in v for v in self.data["verdicts"])
                return None if ok else f"{text!r} is in no verdict"
            found = self.arms(selected, exact=kind != "every")
            if not found:
                return f"no arm {sorted(selected or [])} in {self.path.name}"
            for arm in found:
                if kind == "metric":
                    estimate = arm["estimates"][REPORT_KEYS[match.group("metric")]]
                    if not agrees(match.group("value"), estimate["mean"]) or (
                            match.group("sd") and not agrees(match.group("sd"), estimate["sd"])):
                        return f"{text!r}: the record has {estimate['mean']} ± {estimate['sd']}"
                elif kind == "seeds" and arm["runs"] != int(match.group("seeds")):
                    return f"{text!r}: the arm has {arm['runs']} runs"
                elif kind == "count" and (arm["not_ok"].get("collapsed") != int(match.group(
                        "count")) or arm["runs"] != int(match.group("total"))):
                    return f"{text!r}: the arm has {arm['not_ok']} of {arm['runs']}"
                elif kind == "every" and (arm["ok"] or arm["not_ok"].get("collapsed")
                                          != arm["runs"]):
                    return f"{text!r}: the arm has {arm['ok']} ok, {arm['not_ok']}"
                elif kind in ("steps", "samples", "minutes"):
                    return f"{text!r} is a run's figure, not a study's"
            return None
        record = self.data
        if kind == "metric":
            if match.group("sd"):
                return f"{text!r}: one run has no standard deviation"
            key, inner = RECORD_KEYS[match.group("metric")]
            value = (record.get(key) or {}).get(inner)
        elif kind == "steps":
            value = record.get("g_steps")
        elif kind == "samples":  # FID's fakes, as its protocol records them
            value = record["metrics_protocol"]["fid"]["num_fake"]
        elif kind == "minutes":
            value = record["wall_time_s"] / 60
        else:
            return f"{text!r} cannot be checked against one run's metrics.json"
        printed = match.group("value" if kind == "metric" else kind)
        return None if agrees(printed, value) else f"{text!r}: the record has {value}"


def problems(cell: str) -> list[str]:
    """What in one result cell is not backed by the records it links."""
    links = [(m.start(), m.group(2)) for m in LINK.finditer(cell)
             if m.group(2).endswith(EVIDENCE)]
    text = LINK.sub(lambda m: " " * len(m.group(0)), cell)  # link text is no figure
    if any(phrase in cell for phrase in NO_RECORD):
        stray = re.sub(r"`[^`]*`", "", text)
        return [f"figures without a record: {stray!r}"] if re.search(r"\d", stray) else []
    if not links:
        return ["no committed record linked, and no 'no committed record'"]
    found, selected, unchecked = [], None, text
    for match in FIGURE.finditer(text):
        unchecked = unchecked[:match.start()] + " " * len(match.group(0)) + unchecked[
            match.end():]
        if match.group("arm"):
            selected = frozenset(match.group("arm").split())
            continue
        # a figure's record is the first link after it (a link closes its clause)
        target = next((t for at, t in links if at > match.start()), None)
        if target is None:
            found.append(f"{match.group(0)!r} has no record linked after it")
            continue
        why = Evidence(REPO / target).check(match, selected)
        if why:
            found.append(f"{target}: {why}")
    if re.search(r"\d", unchecked):
        found.append(f"figures the test cannot check: {' '.join(unchecked.split())!r}")
    return found


@pytest.mark.parametrize("experiment", sorted(experiments_table()))
def test_experiments_table_quotes_its_committed_records(experiment):
    """Each figure of the README's experiments table is the one in the committed
    metrics.json / report.json it links (a row without one says so and quotes none)."""
    cell = experiments_table()[experiment]
    for _, target in LINK.findall(cell):
        if target.endswith(EVIDENCE):
            assert (REPO / target).is_file(), target
    assert problems(cell) == []


def test_linked_records_are_committed():
    """The records the table links are in git, not only in this working tree."""
    if not (REPO / ".git").exists():
        pytest.skip("not a git checkout")
    targets = sorted({t for cell in experiments_table().values()
                      for _, t in LINK.findall(cell) if t.endswith(EVIDENCE)})
    tracked = subprocess.run(["git", "ls-files", "--", *targets], cwd=REPO, check=True,
                             capture_output=True, text=True).stdout.split()
    assert sorted(tracked) == targets


def test_the_check_fails_on_a_drifted_figure():
    """The table check is able to fail: a figure off by one printed digit, an unchecked
    number and a wrong count are each reported."""
    def drifted(cell: str, old: str, new: str) -> list[str]:
        assert old in cell, old  # the drift is real
        return problems(cell.replace(old, new, 1))

    cell = experiments_table()["dcgan_mnist"]
    assert problems(cell) == []
    assert drifted(cell, "FID 119.2", "FID 119.3")
    assert drifted(cell, "3,750 steps", "3,700 steps")
    assert drifted(cell, "5,000 samples", "2,000 samples")
    assert drifted(cell, "37.8 min", "38.8 min")
    assert drifted(cell, "IS 6.39", "IS 6.39, 7 digits")
    study = experiments_table()["report_optimizer"]
    assert problems(study) == []
    assert drifted(study, "3 of 3 collapsed", "2 of 3 collapsed")
    assert drifted(study, "± 4.3", "± 4.4")
    assert drifted(study, "`optimizer=adam` FID", "`optimizer=ada` FID")
    assert drifted(experiments_table()["mlp_gan"], "no committed record",
                   "no committed record, FID 199.9")


def quoted_verdicts(path: Path) -> list[str]:
    """The block quotes of a Markdown file, one string per quote."""
    quotes, current = [], []
    for line in path.read_text().splitlines() + [""]:
        if line.startswith("> "):
            current.append(line[2:])
        elif current:
            quotes.append(" ".join(" ".join(current).split()))
            current = []
    return quotes


def test_verdicts_quoted_in_docs_are_committed():
    """A verdict quoted in docs/ is, word for word, one that gan-report wrote into a
    committed report.json."""
    verdicts = [" ".join(v.split()) for p in REPO.glob("experiments/**/report.json")
                for v in json.loads(p.read_text())["verdicts"]]
    quotes = [q for p in sorted(REPO.glob("docs/*.md")) for q in quoted_verdicts(p)]
    assert quotes
    for quote in quotes:
        assert any(quote in v for v in verdicts), quote


STUDIES = committed_studies()


@pytest.mark.parametrize("study", STUDIES)
def test_committed_report_is_rebuilt_from_its_runs(study, tmp_path, monkeypatch):
    """gan-report on copies of the committed run folders (no old report files) writes the
    committed report.json and report.md byte for byte.

    report.json records the sweep folders as they were given to gan-report (``sweeps``,
    relative paths such as ``outputs/studies/conv_mnist``); the copies are put at those same
    relative paths so that the rebuilt file can be compared whole. The figures
    (report_files/*.png, and report.html, which embeds them) are not compared: conv_mnist's
    loss curves were drawn from TensorBoard event files that were not committed, and the
    committed curves.json keeps at most 500 points per curve."""
    from gan_lightning.report.build import build_report

    folder = REPO / "experiments" / study
    sweeps = json.loads((folder / "report.json").read_text())["sweeps"]
    for sweep in sweeps:
        inner = Path(os.path.relpath(sweep, sweeps[0]))
        assert not str(inner).startswith(".."), f"{sweep} is not inside {sweeps[0]}"
        source, copy = folder / inner, tmp_path / sweeps[0] / inner
        runs = [p for p in source.iterdir() if (p / "metrics.json").is_file()]
        assert runs, f"no committed runs in {source}"
        for run in runs:
            shutil.copytree(run, copy / run.name)
    monkeypatch.chdir(tmp_path)
    out = build_report(sweeps)
    assert out["json"].read_bytes() == (folder / "report.json").read_bytes()
    assert out["markdown"].read_bytes() == (folder / "report.md").read_bytes()
