"""Run the pipeline from Python, watch its progress, and read what it made.

Run it (seconds on the simulated backend; pass --backend local or tinker once installed):

    python examples/run_pipeline.py --run-dir runs/from-python

The same calls embed the pipeline in your own code: resolve a configuration (flags, a TOML
file, the environment and a scale preset), start or resume a run directory, run the stages,
then load the rows with the library's record types.
"""

from __future__ import annotations

import argparse

from opencharacter import ChatExample, PreferencePair
from opencharacter.config import resolve_config
from opencharacter.pipeline import prepare_backends, run_pipeline, start_run
from opencharacter.stages import Progress


def show(event: Progress) -> None:
    """Print stage messages (summaries, warnings) as they come."""
    if event.message:
        print(f"[{event.stage}] {event.message}")


def main() -> None:
    """Run every stage, then print a pair and a self-interaction transcript."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", default="runs/from-python")
    parser.add_argument("--backend", default="simulated")
    parser.add_argument("--config", help="a TOML config file, e.g. examples/paper.toml")
    args = parser.parse_args()

    config, layers = resolve_config(
        flags={"constitution": "loving", "backend": args.backend, "scale": "smoke", "seed": 1},
        file=args.config,
    )
    backends = prepare_backends(config, layers)  # refuses a run that cannot start, first
    with start_run(args.run_dir, config, layers) as run:
        run_pipeline(run, config, progress=show, backends=backends)
        pair = PreferencePair.from_row(next(run.rows("distill")))
        transcript = ChatExample.from_row(next(run.rows("interaction")))
        stages = run.manifest["stages"]

    print(f"\nprompt:   {pair.prompt[0].content}\nchosen:   {pair.chosen[:120]}...")
    print(f"rejected: {pair.rejected[:120]}...")
    print(f"\ninteraction ({len(transcript.messages)} messages), roles:",
          " ".join(m.role for m in transcript.messages))  # fmt: skip
    for name, stage in stages.items():
        print(f"{name:<11} {stage.get('generations', '-'):>5} generations  "
              f"{stage.get('usage', {}).get('requests', 0):>5} requests")  # fmt: skip


if __name__ == "__main__":
    main()
