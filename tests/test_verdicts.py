"""Report verdicts: confidence intervals, Welch tests with Holm's correction, seeds needed,
collapsed runs counted apart, several sweep folders read as one."""

import json
import math
import random
from html import escape as html_escape
from pathlib import Path

import pytest
from scipy import stats

from conftest import fake_run
from gan_lightning.record import Status
from gan_lightning.report import build_report
from gan_lightning.report.__main__ import main as report_main
from gan_lightning.report.runs import Run, combine_nested, load_sweeps
from gan_lightning.report.verdicts import (
    Estimate,
    comparisons,
    headlines,
    holm,
    seeds_needed,
    welch,
)


def run(overrides: dict[str, str], fid: float, status: str = Status.OK) -> Run:
    return Run(Path("/nowhere"), overrides, Status(status),
               {"status": status, "fid": {"final": fid, "best": fid}})


def sweep_of(arms: dict[str, list[float]], axis: str = "optimizer") -> list[Run]:
    return [run({axis: value, "seed": str(seed)}, fid)
            for value, fids in arms.items() for seed, fid in enumerate(fids, start=1)]


def test_welch_holm_and_interval_match_textbook_values():
    a, b = [10.0, 12.0, 11.0, 13.0], [20.0, 25.0, 21.0]
    diff, low, high, p = welch(a, b)
    assert p == pytest.approx(stats.ttest_ind(a, b, equal_var=False).pvalue)
    assert diff == pytest.approx(11.5 - 22.0) and low < diff < high
    # Holm: sorted p 0.01, 0.02, 0.04 -> 0.03, 0.04, 0.04 (monotone), in the input order
    assert holm([0.04, 0.01, 0.02]) == pytest.approx([0.04, 0.03, 0.04])
    estimate = Estimate.of([1.0, 2.0, 3.0])
    half = stats.t.ppf(0.975, 2) * 1.0 / math.sqrt(3)
    assert (estimate.low, estimate.high) == pytest.approx((2 - half, 2 + half))
    # the standard table: effect size 1.0 needs 17 per group at alpha 0.05, power 0.8; 0.5: 64
    assert seeds_needed(1.0, 1.0) == 17
    assert seeds_needed(5.0, 10.0) == 64
    assert seeds_needed(0.0, 1.0) is None


def test_a_large_gap_is_found_and_its_interval_covers_the_truth():
    rng = random.Random(0)
    covered = 0
    for _ in range(20):
        runs = sweep_of({"sgd": [rng.gauss(100, 3) for _ in range(3)],
                         "adam": [rng.gauss(170, 3) for _ in range(3)]})
        (found,) = comparisons(runs, ["optimizer"])
        (gap,) = found.differences["fid"]
        assert found.best == "sgd" and gap.detected
        assert found.verdict.startswith("optimizer: optimizer=sgd beats optimizer=adam by ")
        covered += gap.low <= 70 <= gap.high
    assert covered >= 17  # a 95% interval: 19 of 20 expected


def test_arms_from_one_distribution_are_rarely_called_different():
    rng = random.Random(1)
    claimed = 0
    for _ in range(100):
        runs = sweep_of({z: [rng.gauss(110, 4) for _ in range(3)] for z in ("20", "50", "100",
                                                                          "200")}, "z_dim")
        (found,) = comparisons(runs, ["z_dim"])
        claimed += any(d.detected for d in found.differences["fid"])
        assert ("no difference detected" in found.verdict) != any(
            d.detected for d in found.differences["fid"]) or "beats" in found.verdict
    assert claimed <= 5  # Holm keeps the family-wise error at 5%


def test_no_difference_verdict_gives_the_seeds_a_gap_would_need():
    runs = sweep_of({"20": [108.0, 112.0, 110.0], "50": [109.0, 113.0, 111.5]}, "z_dim")
    (found,) = comparisons(runs, ["z_dim"])
    assert found.verdict.startswith("z_dim: no difference detected at 3 seeds; the largest gap, "
                                    "z_dim=20 vs z_dim=50, 1.17 FID")
    assert f"about {found.seeds_needed} seeds per value" in found.verdict
    assert found.seeds_needed == seeds_needed(7 / 6, found.pooled_sd)


def test_collapsed_runs_are_counted_not_averaged():
    runs = sweep_of({"default": [100.0, 104.0], "adam": [180.0, 178.0, 182.0]})
    runs.append(run({"optimizer": "default", "seed": "3"}, 2000.0, Status.COLLAPSED))
    runs += [run({"optimizer": "sgd", "seed": str(s)}, 2500.0, Status.COLLAPSED) for s in (1, 2)]
    (found,) = comparisons(runs, ["optimizer"])
    assert found.estimates["fid"]["default"].mean == pytest.approx(102.0)
    assert found.estimates["fid"]["sgd"].n == 0
    assert "optimizer=default: 1 of 3 collapsed; optimizer=sgd: 2 of 2 collapsed" in found.verdict
    assert "at 2-3 seeds" in found.verdict


def test_one_seed_gets_no_p_values_but_a_reason():
    (found,) = comparisons(sweep_of({"sgd": [100.0], "adam": [150.0]}), ["optimizer"])
    assert "no confidence intervals or p-values: a value with one seed" in found.verdict
    assert found.differences["fid"][0].p is None


def test_an_axis_that_never_trains_gets_one_line():
    runs = [run({"optimizer": o, "z_dim": z, "seed": "1"}, 1e3, Status.COLLAPSED if o == "sgd"
                else Status.OK) for o in ("sgd", "default") for z in ("20", "50")]
    found = comparisons(runs, ["optimizer", "z_dim"])
    lines = headlines(found)
    assert lines[0] == ("optimizer: nothing to compare in any setting of z_dim: fewer than two "
                        "values have a run that ended ok. Not averaged: optimizer=sgd: 2 of 2 "
                        "collapsed.")
    assert len(lines) == 3  # z_dim within sgd, z_dim within default


def test_axes_that_are_not_crossed_are_judged_as_one():
    runs = sweep_of({"sgd": [100.0, 101.0], "adam": [150.0, 152.0]})
    runs += [run({"optimizer": "adam", "optimizer.lr": "1e-3", "seed": str(s)}, f)
             for s, f in ((1, 120.0), (2, 121.0))]
    axes = combine_nested(runs, ["optimizer", "optimizer.lr"])
    assert axes == ["optimizer+optimizer.lr"]
    values = {r.overrides[axes[0]] for r in runs}
    assert values == {"optimizer=sgd", "optimizer=adam", "optimizer=adam optimizer.lr=1e-3"}
    crossed = [run({"a": a, "b": b}, 1.0) for a in "xy" for b in "uv"]
    assert combine_nested(crossed, ["a", "b"]) == ["a", "b"]


def write_sweep(root: Path, arms: dict[str, list[float]], seeds: list[int]) -> Path:
    num = 0
    for value, fids in arms.items():
        for seed, fid in zip(seeds, fids, strict=True):
            fake_run(root, num, [f"optimizer={value}", f"seed={seed}"], fid=[fid * 2, fid],
                     extra={"is": {"final": 7.0 - fid / 100}, "precision": {"final": 0.6},
                            "recall": {"final": 0.7}})
            num += 1
    return root


def verdict_part(report: dict) -> dict:
    return {k: report[k] for k in ("axes", "runs", "statuses", "verdicts", "comparisons")}


def test_a_merged_report_equals_the_report_of_one_folder_holding_both(tmp_path):
    arms = {"sgd": [100.0, 104.0, 103.0], "adam": [180.0, 176.0, 181.0]}
    write_sweep(tmp_path / "first", {k: v[:2] for k, v in arms.items()}, [1, 2])
    write_sweep(tmp_path / "more_seeds", {k: v[2:] for k, v in arms.items()}, [3])
    write_sweep(tmp_path / "together", arms, [1, 2, 3])
    assert report_main([str(tmp_path / "first"), str(tmp_path / "more_seeds"),
                        "--out", str(tmp_path / "merged")]) == 0
    merged = json.loads((tmp_path / "merged" / "report.json").read_text())
    single = json.loads(build_report(tmp_path / "together")["json"].read_text())
    assert verdict_part(merged) == verdict_part(single)
    assert merged["verdicts"][0].startswith("optimizer: optimizer=sgd beats optimizer=adam by")
    md = (tmp_path / "merged" / "report.md").read_text()
    assert md.index("## Verdicts") < md.index("## Runs")
    assert "| more_seeds/0 |" in md  # runs named by folder and job
    html = (tmp_path / "merged" / "report.html").read_text()
    assert html_escape(merged["verdicts"][0]) in html


def test_folders_repeating_the_same_runs_are_told_apart_by_a_sweep_axis(tmp_path):
    write_sweep(tmp_path / "old", {"sgd": [100.0, 101.0]}, [1, 2])
    write_sweep(tmp_path / "new", {"sgd": [90.0, 91.0]}, [1, 2])
    runs = load_sweeps([tmp_path / "old", tmp_path / "new"])
    assert {r.overrides["sweep"] for r in runs} == {"old", "new"}
    report = json.loads(build_report([tmp_path / "old", tmp_path / "new"],
                                     tmp_path / "out")["json"].read_text())
    assert report["axes"] == ["sweep"]
    assert report["verdicts"][0].startswith("sweep: sweep=new beats sweep=old by 10.0 FID")


def test_curves_survive_without_event_files(tmp_path):
    from gan_lightning.report.runs import export_curves, read_curves

    run = fake_run(tmp_path / "sweep", 0, ["optimizer=sgd"], fid=[100.0], steps=1200)
    full = read_curves(run)
    export_curves(run, points=100)
    for event in run.rglob("events.out.tfevents.*"):
        event.unlink()
    kept = read_curves(run)
    assert set(kept) == set(full) and len(kept["train/loss_d"][0]) == 100
    assert kept["train/loss_d"][0][:2] == full["train/loss_d"][0][:24:12]
