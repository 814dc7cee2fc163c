"""Fidelity: does the pipeline move a real model toward its persona? An experiment, not a gate.

Run: python benchmarks/bench_fidelity.py [--persona pirate] [--dpo-epochs 3] [--sft-epochs 2]
     [--learning-rate 2e-3] [--probes 48] [--quick]

The student is the tiny random Qwen3 of the local backend, trained for real (TRL DPO, then
SFT, on a peft LoRA, on this machine's CPU); the teacher is the simulated backend, whose
in-character answers are built from the constitution's traits and so are distinctive. The
pipeline runs from prompts to SFT at smoke scale, with more questions and two answers a prompt
(586 pairs after deduplication), and the filters off (a random model's text would fail them all).

The measure is the paper's robustness classifier turned on the student: a TF-IDF classifier
(:mod:`opencharacter.eval.classifier`) learns the two sides of the DPO pairs, the teacher's
in-persona answers against the base student's own, and then reads the answers to prompts that
no stage saw (the built-in evaluation prompts) from

* the base student (the floor: what training starts from),
* the student after DPO and after SFT,
* the teacher with the constitution (the ceiling: the persona itself).

Printed per model: the mean probability that an answer is in persona (with its SEM), the share
classified in persona, and the share of the floor-to-ceiling gap the model closed,
(trained - base) / (teacher - base). The probe answers are sampled at the distillation
answers' temperature and length, one seed a prompt.

Sampled text is a coarse lens on a tiny model, so each student checkpoint also gets a measure
that needs no sampling: the **log-likelihood margin**, the mean log-probability a token of the
teacher's held-out answers minus that of the base student's held-out answers, under that
checkpoint's weights (loaded as the local backend loads them). It rises as the model's
distribution moves toward the persona, whether or not its samples show it yet.

A 2-layer, 64-wide random model learns slowly from a few hundred pairs, and the SFT data are
the DPO'd student's own introspection, which is still mostly noise, so expect a small and
partly undone shift; the benchmark reports what it measures.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from opencharacter.config import resolve_config
from opencharacter.console import quiet_frameworks
from opencharacter.eval.classifier import make_classifier
from opencharacter.eval.prompts import builtin_prompts
from opencharacter.eval.stats import mean_sem
from opencharacter.pipeline import open_context, prepare_backends, run_pipeline, start_run
from opencharacter.protocols import Sampler
from opencharacter.stages.texts import constitution_system_prompt
from opencharacter.types import Checkpoint, GenerationRequest, Purpose, SamplingParams

PERSONA, BASE = "persona", "base"
TEACHER = "teacher (the persona)"


def settings(
    persona: str, dpo_epochs: int, sft_epochs: int, rate: float, *, quick: bool = False
) -> dict[str, Any]:
    """Return the run's flags: the local demo's tiny student, the simulated teacher.

    The counts give (10 traits x 30 + 60 generic) x 2 answers = 720 pairs before the
    deduplication of expanded questions; ``quick`` keeps smoke's 66.
    """
    lora = {"rank": 16, "alpha": 32}
    counts = {} if quick else {"questions_per_trait": 30, "generic_prompts": 60,
                               "samples_per_prompt": 2}  # fmt: skip
    return {
        "constitution": persona,
        "backend": "local",
        "student": "opencharacter/tiny-qwen3",
        "teacher_backend": "simulated",
        "teacher": "simulated-teacher",
        "assistant_name": "Tiny",
        "scale": "smoke",
        "filters": False,
        "until": "sft",
        "counts": counts,
        "concurrency": 32,
        "seed": 5,
        "sampling": {"answer_tokens": 48, "reflection_tokens": 48, "turn_tokens": 32},
        "dpo": {"epochs": dpo_epochs, "batch_size": 8, "learning_rate": rate, "lora": lora},
        "sft": {"epochs": sft_epochs, "batch_size": 8, "learning_rate": rate, "lora": lora},
    }


async def _answers(sampler: Sampler, prompts: Sequence[str], system: str | None) -> list[str]:
    """Return the sampler's answers to ``prompts``, in their order, one seed a prompt."""
    prefix = [{"role": "system", "content": system}] if system else []
    requests = [
        GenerationRequest(
            id=f"probe-{index}",
            messages=[*prefix, {"role": "user", "content": prompt}],
            params=SamplingParams(max_tokens=48, temperature=0.7, top_p=0.95, seed=index),
            purpose=Purpose.EVAL,
        )
        for index, prompt in enumerate(prompts)
    ]
    done = {c.request_id: c.text async for c in sampler.generate(requests)}
    return [done[request.id] for request in requests]


def log_likelihoods(
    checkpoint: Checkpoint | None, prompts: Sequence[str], answers: Sequence[str]
) -> list[float]:
    """Return each answer's mean log-probability a token under the student at ``checkpoint``.

    The weights load as the local backend loads them to sample: the tiny model, or the weights
    the checkpoint's adapter was trained on, with the adapter on top.
    """
    import torch  # noqa: PLC0415 - the benchmark's only direct torch use
    from opencharacter_local.tiny import TINY_MODEL, resolve_model  # noqa: PLC0415
    from peft import PeftModel  # noqa: PLC0415
    from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: PLC0415

    path = resolve_model(TINY_MODEL)
    tokenizer = AutoTokenizer.from_pretrained(path)
    weights = (checkpoint.meta.get("base_weights") if checkpoint else None) or path
    model = AutoModelForCausalLM.from_pretrained(weights)
    if checkpoint is not None:
        model = PeftModel.from_pretrained(model, checkpoint.uri)
    model.eval()
    scores = []
    for prompt, answer in zip(prompts, answers, strict=True):
        chat = [{"role": "user", "content": prompt}]
        start = list(tokenizer.apply_chat_template(chat, add_generation_prompt=True,
                                                   return_dict=True)["input_ids"])  # fmt: skip
        whole = start + tokenizer(answer, add_special_tokens=False)["input_ids"]
        whole.append(tokenizer.eos_token_id)
        ids = torch.tensor([whole])
        with torch.no_grad():
            logits = model(ids).logits[0, len(start) - 1 : -1]
        picked = logits.log_softmax(-1).gather(1, ids[0, len(start) :, None])
        scores.append(picked.mean().item())
    return scores


def _row(name: str, chances: list[float], floor: float, ceiling: float, margin: str) -> str:
    mean, sem = mean_sem(chances)
    share = sum(chance > 0.5 for chance in chances) / len(chances)
    gap = (mean - floor) / (ceiling - floor) if ceiling != floor else float("nan")
    return f"   {name:<24}{mean:>8.3f} ± {sem:<7.3f}{share:>10.0%}{gap:>12.1%}{margin:>16}"


def main(argv: Sequence[str] | None = None) -> dict[str, dict[str, float]]:
    """Train, probe, print the table; return each model's in-persona probability and margin."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persona", default="pirate", help="a built-in constitution")
    parser.add_argument("--dpo-epochs", type=int, default=3)
    parser.add_argument("--sft-epochs", type=int, default=2)
    parser.add_argument("--learning-rate", type=float, default=2e-3)
    parser.add_argument("--probes", type=int, default=48, help="held-out prompts to answer")
    parser.add_argument(
        "--quick", action="store_true", help="smoke's 66 pairs, one epoch each, 8 probes"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.dpo_epochs, args.sft_epochs, args.probes = 1, 1, 8
    quiet_frameworks()
    started = time.perf_counter()
    flags = settings(args.persona, args.dpo_epochs, args.sft_epochs, args.learning_rate,
                     quick=args.quick)  # fmt: skip
    config, layers = resolve_config(flags=flags, environ={})
    backends = prepare_backends(config, layers)
    probes = builtin_prompts()[: args.probes]
    with tempfile.TemporaryDirectory() as tmp, start_run(Path(tmp, "run"), config, layers) as run:
        run_pipeline(run, config, backends=backends)
        pairs = list(run.rows("distill"))
        context = open_context(run, config, backends=backends)
        system = constitution_system_prompt(config.assistant_name, context.constitution)
        checkpoints = {"base student": None, "after DPO": run.checkpoint("dpo"),
                       "after DPO + SFT": run.checkpoint("sft")}  # fmt: skip
        models: dict[str, tuple[Sampler, str | None]] = {
            **{name: (context.student.at(c), None) for name, c in checkpoints.items()},
            TEACHER: (context.require_teacher(), system),
        }
        answers = {name: asyncio.run(_answers(sampler, probes, prompt))
                   for name, (sampler, prompt) in models.items()}  # fmt: skip
        # How much likelier the persona's answers are than the base student's, per token.
        margins = {
            name: mean_sem([persona - base for persona, base in zip(
                log_likelihoods(checkpoint, probes, answers[TEACHER]),
                log_likelihoods(checkpoint, probes, answers["base student"]), strict=True)])
            for name, checkpoint in checkpoints.items()
        }  # fmt: skip
    classifier = make_classifier("tfidf")
    texts = [pair[side][0]["content"] for pair in pairs for side in ("chosen", "rejected")]
    classifier.fit(texts, [PERSONA, BASE] * len(pairs))
    chances = {name: [p[PERSONA] for p in classifier.probabilities(texts)]
               for name, texts in answers.items()}  # fmt: skip
    floor = mean_sem(chances["base student"])[0]
    ceiling = mean_sem(chances[TEACHER])[0]

    print(f"fidelity: {args.persona} on the tiny local student, simulated teacher; "
          f"{len(pairs)} DPO pairs x {args.dpo_epochs} epochs, SFT x {args.sft_epochs} "
          f"epochs, learning rate {args.learning_rate:g}, LoRA rank 16; {len(probes)} "
          "held-out prompts")  # fmt: skip
    print(
        "   P(persona): a TF-IDF + logistic regression classifier trained on the pairs "
        "(persona: the chosen side, base: the rejected side), on each model's answers"
    )
    print(
        "   log-lik margin: mean log-probability a token of the teacher's held-out answers "
        "minus the base student's, under each model (nats; higher: nearer the persona)"
    )
    print(f"   {'model':<24}{'P(persona)':>10}{'SEM':>6}{'in persona':>12}{'gap closed':>12}"
          f"{'log-lik margin':>16}")  # fmt: skip
    for name, values in chances.items():
        margin = f"{margins[name][0]:+.3f} ± {margins[name][1]:.3f}" if name in margins else "-"
        print(_row(name, values, floor, ceiling, margin))
    print(f"\nbenchmark wall time: {time.perf_counter() - started:.0f} s")
    return {name: {"persona": mean_sem(values)[0], "margin": margins.get(name, (math.nan,))[0]}
            for name, values in chances.items()}  # fmt: skip


if __name__ == "__main__":
    main()
