"""``opencharacter demo``: the whole pipeline on a tiny random model, on this machine's CPU."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console
from rich.markup import escape

from opencharacter.config import resolve_config
from opencharacter.console import progress_display
from opencharacter.errors import ConfigError, MissingDependencyError
from opencharacter.eval.report import REPORT
from opencharacter.pipeline import prepare_backends, run_pipeline, start_run
from opencharacter.registry import BackendSpec, available_backends, get_backend_spec

console = Console(highlight=False, soft_wrap=True)


@click.command()
@click.option(
    "--run-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("runs/demo-local"),
    show_default=True,
    help="Where the run goes.",
)
@click.option("--persona", default="sarcasm", show_default=True, help="A built-in persona.")
@click.option(
    "--seed", type=int, default=0, show_default=True, help="Seed for every random choice."
)
@click.option("--backend", help="A backend that offers a demo (default: the first installed).")
def demo(run_dir: Path, persona: str, seed: int, backend: str | None) -> None:
    """Run every stage on this machine in minutes, as a backend plugin's demo preset says.

    It leaves a real run directory with real adapters, the evaluations and their report (the
    local backend: a tiny random model on CPU, so the text is nonsense; the point is the
    machinery, end to end).
    """
    spec = _demo_backend(backend)
    preset = spec.demo
    assert preset is not None  # _demo_backend chose a backend with one
    if spec.missing():
        raise MissingDependencyError(spec.check().problems[0])
    console.print(f"[bold]opencharacter demo[/bold] on {spec.name}: {escape(preset.about)}. "
                  f"For a real model:\n  {escape(preset.real_command)}")  # fmt: skip
    flags = {**preset.settings, "constitution": persona, "seed": seed}
    config, layers = resolve_config(flags=flags)
    backends = prepare_backends(config, layers)
    with start_run(run_dir, config, layers) as run, progress_display() as update:
        run_pipeline(run, config, progress=update, backends=backends)
        dpo, sft = run.checkpoint("dpo"), run.checkpoint("sft")
    console.print(f"[green]done[/green]: {run_dir}")
    if dpo is not None and sft is not None:
        console.print(f"DPO adapter: {dpo.uri}\nSFT adapter: {sft.uri}")
    if (run_dir / REPORT).exists():
        console.print(f"The report: {run_dir / REPORT}")
    console.print(f"Resume or extend it with: opencharacter pipeline --resume {run_dir}")


def _demo_backend(name: str | None) -> BackendSpec:
    """Return the named backend, or the first installed one whose plugin offers a demo."""
    offering = [spec for spec in available_backends().values() if spec.demo is not None]
    if name is not None:
        spec = get_backend_spec(name)
        if spec.demo is None:
            names = ", ".join(s.name for s in offering) or "none installed"
            msg = f"the {name!r} backend offers no demo; backends that do: {names}"
            raise ConfigError(msg)
        return spec
    if not offering:
        msg = (
            "no installed backend offers a demo; install one that does (the README's "
            "Quickstart installs the local backend)"
        )
        raise MissingDependencyError(msg)
    return offering[0]
