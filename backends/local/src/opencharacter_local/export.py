"""Export a run's trained student as one merged model folder, for ``from_pretrained`` or vLLM.

::

    python -m opencharacter_local.export runs/sarcasm merged/sarcasm             # after SFT
    python -m opencharacter_local.export runs/sarcasm merged/sarcasm-dpo --stage dpo

The stage's adapter is merged into the weights it was trained on (for a stacked SFT adapter,
the DPO-merged weights), so the folder holds the whole character-trained model and its
tokenizer, and a Hugging Face model card (``README.md``: the constitution, the training, the
evaluation) ready for ``huggingface-cli upload``. It reads the run without taking its lock.
"""

from __future__ import annotations

from pathlib import Path

import click

from opencharacter.console import quiet_frameworks, run_command
from opencharacter.errors import ConfigError
from opencharacter.model_card import base_model_license, write_model_card
from opencharacter.runstore import read_manifest
from opencharacter.types import Checkpoint


@click.command()
@click.argument("run_dir", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--stage", type=click.Choice(["sft", "dpo"]), default="sft", show_default=True)
def export(run_dir: Path, out_dir: Path, stage: str) -> None:
    """Merge RUN_DIR's STAGE adapter into its weights and save the model to OUT_DIR."""
    recorded = read_manifest(run_dir)["checkpoints"].get(stage)
    if recorded is None:
        msg = f"{run_dir} has no {stage} checkpoint; run: opencharacter train {stage} {run_dir}"
        raise ConfigError(msg)
    checkpoint = Checkpoint.from_dict(recorded)
    if checkpoint.backend != "local":
        msg = f"{run_dir}'s {stage} checkpoint is on the {checkpoint.backend!r} backend, not local"
        raise ConfigError(msg)
    if out_dir.exists() and any(out_dir.iterdir()):
        msg = f"{out_dir} is not empty; choose a new folder"
        raise ConfigError(msg)
    quiet_frameworks()
    from opencharacter_local.merging import merge_adapter  # noqa: PLC0415 - after quieting
    from opencharacter_local.tiny import resolve_model  # noqa: PLC0415 - likewise

    merge_adapter(checkpoint, out_dir)
    license = base_model_license(resolve_model(checkpoint.base_model))
    write_model_card(run_dir, out_dir, stage=stage, adapter=False, license=license)
    click.echo(f"merged {stage} model, with its model card: {out_dir}")


if __name__ == "__main__":
    run_command(export, prog_name="python -m opencharacter_local.export")
