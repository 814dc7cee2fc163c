"""``opencharacter pipeline``, ``generate`` and ``train``: run the stages from the command line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from rich.table import Table

from opencharacter.config import (
    DATA_STAGES,
    SCALES,
    STAGES,
    TRAINING_STAGES,
    resolve_config,
    teacher_side,
)
from opencharacter.console import progress_display
from opencharacter.console import stdout as console
from opencharacter.constitution import load_constitution
from opencharacter.convert import parse_options
from opencharacter.errors import ConfigError
from opencharacter.estimate import estimate, format_duration, side_timing
from opencharacter.pipeline import (
    Backends,
    prepare_backends,
    resume_run,
    run_pipeline,
    run_stage,
    start_run,
)


def _short(tokens: int) -> str:
    """Return a token count compactly: 950, 14.6k, 9.1M."""
    for unit, size in (("M", 1e6), ("k", 1e3)):
        if tokens >= size:
            return f"{tokens / size:.1f}{unit}"
    return str(tokens)


def _print_estimate(config: Any) -> None:
    rows = estimate(config, load_constitution(config.constitution))
    table = Table(title=f"estimate: {config.constitution} at scale {config.scale} on "
                  f"{config.backend}, concurrency {config.concurrency}")  # fmt: skip
    columns = ("stage", "answers", "requests", "tokens in", "tokens out", "trained", "cost", "time")
    for column in columns:
        table.add_column(column, justify="left" if column == "stage" else "right")
    total, seconds = 0.0, 0.0
    for row in rows:
        cost = "unknown" if row.cost is None else f"${row.cost:,.2f}"
        total += row.cost or 0.0
        seconds += row.seconds
        table.add_row(row.stage, f"{row.generations:,}", f"{row.requests:,}",
                      _short(row.prompt_tokens), _short(row.completion_tokens),
                      _short(row.train_tokens), cost, format_duration(row.seconds))  # fmt: skip
    console.print(table)
    console.print(f"total: {format_duration(seconds)}, ${total:,.2f} at listed prices (each "
                  "backend's price table under the config's 'prices')")  # fmt: skip
    sides = {teacher_side(config)[0]: "teacher", config.backend: "student"}
    for backend, side in sides.items():
        console.print(f"time on {backend}: {side_timing(config, side).source}")


@click.command()
@click.argument("constitution", required=False)
@click.option("--backend", help="Backend for the student and training (default: tinker).")
@click.option("--teacher-backend", help="Backend for the teacher (default: the student's).")
@click.option("--judge", help="Judge model of the evaluations (default: the teacher).")
@click.option("--judge-backend", help="The judge's backend (default: the teacher's).")
@click.option("--teacher", help="Teacher model (default: its backend's own).")
@click.option("--student", help="Student model (default: its backend's own).")
@click.option(
    "-o",
    "--option",
    "options",
    multiple=True,
    metavar="KEY=VALUE",
    help="Option of the student's backend (repeatable), e.g. -o latency_ms=20.",
)
@click.option(
    "--teacher-option",
    "teacher_options",
    multiple=True,
    metavar="KEY=VALUE",
    help="Option of the teacher's backend (repeatable); the teacher then gets its own.",
)
@click.option(
    "--judge-option",
    "judge_options",
    multiple=True,
    metavar="KEY=VALUE",
    help="Option of the judge's backend (repeatable); the judge then gets its own.",
)
@click.option("--scale", type=click.Choice(list(SCALES)), help="Preset of counts (default: mini).")
@click.option(
    "--report-to",
    metavar="TRACKERS",
    help="Experiment trackers for the metrics: wandb, mlflow, trackio (comma-separated).",
)
@click.option(
    "--concurrency",
    type=click.IntRange(min=1),
    help="Requests in flight per model (default: the backend's own, else 64).",
)
@click.option("--seed", type=int, help="Seed for every random choice (default: 0).")
@click.option(
    "--run-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where the run goes (default runs/<constitution>).",
)
@click.option(
    "--resume",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    help="Continue a stopped run where it stopped, with its own settings.",
)
@click.option("--until", type=click.Choice(STAGES), help="Stop after this stage (default: eval).")
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, exists=True),
    help="A TOML config file of run settings; flags override it.",
)
@click.option(
    "--estimate",
    "only_estimate",
    is_flag=True,
    help="Print generations, tokens, cost and time per stage, then stop.",
)
def pipeline(
    *,
    constitution: str | None,
    backend: str | None,
    teacher_backend: str | None,
    judge: str | None,
    judge_backend: str | None,
    teacher: str | None,
    student: str | None,
    options: tuple[str, ...],
    teacher_options: tuple[str, ...],
    judge_options: tuple[str, ...],
    scale: str | None,
    report_to: str | None,
    concurrency: int | None,
    seed: int | None,
    run_dir: Path | None,
    resume: Path | None,
    until: str | None,
    config_file: str | None,
    only_estimate: bool,
) -> None:
    """Run the whole pipeline on CONSTITUTION (a built-in name or a file), or --resume one."""
    backends: Backends | None = None  # a resumed run prepares them from its own manifest
    flags = {
        "constitution": constitution, "backend": backend, "teacher_backend": teacher_backend,
        "teacher": teacher, "student": student, "scale": scale, "concurrency": concurrency,
        "seed": seed, "until": until, "backend_options": parse_options(options) or None,
        "judge": judge, "judge_backend": judge_backend,
        "teacher_backend_options": parse_options(teacher_options) or None,
        "judge_backend_options": parse_options(judge_options) or None,
        "report_to": report_to,
    }  # fmt: skip
    if resume is not None:
        if run_dir or config_file or only_estimate:
            msg = "--resume takes the run's own settings; drop --run-dir, --config and --estimate"
            raise ConfigError(msg)
        # Every flag given goes to resume_run, which refuses those that shape the data.
        run, config = resume_run(resume, flags)
    else:
        config, layers = resolve_config(flags=flags, file=config_file)
        if only_estimate:
            _print_estimate(config)
            return
        name = load_constitution(config.constitution).name  # a bad one fails before any folder
        target = run_dir or Path("runs") / name
        backends = prepare_backends(config, layers)  # a run that cannot start makes no folder
        run = start_run(target, config, layers)
    with run, progress_display() as update:
        console.print(f"run directory: {run.path}  (resume with: opencharacter pipeline "
                      f"--resume {run.path})")  # fmt: skip
        run_pipeline(run, config, progress=update, backends=backends)
    console.print(f"[green]done[/green] up to {config.until}: {run.path}")


@click.command()
@click.argument("stage", type=click.Choice(DATA_STAGES))
@click.argument("run_dir", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.option(
    "--concurrency",
    type=click.IntRange(min=1),
    help="Requests in flight per model (default: the run's own).",
)
def generate(stage: str, run_dir: Path, concurrency: int | None) -> None:
    """Run one data stage on an existing run directory (it resumes where it stopped)."""
    with progress_display() as update:
        run_stage(run_dir, stage, concurrency=concurrency, progress=update)


@click.command()
@click.argument("stage", type=click.Choice(TRAINING_STAGES))
@click.argument("run_dir", type=click.Path(file_okay=False, exists=True, path_type=Path))
def train(stage: str, run_dir: Path) -> None:
    """Run one training stage on an existing run directory (sft assembles its data first)."""
    with progress_display() as update:
        checkpoint = run_stage(run_dir, stage, progress=update)
    console.print(f"{stage} checkpoint: {checkpoint.uri}")
