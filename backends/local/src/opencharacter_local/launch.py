"""Train a run's DPO or SFT stage data-parallel, one process per GPU.

::

    accelerate launch --multi_gpu --num_processes 8 -m opencharacter_local.launch dpo runs/humor
    torchrun --nproc-per-node 8 -m opencharacter_local.launch sft runs/humor

Rank 0 runs the stage exactly as ``opencharacter train STAGE RUN_DIR`` does (through
:func:`opencharacter.pipeline.run_stage`): it holds the run directory's lock
and writes the manifest, metrics, adapter and checkpoint marker. Its trainer sends the stage's
training job to the other ranks, which read the run's backend options (never taking its lock),
train their share of every batch and write nothing of the run. The config's ``batch_size``
stays the effective batch. On several machines, ``RUN_DIR`` must be on a file system they
share. The data stages sample in one process: run them with ``opencharacter generate``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, cast

import click

from opencharacter.console import (
    EXIT_USER_ERROR,
    configure_logging,
    exit_code_of,
    print_error,
    progress_display,
    quiet_frameworks,
)
from opencharacter.errors import ConfigError, OpenCharacterError
from opencharacter.pipeline import run_stage
from opencharacter.registry import load_backend
from opencharacter.runstore import read_manifest
from opencharacter_local import distributed

if TYPE_CHECKING:
    from opencharacter_local.trainer import LocalTrainer

USAGE = "usage: accelerate launch [OPTIONS] -m opencharacter_local.launch {dpo,sft} RUN_DIR"
EXIT_USAGE = 2


def main(argv: Sequence[str] | None = None) -> None:
    """Lead the stage on rank 0, follow it on every other rank; exit with rank 0's status."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 2 or args[0] not in {"dpo", "sft"}:
        print(USAGE, file=sys.stderr)
        sys.exit(EXIT_USAGE)
    stage, run_dir = args
    quiet_frameworks()  # before the backend imports them, on every rank
    try:
        trainer = _trainer(run_dir)
    except OpenCharacterError as exc:
        if distributed.rank() == 0:
            print_error(exc)
        sys.exit(EXIT_USER_ERROR)
    if distributed.rank() != 0:
        trainer.follow()
        distributed.leave()
        return
    configure_logging()
    code = exit_code_of(lambda: _lead(stage, run_dir))
    if code != 0:
        sys.exit(code)  # the launcher then stops the other ranks
    trainer.release_followers()
    distributed.leave()


def _lead(stage: str, run_dir: str) -> None:
    """Train the stage on rank 0, as ``opencharacter train`` does, and say where it is."""
    with progress_display() as update:
        checkpoint = run_stage(run_dir, stage, progress=update)
    click.echo(f"{stage} checkpoint: {checkpoint.uri}")


def _trainer(run_dir: str) -> LocalTrainer:
    """Return a trainer with the run's own backend options, the same on every rank."""
    config = read_manifest(run_dir).get("config") or {}
    if config.get("backend") != "local":
        msg = (
            f"{run_dir} trains on the {config.get('backend')!r} backend; this launcher trains "
            "local runs (use: opencharacter train STAGE RUN_DIR)"
        )
        raise ConfigError(msg)
    return cast("LocalTrainer", load_backend("local", config.get("backend_options")).trainer())


if __name__ == "__main__":
    main()
