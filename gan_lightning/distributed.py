"""Several processes, one run: Lightning DDP with a data-parallel wrapper per network.

``trainer=ddp`` selects ``GANDDPStrategy``. Why not Lightning's plain ``DDPStrategy``: it wraps
the whole LightningModule in one ``DistributedDataParallel``, whose reducer expects every
parameter of G *and* D to receive a gradient in each backward pass. A GAN's D step gives none
to G and its G step none to D, so the plain strategy only runs with
``find_unused_parameters=True`` (a graph traversal per backward and an all-reduce of the
idle network's gradients; Lightning issues #20328, #20866). Here G and D are wrapped on their
own (``GANModule.distribute``) and each backward all-reduces the network it updates.

Processes are started the way Lightning's ``ddp`` starts them (the job's script again, with
``LOCAL_RANK`` set), but the command is built from the Hydra *job*: its config and overrides,
in run mode, into the job's own folder. Lightning's own command repeats ``sys.argv``, which in
a multirun (``-m z_dim=20,50``) would start the whole sweep again in each child.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from typing import Any

import hydra
import torch
import torch.distributed as dist
from lightning.fabric.strategies.launchers.subprocess_script import _basic_subprocess_cmd
from lightning.pytorch.strategies import DDPStrategy
from lightning.pytorch.strategies.launchers.subprocess_script import _SubprocessScriptLauncher
from omegaconf import DictConfig

from gan_lightning.ranks import grouped

log = logging.getLogger(__name__)

#: the variables the launching process sets for its children (and clears at the end)
DDP_ENV = ("MASTER_ADDR", "MASTER_PORT", "NODE_RANK", "LOCAL_RANK", "WORLD_SIZE")


def job_command(local_rank: int) -> list[str]:
    """The command that starts rank ``local_rank`` of the current Hydra job (run mode)."""
    from hydra.core.hydra_config import HydraConfig

    hc = HydraConfig.get()

    def location(source: Any) -> str:  # pkg://gan_lightning.conf (gan-train), file://...
        return f"{source['schema']}://{source['path']}"

    main = next(s for s in hc.runtime.config_sources if s["provider"] == "main")
    # the user's config folders (gan-train --config-dir, hydra.searchpath=[...])
    extra = [location(s) for s in hc.runtime.config_sources
             if s["provider"] not in ("hydra", "main", "schema")]
    quoted_dir = hc.runtime.output_dir.replace("\\", "\\\\").replace("'", "\\'")
    return [
        sys.executable, "-m", __name__,
        f"--config-path={main['path'] if main['schema'] == 'file' else location(main)}",
        f"--config-name={hc.job.config_name}",
        *([f"hydra.searchpath=[{','.join(extra)}]"] if extra else []),
        *hc.overrides.task,
        f"hydra.run.dir='{quoted_dir}'",
        "hydra.output_subdir=null",  # the job's .hydra/ is rank 0's
        f"hydra.job.name={hc.job.name}_rank{local_rank}",  # its own log file
    ]


class JobLauncher(_SubprocessScriptLauncher):
    """Lightning's subprocess launcher, starting the other ranks with ``job_command``."""

    def _call_children_scripts(self) -> None:
        from hydra.core.hydra_config import HydraConfig

        self._check_can_spawn_children()
        self.procs = []
        env = self.cluster_environment
        os.environ.update(MASTER_ADDR=env.main_address, MASTER_PORT=str(env.main_port),
                          NODE_RANK=str(env.node_rank()), LOCAL_RANK=str(env.local_rank()),
                          WORLD_SIZE=str(self.num_processes * self.num_nodes))
        for local_rank in range(1, self.num_processes):
            child_env = {**os.environ, "LOCAL_RANK": str(local_rank)}
            if os.environ.get("PL_GLOBAL_SEED") is None:
                child_env.pop("PL_GLOBAL_SEED", None)
            command = (job_command(local_rank) if HydraConfig.initialized()
                       else list(_basic_subprocess_cmd()))
            self.procs.append(subprocess.Popen(command, env=child_env))


class GANDDPStrategy(DDPStrategy):
    """DDP for ``GANModule``: G and D each in their own ``DistributedDataParallel``.

    At the end of training the parameters of all ranks are compared (they must be equal: each
    update applied the same all-reduced gradients); ``metrics.json`` records the largest
    difference under ``ddp``. The process group is closed at teardown, so the next job of a
    sequential sweep starts its own.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.summary: dict[str, Any] = {}
        self._launched = False

    def _configure_launcher(self) -> None:
        if self._start_method == "popen":
            self._launcher = JobLauncher(self.cluster_environment, self.num_processes,
                                         self.num_nodes)
            self._launched = not self.cluster_environment.creates_processes_externally
        else:
            super()._configure_launcher()

    def configure_ddp(self) -> None:
        # the LightningModule stays unwrapped; its two networks get a wrapper each
        self.lightning_module.distribute(self._setup_model)

    def on_train_end(self) -> None:
        spread = param_spread(self.lightning_module)
        self.summary = {"world_size": self.world_size, "max_param_diff_across_ranks": spread}
        if spread > 0:
            log.warning("DDP: the ranks' parameters differ by up to %.3g", spread)

    def run_summary(self) -> dict[str, Any]:
        return {"ddp": self.summary} if self.summary else {}

    def teardown(self) -> None:
        module = self.lightning_module
        if module is not None:
            module.distribute(None)
        super().teardown()
        if grouped():
            dist.destroy_process_group()
        if self._launched:
            for key in DDP_ENV:
                os.environ.pop(key, None)


def param_spread(module: torch.nn.Module) -> float:
    """The largest difference of any parameter between rank 0 and another rank."""
    flat = torch.cat([p.detach().double().flatten() for p in module.parameters()])
    gathered = [torch.empty_like(flat) for _ in range(dist.get_world_size())]
    dist.all_gather(gathered, flat)
    return max(float((g - gathered[0]).abs().max()) for g in gathered)


@hydra.main(version_base="1.3", config_path=None, config_name=None)
def _rank_main(cfg: DictConfig) -> None:
    """A rank > 0 of a DDP job (``job_command``): the same run, joining rank 0's process group."""
    from gan_lightning.train import run

    run(cfg)


if __name__ == "__main__":
    _rank_main()
