"""Your own images: decoding speed, and training from uint8 vs float storage.

    python benchmarks/images.py [--files 10000] [--side 250] [--resolution 64] [--steps 20]

1. Writes ``--files`` JPEGs of ``--side`` px (smooth random pictures, ~photo-sized files) to
   a temporary folder and times ``dataset=folder``'s decoding into its uint8 cache at
   ``--resolution`` (images/s, every core), then the cached load a later run does.
2. Trains ``model=dcgan`` at that resolution on the decoded images for ``--steps`` generator
   steps per arm, alternating uint8 storage (the default: batches made float on the device)
   with the same images held as float32, ``--repeats`` times; prints the median seconds per
   step of each and ``ratio=<uint8 s/step / float s/step>`` (the median of paired ratios).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from throughput import StepTimer  # noqa: E402

from common import compose_config  # noqa: E402
from gan_lightning.images import list_images, load_images_cached  # noqa: E402
from gan_lightning.pixels import unit_float  # noqa: E402
from gan_lightning.train import build  # noqa: E402


def write_jpegs(folder: Path, n: int, side: int) -> None:
    rng = np.random.default_rng(0)
    for i in range(n):
        small = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
        picture = Image.fromarray(small).resize((side, side + side // 4), Image.BICUBIC)
        picture.save(folder / f"{i:05d}.jpg", quality=90)


def seconds_per_step(cfg, as_float: bool, steps: int, warmup: int) -> float:
    datamodule, module, trainer = build(cfg)
    datamodule.setup("fit")
    if as_float:
        datamodule.images = unit_float(datamodule.images)
    timer = StepTimer(warmup)
    trainer.callbacks.append(timer)
    trainer.fit(module, datamodule=datamodule)
    return (timer.end - timer.start) / timer.steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--side", type=int, default=250)
    parser.add_argument("--resolution", type=int, default=64)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="gan-images-"))
    folder = work / "photos"
    folder.mkdir()
    start = time.perf_counter()
    write_jpegs(folder, args.files, args.side)
    size_mb = sum(p.stat().st_size for p in folder.iterdir()) / 2**20
    print(f"wrote {args.files} JPEGs of {args.side}x{args.side + args.side // 4} px "
          f"({size_mb:.0f} MB) in {time.perf_counter() - start:.1f} s; "
          f"threads={torch.get_num_threads()}")

    start = time.perf_counter()
    found = load_images_cached(list_images(folder), args.resolution, 3, work / "cache", "bench")
    decode_s = time.perf_counter() - start
    start = time.perf_counter()
    load_images_cached(list_images(folder), args.resolution, 3, work / "cache", "bench")
    cached_s = time.perf_counter() - start
    print(f"decode: {len(found.images)} images at {args.resolution}px in {decode_s:.1f} s "
          f"= {len(found.images) / decode_s:.0f} images/s (first run, cache written)")
    print(f"cached load: {cached_s:.2f} s (every later run)")

    cfg = compose_config(["dataset=folder", f"dataset.path={folder}",
                          f"paths.data_dir={work}", f"dataset.resolution={args.resolution}",
                          "metrics=none", "trainer.max_epochs=-1",
                          f"max_g_steps={args.steps + args.warmup}"], str(work / "out"))
    times: dict[str, list[float]] = {"uint8": [], "float": []}
    ratios = []
    for r in range(args.repeats):
        order = ("uint8", "float") if r % 2 == 0 else ("float", "uint8")
        this = {arm: seconds_per_step(cfg, arm == "float", args.steps, args.warmup)
                for arm in order}
        for arm, t in this.items():
            times[arm].append(t)
        ratios.append(this["uint8"] / this["float"])
        print(f"repeat {r + 1}: uint8 {this['uint8']:.3f} s/step  float "
              f"{this['float']:.3f} s/step", flush=True)
    print(f"median: uint8 {statistics.median(times['uint8']):.3f} s/step, float "
          f"{statistics.median(times['float']):.3f} s/step (dcgan, {args.resolution}px, "
          f"batch {cfg.dataset.batch_size})")
    print(f"ratio={statistics.median(ratios):.3f}")


if __name__ == "__main__":
    main()
