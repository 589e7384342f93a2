"""Random combinations of the config groups: each trains or refuses in one line.

Every group's options (read from ``conf/``) crossed with values of the top-level keys, some of
them bad, drawn with a fixed seed. Each draw runs ``train.py`` for 12 optimizer steps in a
process of its own; it must end with exit status 0 and a result in ``metrics.json``, or with
status 2 and one line saying why (``config error: ...`` before any folder for a bad value):
never a traceback, never a signal. A handful of draws in the default suite, more in ``slow``.
"""

from __future__ import annotations

import json
import random

import pytest

from conftest import FAST, FAST_NO_METRICS, REPO, run_train, write_cifar, write_idx_dataset

GROUPS = {group: sorted(p.stem for p in (REPO / "conf" / group).glob("*.yaml"))
          for group in ("model", "loss", "optimizer", "dataset", "metrics")}
VALUES = {"n_critic": [1, 1, 2, 5], "z_dim": [2, 20, 100, 128], "seed": [0, 42, 7]}
BAD = ["z_dim=0", "n_critic=0", "seed=-5", "optimizer.lr=-1", "dataset.batch_size=0"]


def draws(n: int, seed: int) -> list[list[str]]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        combo = [f"{group}={rng.choice(options)}" for group, options in GROUPS.items()]
        combo += [f"{key}={rng.choice(values)}" for key, values in VALUES.items()]
        if rng.random() < 0.25:
            combo.append(rng.choice(BAD))
        out.append(combo)
    return out


@pytest.fixture(scope="module")
def all_data(tmp_path_factory):
    """Tiny MNIST, FashionMNIST and CIFAR-10 (whose random bytes fail torchvision's md5
    check, so every cifar10 draw must be refused as damaged data, cleanly)."""
    root = tmp_path_factory.mktemp("data")
    write_idx_dataset(root, folder="MNIST")
    write_idx_dataset(root, folder="FashionMNIST", seed=1)
    write_cifar(root)
    return root


def check(combo: list[str], data, out) -> None:
    small = FAST_NO_METRICS if "metrics=none" in combo else FAST  # metrics on few samples
    proc = run_train([*small, "trainer.max_steps=12", "trainer.max_epochs=100", *combo],
                     data, out, check=False)
    said = f"{' '.join(combo)} -> exit {proc.returncode}\n{proc.stderr[-3000:]}"
    assert proc.returncode in (0, 2), said  # not 1 (an exception), not < 0 (a signal)
    assert "Traceback" not in proc.stderr, said
    records = list(out.glob("runs/*/*/metrics.json"))
    if proc.returncode == 0:
        (record,) = [json.loads(p.read_text()) for p in records]
        assert record["status"] in ("ok", "diverged", "collapsed"), said
        return
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(("config error: ", "error: ")), said
    if last.startswith("config error: "):
        assert not out.exists(), said  # refused before any folder


@pytest.mark.parametrize("combo", draws(5, seed=2), ids=" ".join)
def test_a_few_combinations_train_or_refuse_cleanly(combo, all_data, tmp_path):
    check(combo, all_data, tmp_path / "out")


@pytest.mark.slow
@pytest.mark.parametrize("combo", draws(36, seed=1), ids=" ".join)
def test_many_combinations_train_or_refuse_cleanly(combo, all_data, tmp_path):
    check(combo, all_data, tmp_path / "out")
