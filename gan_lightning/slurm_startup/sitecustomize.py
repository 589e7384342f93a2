"""Imported by Python at start-up in a SLURM job of ``hydra/launcher=slurm`` (the launcher
puts this folder first on ``PYTHONPATH``), before anything else runs.

SLURM's warning signal (SIGUSR2, before a time limit or a preemption) ends a process that has
no handler for it. A job's Python gets one only once submitit has been imported, and the
training its own once it has started; a warning in between would end the job (exit 140) and
nothing would requeue it. Until submitit installs its handler, this one requeues the job (it
has trained nothing yet in this attempt) and exits.
"""

import os
import signal


def _requeue(signum, frame):  # noqa: ARG001 - a signal handler's signature
    import subprocess

    # an array task's own job id: requeues this task only
    subprocess.run(["scontrol", "requeue", os.environ["SLURM_JOB_ID"]], check=False)
    os._exit(0)


if os.environ.get("SLURM_JOB_ID") and signal.getsignal(signal.SIGUSR2) is signal.SIG_DFL:
    signal.signal(signal.SIGUSR2, _requeue)
