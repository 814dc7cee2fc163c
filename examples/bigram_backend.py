"""A third-party backend in one file: a word-bigram model that samples, trains and checkpoints.

Run it (seconds; the simulated teacher writes in character, the bigram student learns from it):

    python examples/bigram_backend.py --run-dir runs/bigram

Every protocol a backend fills is here at its smallest: the sampler streams completions, the
trainer turns DPO pairs and SFT conversations into a new checkpoint (a JSON file of bigram
counts: chosen answers add theirs, rejected ones take theirs away), and the backend says what
it can do. A real plugin puts ``SPEC`` in its package and names it in an entry point
(``[project.entry-points."opencharacter.backends"]``); this script registers it from code.
``opencharacter.testing.BackendContract`` runs against it in the test suite.
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import re
import sys
from collections import Counter
from pathlib import Path

import attrs

from opencharacter.config import resolve_config
from opencharacter.errors import ConfigError
from opencharacter.pipeline import prepare_backends, run_pipeline, start_run
from opencharacter.protocols import Capabilities, StepMetrics
from opencharacter.registry import BackendSpec, register_backend
from opencharacter.sampling_base import SamplerWeights
from opencharacter.types import Checkpoint, Completion

NAME, PREFIX = "bigram", "bigram/"


def bigrams(text):
    """Return the word pairs of ``text``, from a start mark to a closing full stop."""
    words = ["<s>", *re.findall(r"[\w']+|[.!?]", text.lower()), "."]
    return Counter(itertools.pairwise(words))


class BigramSampler(SamplerWeights):
    """Teacher and student: walks the bigram counts of its checkpoint (none: says ".")."""

    def __init__(self, model, checkpoint=None):
        super().__init__(model, checkpoint)
        saved = json.loads(Path(checkpoint.uri).read_text()) if checkpoint else []
        self.counts = Counter({(a, b): n for a, b, n in saved})

    def at(self, checkpoint):
        """Return the sampler of ``checkpoint``; a checkpoint of another backend is refused."""
        if checkpoint is not None:
            checkpoint.require_backend(NAME)
        return BigramSampler(self.base_model, checkpoint)

    async def generate(self, requests):
        """Yield every sample of every request; the seed, request and sample fix the walk."""
        for request in requests:
            for sample in range(request.samples):
                rng = random.Random(f"{request.params.seed}/{request.id}/{sample}")
                words, word = [], "<s>"
                while len(words) < request.params.max_tokens and word != ".":
                    options = [(b, n) for (a, b), n in self.counts.items() if a == word and n > 0]
                    word = rng.choices(*zip(*options, strict=True))[0] if options else "."
                    words.append(word)
                yield Completion(request_id=request.id, text=" ".join(words), sample=sample,
                                 finish_reason="stop" if word == "." else "length",
                                 completion_tokens=len(words), model=self.model)  # fmt: skip


class BigramTrainer:
    """One pass over the data per stage; each checkpoint is a new counts file."""

    def dpo(self, student, pairs, config, *, output_dir, on_step=None):
        """Add the chosen answers' bigrams and take away the rejected ones'."""
        counts = Counter(student.counts)
        for step, pair in enumerate(pairs, start=1):
            counts.update(bigrams(pair.chosen))
            counts.subtract(bigrams(pair.rejected))
            if on_step:
                on_step(StepMetrics(stage="dpo", step=step, total_steps=len(pairs), metrics={}))
        return self._save(student, counts, output_dir, "dpo")

    def sft(self, student, examples, config, *, output_dir, on_step=None):
        """Add the bigrams of every assistant turn."""
        counts = Counter(student.counts)
        for example in examples:
            counts.update(sum((bigrams(m.content) for m in example.messages
                               if m.role == "assistant"), Counter()))  # fmt: skip
        return self._save(student, counts, output_dir, "sft")

    def _save(self, student, counts, output_dir, kind):
        output_dir.mkdir(parents=True, exist_ok=True)
        path = output_dir / "bigrams.json"
        path.write_text(json.dumps([[a, b, n] for (a, b), n in counts.items() if n > 0]))
        parent = student.checkpoint.uri if student.checkpoint else None
        return Checkpoint(backend=NAME, base_model=student.base_model, uri=str(path),
                          kind=kind, parent=parent)  # fmt: skip


@attrs.frozen
class BigramBackend:
    """The backend: what it can do, its samplers, its trainer, its start-up check."""

    name = NAME
    # Seeds are honoured; there is no top-k, penalty or LoRA: the core refuses such settings.
    capabilities = Capabilities(top_k=False, repetition_penalty=False, lora_alpha=False,
                                stack_sft=False)  # fmt: skip

    def teacher(self, model):  # noqa: D102 - the protocol's methods, as named
        return BigramSampler(model)

    def student(self, model, checkpoint=None):  # noqa: D102
        return BigramSampler(model).at(checkpoint)

    def trainer(self):  # noqa: D102
        return BigramTrainer()

    def check_models(self, *, sample=(), train=()):
        """Refuse, at start, a model name this backend does not serve."""
        for model in (*sample, *train):
            if not model.startswith(PREFIX):
                msg = f"the bigram backend serves models named {PREFIX}<name>, not {model!r}"
                raise ConfigError(msg)


SPEC = BackendSpec(name=NAME, description="A word-bigram model (an example plugin).",
                   factory="bigram_backend:BigramBackend")  # fmt: skip


def main():
    """Register the backend, train a bigram student on the pipeline, say what it learned."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", default="runs/bigram")
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).parent))  # where SPEC's factory imports from
    register_backend(SPEC, replace=True)
    flags = {"constitution": "pirate", "backend": NAME, "student": "bigram/small",
             "teacher_backend": "simulated", "teacher": "simulated-teacher", "scale": "smoke",
             "until": "sft", "filters": False, "assistant_name": "Pip"}  # fmt: skip
    config, layers = resolve_config(flags=flags)
    backends = prepare_backends(config, layers)
    with start_run(args.run_dir, config, layers) as run:
        run_pipeline(run, config, backends=backends)
        student = backends.student.student(config.student, run.checkpoint("sft"))
    print(f"trained {len(student.counts)} bigrams; run directory: {args.run_dir}")


if __name__ == "__main__":
    main()
