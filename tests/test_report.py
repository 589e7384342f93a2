"""``gan-report``: sweep folders -> report.md / report.html, from metrics.json and events."""

import json
import re
import statistics
import subprocess
import sys

import pytest

from conftest import FAST, NO_METRICS, REPO, fake_run, run_train
from gan_lightning.report import build_report
from gan_lightning.report.runs import load_sweep, swept_axes


@pytest.fixture
def sweep(tmp_path):
    """optimizer x seed, 2 x 2 ok runs, plus a failed, an incomplete and an unreadable one."""
    sweep = tmp_path / "sweep"
    fids = {("sgd", 1): [300.0, 200.0], ("sgd", 2): [310.0, 220.0],
            ("adam", 1): [400.0, 390.0], ("adam", 2): [420.0, 380.0]}
    for num, ((opt, seed), fid) in enumerate(fids.items()):
        fake_run(sweep, num, [f"optimizer={opt}", f"seed={seed}"], fid=fid,
                 losses=(1.0 + num, 2.0 - 0.1 * num))
    failed = fake_run(sweep, 4, ["optimizer=adam", "seed=3"], status="failed", events=False)
    record = json.loads((failed / "metrics.json").read_text())
    record["error"] = "ValueError: deliberately broken"
    (failed / "metrics.json").write_text(json.dumps(record))
    fake_run(sweep, 5, ["optimizer=sgd", "seed=3"], status=None)  # killed before the end
    broken = fake_run(sweep, 6, ["optimizer=sgd", "seed=4"], fid=[500.0])
    (broken / "metrics.json").write_text('{"status": "ok", "fi')  # truncated write
    event = next((broken / "tensorboard").glob("events.*"))
    event.write_bytes(event.read_bytes()[:-7])  # truncated event file
    return sweep


def table_rows(md: str, heading: str) -> list[list[str]]:
    section = md.split(f"## {heading}\n", 1)[1].split("\n#", 1)[0]
    lines = [ln for ln in section.splitlines() if ln.startswith("| ")][2:]
    return [[c.strip() for c in ln.strip("| ").split(" | ")] for ln in lines]


def test_statuses_axes_and_curves_are_read_back(sweep):
    runs = {r.name.split("_")[0]: r for r in load_sweep(sweep)}
    assert [runs[str(i)].status for i in range(7)] == ["ok"] * 4 + ["failed", "incomplete",
                                                                     "unreadable"]
    assert swept_axes(list(runs.values())) == (["optimizer", "seed"], {})
    steps, values = runs["0"].curves["train/loss_d"]
    assert steps == list(range(1, 21)) and values[0] == pytest.approx(1.01)
    assert runs["5"].overrides == {"optimizer": "sgd", "seed": "3"}  # from .hydra


def test_report_tables_match_metrics_json(sweep):
    out = build_report(sweep)
    md = out["markdown"].read_text()
    rows = table_rows(md, "Runs")
    assert len(rows) == 7
    assert [r[3] for r in rows] == ["ok"] * 4 + ["failed", "incomplete", "unreadable"]
    assert rows[0][:8] == ["0", "sgd", "1", "ok", "200", "200", "1.00", "-"]
    over_seeds = {r[0]: r for r in table_rows(md, "Over seeds")}
    # sgd: two ok runs with final FID 200 and 220, plus the incomplete and unreadable ones
    sgd_fid = f"{statistics.mean([200, 220]):.4g} ± {statistics.stdev([200, 220]):.4g}"
    assert over_seeds["sgd"][1:4] == ["4", "1 incomplete, 2 ok, 1 unreadable", sgd_fid]
    adam_fid = f"{statistics.mean([390, 380]):.4g} ± {statistics.stdev([390, 380]):.4g}"
    assert over_seeds["adam"][3] == adam_fid
    assert "deliberately broken" in md
    for name in ("losses_optimizer.png", "fid_optimizer.png"):
        assert (out["files"] / name).stat().st_size > 5000


def test_report_html_is_self_contained_and_regenerates_identically(sweep):
    out = build_report(sweep)
    first = {p: p.read_bytes() for p in [out["markdown"], out["html"],
                                         *sorted(out["files"].iterdir())]}
    html = out["html"].read_text()
    assert html.count("data:image/png;base64,") == 2  # the two figures; no samples.png here
    assert not re.search(r"<img src='(?!data:)", html)
    build_report(sweep)
    again = {p: p.read_bytes() for p in first}
    assert again == first


def test_sample_grid_is_laid_out_by_the_swept_axes(tmp_path):
    from PIL import Image

    sweep = tmp_path / "sweep"
    for num, (opt, z) in enumerate([(o, z) for o in ("sgd", "adam") for z in (20, 50)]):
        run = fake_run(sweep, num, [f"optimizer={opt}", f"z_dim={z}"], fid=[100.0 + num])
        Image.new("L", (8, 8), 40 * num).save(run / "samples.png")
    md = build_report(sweep)["markdown"].read_text()
    grid = table_rows(md, "Final samples")
    assert [r[0] for r in grid] == ["**optimizer=sgd**", "**optimizer=adam**"]
    assert "0_optimizer=sgd,z_dim=20/samples.png" in grid[0][1]
    assert "3_optimizer=adam,z_dim=50/samples.png" in grid[1][2]
    assert (sweep / "report_files" / "losses_z_dim.png").is_file()


def test_runs_measured_with_different_extractors_are_flagged(tmp_path):
    """Two classifiers trained apart share a cache name, not their weights: the report says
    which runs were measured with which, above its verdicts; one extractor: no caution."""
    sweep = tmp_path / "sweep"
    for num, (opt, weights) in enumerate([("sgd", "aaa"), ("sgd", "aaa"), ("adam", "bbb")]):
        run = fake_run(sweep, num, [f"optimizer={opt}", f"seed={num}"], fid=[100.0 + num])
        record = json.loads((run / "metrics.json").read_text())
        record["metrics_protocol"] = {"feature": "classifier", "classifier_cache": "c.pt",
                                      "classifier_weights": weights}
        (run / "metrics.json").write_text(json.dumps(record))
    out = build_report(sweep)
    summary = json.loads(out["json"].read_text())
    assert summary["feature_extractors"] == {"classifier c.pt (weights aaa)": 2,
                                             "classifier c.pt (weights bbb)": 1}
    md = out["markdown"].read_text()
    assert md.index("Caution: these runs' figures come from 2 different") < md.index("Verdicts")
    record = json.loads((sweep / "2_optimizer=adam,seed=2" / "metrics.json").read_text())
    record["metrics_protocol"]["classifier_weights"] = "aaa"
    (sweep / "2_optimizer=adam,seed=2" / "metrics.json").write_text(json.dumps(record))
    out = build_report(sweep)
    assert "Caution" not in out["markdown"].read_text()
    assert json.loads(out["json"].read_text())["feature_extractors"] == {
        "classifier c.pt (weights aaa)": 3}


def test_the_report_says_which_reference_chose_the_best_epoch(tmp_path):
    """Runs that chose their best epoch on held-out images are named so; records without
    best_chosen_on (written before held-out images existed) chose on the test split, and the
    report calls their best FIDs optimistic; a mix is counted."""
    sweep = tmp_path / "sweep"
    held_out = "validation: 5000 training images held out"
    for num, chosen in enumerate([held_out, held_out, None]):
        run = fake_run(sweep, num, [f"seed={num}"], fid=[100.0 + num])
        record = json.loads((run / "metrics.json").read_text())
        record["metrics_protocol"] = {"feature": "classifier", "reference": "test split",
                                      **({"best_chosen_on": chosen} if chosen else {})}
        (run / "metrics.json").write_text(json.dumps(record))

    def report(runs):
        for num in range(3):
            folder = next(sweep.glob(f"{num}_*"))
            (folder / "metrics.json").rename(folder / ("metrics.json" if num in runs
                                                       else "hidden.json"))
        out = build_report(sweep)
        for hidden in sweep.glob("*/hidden.json"):
            hidden.rename(hidden.with_name("metrics.json"))
        return out["markdown"].read_text(), json.loads(out["json"].read_text())

    md, summary = report({0, 1})
    assert summary["best_chosen_on"] == {held_out: 2}
    assert f"the lowest FID against images held out of training ({held_out})" in md
    assert "optimistic" not in md
    md, summary = report({2})
    assert summary["best_chosen_on"] == {"test split": 1}
    assert "chosen on the test split, the reference the FIDs are reported on" in md
    md, summary = report({0, 1, 2})
    assert summary["best_chosen_on"] == {held_out: 2, "test split": 1}
    assert f"different references (test split: 1 run; {held_out}: 2 runs)" in md


def test_a_run_that_ended_past_its_best_shows_how_far(tmp_path):
    """final / best FID: 1.00 for a run that ended at its best evaluation; above 1 for one
    that peaked earlier (records without the figure get it from their final and best)."""
    sweep = tmp_path / "sweep"
    fake_run(sweep, 0, ["optimizer=sgd"], fid=[300.0, 100.0])
    fake_run(sweep, 1, ["optimizer=adam"], fid=[300.0, 100.0, 130.0])
    rows = {r[1]: r for r in table_rows(build_report(sweep)["markdown"].read_text(), "Runs")}
    assert rows["sgd"][3:6] == ["100", "100", "1.00"]
    assert rows["adam"][3:6] == ["130", "100", "1.30"]


def test_cli_reports_a_missing_folder_in_one_line(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "gan_lightning.report", str(tmp_path / "nope")],
                          capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [f"gan-report: sweep folder not found: "
                                                f"{tmp_path / 'nope'}"]
    empty = tmp_path / "empty"
    empty.mkdir()
    proc = subprocess.run([sys.executable, "-m", "gan_lightning.report", str(empty)],
                          capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 2 and "no runs" in proc.stderr


def test_real_sweep_of_eight_runs_and_a_failing_job(tiny_data, tmp_path):
    """train.py -m writes the report itself at the end of the sweep (hydra callback)."""
    sweep = tmp_path / "sweep"
    run_train(["-m", "optimizer=sgd,adam", "z_dim=20,50", "seed=1,2", *FAST,
               f"hydra.sweep.dir={sweep}"], tiny_data, tmp_path)
    md = (sweep / "report.md").read_text()
    assert len(table_rows(md, "Runs")) == 8
    failing = run_train(["-m", "z_dim=0", *FAST, f"hydra.sweep.dir={sweep}"], tiny_data,
                        tmp_path, check=False)
    # the report is written, then the command says a job failed
    assert failing.returncode == 1
    assert "1 of 9 jobs failed or were killed" in failing.stderr + failing.stdout
    md = (sweep / "report.md").read_text()
    rows = table_rows(md, "Runs")
    assert len(rows) == 9
    statuses = [r[4] for r in rows]
    assert statuses.count("failed") == 1 and set(statuses) <= {"ok", "collapsed", "failed"}
    records = [json.loads(p.read_text()) for p in sorted(sweep.glob("*/metrics.json"))]
    fids = sorted(f"{r['fid']['final']:.4g}" for r in records if "fid" in r)
    assert sorted(r[5] for r in rows if r[5] != "-") == fids
    assert len(fids) == 8
    for name in ("losses_optimizer", "losses_z_dim", "fid_optimizer", "fid_z_dim"):
        assert (sweep / "report_files" / f"{name}.png").is_file()
    html = (sweep / "report.html").read_text()
    assert html.count("data:image/png;base64,") >= 4 + 4  # figures + one grid per setting


def test_a_damaged_event_file_is_named_in_the_report(tiny_data, tmp_path):
    """TensorBoard's reader stops quietly at a damaged record; the report says where."""
    sweep = tmp_path / "sweep"
    run_train(["-m", "seed=1,2", *NO_METRICS, "trainer.max_epochs=2",
               f"hydra.sweep.dir={sweep}"], tiny_data, tmp_path)
    (event_file,) = sweep.glob("0_*/tensorboard/events.out.tfevents.*")
    data = bytearray(event_file.read_bytes())
    data[len(data) // 2: len(data) // 2 + 64] = b"\xab" * 64
    event_file.write_bytes(bytes(data))
    build_report(sweep)
    md = (sweep / "report.md").read_text()
    assert "event file unreadable" in md and f"{event_file.name} is damaged at byte" in md
    assert md.count("event file unreadable") == 1  # the whole run is not named
