"""``opencharacter eval``: evaluate a trained run, then write its report."""

from __future__ import annotations

from pathlib import Path

import click

from opencharacter.console import progress_display
from opencharacter.console import stdout as console
from opencharacter.convert import parse_options
from opencharacter.eval import evaluate


@click.command("eval")
@click.argument("run_dir", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.option("--judge", help="Judge model (default: the run's judge, else its teacher).")
@click.option(
    "--judge-backend", help="The judge's backend (default: the run's, else the teacher's)."
)
@click.option(
    "--judge-option",
    "judge_options",
    multiple=True,
    metavar="KEY=VALUE",
    help="Option of the judge's backend (repeatable), e.g. base_url=http://host:8000/v1.",
)
@click.option(
    "--capabilities",
    "tasks",
    multiple=True,
    metavar="TASK",
    help="An inspect_ai task to run on base and trained models (repeatable), "
    "e.g. inspect_evals/gsm8k.",
)
@click.option(
    "--limit", type=click.IntRange(min=1), help="Samples per capability task (default: all)."
)
def eval_(
    *,
    run_dir: Path,
    judge: str | None,
    judge_backend: str | None,
    judge_options: tuple[str, ...],
    tasks: tuple[str, ...],
    limit: int | None,
) -> None:
    """Evaluate RUN_DIR's trained model against its base model, resuming where it stopped."""
    with progress_display() as update:
        evaluate(run_dir, judge=judge, judge_backend=judge_backend,
                 judge_options=parse_options(judge_options) or None, capabilities=tasks,
                 capability_limit=limit, progress=update)  # fmt: skip
    console.print(f"summary: {run_dir / 'eval' / 'summary.json'}")
    console.print(f"report: {run_dir / 'report.html'}")
