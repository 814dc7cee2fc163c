"""Listings for people and for scripts: a table on a terminal, plain rows in a pipe, or JSON.

``opencharacter backends`` and ``opencharacter constitution list`` print the same rows three
ways, so a script never parses a wrapped table: ``--json`` gives one object per line, and
output that is not a terminal gets one tab-separated line per row under a header.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

json_option = click.option("--json", "as_json", is_flag=True, help="One JSON object per row.")


def print_rows(rows: Sequence[Mapping[str, Any]], *, title: str, as_json: bool) -> None:
    """Print ``rows`` (the same keys each) as JSON lines, a table, or tab-separated lines."""
    if as_json:
        for row in rows:
            click.echo(json.dumps(row, ensure_ascii=False))
        return
    columns = list(rows[0]) if rows else []
    cells = [[_text(row[column]) for column in columns] for row in rows]
    if not sys.stdout.isatty():
        click.echo("\t".join(columns))
        for line in cells:
            click.echo("\t".join(cell.replace("\t", " ") for cell in line))
        return
    table = Table(title=title)
    for column in columns:
        table.add_column(column)
    for line in cells:
        table.add_row(*(escape(cell) for cell in line))
    Console().print(table)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return "; ".join(str(v) for v in value)
    return "" if value is None else str(value)
