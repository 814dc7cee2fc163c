r"""Serve the teacher on one backend and train the student on another, each with its options.

Run it (about a minute on CPU: a simulated teacher, the local backend's tiny random student):

    python examples/mixed_backends.py --teacher-backend simulated --backend local \
        --student opencharacter/tiny-qwen3 --tiny-student -o engine=transformers

A real pairing is a large teacher behind a server and a student on this machine's GPU:

    python examples/mixed_backends.py --teacher-backend openai --teacher Qwen/Qwen3-32B \
        --teacher-option base_url=http://teacher-node:8000/v1 \
        --backend local --student Qwen/Qwen3-4B-Instruct-2507

The teacher's backend writes the prompts and the chosen answers, and judges the evaluations;
the student's backend writes the rejected answers and the introspective data, and trains.
Each side gets its own options (``teacher_backend_options`` and ``backend_options``), and the
run's manifest records which backend served each side and made each checkpoint.
"""

from __future__ import annotations

import argparse
import json
import sys

from opencharacter import available_backends
from opencharacter.config import STAGES, resolve_config
from opencharacter.console import exit_code_of, progress_display, quiet_frameworks
from opencharacter.convert import parse_options
from opencharacter.pipeline import prepare_backends, run_pipeline, start_run

#: What a tiny random student needs (``--tiny-student``): short answers, small LoRA steps and
#: no filters, which would drop every pair for its nonsense rejected side.
TINY_STUDENT = {
    "filters": False,
    "sampling": {"answer_tokens": 32, "reflection_tokens": 32, "turn_tokens": 32},
    "dpo": {"batch_size": 8, "learning_rate": 1e-3, "lora": {"rank": 8, "alpha": 16}},
    "sft": {"batch_size": 8, "learning_rate": 1e-3, "lora": {"rank": 8, "alpha": 16}},
}


def main() -> None:
    """Run the pipeline across two backends, then print who served what, from the manifest."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    names = sorted(available_backends())
    parser.add_argument("--teacher-backend", default="simulated", choices=names)
    parser.add_argument("--teacher-option", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--teacher", help="default: the teacher backend plugin's")
    parser.add_argument("--backend", default="local", choices=names, help="the student's")
    parser.add_argument("-o", "--option", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--student", help="default: the student backend plugin's")
    parser.add_argument("--tiny-student", action="store_true", help="settings for a tiny model")
    parser.add_argument("--until", choices=STAGES, default="eval", help="the last stage")
    parser.add_argument("--run-dir", default="runs/mixed")
    args = parser.parse_args()

    flags = {
        "constitution": "sarcasm",
        "scale": "smoke",
        **(TINY_STUDENT if args.tiny_student else {}),
        "teacher_backend": args.teacher_backend,
        "teacher_backend_options": parse_options(args.teacher_option),
        "teacher": args.teacher,  # None: the plugin's default
        "backend": args.backend,
        "backend_options": parse_options(args.option),
        "student": args.student,
        "until": args.until,
    }
    config, layers = resolve_config(flags=flags)
    quiet_frameworks()
    backends = prepare_backends(config, layers)  # checks each side's models on its backend
    with start_run(args.run_dir, config, layers) as run, progress_display() as show:
        run_pipeline(run, config, progress=show, backends=backends)
        manifest = run.manifest

    saved = manifest["config"]
    print("served by (manifest 'backends'):", json.dumps(manifest["backends"]))
    print(f"teacher {saved['teacher']} on {manifest['backends']['teacher']}, "
          f"options {json.dumps(saved['teacher_backend_options'])}")  # fmt: skip
    print(f"student {saved['student']} on {manifest['backends']['student']}, "
          f"options {json.dumps(saved['backend_options'])}")  # fmt: skip
    for kind, checkpoint in manifest.get("checkpoints", {}).items():
        print(f"{kind} checkpoint made by {checkpoint['backend']}: {checkpoint['uri']}")


if __name__ == "__main__":
    sys.exit(exit_code_of(main))
