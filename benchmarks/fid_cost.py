"""Share of a default MNIST run's wall time spent on FID/IS/precision-recall evaluation.

    python benchmarks/fid_cost.py [--epochs 5]

Trains the default configuration (report's MLP GAN, classifier features, evaluation every
epoch) for a few epochs and prints the evaluation time against the run's training time.
The feature classifier is trained first if it is not cached yet (a one-off, reported apart).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import compose_config  # noqa: E402
from gan_lightning.callbacks import Evaluator  # noqa: E402
from gan_lightning.train import build  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    cfg = compose_config([f"trainer.max_epochs={args.epochs}",
                          "callbacks.progress_bar.refresh_rate=0", *args.overrides],
                         tempfile.mkdtemp(prefix="gan-fid-cost-"))
    datamodule, module, trainer = build(cfg)
    start = time.perf_counter()
    trainer.fit(module, datamodule=datamodule)
    fit_s = time.perf_counter() - start
    evaluator = next(c for c in trainer.callbacks if isinstance(c, Evaluator))
    per_eval = evaluator.eval_time_s / max(len(evaluator.history), 1)
    print(f"epochs={args.epochs} evaluations={len(evaluator.history)} "
          f"fid num_fake={evaluator.schedules['fid'].num_fake} "
          f"num_real={evaluator.schedules['fid'].num_real}")
    print(f"fit_s={fit_s:.1f} eval_s={evaluator.eval_time_s:.2f} per_eval_s={per_eval:.3f} "
          f"setup_s={evaluator.setup_time_s:.2f} (extractor + real statistics, once per run)")
    print(f"final fid={evaluator.history[-1]['fid']:.2f}")
    print(f"eval_fraction={evaluator.eval_time_s / fit_s:.3f}")
    with_setup = (evaluator.eval_time_s + evaluator.setup_time_s) / fit_s
    print(f"eval_fraction_with_setup={with_setup:.3f}")


if __name__ == "__main__":
    main()
