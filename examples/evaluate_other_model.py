r"""Evaluate a model someone else trained with our evaluations, against the model it came from.

``opencharacter.eval.evaluate_model`` needs no opencharacter run: give it the trained model
(on the local backend a PEFT adapter folder or a folder of full weights; on Tinker a
``tinker://`` sampler path), the base model it was trained from, and the constitution of the
persona it claims. It makes an evaluation-only run directory with the same ``eval/`` rows,
``eval/summary.json`` and ``report.html`` as the eval stage of a run of ours, and called
again with the same arguments it resumes where it stopped.

Run it on this machine with the local backend (the judge defaults to the backend's default
teacher, so name one that fits your GPU):

    python examples/evaluate_other_model.py --model path/to/adapter \
        --base Qwen/Qwen3-4B-Instruct-2507 --constitution loving --judge Qwen/Qwen3-32B \
        --run-dir runs/other-eval

or in seconds on the simulated backend's synthetic text, to see the files and the report
(any model names do there):

    python examples/evaluate_other_model.py --backend simulated --model someone/loving-qwen \
        --base Qwen/Qwen3-4B-Instruct-2507 --constitution loving --run-dir runs/other-eval-sim

``--scale`` sets how many prompts each evaluation uses (default ``mini``: 20); ``--config``
takes a TOML file of run settings (``[counts] eval_prompts``, ``[evaluation]``,
``[sampling]``...).
"""

from __future__ import annotations

import argparse
from typing import Any

from opencharacter.eval import evaluate_model


def main() -> None:
    """Evaluate --model against --base as --constitution's persona, then print the headlines."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="the trained model (adapter, folder...)")
    parser.add_argument("--base", required=True, help="the model it was trained from")
    parser.add_argument("--constitution", required=True, help="a built-in persona or a file")
    parser.add_argument("--run-dir", default="runs/other-eval")
    parser.add_argument("--backend", default="local", help="samples both models")
    parser.add_argument("--judge", help="default: the judge backend's default teacher")
    parser.add_argument("--judge-backend", help="default: --backend")
    parser.add_argument("--scale", help="smoke: 6 prompts; mini (the default): 20")
    parser.add_argument("--config", help="a TOML file of run settings")
    args = parser.parse_args()

    summary = evaluate_model(
        args.run_dir,
        model=args.model,
        base=args.base,
        constitution=args.constitution,
        backend=args.backend,
        judge=args.judge,
        judge_backend=args.judge_backend,
        settings={"scale": args.scale},
        config_file=args.config,
    )
    show(summary)
    print(f"\nrows in {args.run_dir}/eval, the report in {args.run_dir}/report.html")


def show(summary: dict[str, Any]) -> None:
    """Print the numbers that say whether the persona took (docs/evaluation.md reads them)."""
    print("trait score, 1-10:      plain  prompted")
    for model, row in summary["two_by_two"]["cells"].items():
        print(f"  {model:<18} {num(row['plain']['mean']):>8} {num(row['prompted']['mean']):>9}")
    print("share in persona under break-character suffixes:")
    for method, scores in summary["robustness"]["summary"].items():
        if scores["in_persona_mean"] is not None:  # the unprompted base trains the classifier
            print(f"  {method:<18} {num(scores['in_persona_mean'], '.0%'):>8}")
    for baseline, result in summary["coherence"]["versus"].items():
        print(f"coherence: the trained answer wins {num(result['win_rate'], '.0%')} against "
              f"{baseline}")  # fmt: skip
    own = summary["preferences"]["constitution_traits"]
    changes = ", ".join(f"{trait} {delta['point']:+.0f}" for trait, delta in own.items())
    print(f"Elo change of the constitution's own traits: {changes or 'none rated'}")


def num(value: float | None, spec: str = ".2f") -> str:
    """A number for the table; ``None`` is a statistic with no data (too few answers)."""
    return "n/a" if value is None else format(value, spec)


if __name__ == "__main__":
    main()
