"""What ``gan-eval`` costs per 1,000 samples, for each feature extractor.

    python benchmarks/eval_cost.py [--n 2000] [--n-inception 200]

Trains two small checkpoints (the d2l toy on gaussian2d; the default MLP GAN on the full
MNIST, 20 generator steps, metrics off: their quality does not change the cost), then runs
whole ``gan-eval`` processes, one per extractor, on the default metrics config (FID, KID, IS,
precision/recall, class coverage) with ``n`` fakes and as many reference images:

- ``identity`` on gaussian2d's 2-D points,
- ``classifier`` on MNIST 28x28 (the cached feature classifier; trained once if missing),
- ``inception`` on MNIST: torch-fidelity's InceptionV3 with randomly initialised weights,
  saved to a local file (the real file cannot be downloaded here; the compute per image is
  the same, the figures are meaningless).

Each ``run:`` line gives one process's own timing (its JSON): ``s_per_1000`` = (sampling +
feature extraction of the fakes) per 1,000 fakes, the part that grows with ``n``; ``setup_s``
(the extractor and the reference images' features), ``metrics_s`` (statistics: FID's matrix
square root, KID's subsets, precision/recall's k-NN) and the process's wall time. The last
lines give per arm the median ``s_per_1000`` over ``--repeats`` runs (the machine's speed
varies between minutes) and the last run's other figures. Needs the full MNIST
(``$GAN_DATA_DIR`` or ../shared/data); skips without it.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from unittest import mock

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import compose_config, data_dir  # noqa: E402

GAN_EVAL = str(Path(sys.executable).parent / "gan-eval")


def train_checkpoint(overrides: list[str], out: Path) -> Path:
    """A few generator steps, metrics off: a checkpoint whose G has the real cost."""
    from gan_lightning.train import run

    cfg = compose_config([*overrides, "metrics=none", "logger=[]", "callbacks.samples=null",
                          "callbacks.progress_bar.refresh_rate=0", "max_g_steps=20",
                          "trainer.enable_model_summary=false"], str(out))
    with contextlib.redirect_stdout(io.StringIO()):  # run() prints the config
        run(cfg)
    return out / "last.ckpt"


def random_inception_weights(path: Path) -> Path:
    """torch-fidelity's InceptionV3 with random weights, as a local weights file."""
    import torch_fidelity.feature_extractor_inceptionv3 as fe

    # build the architecture without fetching (or loading) any weights
    with mock.patch.object(fe, "load_state_dict_from_url", return_value={}), \
            mock.patch.object(fe.FeatureExtractorInceptionV3, "load_state_dict"):
        model = fe.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"])
    torch.save(model.state_dict(), path)
    return path


def gan_eval(ckpt: Path, n: int, out: Path, *overrides: str) -> dict:
    """One whole gan-eval process: its JSON, with the process's wall time added."""
    load = os.getloadavg()[0]
    start = time.perf_counter()
    proc = subprocess.run(
        [GAN_EVAL, f"ckpt={ckpt}", f"n={n}", f"metrics.fid.num_real={n}",
         f"metrics.precision_recall.num_real={n}", f"paths.data_dir={data_dir()}",
         "progress=false", f"out={out}", *overrides],
        capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"gan-eval failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    record = json.loads(out.read_text())
    record["wall_s"] = time.perf_counter() - start
    record["load_before"] = load
    return record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=2000, help="fakes (and reference images) "
                        "for identity and classifier")
    parser.add_argument("--n-inception", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3, help="runs of the identity and "
                        "classifier arms (the machine's speed varies between minutes)")
    args = parser.parse_args()
    if not (Path(data_dir()) / "MNIST" / "raw" / "train-images-idx3-ubyte").is_file():
        print(f"skipped: no full MNIST under {data_dir()} (set GAN_DATA_DIR)")
        return
    work = Path(tempfile.mkdtemp(prefix="gan-eval-cost-"))
    toy = train_checkpoint(["experiment=gaussian2d"], work / "toy")
    mnist = train_checkpoint([], work / "mnist")
    weights = random_inception_weights(work / "inception-random.pth")
    print(f"# whole gan-eval processes, default metrics config; torch threads "
          f"{torch.get_num_threads()}, {os.cpu_count()} CPUs; inception: random weights "
          f"(same compute per image as the real file)")
    arms = [
        ("identity", toy, args.n, [], args.repeats),
        ("classifier", mnist, args.n, [], args.repeats),
        # how much of metrics_s is KID's (100 subsets of up to 1,000): the same without it
        ("classifier", mnist, args.n, ["metrics.kid.enabled=false"], 1),
        ("inception", mnist, args.n_inception,
         ["metrics=inception", f"metrics.fid.weights_path={weights}"], 1),
    ]
    summary = []
    for i, (name, ckpt, n, extra, repeats) in enumerate(arms):
        kid = "off" if "metrics.kid.enabled=false" in extra else "on"
        per_1000 = []
        for repeat in range(repeats):
            r = gan_eval(ckpt, n, work / f"{i}-{repeat}-{name}.json", *extra)
            t = r["timing"]
            assert r["protocol"]["feature"] == name, r["protocol"]["feature"]
            per_1000.append(t["s_per_1000_fakes"])
            print(f"  run: extractor={name} kid={kid} n={n} s_per_1000={per_1000[-1]:.4g} "
                  f"sampling_s={t['sampling_s']:.3g} features_s={t['features_s']:.3g} "
                  f"setup_s={t['setup_s']:.2f} metrics_s={t['metrics_s']:.2f} "
                  f"total_s={t['total_s']:.2f} wall_s={r['wall_s']:.2f} "
                  f"load_before={r['load_before']:.2f}", flush=True)
        summary.append(f"extractor={name} kid={kid} n={n} "
                       f"s_per_1000={statistics.median(per_1000):.4g} (median of {repeats}; "
                       f"min {min(per_1000):.4g}) metrics_s={t['metrics_s']:.2f} "
                       f"setup_s={t['setup_s']:.2f} wall_s={r['wall_s']:.1f}")
    print("\n".join(summary))


if __name__ == "__main__":
    main()
