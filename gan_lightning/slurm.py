"""``hydra/launcher=slurm``: Hydra's submitit launcher, checking the request against the
cluster before anything is submitted.

A request that no node of the partition can satisfy (more CPUs per node, memory or GPUs than
the largest node has) would sit in the queue as ``PENDING`` for ever, and the sweep with it;
it is named in one line at submission instead. Where ``sinfo`` cannot be asked, nothing is
checked.
"""

from __future__ import annotations

import re
import subprocess
import sys
from typing import Any

from hydra_plugins.hydra_submitit_launcher.submitit_launcher import SlurmLauncher


def partition_nodes(partition: str | None) -> list[tuple[int, int, int]] | None:
    """``(cpus, memory MB, gpus)`` of each node of ``partition`` (the default one if None), or
    None where SLURM does not answer."""
    try:
        out = subprocess.run(["sinfo", "-h", "-N", "-o", "%P %c %m %G"], capture_output=True,
                             text=True, timeout=15)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        return None
    nodes = []
    for line in out.stdout.splitlines():
        name, cpus, memory, gres = (line.split() + ["(null)"])[:4]
        if (partition is None and name.endswith("*")) or name.rstrip("*") == partition:
            gpus = sum(int(n) for n in re.findall(r"gpu(?::[^:,()]+)?:(\d+)", gres))
            nodes.append((int(cpus.rstrip("+")), int(memory.rstrip("+")), gpus))
    return nodes


def unsatisfiable(params: dict[str, Any], nodes: list[tuple[int, int, int]] | None) -> str | None:
    """Why no node can run a task set asked for with the launcher's ``params`` (None: one can,
    or the cluster could not be asked)."""
    if nodes is None:
        return None
    partition = params.get("partition") or "the default partition"
    if not nodes:
        return f"hydra.launcher.partition={partition} has no nodes (sinfo lists none)"
    tasks = int(params.get("tasks_per_node") or 1)
    cpus = int(params.get("cpus_per_task") or 1) * tasks
    memory = int(float(params.get("mem_gb") or 0) * 1024)
    gpus = int(params.get("gpus_per_node") or 0)
    if any(c >= cpus and m >= memory and g >= gpus for c, m, g in nodes):
        return None
    largest = max(nodes)
    return (f"hydra.launcher asks each node for {cpus} CPUs (cpus_per_task x tasks_per_node), "
            f"{memory} MB (mem_gb) and {gpus} GPUs, but the largest node of {partition} has "
            f"{largest[0]} CPUs, {largest[1]} MB and {largest[2]} GPUs: the jobs would wait "
            f"for ever; lower hydra.launcher.cpus_per_task, mem_gb or trainer.devices")


class CheckedSlurmLauncher(SlurmLauncher):
    """Hydra's ``SlurmLauncher``, refusing at submission a request no node can satisfy."""

    def launch(self, job_overrides: Any, initial_job_idx: int) -> Any:
        problem = unsatisfiable(self.params, partition_nodes(self.params.get("partition")))
        if problem:
            print(f"config error: {problem}", file=sys.stderr)
            sys.exit(2)
        return super().launch(job_overrides, initial_job_idx)
