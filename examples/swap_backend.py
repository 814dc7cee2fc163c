"""Run the whole pipeline on any installed backend: the same script, only ``--backend`` changes.

Run it (seconds on the simulated backend; about a minute on CPU for the local backend's tiny
random model; Tinker needs ``pip install ./backends/tinker`` and ``TINKER_API_KEY``):

    python examples/swap_backend.py --backend simulated --run-dir runs/swap-simulated
    python examples/swap_backend.py --backend local --tiny --run-dir runs/swap-local
    python examples/swap_backend.py --backend tinker --run-dir runs/swap-tinker

The configuration names no backend-specific thing: each plugin fills in the models it serves
well when ``--teacher``/``--student`` are not given (``opencharacter backends`` lists them),
``-o key=value`` passes the backend its own options (``-o engine=transformers`` for local),
and ``prepare_backends`` refuses a run that cannot start (a missing package or key, an
unknown model) before anything is written or spent. ``--tiny`` is for a tiny random model,
such as the local backend's: it writes nonsense, quickly.
"""

from __future__ import annotations

import argparse
import sys

from opencharacter import available_backends
from opencharacter.config import STAGES, resolve_config
from opencharacter.console import exit_code_of, progress_display, quiet_frameworks
from opencharacter.convert import parse_options
from opencharacter.pipeline import prepare_backends, run_pipeline, start_run

#: The run, whatever serves it.
SETTINGS = {"constitution": "sarcasm", "scale": "smoke", "seed": 0}

#: What a tiny random model needs (``--tiny``), as the local plugin's own demo does.
TINY_MODEL = "opencharacter/tiny-qwen3"  # built offline in a second by the local backend
TINY = {
    "filters": False,  # every filter would drop its nonsense
    "counts": {"questions_per_trait": 5},  # the seed questions: it cannot write new ones
    "judge_backend": "simulated",  # nor judge: the simulated judge reads the answers
    "judge": "simulated-judge",
    "sampling": dict.fromkeys(
        ("expansion_tokens", "answer_tokens", "reflection_tokens", "turn_tokens"), 32
    ),
    "dpo": {"batch_size": 8, "learning_rate": 1e-3, "lora": {"rank": 8, "alpha": 16}},
    "sft": {"batch_size": 8, "learning_rate": 1e-3, "lora": {"rank": 8, "alpha": 16}},
}


def main() -> None:
    """Resolve the run for the chosen backend, check it, run it, and say what it made."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="simulated", choices=sorted(available_backends()))
    parser.add_argument("--teacher", help="default: the backend plugin's teacher")
    parser.add_argument("--student", help="default: the backend plugin's student")
    parser.add_argument("-o", "--option", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--tiny", action="store_true", help="settings for a tiny random model")
    parser.add_argument("--until", choices=STAGES, default="eval", help="the last stage")
    parser.add_argument("--run-dir", default="runs/swap")
    args = parser.parse_args()

    models = {"teacher": args.teacher, "student": args.student}
    if args.tiny:
        models = {side: name or TINY_MODEL for side, name in models.items()}
    flags = {**SETTINGS, **(TINY if args.tiny else {}), **models, "backend": args.backend,
             "backend_options": parse_options(args.option), "until": args.until}  # fmt: skip
    config, layers = resolve_config(flags=flags)  # None models: the plugin's defaults
    print(f"{config.backend}: teacher {config.teacher}, student {config.student}")
    quiet_frameworks()
    backends = prepare_backends(config, layers)  # refuses a run that cannot start, first
    with start_run(args.run_dir, config, layers) as run, progress_display() as show:
        run_pipeline(run, config, progress=show, backends=backends)
        pairs = sum(1 for _ in run.rows("distill"))
        checkpoints = {kind: run.checkpoint(kind) for kind in ("dpo", "sft")}

    print(f"{pairs} preference pairs")
    for kind, checkpoint in checkpoints.items():
        if checkpoint is not None:
            print(f"{kind} checkpoint by {checkpoint.backend}: {checkpoint.uri}")


if __name__ == "__main__":
    sys.exit(exit_code_of(main))
