"""A training stage's folder: claimed for one set of inputs, finished by a checkpoint marker.

Every trainer owns an ``output_dir`` per stage and must tell three cases apart when called:
a finished stage (return its checkpoint, train nothing), an interrupted one (resume its saved
state) and a folder holding another run's state (refuse: resuming it would train the wrong
thing). The folder keeps ``inputs.json``, a key of everything the stage trains on, written
when it is claimed, and ``checkpoint.json``, the finished checkpoint, written last and
atomically, so a kill leaves either no marker or a whole one.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from opencharacter.errors import ConfigError
from opencharacter.types import Checkpoint

INPUTS = "inputs.json"
MARKER = "checkpoint.json"


def claim(output_dir: Path, key: str) -> Checkpoint | None:
    """Return the finished checkpoint for ``key``, or claim ``output_dir`` to (re)train in.

    Raises:
        ConfigError: ``output_dir`` was started for other inputs, so its state is not ours.
    """
    record = output_dir / INPUTS
    if record.is_file():
        if json.loads(record.read_text(encoding="utf-8"))["inputs"] != key:
            msg = (
                f"{output_dir} holds a training run for other inputs or settings; "
                "delete it or train into another folder"
            )
            raise ConfigError(msg)
        marker = output_dir / MARKER
        if marker.is_file():
            return Checkpoint.from_dict(json.loads(marker.read_text(encoding="utf-8")))
        return None
    output_dir.mkdir(parents=True, exist_ok=True)
    write_json(record, {"inputs": key})
    return None


def finish(output_dir: Path, checkpoint: Checkpoint) -> Checkpoint:
    """Mark the stage finished with ``checkpoint`` and return it."""
    write_json(output_dir / MARKER, checkpoint.to_dict())
    return checkpoint


def write_json(path: Path, data: Any) -> None:
    """Replace ``path`` with ``data`` as JSON atomically: a kill leaves the old or the new."""
    partial = path.with_name(f"{path.name}.partial")
    partial.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    partial.replace(path)
