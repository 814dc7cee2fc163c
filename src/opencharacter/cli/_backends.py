"""``opencharacter backends``: the installed backends and whether each can run here."""

from __future__ import annotations

import click

from opencharacter.cli._rows import json_option, print_rows
from opencharacter.registry import DEFAULT_BACKEND, available_backends


@click.command()
@json_option
def backends(as_json: bool) -> None:
    """List installed backends, their readiness, and how to fix what is missing."""
    rows = []
    for name, spec in available_backends().items():
        readiness = spec.check()
        rows.append({
            "name": name,
            "default": name == DEFAULT_BACKEND,
            "ready": readiness.ready,
            "description": spec.description,
            "fix": list(readiness.problems),
        })  # fmt: skip
    print_rows(rows, title="opencharacter backends", as_json=as_json)
