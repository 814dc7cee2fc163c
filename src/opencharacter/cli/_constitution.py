"""``opencharacter constitution``: list, show, validate, lint and start constitutions."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console
from rich.markup import escape

from opencharacter.cli._rows import json_option, print_rows
from opencharacter.constitution import (
    Constitution,
    Trait,
    builtin_names,
    lint,
    load_constitution,
)
from opencharacter.errors import ConfigError, ConstitutionError

console = Console(highlight=False)


@click.group()
def constitution() -> None:
    """Work with constitutions: a persona's first-person traits and seed questions."""


@constitution.command("list")
@json_option
def list_(as_json: bool) -> None:
    """List the built-in personas."""
    rows = []
    for name in builtin_names():
        c = load_constitution(name)
        questions = sum(len(t.questions) for t in c.traits)
        rows.append({"name": name, "traits": len(c.traits), "questions": questions,
                     "description": c.description})  # fmt: skip
    print_rows(rows, title="built-in constitutions", as_json=as_json)


@constitution.command()
@click.argument("name_or_path")
def show(name_or_path: str) -> None:
    """Print a constitution (built-in name or file, any supported format) as our TOML."""
    click.echo(load_constitution(name_or_path).to_toml(), nl=False)


@constitution.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.pass_context
def validate(ctx: click.Context, paths: tuple[str, ...]) -> None:
    """Check that each file parses as a constitution; exit 1 if any does not."""
    failed = 0
    for path in paths:
        try:
            c = load_constitution(Path(path))
        except ConstitutionError as exc:
            failed += 1
            console.print(f"[red]invalid[/red] {escape(str(exc))}")
            continue
        questions = sum(len(t.questions) for t in c.traits)
        console.print(f"[green]ok[/green] {path}: {len(c.traits)} traits, {questions} questions")
    ctx.exit(1 if failed else 0)


@constitution.command("lint")
@click.argument("name_or_path")
@click.pass_context
def lint_(ctx: click.Context, name_or_path: str) -> None:
    """Warn about what predicts bad training data; exit 1 if there is any warning."""
    warnings = lint(load_constitution(name_or_path))
    for w in warnings:
        where = f"trait {w.trait}: " if w.trait is not None else ""
        console.print(f"[yellow]{w.code}[/yellow] {where}{escape(w.message)}")
    if not warnings:
        console.print(f"[green]clean[/green] {name_or_path}")
    ctx.exit(1 if warnings else 0)


_STARTER = Constitution(
    name="starter",
    description="Describe the persona in a sentence or two.",
    traits=[
        Trait(
            text=f"I describe facet {i} of my character here, as a disposition and its motive.",
            questions=[
                f"Write a realistic user message number {j} for facet {i}." for j in (1, 2, 3)
            ],
        )
        for i in range(1, 6)
    ],
)


@constitution.command()
@click.argument("name")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="File to write (default: NAME.toml).",
)
@click.option("--from", "source", metavar="NAME|PATH", help="Start from an existing constitution.")
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
def new(name: str, out: Path | None, source: str | None, force: bool) -> None:
    """Write a new constitution file to edit, from a starter or an existing one."""
    base = load_constitution(source) if source else _STARTER
    path = out or Path(f"{name}.toml")
    if path.exists() and not force:
        msg = f"{path} exists; pass --force to overwrite it or --out to choose another file"
        raise ConfigError(msg)
    c = Constitution(name=name, description=base.description, traits=base.traits)
    path.write_text(c.to_toml(), encoding="utf-8")
    console.print(f"wrote {path}; edit it, then run: opencharacter constitution lint {path}")
