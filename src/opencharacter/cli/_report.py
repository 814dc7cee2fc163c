"""``opencharacter report RUN_DIR``: one self-contained HTML page about a run."""

from __future__ import annotations

from pathlib import Path

import click

from opencharacter.console import stdout as console


@click.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
def report(run_dir: Path) -> None:
    """Write RUN_DIR/report.html: config, costs, filters, training curves and evaluations."""
    from opencharacter.eval.report import write_report  # noqa: PLC0415 - only this command

    console.print(str(write_report(run_dir)), markup=False, highlight=False)
