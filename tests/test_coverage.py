"""Mode coverage: which classes the generator draws (``metrics.coverage``), in the run's
record, TensorBoard and the report."""

import json
import math

import lightning as L
import pytest
import torch

from conftest import FAST, compose_cfg
from gan_lightning.metrics.coverage import class_coverage, conditional_accuracy


def logits_for(classes, k=10):
    """Logits that put sample i in class ``classes[i]`` with probability ~0.9."""
    logits = torch.zeros(len(classes), k)
    logits[torch.arange(len(classes)), torch.as_tensor(classes)] = math.log(0.9 * (k - 1) / 0.1)
    return logits


def test_a_uniform_mix_covers_every_class():
    real = torch.full((10,), 0.1, dtype=torch.float64)
    out = class_coverage(logits_for([i % 10 for i in range(1000)]), real)
    assert out["class_tv"] == pytest.approx(0.0, abs=1e-6) and out["classes_covered"] == 10
    assert out["class_kl"] < 1e-3 and out["class_confidence"] == pytest.approx(0.9)
    assert out["class_shares"] == pytest.approx([0.1] * 10)


def test_dropped_classes_are_counted_and_move_the_distances():
    real = torch.full((10,), 0.1, dtype=torch.float64)
    # classes 0 and 1 never drawn, their share spread over the other eight
    drawn = [2 + i % 8 for i in range(1000)]
    out = class_coverage(logits_for(drawn), real)
    assert out["classes_covered"] == 8
    assert out["class_tv"] == pytest.approx(0.2)  # 0.5 * (0.1 + 0.1 + 8 * 0.025)
    assert out["class_kl"] > 0.5  # two missing classes: large, finite
    # a class drawn at under a tenth of its real rate is not covered; at a tenth it is
    rare = [0] * 9 + [1 + i % 9 for i in range(991)]
    assert class_coverage(logits_for(rare), real)["classes_covered"] == 9
    enough = [0] * 10 + [1 + i % 9 for i in range(990)]
    assert class_coverage(logits_for(enough), real)["classes_covered"] == 10


def test_conditional_accuracy_per_requested_class():
    requested = torch.arange(40) % 4
    found = requested.clone()
    found[requested == 3] = 0  # class 3 always drawn as a 0
    out = conditional_accuracy(logits_for(found.tolist(), k=4), requested, 4)
    assert out["cond_accuracy"] == pytest.approx(0.75)
    assert out["cond_accuracy_per_class"] == [1.0, 1.0, 1.0, 0.0]


def coverage_run(overrides, tiny_data, tmp_path):
    from gan_lightning.train import run

    cfg = compose_cfg([*FAST, "trainer.max_epochs=1",
                       *overrides], tiny_data, tmp_path)
    L.seed_everything(0, verbose=False)
    record = run(cfg)
    return record, json.loads((tmp_path / "metrics.json").read_text())


def test_a_run_records_and_charts_its_class_coverage(tiny_data, tmp_path):
    record, written = coverage_run([], tiny_data, tmp_path)
    assert record["status"] == "ok"
    for key in ("class_tv", "class_kl", "classes_covered", "class_confidence"):
        assert math.isfinite(written[key]["final"]), key
    assert len(written["class_shares"]["final"]) == 10
    assert sum(written["class_shares"]["real"]) == pytest.approx(1.0)
    assert "cond_accuracy" not in written  # an unconditional model
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    (events,) = {p.parent for p in tmp_path.rglob("events.out.tfevents.*")}
    accumulator = EventAccumulator(str(events))
    accumulator.Reload()
    assert "coverage/class_shares" in accumulator.Tags()["images"]
    assert "val/class_tv" in accumulator.Tags()["scalars"]


def test_a_conditional_run_records_its_accuracy_per_class(tiny_data, tmp_path):
    _, written = coverage_run(["model=cgan"], tiny_data, tmp_path)
    assert 0 <= written["cond_accuracy"]["final"] <= 1
    assert len(written["cond_accuracy_per_class"]["final"]) == 10


def test_the_report_shows_coverage_beside_fid(tmp_path):
    from gan_lightning.record import write_record
    from gan_lightning.report import build_report

    real = [0.1] * 10
    for job, (optimizer, shares) in enumerate([("sgd", real), ("adam", [0.0, 0.2] + [0.1] * 8)]):
        folder = tmp_path / f"{job}_optimizer={optimizer}"
        folder.mkdir()
        tv = 0.5 * sum(abs(a - b) for a, b in zip(shares, real, strict=True))
        write_record(folder / "metrics.json", {
            "status": "ok", "overrides": [f"optimizer={optimizer}"], "fid": {"final": 100.0},
            "class_tv": {"final": tv}, "classes_covered": {"final": 10 - shares.count(0.0)},
            "class_shares": {"final": shares, "real": real}})
    out = build_report(tmp_path)
    text = out["markdown"].read_text()
    assert "class TV" in text and "classes covered" in text and "cond. accuracy" not in text
    assert "| 1 | adam | ok | 100 | - | - | - | - | - | - | - | - | 0.100 | 9 | - |" in text
    assert (out["files"] / "class_shares.png").is_file() and "Classes drawn" in text
