"""Take a Tinker-trained student home: download a checkpoint as a PEFT adapter folder.

::

    python -m opencharacter_tinker.export runs/sarcasm adapters/sarcasm            # after SFT
    python -m opencharacter_tinker.export runs/sarcasm adapters/sarcasm-dpo --stage dpo

The folder (``adapter_config.json``, ``adapter_model.safetensors``) applies to the checkpoint's
base model, so the local backend samples from it (``--backend local`` with the checkpoint
recorded for it, or vLLM's ``--lora-modules``) and peft loads it; a Hugging Face model card
(``README.md``) goes with it. Tinker exports a training
state as external weights; they are downloaded file by file over signed URLs and the temporary
export is deleted afterwards. The run is read without taking its lock.
"""

from __future__ import annotations

import shutil
import urllib.request
from pathlib import Path

import click
import tinker

from opencharacter.console import run_command
from opencharacter.errors import ConfigError, DataError
from opencharacter.model_card import base_model_license, write_model_card
from opencharacter.runstore import read_manifest
from opencharacter.types import Checkpoint
from opencharacter_tinker.connection import Connection, call_with_timeout
from opencharacter_tinker.errors import translate

#: Lifetime of the temporary export on the service, should the delete afterwards fail.
EXPORT_TTL_SECONDS = 3600


def export_checkpoint(
    checkpoint: Checkpoint, out_dir: Path, *, connection: Connection, timeout: float = 600.0
) -> Checkpoint:
    """Download ``checkpoint`` into ``out_dir`` and return it as a local checkpoint.

    Raises:
        ConfigError: the checkpoint is not Tinker's, has no training state, or ``out_dir`` is
            not empty.
        BackendError: the service failed (translated, with what to do).
    """
    checkpoint.require_backend("tinker")
    if checkpoint.state_uri is None:
        msg = f"checkpoint {checkpoint.uri} records no training state to export"
        raise ConfigError(msg)
    if out_dir.exists() and any(out_dir.iterdir()):
        msg = f"{out_dir} is not empty; choose a new folder"
        raise ConfigError(msg)
    service = connection.service
    state = checkpoint.state_uri
    training = call_with_timeout(
        lambda: service.create_training_client_from_state(state).result(timeout=timeout),
        timeout,
        "loading the checkpoint",
    )
    try:
        exported = training.save_weights_external("export", ttl_seconds=EXPORT_TTL_SECONDS)
        path = exported.result(timeout=timeout).path
        rest = tinker.RestClient(base_url=connection.base_url, api_key=connection.api_key)
        urls = rest.get_external_weights_urls(path).result(timeout=timeout).urls
        partial = out_dir.with_name(f".{out_dir.name}.partial")
        shutil.rmtree(partial, ignore_errors=True)
        for name, url in sorted(urls.items()):
            _download(url, partial, name, timeout)
        rest.delete_checkpoint_from_tinker_path(path).result(timeout=timeout)
    except (tinker.TinkerError, TimeoutError, OSError) as exc:
        raise translate(exc) from exc
    if not (partial / "adapter_config.json").is_file():
        msg = f"Tinker's export of {checkpoint.uri} holds no adapter_config.json: {sorted(urls)}"
        raise DataError(msg)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    if out_dir.exists():
        out_dir.rmdir()
    partial.rename(out_dir)
    return Checkpoint(
        backend="local",
        base_model=checkpoint.base_model,
        uri=str(out_dir.absolute()),
        kind=checkpoint.kind,
        parent=checkpoint.uri,
        meta={"exported_from": checkpoint.uri, **dict(checkpoint.meta)},
    )


def _download(url: str, folder: Path, name: str, timeout: float) -> None:
    target = (folder / name).resolve()
    if not target.is_relative_to(folder.resolve()):
        msg = f"Tinker's export names a file outside its folder: {name!r}"
        raise DataError(msg)
    target.parent.mkdir(parents=True, exist_ok=True)
    with urllib.request.urlopen(url, timeout=timeout) as response, target.open("wb") as out:
        shutil.copyfileobj(response, out)


@click.command()
@click.argument("run_dir", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--stage", type=click.Choice(["sft", "dpo"]), default="sft", show_default=True)
def export(run_dir: Path, out_dir: Path, stage: str) -> None:
    """Download RUN_DIR's STAGE checkpoint from Tinker into OUT_DIR as a PEFT adapter."""
    manifest = read_manifest(run_dir)
    recorded = manifest["checkpoints"].get(stage)
    if recorded is None:
        msg = f"{run_dir} has no {stage} checkpoint; run: opencharacter train {stage} {run_dir}"
        raise ConfigError(msg)
    options = manifest["config"].get("backend_options", {})
    connection = Connection(base_url=options.get("base_url"), connect_timeout=30.0)
    exported = export_checkpoint(Checkpoint.from_dict(recorded), out_dir, connection=connection)
    write_model_card(run_dir, out_dir, stage=stage, adapter=True,
                     license=base_model_license(exported.base_model))  # fmt: skip
    click.echo(f"{stage} adapter for {exported.base_model}, with its model card: {out_dir}")


if __name__ == "__main__":
    run_command(export, prog_name="python -m opencharacter_tinker.export")
