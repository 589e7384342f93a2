"""``GANModule``: the alternating discriminator / generator updates.

Read ``training_step`` first: D's update, then G's, each a few lines. The rest is what they
use: the constructor's settings, the networks' calls (``generate``, ``discriminate``,
``score``), sampling, and what a run and its checkpoints need.

What "a step" means here: Lightning's ``global_step`` counts every optimizer step, so one
batch with a D and a G update advances it by 2 (Lightning issue #17958). This project counts
**generator steps** (``g_step``): each batch updates D once; every ``n_critic``-th batch also
updates G once. ``g_step`` is the x-axis of every scalar the module logs, is logged as
``train/g_step`` and saved in checkpoints. ``max_g_steps`` stops training after exactly that
many generator steps (Lightning's ``trainer.max_steps`` keeps its own meaning).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Collection, Iterator
from typing import Any

import lightning as L
import torch
from torch import nn

from gan_lightning import divergence, speedups
from gan_lightning.augment import DiffAugment
from gan_lightning.ema import EMA
from gan_lightning.losses import GANLoss, prob_reading, r1_penalty
from gan_lightning.models.layers import spectral_normed
from gan_lightning.record import Status, Tag
from gan_lightning.run_state import RunState
from gan_lightning.standing import stand

OptimizerFactory = Callable[..., torch.optim.Optimizer]
#: ``(optimizer, total_steps) -> LRScheduler`` (``gan_lightning.schedules``)
ScheduleFactory = Callable[..., torch.optim.lr_scheduler.LRScheduler]


@contextlib.contextmanager
def frozen(params: list[nn.Parameter]) -> Iterator[None]:
    """``params`` without gradients inside the block (those that had them get them back after):
    a loss back-propagates through their network without computing their gradients."""
    params = [p for p in params if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)


class GANModule(speedups.FastHookName, L.LightningModule):
    """A GAN trained with manual optimization: D on every batch, G on every ``n_critic``-th.

    The settings come in three groups, in the constructor's order: the game (``generator`` to
    ``n_critic``), the run (``num_fixed`` to ``checkpoint_config``) and the stabilizers
    (``augment`` to ``r1_every``: each off by default, each applied to any G and D).

    Args:
        generator: maps ``(B, z_dim)`` latents to images. A conditional generator has a
            ``num_classes`` attribute and takes ``(z, labels)``; its discriminator then takes
            ``(images, labels)`` too, and the batches' labels are used.
        discriminator: maps images to logits ``(B, 1)``.
        loss: any object with ``d_loss(real_logits, fake_logits)`` and ``g_loss(fake_logits)``
            (a ``GANLoss``, or your own); optional: ``prob`` (logits -> what ``train/d_real``
            logs; without it the raw mean score), ``probabilistic`` (whether that is a
            probability, which the health monitor's collapse check needs) and
            ``penalty(critic, real, fake)`` (added to D's loss, as WGAN-GP's).
        optimizer_g: partial optimizer (``params -> Optimizer``) for G.
        optimizer_d: partial optimizer for D.
        z_dim: latent size.
        n_critic: D updates per G update.
        num_fixed: size of the fixed latent batch the sample grids are drawn from.
        seed: seeds the fixed latent batch, so every run of a seed shows the same latents.
        log_every_n_steps: scalars are logged every this many generator steps (``None``: the
            trainer's ``log_every_n_steps``). Each log point costs a host sync.
        max_g_steps: stop after this many generator steps (``None``: no limit).
        fast: cut Lightning's per-step overhead (``speedups``: ``True`` all, ``False`` none,
            or a collection of their names); the weights are bit-identical either way.
        run: the run's shared state (``RunState``), which the callbacks reach through
            ``module.run``; a fresh one by default.
        checkpoint_config: the run's resolved config as plain dicts, saved in checkpoints so
            that ``gan-sample`` can rebuild the generator.
        augment: DiffAugment applied to every image D sees, real and fake, in both steps
            (``None``: none).
        ema_decay: keep an exponential moving average of G's weights with this decay
            (``generator_ema``), which then draws every sample: metrics, grids, ``gan-sample``.
            ``None``: off, the raw G draws.
        ema_start: the average copies G outright up to this generator step.
        standing_batches: before the sampling G draws (``sampling``), re-estimate its
            BatchNorm statistics over this many batches of its own outputs
            (``standing.stand``), once per generator step; 0: as trained.
        standing_batch_size: the latents per batch of that estimate.
        lr_schedule_d, lr_schedule_g: learning-rate schedules (``None``: constant), stepped
            after each update of their network.
        spectral_norm: spectrally normalise every conv and linear weight of D (any D).
        r1_gamma: weight of the R1 penalty on real data (``losses.r1_penalty``); 0: off.
        r1_every: compute R1 every this many D steps only (scaled by it: "lazy" R1).
    """

    def __init__(
        self,
        generator: nn.Module,
        discriminator: nn.Module,
        loss: GANLoss,
        optimizer_g: OptimizerFactory,
        optimizer_d: OptimizerFactory,
        z_dim: int,
        n_critic: int = 1,
        num_fixed: int = 64,
        seed: int = 0,
        log_every_n_steps: int | None = None,
        max_g_steps: int | None = None,
        fast: bool | Collection[str] = True,
        run: RunState | None = None,
        checkpoint_config: dict[str, Any] | None = None,
        augment: DiffAugment | None = None,
        ema_decay: float | None = None,
        ema_start: int = 0,
        standing_batches: int = 0,
        standing_batch_size: int = 64,
        lr_schedule_d: ScheduleFactory | None = None,
        lr_schedule_g: ScheduleFactory | None = None,
        spectral_norm: bool = False,
        r1_gamma: float = 0.0,
        r1_every: int = 1,
    ) -> None:
        super().__init__()
        if z_dim < 1:
            raise ValueError(f"z_dim must be >= 1, got {z_dim}")
        if n_critic < 1:
            raise ValueError(f"n_critic must be >= 1, got {n_critic}")
        if r1_gamma < 0 or r1_every < 1:
            raise ValueError(f"r1.gamma must be >= 0 and r1.every >= 1, got {r1_gamma} and "
                             f"{r1_every}")
        self.automatic_optimization = False

        # -- the game: networks, loss, optimizers ------------------------------------------
        # before D's parameters are listed: normalisation replaces each weight
        spectral_normed(discriminator, spectral_norm)
        self.generator = generator
        self.discriminator = discriminator
        self.loss = loss
        #: what train/d_real and train/d_fake log (the loss's reading of D's logits), and
        #: whether that is a probability (the health monitor's collapse check needs one)
        self.prob, self.probabilistic = prob_reading(loss)
        self.optimizer_g = optimizer_g
        self.optimizer_d = optimizer_d
        self.z_dim = z_dim
        self.n_critic = n_critic
        #: conditional models (a ``num_classes`` attribute on G) take labels in G and D
        self.num_classes = int(getattr(generator, "num_classes", 0) or 0)
        #: D's parameters, frozen in G's step: listed once, not walked on every step (what
        #: that walk cost: benchmarks/interleaved.py)
        self._d_params = list(discriminator.parameters())
        # A D with batch statistics scores real and fake in separate passes (``score``): its
        # normalisation layers (torch's BatchNorm and InstanceNorm, of every kind) are the
        # ones with ``track_running_stats``, for which torch has no public base class.
        self._batch_dependent_d = any(hasattr(m, "track_running_stats")
                                      for m in discriminator.modules())
        #: the (G, D) the updates run through: data-parallel wrappers under DDP (``distribute``)
        self._trained: tuple[nn.Module, nn.Module] | None = None

        # -- the run: length, logging, speed-ups, samples, record ----------------------------
        self.max_g_steps = max_g_steps
        self._log_every = log_every_n_steps
        self.fast = fast
        #: the speed-ups on in this run (decided at the start of training)
        self.speedups: list[str] = []
        self._direct = False
        self.run = run if run is not None else RunState()
        self.checkpoint_config = checkpoint_config
        self.seed = seed
        if self.num_classes:
            # one row of the 8-wide sample grid per class
            num_fixed = 8 * self.num_classes
        # Buffers, so they move with the module and are saved in checkpoints.
        fixed_z = torch.randn(num_fixed, z_dim, generator=torch.Generator().manual_seed(seed))
        self.register_buffer("fixed_z", fixed_z)
        self.register_buffer("fixed_labels", self.balanced_labels(num_fixed, rows=True))

        # -- stabilizers --------------------------------------------------------------------
        self.augment = augment or DiffAugment("")
        #: the averaged G that draws every sample when on (saved in checkpoints)
        self.generator_ema = EMA(generator, ema_decay, ema_start) if ema_decay is not None \
            else None
        self.standing = (standing_batches, standing_batch_size)
        self._stood_at: int | None = None  # the g_step the sampler's statistics are of
        self.lr_schedules = (lr_schedule_d, lr_schedule_g)
        self._schedulers: tuple[Any, Any] = (None, None)
        self.r1_gamma, self.r1_every = r1_gamma, r1_every
        self._last_r1: torch.Tensor | None = None

        # -- counters, and what the last step left ------------------------------------------
        self.g_step = 0
        self._d_steps = 0
        #: the epoch a checkpoint left mid-way, until it has been resumed
        self._resumed_epoch: int | None = None
        #: the last step's losses (detached, no host sync), and the g_step last found finite
        self.last_losses: tuple[torch.Tensor, ...] = ()
        self._finite_at = -1

    # -- training -----------------------------------------------------------------------
    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        real, labels = batch
        labels = labels if self.num_classes else None
        opt_d, opt_g = self.optimizers()
        g_net, d_net = self._trained or (self.generator, self.discriminator)

        # Discriminator (critic): real scored up, fake down. G's forward needs no graph here,
        # so D's loss reaches D's parameters only (no need to switch G's gradients off).
        with torch.no_grad():
            fake_labels = self.sample_labels(len(real))
            fake = self.generate(self.sample_z(len(real)), fake_labels)
        seen = self.augment(real)  # DiffAugment: D sees real and fake alike transformed
        d_real, d_fake = self.score(seen, self.augment(fake), labels, fake_labels, d_net)
        loss_d = self.loss.d_loss(d_real, d_fake)
        penalty = None
        if getattr(self.loss, "penalty", None) is not None:  # WGAN-GP: at interpolates
            penalty = self.loss.penalty(lambda x: self.discriminate(x, labels), real, fake)
            loss_d = loss_d + penalty
        if self.r1_gamma and self._d_steps % self.r1_every == 0:  # R1 at the real batch
            r1 = r1_penalty(lambda x: self.discriminate(x, labels), seen, self.r1_gamma,
                            self.r1_every)
            loss_d = loss_d + r1
            self._last_r1 = r1.detach()  # logged at the next log point, whichever step it is
        self.update(opt_d, loss_d, self._schedulers[0])
        self._d_steps += 1

        if (batch_idx + 1) % self.n_critic:
            self.last_losses = (loss_d.detach(),)
            return

        # Generator: fresh noise (and classes), scored by the discriminator just updated. G's loss
        # back-propagates through D to G; D's own weight gradients are not needed, nor computed.
        with frozen(self._d_params):
            fake_labels = self.sample_labels(len(real))
            fake = self.generate(self.sample_z(len(real)), fake_labels, g_net)
            loss_g = self.loss.g_loss(self.discriminate(self.augment(fake), fake_labels))
            self.update(opt_g, loss_g, self._schedulers[1])
        self.g_step += 1
        if self.generator_ema is not None:
            self.generator_ema.update(self.generator, self.g_step)
        self.last_losses = (loss_d.detach(), loss_g.detach())
        if self.max_g_steps and self.g_step >= self.max_g_steps:
            self.trainer.should_stop = True

        if self.g_step % self.log_every == 0:
            self.log_scalars(loss_d, loss_g, d_real, d_fake, penalty)

    def update(self, optimizer: Any, loss: torch.Tensor, scheduler: Any = None) -> None:
        """One step of ``optimizer`` (a LightningOptimizer) down the gradient of ``loss``, then
        of its learning-rate schedule if it has one."""
        if self._direct:
            speedups.direct_step(optimizer, loss)
        else:
            optimizer.zero_grad(set_to_none=True)
            self.manual_backward(loss)
            optimizer.step()
        if scheduler is not None:
            scheduler.step()

    def log_scalars(self, loss_d: torch.Tensor, loss_g: torch.Tensor, d_real: torch.Tensor,
                    d_fake: torch.Tensor, penalty: torch.Tensor | None) -> None:
        """A log point: the step's losses and D's mean readings of the real and fake batch
        (``prob``), with the penalties and learning rates in use, published to the run's
        state (which the callbacks read) and logged."""
        scalars = {
            Tag.LOSS_D: loss_d,
            Tag.LOSS_G: loss_g,
            Tag.D_REAL: self.prob(d_real).mean(),
            Tag.D_FAKE: self.prob(d_fake).mean(),
        }
        if penalty is not None:
            scalars[Tag.PENALTY] = penalty
        if self._last_r1 is not None:
            scalars[Tag.R1] = self._last_r1
        for tag, scheduler in zip((Tag.LR_D, Tag.LR_G), self._schedulers, strict=True):
            if scheduler is not None:
                scalars[tag] = torch.tensor(scheduler.get_last_lr()[0], device=self.device)
        values = torch.stack([v.detach().float() for v in scalars.values()])
        if self.trainer.world_size > 1:
            # the mean over all ranks' batches; every rank then judges the same figures
            values = self.trainer.strategy.reduce(values, reduce_op="mean")
        # note: .tolist() is a host sync; paid once per log point, never on other steps.
        latest = dict(zip(scalars, values.tolist(), strict=True))
        self.run.publish(latest, self.g_step)
        self.run.log(self.trainer, latest)

    # -- optimizers -----------------------------------------------------------------------
    def configure_optimizers(self) -> Any:
        # Order matters: training_step unpacks (opt_d, opt_g).
        optimizers = [self.optimizer_d(self.discriminator.parameters()),
                      self.optimizer_g(self.generator.parameters())]
        if not any(self.lr_schedules):
            return tuple(optimizers)
        # each schedule runs over the updates its network will make in the run
        batches = self.trainer.estimated_stepping_batches
        if not self.max_g_steps and not math.isfinite(batches):
            raise ValueError("a learning-rate schedule needs the run's length: set "
                             "trainer.max_epochs or max_g_steps")
        g_steps = self.max_g_steps or int(batches) // self.n_critic
        steps = (g_steps * self.n_critic, g_steps)
        self._schedulers = tuple(
            make(opt, total_steps=n) if make else None
            for make, opt, n in zip(self.lr_schedules, optimizers, steps, strict=True))
        return optimizers, [s for s in self._schedulers if s is not None]

    # -- the networks' calls, and sampling ---------------------------------------------
    def sample_z(self, n: int) -> torch.Tensor:
        return torch.randn(n, self.z_dim, device=self.device)

    def sample_labels(self, n: int) -> torch.Tensor | None:
        """Classes for ``n`` fakes, uniform at random (None for unconditional models)."""
        if not self.num_classes:
            return None
        return torch.randint(self.num_classes, (n,), device=self.device)

    def balanced_labels(self, n: int, rows: bool = False) -> torch.Tensor | None:
        """``n`` labels cycling through the classes (``rows``: in runs of 8, a grid row each)."""
        if not self.num_classes:
            return None
        index = torch.arange(n)
        return (index // 8 if rows else index) % self.num_classes

    def generate(self, z: torch.Tensor, labels: torch.Tensor | None = None,
                 net: nn.Module | None = None) -> torch.Tensor:
        net = net or self.generator
        return net(z, labels) if self.num_classes else net(z)

    def discriminate(self, x: torch.Tensor, labels: torch.Tensor | None = None,
                     net: nn.Module | None = None) -> torch.Tensor:
        net = net or self.discriminator
        return net(x, labels) if self.num_classes else net(x)

    def distribute(self, wrap: Callable[[nn.Module], nn.Module] | None) -> None:
        """Run each network's update through its own data-parallel wrapper (``None``: undo).

        G and D are wrapped separately, not the module as a whole: each backward pass then
        all-reduces exactly the gradients of the network it updates. Passes that update
        nothing (G's forward in D's step, D's forward in G's step) use the plain networks.
        """
        self._trained = (wrap(self.generator), wrap(self.discriminator)) if wrap else None

    @property
    def sampler(self) -> nn.Module:
        """The generator that draws samples: the moving average when on, else G itself."""
        return self.generator_ema.average if self.generator_ema is not None else self.generator

    @contextlib.contextmanager
    def sampling(self) -> Iterator[None]:
        """The sampling G (``sampler``) in eval mode without gradients, its mode restored
        after: how sample grids, metrics and health checks draw (BatchNorm then uses its
        running statistics, so a sample does not depend on the others in its batch; with
        ``standing_batches``, statistics re-estimated for the sampler's weights)."""
        net = self.sampler
        if self.standing[0] and self._stood_at != self.g_step:
            stand(net, self.z_dim, *self.standing, self.num_classes, self.device)
            self._stood_at = self.g_step
        was_training = net.training
        net.eval()
        try:
            with torch.no_grad():
                yield
        finally:
            net.train(was_training)

    def fixed_samples(self) -> torch.Tensor:
        """G's samples for the fixed latent batch (and its class rows), in eval mode."""
        with self.sampling():
            return self.generate(self.fixed_z, self.fixed_labels, self.sampler)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Samples for latents ``z``; a conditional model without ``labels`` cycles through the
        classes, so any batch is class-balanced (what FID and the sample grids want)."""
        if self.num_classes and labels is None:
            labels = self.balanced_labels(len(z)).to(z.device)
        return self.generate(z, labels, self.sampler)

    def score(self, real: torch.Tensor, fake: torch.Tensor, real_labels: torch.Tensor | None = None,
              fake_labels: torch.Tensor | None = None,
              net: nn.Module | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """D's logits for a real and a fake batch.

        One pass over both batches together (one kernel per layer instead of two) when D has
        no batch statistics; a D with BatchNorm sees each batch on its own, as usual, since
        normalising real and fake together would change what it learns.
        """
        if self._batch_dependent_d:
            return (self.discriminate(real, real_labels, net),
                    self.discriminate(fake, fake_labels, net))
        labels = torch.cat([real_labels, fake_labels]) if self.num_classes else None
        both = self.discriminate(torch.cat([real, fake]), labels, net)
        return both.split([len(real), len(fake)])

    # -- the run ------------------------------------------------------------------------
    @property
    def log_every(self) -> int:
        return self._log_every or self.trainer.log_every_n_steps

    def on_train_start(self) -> None:
        self.speedups = speedups.apply(self.trainer, self, self.fast)
        self._direct = "direct_updates" in self.speedups

    def teardown(self, stage: str) -> None:
        # Lightning and TensorBoard as they were, for anything else trained in this process
        speedups.restore()

    def check_finite(self) -> bool:
        """Whether the weights, the last losses and the fixed samples are all finite: what the
        work at an epoch's end (metrics, sample grids, checkpoints) asks first. A non-finite
        state ends the run as diverged (``divergence.check``); asked once per generator step.
        """
        if self._finite_at == self.g_step and self.run.status != Status.DIVERGED:
            return True
        finite = divergence.check(self)
        if finite:
            self._finite_at = self.g_step
        return finite

    def on_train_epoch_start(self) -> None:
        if self._resumed_epoch == self.current_epoch:
            # an epoch resumed mid-way goes on from each rank's saved random state
            self._resumed_epoch = None
            return
        if self.trainer.world_size > 1:
            # Every rank was seeded alike (seed_everything); the latents must differ between
            # ranks, or each global batch would hold every fake twice. Drawn from (seed,
            # epoch, rank), they also resume exactly at an epoch boundary.
            torch.manual_seed(hash((self.seed, self.current_epoch, self.global_rank)) % 2**63)

    # -- checkpoints --------------------------------------------------------------------
    @property
    def attached_trainer(self) -> L.Trainer | None:
        """The trainer, or None where the module is saved or loaded without one."""
        try:
            return self.trainer
        except RuntimeError:
            return None

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["g_step"] = self.g_step
        checkpoint["d_steps"] = self._d_steps  # lazy R1's phase (r1.every)
        # the generator draws latents (and dropout masks) from torch's global RNG: a resumed
        # run continues with the same draws an uninterrupted one would have made
        checkpoint["rng"] = {"torch": torch.get_rng_state()}
        if torch.cuda.is_available():
            checkpoint["rng"]["cuda"] = torch.cuda.get_rng_state_all()
        trainer = self.attached_trainer
        if trainer is not None:
            # where the epoch stands (the datamodule's loader records the same for its batches)
            checkpoint["epoch_position"] = {
                "epoch": self.current_epoch,
                "batches": trainer.fit_loop.epoch_loop.batch_progress.current.processed,
                "of": trainer.num_training_batches}
            if trainer.world_size > 1:  # every rank draws from its own state (hook: all ranks)
                states = trainer.strategy.all_gather(torch.get_rng_state().to(self.device))
                # each its own storage: set_rng_state reads a view's storage from its start
                checkpoint["rng"]["torch_ranks"] = [s.cpu().clone() for s in states]
        if self.checkpoint_config is not None:
            # plain containers, so ``torch.load(weights_only=True)`` reads it (gan-sample)
            checkpoint["gan_config"] = self.checkpoint_config

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.g_step = int(checkpoint.get("g_step", 0))
        self._d_steps = int(checkpoint.get("d_steps", self.g_step * self.n_critic))
        rng = checkpoint.get("rng") or {}
        if "torch" in rng:
            torch.set_rng_state(rng["torch"])
        ranks = rng.get("torch_ranks") or []
        trainer = self.attached_trainer
        if trainer is not None and len(ranks) == trainer.world_size > 1:
            torch.set_rng_state(ranks[self.global_rank].clone())
        if "cuda" in rng and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(rng["cuda"])
        position = checkpoint.get("epoch_position") or {}
        if 0 < position.get("batches", 0) < position.get("of", 0):
            self._resumed_epoch = int(position["epoch"])  # resumed mid-way: no fresh seeding

