"""``opencharacter demo``: the whole pipeline on a tiny random model, on this machine's CPU."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console

from opencharacter.config import resolve_config
from opencharacter.console import progress_display
from opencharacter.errors import MissingDependencyError
from opencharacter.pipeline import prepare_backends, run_pipeline, start_run
from opencharacter.registry import get_backend_spec

console = Console(highlight=False, soft_wrap=True)

#: Built offline in seconds by the local backend; see ``opencharacter_local.tiny``.
TINY_MODEL = "opencharacter/tiny-qwen3"

#: Smoke-scale counts, short answers, and small LoRA steps: minutes on two CPU cores.
DEMO_SETTINGS = {
    "backend": "local",
    "teacher": TINY_MODEL,
    "student": TINY_MODEL,
    "assistant_name": "Tiny",
    "scale": "smoke",
    "concurrency": 32,
    "filters": False,
    "sampling": {"expansion_tokens": 96, "answer_tokens": 48, "reflection_tokens": 64,
                 "turn_tokens": 32},
    "dpo": {"batch_size": 8, "learning_rate": 1e-3, "lora": {"rank": 8, "alpha": 16}},
    "sft": {"batch_size": 8, "learning_rate": 1e-3, "lora": {"rank": 8, "alpha": 16}},
}  # fmt: skip

REAL_MODEL = (
    "opencharacter pipeline sarcasm --backend local --student Qwen/Qwen3-4B-Instruct-2507 "
    "--teacher Qwen/Qwen3-32B --scale mini"
)


@click.command()
@click.option(
    "--run-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("runs/demo-local"),
    show_default=True,
    help="Where the run goes.",
)
@click.option("--persona", default="sarcasm", show_default=True, help="A built-in persona.")
@click.option("--seed", type=int, default=0, show_default=True)
def demo(run_dir: Path, persona: str, seed: int) -> None:
    """Run every stage with the local backend on a tiny random model, on CPU, in minutes.

    It leaves a real run directory with real LoRA adapters. The model is random, so the
    text is nonsense and the filters are off; the point is the machinery, end to end.
    """
    spec = get_backend_spec("local")
    if spec.missing():
        msg = f"{spec.check().problems[0]} (on a CPU-only machine: pip install torch==2.13.0 first)"
        raise MissingDependencyError(msg)
    console.print(
        "[bold]opencharacter demo[/bold]: the full pipeline on a tiny *random* Qwen3 model, "
        "teacher and student alike.\n[yellow]A random tiny model writes nonsense[/yellow]: the "
        "data filters are off so its text reaches training. For a real model:\n  " + REAL_MODEL
    )
    config, layers = resolve_config(flags={**DEMO_SETTINGS, "constitution": persona, "seed": seed})
    backends = prepare_backends(config, layers)
    with start_run(run_dir, config, layers) as run, progress_display() as update:
        run_pipeline(run, config, progress=update, backends=backends)
        dpo, sft = run.checkpoint("dpo"), run.checkpoint("sft")
    console.print(f"[green]done[/green]: {run_dir}")
    if dpo is not None and sft is not None:
        console.print(f"DPO adapter: {dpo.uri}\nSFT adapter: {sft.uri}")
    console.print(f"Resume or extend it with: opencharacter pipeline --resume {run_dir}")
