"""Rank 0 hands each training job to the other processes of a multi-process launch.

``accelerate launch`` and ``torchrun`` start one process per GPU and tell each its ``RANK``
and ``WORLD_SIZE``. The process group they train in (data parallel, through accelerate) also
carries the jobs: rank 0 broadcasts a pickled :class:`~opencharacter_local.trainer.TrainingJob`,
or ``None`` to say there is no more.
"""

from __future__ import annotations

import os
from typing import Any

import torch.distributed as dist
from accelerate import PartialState


def world_size() -> int:
    """Return the processes this one trains with (1 outside a multi-process launch)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    """Return this process's global rank (0 outside a multi-process launch)."""
    return int(os.environ.get("RANK", "0"))


def send(job: Any, *, cpu: bool) -> None:
    """From rank 0: give every other rank ``job`` (``None`` ends their :func:`receive` loop)."""
    _broadcast(job, cpu=cpu)


def receive(*, cpu: bool) -> Any:
    """On the other ranks: wait for rank 0's next job and return it."""
    return _broadcast(None, cpu=cpu)


def leave() -> None:
    """Leave the launch's process group before exiting, on every rank.

    A process that exits with the group's communication threads still running is aborted by
    the C++ runtime ("terminate called without an active exception"), now and then.
    """
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def _broadcast(job: Any, *, cpu: bool) -> Any:
    PartialState(cpu=cpu)  # joins the launch's process group once (gloo on CPU, nccl on CUDA)
    box = [job]
    dist.broadcast_object_list(box, src=0)
    return box[0]
