"""``opencharacter backends``: the installed backends and whether each can run here."""

from __future__ import annotations

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from opencharacter.registry import DEFAULT_BACKEND, available_backends


@click.command()
def backends() -> None:
    """List installed backends, their readiness, and how to fix what is missing."""
    table = Table(title="opencharacter backends")
    for column in ("name", "ready", "description", "to fix"):
        table.add_column(column)
    for name, spec in available_backends().items():
        readiness = spec.check()
        label = f"{name} (default)" if name == DEFAULT_BACKEND else name
        table.add_row(
            label,
            "[green]yes[/green]" if readiness.ready else "[red]no[/red]",
            escape(spec.description),
            escape("\n".join(readiness.problems)),
        )
    Console().print(table)
