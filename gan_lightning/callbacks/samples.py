"""Pictures of the generator: a grid of its samples for the fixed latents, or a scatter of
points for 2-D data, each epoch."""

from __future__ import annotations

import io
from pathlib import Path

import lightning as L
import numpy as np
import torch
import torchvision
from lightning.pytorch.loggers import TensorBoardLogger
from PIL import Image

from gan_lightning.module import GANModule


def sample_grid(images: torch.Tensor, nrow: int = 8) -> torch.Tensor:
    """``(B, C, H, W)`` images in [-1, 1] -> one ``(3, H', W')`` grid in [0, 1]."""
    return torchvision.utils.make_grid(
        images.detach().float().cpu().clamp(-1, 1), nrow=nrow, normalize=True, value_range=(-1, 1)
    )


def png(grid: torch.Tensor) -> bytes:
    """A ``(3, H, W)`` image in [0, 1] as PNG bytes, rounded as ``torchvision.utils.save_image``
    rounds. zlib level 1: the grid is encoded each epoch, and level 6 (PIL's default, and what
    ``save_image`` and TensorBoard's ``add_image`` use) is slower on such a grid for a file
    no smaller."""
    pixels = grid.mul(255).add_(0.5).clamp_(0, 255).permute(1, 2, 0).to("cpu", torch.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels.numpy()).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def log_png(logger: TensorBoardLogger, tag: str, encoded: bytes, height: int, width: int,
            step: int) -> None:
    """PNG bytes as a TensorBoard image, what ``add_image`` writes without encoding again."""
    from tensorboard.compat.proto.summary_pb2 import Summary

    writer = logger.experiment
    image = Summary.Image(height=height, width=width, colorspace=3, encoded_image_string=encoded)
    writer.file_writer.add_summary(Summary(value=[Summary.Value(tag=tag, image=image)]), step)


def pyplot():
    """matplotlib's pyplot on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def figure_image(fig) -> torch.Tensor:
    """A matplotlib figure as a ``(3, H, W)`` image in [0, 1] (the figure is closed)."""
    fig.tight_layout()
    fig.canvas.draw()
    rgb = torch.from_numpy(np.asarray(fig.canvas.buffer_rgba())[..., :3].copy())
    pyplot().close(fig)
    return rgb.permute(2, 0, 1).float() / 255


def scatter_plot(real: torch.Tensor, fake: torch.Tensor, title: str = "") -> torch.Tensor:
    """2-D points, real vs generated, as a ``(3, H, W)`` image in [0, 1]."""
    fig, ax = pyplot().subplots(figsize=(4.5, 4.5), dpi=80)
    ax.scatter(*real.cpu().T, s=6, alpha=0.5, label="real", color="C0")
    ax.scatter(*fake.cpu().T, s=6, alpha=0.5, label="generated", color="C1")
    ax.legend(loc="upper left")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    return figure_image(fig)


def class_share_chart(real: list[float], fake: list[float], title: str = "",
                      names: list[str] | None = None) -> torch.Tensor:
    """Per-class shares, real vs generated, as grouped bars: a ``(3, H, W)`` image."""
    k = len(real)
    x = np.arange(k)
    fig, ax = pyplot().subplots(figsize=(max(4.5, 0.45 * k + 1.5), 3.2), dpi=80)
    ax.bar(x - 0.2, real, 0.4, label="real", color="C0")
    ax.bar(x + 0.2, fake, 0.4, label="generated", color="C1")
    ax.set_xticks(x, names or [str(i) for i in x])
    ax.set_ylabel("share of samples")
    ax.legend(loc="upper right")
    ax.set_title(title)
    ax.grid(alpha=0.3, axis="y")
    return figure_image(fig)


class SampleGrid(L.Callback):
    """Each epoch: a grid of the generator's images for the module's fixed latent batch.

    Logged to TensorBoard as ``samples/fixed_noise`` (step = generator step), so the progress
    from noise to digits can be scrubbed through, and written to ``<run>/samples.png``
    (overwritten each epoch, so it always shows the latest; the final grid at the end).
    Conditional models show one row per class. For 2-D point data (``dataset=gaussian2d``) the
    picture is a scatter of ``num_points`` real vs generated points instead.
    """

    num_points = 500

    def __init__(self, out_dir: str, every_n_epochs: int = 1, nrow: int = 8,
                 filename: str = "samples.png") -> None:
        self.out_dir = Path(out_dir)
        self.every_n_epochs = every_n_epochs
        self.nrow = nrow
        self.filename = filename

    def draw(self, pl_module: GANModule, real: torch.Tensor | None = None) -> torch.Tensor:
        samples = pl_module.fixed_samples()
        if samples.ndim != 2:
            return sample_grid(samples, self.nrow)
        # points: the fixed batch is too small to show a distribution; draw a seeded one
        rng = torch.Generator().manual_seed(0)
        z = torch.randn(self.num_points, pl_module.z_dim, generator=rng).to(pl_module.device)
        with pl_module.sampling():
            fake = pl_module(z)
        real = real[: self.num_points] if real is not None else fake[:0]
        return scatter_plot(real, fake, f"generator step {pl_module.g_step}")

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: GANModule) -> None:
        if (trainer.current_epoch + 1) % self.every_n_epochs and not trainer.should_stop:
            return
        if not pl_module.check_finite() or not trainer.is_global_zero:
            return
        grid = self.draw(pl_module, getattr(trainer.datamodule, "images", None))
        encoded = png(grid)  # once, for the file and TensorBoard
        for logger in trainer.loggers:
            if isinstance(logger, TensorBoardLogger):
                log_png(logger, "samples/fixed_noise", encoded, *grid.shape[1:],
                        pl_module.g_step)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        (self.out_dir / self.filename).write_bytes(encoded)
