"""Samples from a checkpoint, with nothing but the file: ``gan-sample ckpt=<path> ...``.

    gan-sample ckpt=outputs/runs/.../last.ckpt                  # 64 samples -> samples.png
    gan-sample ckpt=... n=100 seed=3 out=grid.png
    gan-sample ckpt=... class=7                                 # conditional models
    gan-sample ckpt=... interpolate=true steps=10 n=80          # rows of latent interpolations
    gan-sample ckpt=... raw=true                                # G itself, not its EMA
    gan-sample ckpt=... trust=mylab                             # your own generator class
    gan-sample run=outputs/runs/.../ out=progress.gif           # the run's fixed-noise grids

The checkpoint is read with ``torch.load(weights_only=True)``: tensors and plain containers
only, so a file carrying pickled code is refused, never run. The generator is rebuilt from
the config the run stored in it (``gan_config``): only ``nn.Module`` classes of this package or
``torch.nn``, or of the modules named by ``trust=`` (your own networks: ``trust=mylab``), never
any other callable (``gan_lightning.targets.check_trusted``).
Where the run kept a moving average of G's weights (``ema.decay``), that average draws, as it
drew the run's metrics and grids; ``raw=true`` uses the trained G instead. Where the run
re-estimated the drawing G's BatchNorm statistics (``standing_stats.batches``), so does this.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path
from typing import Any

import torch
import torchvision
from hydra.utils import instantiate

from gan_lightning.callbacks import sample_grid, scatter_plot
from gan_lightning.cli import user_code_on_path
from gan_lightning.standing import stand
from gan_lightning.targets import (
    UnsafeCheckpoint,
    UntrustedTarget,
    check_trusted,
    load_plain_checkpoint,
    trust_list,
)

USAGE = __doc__.split("\n\n")[1]
KEYS = {"ckpt", "run", "n", "out", "seed", "class", "interpolate", "steps", "nrow", "device",
        "raw", "trust"}


class SampleError(RuntimeError):
    """A problem with the arguments or the file, reported in one line."""


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    try:
        return load_plain_checkpoint(path)
    except UnsafeCheckpoint as error:
        raise SampleError(str(error)) from None


#: where a checkpoint keeps the moving average of G's weights (``ema.decay`` set)
EMA_PREFIX = "generator_ema.average."


def load_generator(path: str | Path, raw: bool = False, trust: str | list[str] | None = None
                   ) -> tuple[torch.nn.Module, dict[str, Any]]:
    """The generator of a checkpoint, rebuilt from its stored config, in eval mode: the
    moving average of its weights where the run kept one (as its metrics and grids did),
    unless ``raw``. ``trust``: modules beyond this package and ``torch.nn`` whose network
    classes the stored config may name (``"mylab"``)."""
    checkpoint = load_checkpoint(path)
    config = checkpoint.get("gan_config")
    if not isinstance(config, dict) or not isinstance(config.get("model"), dict) \
            or not isinstance(config["model"].get("generator"), dict):
        raise SampleError(f"{path} holds no gan_config with a generator (not written by "
                          f"gan-lightning's training)")
    node = config["model"]["generator"]
    try:
        check_trusted(node, f"{path}: model.generator", trust_list(trust))
    except UntrustedTarget as error:
        raise SampleError(str(error)) from None
    generator = instantiate(node)
    weights = checkpoint["state_dict"]
    prefix = EMA_PREFIX if not raw and any(k.startswith(EMA_PREFIX) for k in weights) \
        else "generator."
    state = {k.removeprefix(prefix): v for k, v in weights.items() if k.startswith(prefix)}
    generator.load_state_dict(state)
    standing = config.get("standing_stats") or {}  # as the run's metrics and grids drew
    stand(generator, config["z_dim"], int(standing.get("batches", 0)),
          int(standing.get("batch_size", 64)), int(getattr(generator, "num_classes", 0) or 0))
    return generator.eval(), config


@torch.no_grad()
def generate(generator: torch.nn.Module, config: dict[str, Any], n: int, seed: int = 0,
             klass: int | None = None, interpolate: bool = False, steps: int = 8,
             device: str = "cpu") -> torch.Tensor:
    """``n`` samples (or ``n // steps`` interpolation rows of ``steps``) from seeded latents."""
    z_dim, classes = config["z_dim"], int(getattr(generator, "num_classes", 0) or 0)
    rng = torch.Generator().manual_seed(seed)
    if interpolate:
        rows = max(1, n // steps)
        ends = torch.randn(rows, 2, z_dim, generator=rng)
        t = torch.linspace(0, 1, steps).view(1, steps, 1)
        z = (ends[:, :1] * (1 - t) + ends[:, 1:] * t).reshape(rows * steps, z_dim)
    else:
        z = torch.randn(n, z_dim, generator=rng)
    generator = generator.to(device)
    if not classes:
        if klass is not None:
            raise SampleError("class= needs a conditional model (model=cgan)")
        return generator(z.to(device)).cpu()
    if klass is not None and not 0 <= klass < classes:
        raise SampleError(f"class={klass} out of range: the model has classes 0..{classes - 1}")
    labels = (torch.full((len(z),), klass) if klass is not None
              else torch.arange(len(z)) // (steps if interpolate else 1) % classes)
    return generator(z.to(device), labels.to(device)).cpu()


def progress_gif(run_dir: str | Path, out: str | Path) -> int:
    """The run's ``samples/fixed_noise`` grids (one per epoch) as an animated GIF."""
    from PIL import Image
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run_dir = Path(run_dir)
    event_dirs = sorted({p.parent for p in run_dir.rglob("events.out.tfevents.*")})
    frames = []
    for event_dir in event_dirs:
        events = EventAccumulator(str(event_dir), size_guidance={"images": 0})
        events.Reload()
        if "samples/fixed_noise" in events.Tags()["images"]:
            # an adaptive palette per frame: RGB samples keep their colours
            frames += [Image.open(io.BytesIO(e.encoded_image_string)).convert(
                "P", palette=Image.Palette.ADAPTIVE) for e in events.Images("samples/fixed_noise")]
    if not frames:
        raise SampleError(f"no samples/fixed_noise images in TensorBoard files under {run_dir}")
    frames[0].save(out, save_all=True, append_images=frames[1:], duration=300, loop=0)
    return len(frames)


def parse(argv: list[str]) -> dict[str, str]:
    args = {}
    for item in argv:
        key, sep, value = item.partition("=")
        if not sep or key not in KEYS:
            raise SampleError(f"bad argument '{item}': expected key=value with key one of "
                              f"{', '.join(sorted(KEYS))}")
        args[key] = value
    if ("ckpt" in args) == ("run" in args):
        raise SampleError("give ckpt=<checkpoint> (samples) or run=<run folder> (progress GIF)")
    return args


def as_bool(value: str) -> bool:
    if value.lower() in ("true", "1", "yes"):
        return True
    if value.lower() in ("false", "0", "no"):
        return False
    raise SampleError(f"expected true or false, got '{value}'")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0
    # a trusted module of your project imports from the folder you run this in
    user_code_on_path(children=False)
    try:
        args = parse(argv)
        if "run" in args:
            out = Path(args.get("out", "progress.gif"))
            print(f"wrote {out} ({progress_gif(args['run'], out)} frames)")
            return 0
        n, steps = int(args.get("n", 64)), int(args.get("steps", 8))
        if n < 1 or steps < 2:
            raise SampleError("n must be >= 1 and steps >= 2")
        generator, config = load_generator(args["ckpt"], as_bool(args.get("raw", "false")),
                                           args.get("trust"))
        interpolate = as_bool(args.get("interpolate", "false"))
        images = generate(generator, config, n, int(args.get("seed", 0)),
                          int(args["class"]) if "class" in args else None, interpolate, steps,
                          args.get("device", "cpu"))
        out = Path(args.get("out", "samples.png"))
        if images.ndim == 2:  # 2-D points (dataset=gaussian2d)
            picture = scatter_plot(images[:0], images, f"{len(images)} samples")
        else:
            picture = sample_grid(images, int(args.get("nrow", steps if interpolate else 8)))
        torchvision.utils.save_image(picture, out)
        print(f"wrote {out} ({len(images)} samples)")
        return 0
    except (SampleError, ValueError) as error:
        print(f"gan-sample: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
