"""What each stabilizer costs per generator step: the same model trained for the same steps
with nothing on, and with each stabilizer alone, in one process, the settings alternated over
several rounds (the machine's speed drifts; the median of the rounds is printed).

    python benchmarks/stabilizers.py                 # experiment=conv_mnist_plain's networks
    python benchmarks/stabilizers.py --steps 200 --rounds 3 --base "experiment=dcgan"

One line per setting:  setting=X ms_per_step=.. relative=<its time / the baseline's>
and a last line with the EMA's own cost:  ema_update_ms=..  (one update of the average).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import lightning as L
import torch

from common import compose_config
from gan_lightning.ema import EMA
from gan_lightning.train import build

BASE = "experiment=conv_mnist_plain"
SETTINGS = {
    "baseline": [],
    "ema": ["ema.decay=0.999"],
    "spectral_norm": ["spectral_norm=true"],
    "sn_no_batchnorm": ["spectral_norm=true",
                        "model.discriminator.batch_norm=false"],
    "r1_every_1": ["r1.gamma=1"],
    "r1_every_16": ["r1.gamma=1", "r1.every=16"],
    "diffaugment": ["augment.policy=[color,translation,cutout]"],
    "lr_schedule": ["lr_schedule=linear"],
}


def seconds_per_step(base: list[str], extra: list[str], steps: int) -> float:
    with tempfile.TemporaryDirectory() as out:
        cfg = compose_config([*base, *extra, f"max_g_steps={steps}", "metrics=none",
                              "logger=csv", "callbacks.progress_bar=null",
                              "+trainer.enable_progress_bar=false",
                              "trainer.enable_model_summary=false", "callbacks.samples=null",
                              "dataset.source=torchvision"], out)
        L.seed_everything(0, verbose=False)
        datamodule, module, trainer = build(cfg)
        start = time.perf_counter()
        trainer.fit(module, datamodule=datamodule)
        return (time.perf_counter() - start) / module.g_step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--base", default=BASE, help="overrides of the model trained")
    parser.add_argument("--only", nargs="*", default=list(SETTINGS), choices=list(SETTINGS))
    args = parser.parse_args()
    base = args.base.split()
    times: dict[str, list[float]] = {name: [] for name in args.only}
    for _ in range(args.rounds):
        for name in args.only:
            times[name].append(seconds_per_step(base, SETTINGS[name], args.steps))
    baseline = statistics.median(times.get("baseline") or [float("nan")])
    for name, values in times.items():
        median = statistics.median(values)
        print(f"setting={name} ms_per_step={1000 * median:.2f} "
              f"relative={median / baseline:.3f}", flush=True)
    cfg = compose_config(base, tempfile.gettempdir())
    from gan_lightning.networks import build_networks

    generator, _ = build_networks(cfg)
    ema = EMA(generator, 0.999)
    for step in range(1, 21):
        ema.update(generator, step)
    start = time.perf_counter()
    for step in range(21, 221):
        ema.update(generator, step)
    print(f"ema_update_ms={1000 * (time.perf_counter() - start) / 200:.3f} "
          f"(threads={torch.get_num_threads()})")


if __name__ == "__main__":
    main()
