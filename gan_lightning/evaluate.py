"""``gan-eval``: measures a checkpoint, or any set of images, after training, on a metric
protocol chosen now; prints the figures and writes them, with the protocol, to a JSON file.

    gan-eval ckpt=outputs/runs/.../best.ckpt                  # the metrics config, as in training
    gan-eval ckpt=... metrics=inception metrics.fid.num_fake=50000 metrics.fid.weights_path=W
    gan-eval ckpt=... n=50000 reference=train                 # 50k fakes against the train split
    gan-eval ckpt=... raw=true                                # G itself, not its moving average
    gan-eval fake=samples.npz dataset=cifar10 n=50000         # another tool's samples
    gan-eval fake=pngs/ dataset=mnist n=1000                  # a folder of images

Keys (key=value; the metrics and data are Hydra overrides of the training config):
  ckpt=PATH        a checkpoint of gan-lightning's training (read as gan-sample reads it:
                   weights only; trust=MODULE allows your own generator classes)
  fake=PATH        instead of ckpt: a folder of images (png, jpg, ..., sorted by path) or an
                   .npz whose array (``arr_0``, or its only one) is uint8 NHWC or NCHW (as
                   StyleGAN, guided-diffusion and torch-fidelity write them), float in [-1, 1],
                   or (N, d) points; its images must have the dataset's shape (no resizing).
                   Needs dataset=NAME. The first num_fake images are measured.
  raw=true         G's own weights instead of their moving average (runs with ema.decay)
  trust=MODULE     modules (comma-separated) whose nn.Module classes the checkpoint may build
  n=N              fakes for FID (KID follows) and IS, at most N for precision/recall (whose
                   k-NN cost grows as N^2): metrics.{fid,is,precision_recall}.num_fake
  reference=test   the dataset split the fakes are compared with: test (the default, as in
                   training) or train (torchvision datasets: mnist, fashion_mnist, cifar10;
                   folder and gaussian2d sets have one reference only)
  seed=S           the latents' seed (also IS's and KID's draws); default the checkpoint's
                   run seed, so a run's own protocol gives its own figures; for fake= the
                   config's seed (42)
  device=D         auto (the default: cuda when there is one), cpu, cuda, cuda:1, ...
  out=FILE         the JSON; default in the checkpoint's folder (the current one for fake=)
                   named after the protocol: eval-fid10k-classifier-test-last.json
                   (FID's num_fake, extractor, reference split, source, -raw for raw=true)
  progress=false   no progress bars (on stderr)
  metrics=..., metrics.KEY=V, dataset=..., dataset.KEY=V, paths.data_dir=DIR
                   the training config's groups and keys (conf/metrics, conf/dataset): the
                   dataset is the checkpoint's unless given; data root $GAN_DATA_DIR or ./data

The JSON: ``figures`` (what the training logs as val/*: fid, kid, is, precision, recall,
class coverage), ``details`` (class shares), ``protocol`` (the run's ``metrics_protocol`` plus
reference split and size, seed, batch size, dataset and its source, extractor cache id),
``source`` (checkpoint path, g_step, EMA or raw G; or the fake set's path and layout),
``timing`` (seconds: set-up, sampling, features, metrics, total; ``s_per_1000_fakes``, what
a further 1,000 fakes cost to draw and extract), ``gan_lightning_version``, ``command``.

Which metrics run: those on in the metrics config (FID; KID, IS, precision/recall and class
coverage per their ``enabled``), all of them once, whatever their ``every_n_epochs``. Samples
are drawn as the training's evaluation draws them (``callbacks.evaluation``): eval mode,
batches of metrics.batch_size from a latent sequence seeded by ``seed``, class-balanced labels
for conditional models; on the same checkpoint and protocol gan-eval gives the run's figures.
Offline, as in training: the dataset falls back as configured, and metrics=inception needs
metrics.fid.weights_path=<torch-fidelity's weights file> (or that file in torch's hub cache).
User mistakes end with one line on stderr and exit status 2.
"""

from __future__ import annotations

import contextlib
import logging
import math
import shlex
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gan_lightning.errors import ConfigError, SetupError

log = logging.getLogger(__name__)

#: gan-eval's own keys; Hydra overrides of these config parts pass through to the config
KEYS = {"ckpt", "fake", "raw", "trust", "n", "reference", "seed", "device", "out", "progress"}
OVERRIDES = ("metrics", "dataset", "paths.data_dir")


class EvalError(ConfigError):
    """A problem with gan-eval's arguments or files, reported in one line."""


# -- arguments ------------------------------------------------------------------------------
def parse(argv: list[str]) -> tuple[dict[str, str], list[str]]:
    """``(gan-eval's keys, Hydra overrides)`` from ``key=value`` arguments."""
    args: dict[str, str] = {}
    overrides: list[str] = []
    for item in argv:
        key, sep, value = item.partition("=")
        name = key.lstrip("+~")
        if sep and key in KEYS:
            args[key] = value
        elif sep and any(name == o or name.startswith(o + ".") for o in OVERRIDES):
            overrides.append(item)
        else:
            raise EvalError(f"bad argument '{item}': expected key=value with key one of "
                            f"{', '.join(sorted(KEYS))}, or an override of metrics, metrics.*, "
                            f"dataset, dataset.* or paths.data_dir (gan-eval --help)")
    if ("ckpt" in args) == ("fake" in args):
        raise EvalError("give ckpt=<checkpoint> (its generator's samples) or fake=<folder or "
                        ".npz> (images from any tool), one of them")
    if "fake" in args and {"raw", "trust"} & set(args):
        raise EvalError("raw= and trust= are about a checkpoint's generator; fake= has none")
    if "fake" in args and not any(o.startswith("dataset=") for o in overrides):
        raise EvalError("fake= needs dataset=<name> (mnist, cifar10, folder, ...): the "
                        "reference images and the image shape come from it")
    if "n" in args and any(o.lstrip("+").startswith(
            ("metrics.fid.num_fake=", "metrics.is.num_fake=")) for o in overrides):
        raise EvalError("give n= or metrics.fid.num_fake= / metrics.is.num_fake=, not both")
    if args.get("reference", "test") not in ("test", "train"):
        raise EvalError(f"reference must be test or train, got '{args['reference']}'")
    return args, overrides


def as_bool(value: str, key: str) -> bool:
    if value.lower() in ("true", "1", "yes"):
        return True
    if value.lower() in ("false", "0", "no"):
        return False
    raise EvalError(f"{key} must be true or false, got '{value}'")


def as_int(value: str, key: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise EvalError(f"{key} must be an integer, got '{value}'") from None


def device_of(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise EvalError(f"device '{name}' unknown; auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise EvalError(f"device={name}: this machine has no CUDA device; use device=cpu")
    return device


# -- config ---------------------------------------------------------------------------------
def dataset_options() -> list[str]:
    return sorted(p.name.removesuffix(".yaml") for p in
                  (resources.files("gan_lightning.conf") / "dataset").iterdir()
                  if p.name.endswith(".yaml"))


def compose_config(overrides: list[str], n: int | None = None,
                   img_shape: list[int] | None = None) -> Any:
    """The training config (``gan_lightning.conf``) with ``overrides``; nothing is written, so
    the run-folder keys that only a Hydra run resolves are set to nothing. ``n``: gan-eval's
    ``n=``. ``img_shape``: the checkpoint's, for a folder dataset whose size is not given."""
    from hydra import compose, initialize_config_module
    from omegaconf import open_dict

    with initialize_config_module(config_module="gan_lightning.conf", version_base="1.3"):
        cfg = compose("config", overrides=overrides)
    given = {o.lstrip("+").partition("=")[0] for o in overrides}
    with open_dict(cfg):
        cfg.paths.output_dir = "."
        if cfg.get("metrics"):
            cfg.metrics.out_dir = None  # no best.ckpt: nothing is trained
        if n is not None and cfg.get("metrics") and cfg.metrics.get("fid"):
            cfg.metrics.fid.num_fake = cfg.metrics["is"].num_fake = n  # KID follows FID
            pr = cfg.metrics.precision_recall
            if "metrics.precision_recall.num_fake" not in given:  # k-NN: O(n^2), kept small
                pr.num_fake = min(n, pr.num_fake)
        dataset = cfg.dataset
        if img_shape and len(img_shape) == 3 and "resolution" in dataset \
                and not given & {"dataset.resolution", "dataset.channels"}:
            # a folder dataset decodes at the size the run trained at
            dataset.channels, dataset.resolution = img_shape[0], img_shape[-1]
    return cfg


def instantiated(node: Any) -> Any:
    """``instantiate(node)``; the class's own complaint (a ValueError about a setting) becomes
    one line, without Hydra's wrapping."""
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate

    try:
        return instantiate(node)
    except InstantiationException as error:
        cause = error.__cause__ or error
        if isinstance(cause, SetupError):
            raise cause from None
        raise EvalError(" ".join(str(cause).split())) from None


def build_evaluator(cfg: Any) -> Any:
    """The training's ``Evaluator`` from the composed ``metrics`` group."""
    from gan_lightning.callbacks.evaluation import Evaluator

    if not cfg.get("metrics") or not cfg.metrics.get("_target_"):
        raise EvalError("metrics=none: nothing to measure; choose metrics=default or "
                        "metrics=inception")
    evaluator = instantiated(cfg.metrics)
    if not isinstance(evaluator, Evaluator):
        raise EvalError(f"metrics._target_ must be gan_lightning.callbacks.Evaluator (gan-eval "
                        f"uses its protocol), got {cfg.metrics._target_}")
    return evaluator


class TrainSplit:
    """A torchvision datamodule whose reference is its training split (``reference=train``);
    everything else is the datamodule's."""

    #: no reference-feature cache: that file is named for the test split's images
    cache_folder = None

    def __init__(self, dm: Any) -> None:
        from gan_lightning.data import FolderDataModule, GANDataModule

        if not isinstance(dm, GANDataModule) or isinstance(dm, FolderDataModule):
            raise EvalError(f"reference=train: dataset '{dm.name}' has one reference set only "
                            f"(torchvision datasets have a train split); use reference=test")
        self.dm = dm

    def __getattr__(self, name: str) -> Any:
        return getattr(self.dm, name)

    def reference_images(self, n: int | None = None) -> torch.Tensor:
        from gan_lightning.pixels import unit_float

        return unit_float(self.dm.images[:n or None])

    def reference_labels(self, n: int | None = None) -> torch.Tensor | None:
        return self.dm.labels[:n or None] if self.dm.num_classes else None


# -- fakes ----------------------------------------------------------------------------------
@torch.no_grad()
def generate(generator: torch.nn.Module, z_dim: int, n: int, batch_size: int, seed: int,
             device: torch.device, bars: Bars) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(samples, requested classes or None)``: ``n`` samples as the training's evaluation
    draws them (``Evaluator.sample``): the same latents, eval mode, for a conditional G the
    classes cycling within each batch (``GANModule.balanced_labels``)."""
    from gan_lightning.callbacks.evaluation import latent_batches

    classes = int(getattr(generator, "num_classes", 0) or 0)
    generator = generator.to(device).eval()
    chunks, requested = [], []
    with bars.phase("sampling", n):
        for z in latent_batches(n, z_dim, batch_size, seed):
            labels = torch.arange(len(z)) % classes if classes else None
            out = generator(z.to(device), labels.to(device)) if classes else generator(
                z.to(device))
            chunks.append(out.float())
            requested.append(labels)
            bars.update(len(z))
    return torch.cat(chunks), (torch.cat(requested) if classes else None)


def read_fake_set(path: Path, img_shape: list[int], n: int, bars: Bars
                  ) -> tuple[torch.Tensor, dict[str, Any]]:
    """The first ``n`` images of a folder or ``.npz`` as float ``(n, *img_shape)`` in
    [-1, 1] (points as they are), and what was read (recorded in the JSON)."""
    if path.is_dir():
        return read_folder(path, img_shape, n, bars)
    if path.suffix.lower() == ".npz" and path.is_file():
        return read_npz(path, img_shape, n)
    raise EvalError(f"fake={path}: not a folder of images or an .npz file")


def read_npz(path: Path, img_shape: list[int], n: int) -> tuple[torch.Tensor, dict[str, Any]]:
    try:
        archive = np.load(path)  # allow_pickle=False: an object array is refused, never run
    except Exception as error:  # noqa: BLE001 - a damaged or foreign file
        raise EvalError(f"fake={path}: not a readable .npz ({type(error).__name__}: "
                        f"{' '.join(str(error).split())[:120]})") from None
    with archive:
        names = list(archive.files)
        if "arr_0" in names or len(names) == 1:
            key = "arr_0" if "arr_0" in names else names[0]
        else:
            raise EvalError(f"fake={path}: holds {len(names)} arrays ({', '.join(names)}) and "
                            f"no arr_0; save the images as its only (or first) array")
        try:
            array = archive[key]
        except ValueError as error:  # object arrays need pickle
            raise EvalError(f"fake={path}: array '{key}' is not numeric ({error})") from None
    images, layout = to_generator_range(array[:n], img_shape, f"fake={path}")
    return images, {"kind": "npz", "path": str(path.resolve()), "array": key,
                    "layout": layout, "images_in_file": len(array)}


def to_generator_range(array: np.ndarray, img_shape: list[int], where: str
                       ) -> tuple[torch.Tensor, str]:
    """``array`` as float ``(N, *img_shape)`` in [-1, 1] and its layout's name: uint8 NHWC,
    NCHW or NHW (grayscale), float already in [-1, 1]; points ``(N, d)`` unchanged."""
    shape = [int(s) for s in img_shape]
    if len(shape) == 1:  # points (gaussian2d)
        if array.ndim != 2 or array.shape[1] != shape[0]:
            raise EvalError(f"{where}: points of shape {list(array.shape[1:])}, the dataset's "
                            f"are {shape}")
        return torch.from_numpy(np.asarray(array, np.float32)), "points"
    c, h, w = shape
    if array.ndim == 3 and c == 1:
        array, layout = array[:, None], "NHW"
    elif array.ndim == 4 and list(array.shape[1:]) == [c, h, w]:
        layout = "NCHW"
    elif array.ndim == 4 and list(array.shape[1:]) == [h, w, c]:
        array, layout = array.transpose(0, 3, 1, 2), "NHWC"
    else:
        raise EvalError(f"{where}: images of shape {list(array.shape[1:])}; the dataset's are "
                        f"{shape} (C, H, W), so NCHW {shape} or NHWC {[h, w, c]} is needed "
                        f"(gan-eval does not resize)")
    if list(array.shape[2:]) != [h, w]:
        raise EvalError(f"{where}: images of {list(array.shape[1:])}, the dataset's are {shape}")
    if array.dtype != np.uint8 and not np.issubdtype(array.dtype, np.floating):
        raise EvalError(f"{where}: images of dtype {array.dtype}; uint8 [0, 255] or float in "
                        f"[-1, 1] are read")
    # plain NCHW strides: a transposed (N, 28, 28, 1) array would look channels-last to the
    # convolutions, which then sum in another order than for the same pixels from PNGs
    source = torch.from_numpy(array.astype(array.dtype.newbyteorder("="), copy=False))
    images = torch.empty_like(source, memory_format=torch.contiguous_format).copy_(source)
    if images.dtype == torch.uint8:
        return images.float().div_(127.5).sub_(1.0), f"{layout} uint8"
    images = images.float()
    low, high = (float(images.min()), float(images.max())) if len(images) else (0.0, 0.0)
    if not (math.isfinite(low) and math.isfinite(high)) or low < -1.001 or high > 1.001:
        raise EvalError(f"{where}: float images must be in [-1, 1] (these span {low:.3g} .. "
                        f"{high:.3g}); or give uint8 [0, 255]")
    if low >= 0:
        log.warning("%s: float images all >= 0: they are read as [-1, 1] (a [0, 1] set would "
                    "be measured as too dark); uint8 [0, 255] is unambiguous", where)
    return images.clamp_(-1, 1), f"{layout} float"


def read_folder(path: Path, img_shape: list[int], n: int, bars: Bars
                ) -> tuple[torch.Tensor, dict[str, Any]]:
    """The first ``n`` image files under ``path`` (sorted by path, subfolders included), each
    of the dataset's size exactly, as float ``(n, C, H, W)`` in [-1, 1]."""
    from concurrent.futures import ThreadPoolExecutor

    from PIL import Image

    from gan_lightning.images import decode, list_images

    if len(img_shape) != 3:
        raise EvalError(f"fake={path}: a folder of images, but the dataset holds points "
                        f"{list(img_shape)}; give an .npz of (N, {img_shape[0]}) points")
    c, h, w = (int(s) for s in img_shape)
    files = list_images(path).files
    if not files:
        raise EvalError(f"fake={path}: no image files (png, jpg, jpeg, bmp, webp, gif)")

    def read(file: Path) -> np.ndarray:
        try:
            with Image.open(file) as image:
                size = image.size
            if size != (w, h):
                raise EvalError(f"fake={path}: {file.relative_to(path)} is {size[0]}x{size[1]}, "
                                f"the dataset's images are {w}x{h} (gan-eval does not resize)")
            # the image's own size: decode converts the mode (to RGB or L) and crops nothing
            return decode(file, h, c)
        except EvalError:
            raise
        except Exception as error:  # noqa: BLE001 - unreadable: a fake set must be whole
            raise EvalError(f"fake={path}: {file.relative_to(path)} cannot be read as an image "
                            f"({type(error).__name__})") from None

    files = files[:n]
    images = torch.empty(len(files), c, h, w, dtype=torch.uint8)
    with bars.phase("reading fakes", len(files)), ThreadPoolExecutor(4) as pool:
        # PIL releases the GIL while it decodes
        for i, array in enumerate(pool.map(read, files)):
            images.numpy()[i] = array
            bars.update(1)
    return images.float().div_(127.5).sub_(1.0), {
        "kind": "folder", "path": str(path.resolve()), "layout": f"image files ({c} channels)"}


# -- progress -------------------------------------------------------------------------------
class Bars:
    """One tqdm bar per phase, on stderr (none when ``enabled`` is false)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.bar: Any = None
        #: seconds spent in the extractor (``watch``)
        self.extract_s = 0.0

    @contextlib.contextmanager
    def phase(self, name: str, total: int) -> Iterator[None]:
        from tqdm.auto import tqdm

        self.bar = tqdm(total=total, desc=name, unit="img", file=sys.stderr,
                        disable=not self.enabled, dynamic_ncols=True, mininterval=0.5)
        try:
            yield
            if 0 < self.bar.n < total:  # fewer images than asked for (a small reference set)
                self.bar.total = self.bar.n
                self.bar.refresh()
        finally:
            self.bar.close()
            self.bar = None

    def update(self, n: int) -> None:
        if self.bar is not None:
            self.bar.update(n)

    def watch(self, quality: Any) -> None:
        """Advance the current bar by each batch ``quality`` runs through its extractor, and
        add the time to ``extract_s``: ``SampleQuality`` runs it through ``extract`` alone, for
        the reference and the fakes, and has no progress hook of its own."""
        extract = quality.extract

        def watched(images: torch.Tensor) -> Any:
            t = time.perf_counter()
            result = extract(images)
            if images.is_cuda:  # the time of the work, not of its launch
                torch.cuda.synchronize(images.device)
            self.extract_s += time.perf_counter() - t
            self.update(len(images))
            return result

        quality.extract = watched


# -- the evaluation -------------------------------------------------------------------------
def protocol_name(evaluator: Any, reference: str, source: str, raw: bool) -> str:
    """``eval-fid10k-classifier-test-last``: what was measured, StyleGAN's ``fid50k_full``
    way (FID's fakes, extractor, reference split), and of what."""
    metric = "fid" if "fid" in evaluator.enabled else sorted(evaluator.enabled)[0]
    n = evaluator.schedules[metric].num_fake
    count = f"{n // 1000}k" if n % 1000 == 0 else str(n)
    return f"eval-{metric}{count}-{evaluator.feature}-{reference}-{source}" + (
        "-raw" if raw else "")


def open_checkpoint(args: dict[str, str], overrides: list[str]
                    ) -> tuple[torch.nn.Module, dict[str, Any], dict[str, Any], list[str]]:
    """``(generator, its stored config, what the record says of it, overrides)``; the
    overrides gain ``dataset=<the run's>`` unless they choose one."""
    from gan_lightning.sample import EMA_PREFIX, load_checkpoint, load_generator

    ckpt, raw = Path(args["ckpt"]), as_bool(args.get("raw", "false"), "raw")
    checkpoint = load_checkpoint(ckpt)  # a missing or unsafe file is refused first
    generator, config = load_generator(ckpt, raw, args.get("trust"))
    ema = not raw and any(k.startswith(EMA_PREFIX) for k in checkpoint["state_dict"])
    source = {"kind": "checkpoint", "path": str(ckpt.resolve()),
              "g_step": checkpoint.get("g_step"), "generator": "ema" if ema else "raw",
              "ema_decay": (config.get("ema") or {}).get("decay")}
    if not any(o.startswith("dataset=") for o in overrides):
        name = config["dataset"]["name"]
        if name not in dataset_options():
            raise EvalError(f"the checkpoint's dataset '{name}' is no dataset config "
                            f"({', '.join(dataset_options())}); give dataset=<one> and its "
                            f"keys as in training")
        overrides = [f"dataset={name}", *overrides]
    return generator, config, source, overrides


def evaluate(args: dict[str, str], overrides: list[str]) -> tuple[dict[str, Any], Path]:
    """Measure what ``args`` name; return the record and where it goes (not yet written)."""
    from gan_lightning import __version__
    from gan_lightning.metrics.features import choose_feature

    start = time.perf_counter()
    bars = Bars(as_bool(args.get("progress", "true"), "progress"))
    reference = args.get("reference", "test")
    device = device_of(args.get("device", "auto"))
    generator = config = trained = None
    seed = as_int(args["seed"], "seed") if "seed" in args else None
    if "ckpt" in args:
        generator, config, source, overrides = open_checkpoint(args, overrides)
        trained = [int(v) for v in config["dataset"]["img_shape"]]
        seed = config.get("seed", 0) if seed is None else seed  # the run's own latents
    cfg = compose_config([*overrides, *([f"seed={seed}"] if seed is not None else [])],
                         as_int(args["n"], "n") if "n" in args else None, trained)
    evaluator = build_evaluator(cfg)
    dm = instantiated(cfg.dataset)
    if trained is not None and list(dm.img_shape) != trained:
        raise EvalError(f"the generator draws {trained} images, dataset '{dm.name}' as "
                        f"configured here has {list(dm.img_shape)}: set its keys as in "
                        f"training")
    dm.setup()  # as in training: missing data fails (or falls back, as configured) here
    real = TrainSplit(dm) if reference == "train" else dm

    # the fakes needed: IS is dropped where the extractor has no class logits (identity)
    feature = choose_feature(evaluator.feature, list(dm.img_shape), dm.num_classes)
    on = evaluator.enabled - ({"is"} if feature == "identity" else set())
    if not on:
        raise EvalError("every metric is off in this metrics config (metrics.*.enabled)")
    num_fake = max(evaluator.schedules[k].num_fake for k in on)
    fakes = requested = None
    timing: dict[str, float] = {}
    if "fake" in args:  # read (and checked) before the set-up, which may train a classifier
        t = time.perf_counter()
        fakes, source = read_fake_set(Path(args["fake"]), list(dm.img_shape), num_fake, bars)
        if len(fakes) < num_fake:
            raise EvalError(f"fake={args['fake']}: {len(fakes)} images, the protocol measures "
                            f"{num_fake} (metrics.*.num_fake); give n={len(fakes)} or more "
                            f"images")
        timing["read_s"] = time.perf_counter() - t

    t = time.perf_counter()
    with torch.random.fork_rng(devices=[]):  # torchmetrics may draw dummy inputs
        try:
            evaluator.prepare(real, device)
        except ValueError as error:  # the extractor named does not suit the dataset
            raise EvalError(" ".join(str(error).split())) from None
    bars.watch(evaluator.quality)
    num_real = max(evaluator.schedules[k].num_real for k in evaluator.enabled - {"is"})
    with bars.phase(f"reference ({reference} split)", num_real):
        num_real = evaluator.load_reference(real)
    timing["setup_s"] = time.perf_counter() - t

    if fakes is None:
        t = time.perf_counter()
        fakes, requested = generate(generator, config["z_dim"], num_fake,
                                    evaluator.batch_size, evaluator.seed, device, bars)
        timing["sampling_s"] = time.perf_counter() - t
    t, bars.extract_s = time.perf_counter(), 0.0
    with bars.phase("features+metrics", len(fakes)):
        figures = evaluator.score(fakes.to(device), 0, evaluator.enabled, requested)
    timing["features_s"] = bars.extract_s
    timing["metrics_s"] = time.perf_counter() - t - bars.extract_s
    timing["total_s"] = time.perf_counter() - start
    # what each further fake costs; the rest (set-up, statistics) does not grow with them
    timing["s_per_1000_fakes"] = 1000 * (timing.get("sampling_s", 0.0)
                                         + timing["features_s"]) / num_fake

    protocol = evaluator.protocol()
    for value in protocol.values():
        if isinstance(value, dict):
            value.pop("every_n_epochs", None)  # all run once here
    protocol.update(
        reference=f"{reference} split", num_reference=num_real, seed=evaluator.seed,
        batch_size=evaluator.batch_size, dataset=dm.name, data_source=dm.source_used,
        extractor_cache_id=getattr(evaluator.extractor, "cache_id", evaluator.feature))
    details = dict(evaluator.quality.details)
    if "class_shares" in details:
        details["class_shares_real"] = evaluator.quality.real_shares.tolist()
    stem = Path(args.get("ckpt") or args["fake"]).stem or "fake"
    name = protocol_name(evaluator, reference, stem,
                         "ckpt" in args and as_bool(args.get("raw", "false"), "raw"))
    where = Path(args["ckpt"]).parent if "ckpt" in args else Path.cwd()
    record = {
        "name": name, "figures": figures, "details": details, "protocol": protocol,
        "source": source, "timing": timing, "device": str(device),
        "gan_lightning_version": __version__,
        "command": shlex.join(["gan-eval", *[f"{k}={v}" for k, v in args.items()],
                               *overrides]),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    return record, Path(args["out"]) if "out" in args else where / f"{name}.json"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from gan_lightning.cli import user_code_on_path
    from gan_lightning.record import write_record
    from gan_lightning.sample import SampleError

    user_code_on_path()  # trust=mylab imports ./mylab, as gan-train does
    if not logging.getLogger().handlers:  # the classifier's "training once" and friends
        logging.basicConfig(level=logging.WARNING, format="%(message)s")
        logging.getLogger("gan_lightning").setLevel(logging.INFO)
    try:
        record, out = evaluate(*parse(argv))
    except (SetupError, SampleError, HydraException, OmegaConfBaseException) as error:
        print(f"gan-eval: {' '.join(str(error).split())}", file=sys.stderr)
        return 2
    source = record["source"]
    what = (f"{Path(source['path']).name} ("
            f"{'EMA average of G' if source['generator'] == 'ema' else 'G'}, g_step "
            f"{source['g_step']})" if source["kind"] == "checkpoint" else source["path"])
    protocol = record["protocol"]
    print(f"# {record['name']}: {what} against {protocol['num_reference']} images of "
          f"{protocol['dataset']}'s {protocol['reference']}, seed {protocol['seed']}")
    for key, value in record["figures"].items():
        print(f"{key:<17} {value:.6g}")
    out.parent.mkdir(parents=True, exist_ok=True)
    write_record(out, record)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
