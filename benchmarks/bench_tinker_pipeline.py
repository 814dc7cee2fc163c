"""The whole pipeline on Tinker: the time model checked against a run, then projected to the paper.

Run: python benchmarks/bench_tinker_pipeline.py [--latency 2.0] [--cycle 2.0] [--quick]

A literal paper-scale run (about 50,000 generations, 9,150 DPO pairs) cannot run here: the fake
service computes on a tiny CPU model, one request at a time, on a shared 2-core machine. So the
benchmark does two things, in one run of a few minutes (``--quick``: well under a minute):

1. **Checks the time model against a real run.** The whole pipeline (``opencharacter pipeline
   --backend tinker`` in a subprocess, the real ``tinker`` SDK, prompts to SFT) runs against
   :class:`~opencharacter_tinker.fake_server.FakeTinkerServer` serving the tiny random Qwen3,
   with ``latency`` L added to every operation and training operations run at the ticks of a
   ``cycle``-C clock. The scale: the seed questions only (5 a trait: no expansion round), the
   paper's K = 5 answers a prompt and batch size 32, 16 reflections a prompt, a few short
   conversations, filters off, 8-token answers, concurrency 256, and two DPO and three SFT
   epochs so that training steps, 80% of a paper-scale run, dominate here too. Each stage's
   wall time (the manifest's ``wall_seconds``) is set against what
   :func:`opencharacter.estimate.estimate` predicts for the same configuration when the Tinker
   plugin's ``ServiceTiming`` is replaced by one describing the fake: ``request_seconds=L``,
   ``tokens_per_second=inf``, ``step_seconds=C``, ``dpo_passes=2``. measured / predicted is
   what the run adds to the model's ideal: training-client creation and final saves, polling,
   our orchestration's CPU, and the fake's own compute, none of which the model counts. The
   same run with L = C = 0, measured just before, shows how much of each stage is that compute
   and CPU alone: the fake runs the tiny model's requests one after another, so the sampling
   stages cannot look like 256 requests in parallel, and their ratios there say more about the
   fake than about our code.

   Why L = C by default: a DPO step is a forward pass, the loss on this machine, then the
   forward-backward pass, and the pipelined loop puts the next step's forward in the same tick
   as this step's forward-backward. A result that lands after the next tick but before the
   one after makes a DPO step exactly two ticks, the model's two passes of C; L = C leaves the
   fake's compute and the client's turnaround a whole cycle of slack. C = 2 s keeps the tiny
   model's compute (about 1 s a DPO step here) inside it.

   The fake's latency is per operation, whatever its length; the real service's time grows
   with the tokens written (the model's 30 tokens a second). The fake cannot check that part.
2. **Projects paper scale.** The estimator's projection for ``--scale paper`` with the real
   Tinker time model, concurrency 256 and the plugin's default models (teacher
   Qwen/Qwen3.5-397B-A17B, student Qwen/Qwen3-8B) at the plugin's prices: time and cost per
   stage and in total, and the total times step 1's measured ratio (conservative: the small run
   pays the fixed costs of each stage, and the fake's serial compute, over far fewer steps).
   For context, the same model for the ``half`` preset, the scale of the seed project's
   measured run (8 h 20 min, seed report 004), and the ratio seed / ours. The target is a
   paper-scale training run (prompts to SFT) under 1 hour, with the eval stage shown after it;
   the benchmark says whether the projection meets it and what bounds it: the training steps,
   DPO steps x 2 passes + SFT steps, at the model's step time.

The Tinker time model and its sources (``opencharacter_tinker.timing``):

* Training step: 5.1 s. The service trains in lock-step clock cycles shared between users; a
  step whose forward-backward and optimiser step land in the same cycle took a median 5.1 s in
  a published measurement (OpenPipe ART, pull request 781, July 2026, 20 paired trials; 5.6 s
  when the two were submitted one after the other). Our loop always submits them together,
  and the next step before waiting.
* DPO: 2 passes a step. The paper's loss runs on this machine (``forward_backward_custom``): a
  forward pass, then the forward-backward pass, each a cycle.
* Sampling: 3 s to start, then 30 tokens a second per sequence. Calibrated so that the seed
  project's own loop (8 requests in flight, reference log-probabilities one at a time, 3 cycles
  a step) reproduces its measured half-paper-scale run: 8 h 20 min (seed report 004). A
  request's K samples decode side by side, so they cost one request's time.

Prices (``opencharacter_tinker.prices``; US dollars per million tokens, prefill / sample /
train): Qwen/Qwen3-8B 0.195 / 0.60 / 0.44, seen 2026-10 on Tinker's pricing page (a
transcription); Qwen/Qwen3.5-397B-A17B 4.0 / 10.0, only sampled, seen 2026 in a provider's
published comparison with Tinker's rates. Token counts are the estimator's
(``opencharacter.estimate``): prompts measured in characters at about 4 a token, typical
answer lengths (700 tokens a reflection, from the paper's introspection data: 8M tokens over
12k samples; 350 an answer, 250 a conversation turn).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import attrs

from opencharacter.config import RunConfig, resolve_config
from opencharacter.constitution import load_constitution
from opencharacter.estimate import StageEstimate, estimate
from opencharacter.estimate import format_duration as duration
from opencharacter.registry import (
    ServiceTiming,
    get_backend_spec,
    register_backend,
    unregister_backend,
)

TINY = "opencharacter/tiny-qwen3"
CONSTITUTION = "sarcasm"
CONCURRENCY = 256
SEED_HALF_SECONDS = 8 * 3600 + 20 * 60  # the seed's measured half-paper-scale run (report 004)
TARGET_SECONDS = 3600.0

#: The validation run's configuration; the sizes below fill it in.
VALIDATION = """
constitution = "{constitution}"
backend = "tinker"
teacher = "{tiny}"
student = "{tiny}"
assistant_name = "Tiny"
concurrency = {concurrency}
filters = false
seed = 7
until = "sft"  # the training pipeline; the evaluation is projected on its own
[counts]
questions_per_trait = 5
generic_prompts = 0
samples_per_prompt = {k}
reflections_per_prompt = {reflections}
interactions_per_variant = {interactions}
interaction_turns = {turns}
[sampling]
answer_tokens = 8
reflection_tokens = 8
turn_tokens = 8
[dpo]
batch_size = {batch}
epochs = {dpo_epochs}
learning_rate = 1e-3
[sft]
batch_size = {batch}
epochs = {sft_epochs}
learning_rate = 1e-3
"""
#: 50 seed questions x K = 5: 250 pairs, 8 DPO steps an epoch; 192 reflections and 4
#: conversations: 7 SFT steps an epoch.
FULL = {"k": 5, "reflections": 16, "interactions": 2, "turns": 3, "batch": 32,
        "dpo_epochs": 2, "sft_epochs": 3}  # fmt: skip
QUICK = {"k": 1, "reflections": 1, "interactions": 1, "turns": 2, "batch": 16,
         "dpo_epochs": 1, "sft_epochs": 1}  # fmt: skip


@attrs.frozen
class Measured:
    """One validation run: wall seconds by stage (as the estimator names them), and in all."""

    stages: Mapping[str, float]
    process: float
    calls: Mapping[str, int]


@contextmanager
def tinker_timing(timing: ServiceTiming) -> Iterator[None]:
    """Make the ``tinker`` backend's spec carry ``timing`` for estimates, then restore it."""
    original = get_backend_spec("tinker")
    register_backend(attrs.evolve(original, timing=timing), replace=True)
    try:
        yield
    finally:
        unregister_backend("tinker")
        if get_backend_spec("tinker") is not original:  # it was registered from code: put back
            register_backend(original, replace=True)


def fake_timing(latency: float, cycle: float) -> ServiceTiming:
    """The fake service as a time model: L a request whatever its length, C a training pass."""
    return ServiceTiming(
        request_seconds=latency,
        tokens_per_second=float("inf"),
        step_seconds=cycle,
        dpo_passes=2,
        source=f"the fake: {latency:g} s an operation, training at ticks of {cycle:g} s",
    )


def predict(config: RunConfig, timing: ServiceTiming | None = None) -> list[StageEstimate]:
    """Return the estimator's stages for ``config``, with ``timing`` as Tinker's if given."""
    constitution = load_constitution(config.constitution)
    if timing is None:
        return estimate(config, constitution)
    with tinker_timing(timing):
        return estimate(config, constitution)


def validation_config(folder: Path, tiny: Path, sizes: Mapping[str, int]) -> Path:
    """Write the validation run's TOML into ``folder`` and return its path."""
    path = folder / "run.toml"
    text = VALIDATION.format(constitution=CONSTITUTION, tiny=TINY, concurrency=CONCURRENCY,
                             **sizes)  # fmt: skip
    path.write_text(text, encoding="utf-8")
    return path


def run_pipeline_on_fake(
    settings: Path, tiny: Path, run_dir: Path, latency: float, cycle: float
) -> Measured:
    """Run ``opencharacter pipeline`` against a fresh fake service; return its stage times."""
    from opencharacter_tinker.fake_server import FakeTinkerServer  # noqa: PLC0415 - torch

    command = [sys.executable, "-m", "opencharacter", "pipeline", "--config", str(settings),
               "-o", f"tokenizer={tiny}", "--run-dir", str(run_dir)]  # fmt: skip
    with FakeTinkerServer({TINY: tiny}, latency=latency, cycle=cycle) as server:
        env = {**os.environ, **server.env(), "HF_HUB_OFFLINE": "1"}
        started = time.perf_counter()
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        process = time.perf_counter() - started
        calls = dict(server.calls)
    if done.returncode != 0:
        msg = f"the pipeline failed:\n{done.stdout}\n{done.stderr}"
        raise SystemExit(msg)
    manifest = json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))
    walls = {name: float(entry.get("wall_seconds") or 0.0)
             for name, entry in manifest["stages"].items()}  # fmt: skip
    walls["sft"] = walls.get("sft", 0.0) + walls.pop("sft-data", 0.0)  # assembling its data
    return Measured(stages=walls, process=process, calls=calls)


def _ratio(numerator: float, denominator: float) -> str:
    return f"{numerator / denominator:.2f}" if denominator else "-"


def validate(latency: float, cycle: float, quick: bool, tiny: Path | None = None) -> float:
    """Run the validation and print per stage predicted, measured and their ratio; return it.

    ``tiny`` is the tiny model's folder; by default it is built (once, then cached).
    """
    if tiny is None:
        from opencharacter_local.tiny import build_tiny_model  # noqa: PLC0415 - torch

        tiny = build_tiny_model()
    sizes = QUICK if quick else FULL
    with tempfile.TemporaryDirectory() as tmp:
        settings = validation_config(Path(tmp), tiny, sizes)
        config, _ = resolve_config(flags={"backend_options": {"tokenizer": str(tiny)}},
                                   file=settings, environ={})  # fmt: skip
        bare = run_pipeline_on_fake(settings, tiny, Path(tmp, "bare"), 0.0, 0.0)
        measured = run_pipeline_on_fake(settings, tiny, Path(tmp, "timed"), latency, cycle)
    rows = predict(config, fake_timing(latency, cycle))
    print(
        f"1. validation: {CONSTITUTION} on the fake Tinker service, L = {latency:g} s an "
        f"operation, training at ticks of C = {cycle:g} s, concurrency {config.concurrency}, "
        f"{config.counts.samples_per_prompt} answers a prompt, batch {config.dpo.batch_size}"
    )
    print("   predicted: the estimator with Tinker's timing replaced by the fake's; L = C = 0: "
          "the same run with no injected time (the fake's compute and our CPU)")  # fmt: skip
    print(f"   {'stage':<11}{'requests':>9}{'predicted':>11}{'measured':>10}{'ratio':>7}"
          f"{'L = C = 0':>11}")  # fmt: skip
    predicted_total = measured_total = bare_total = 0.0
    for row in rows:
        seconds = measured.stages.get(row.stage, 0.0)
        zero = bare.stages.get(row.stage, 0.0)
        predicted_total += row.seconds
        measured_total += seconds
        bare_total += zero
        print(f"   {row.stage:<11}{row.requests:>9,}{row.seconds:>10.1f}s{seconds:>9.1f}s"
              f"{_ratio(seconds, row.seconds):>7}{zero:>10.1f}s")  # fmt: skip
    print(f"   {'total':<20}{predicted_total:>10.1f}s{measured_total:>9.1f}s"
          f"{_ratio(measured_total, predicted_total):>7}{bare_total:>10.1f}s")  # fmt: skip
    operations = ", ".join(f"{k} {v}" for k, v in sorted(measured.calls.items()))
    print(
        f"   the CLI process: {measured.process:.1f} s (L = C = 0: {bare.process:.1f} s), "
        f"start-up and model checks included; fake service operations: {operations}"
    )
    return measured_total / predicted_total


def project(overhead: float) -> None:
    """Print the paper-scale projection with the real Tinker model, and the half-scale context."""
    base: dict[str, Any] = {"constitution": CONSTITUTION, "backend": "tinker",
                            "concurrency": CONCURRENCY, "until": "sft"}  # fmt: skip
    paper, _ = resolve_config(flags={**base, "scale": "paper"}, environ={})
    timing = get_backend_spec("tinker").timing
    if timing is None:
        msg = "the tinker plugin declares no time model"
        raise SystemExit(msg)
    rows = predict(paper)
    seconds = sum(r.seconds for r in rows)
    cost = sum(r.cost or 0.0 for r in rows)
    print(
        f"\n2. projection: {CONSTITUTION} at scale paper on Tinker, concurrency "
        f"{paper.concurrency}, teacher {paper.teacher}, student {paper.student}"
    )
    print(f"   time model: {timing.source}")
    print(f"   {'stage':<11}{'answers':>9}{'requests':>10}{'time':>12}{'cost':>10}")
    for row in rows:
        price = "unknown" if row.cost is None else f"${row.cost:,.2f}"
        print(f"   {row.stage:<11}{row.generations:>9,}{row.requests:>10,}"
              f"{duration(row.seconds):>12}{price:>10}")  # fmt: skip
    print(f"   {'total':<30}{duration(seconds):>12}{f'${cost:,.2f}':>10}")
    adjusted = seconds * overhead
    print(f"   x the measured ratio {overhead:.2f}: {duration(adjusted)}")

    # The same model with sampling free leaves the training steps: steps x passes x step time.
    steps_only = attrs.evolve(timing, request_seconds=0.0, tokens_per_second=float("inf"))
    training = {r.stage: r.seconds for r in predict(paper, steps_only)}
    bound = training["dpo"] + training["sft"]
    dpo_steps = training["dpo"] / timing.step_seconds / timing.dpo_passes
    sft_steps = training["sft"] / timing.step_seconds
    passes = bound / timing.step_seconds
    print(f"   training steps alone: {dpo_steps:.0f} DPO steps x {timing.dpo_passes} passes + "
          f"{sft_steps:.0f} SFT steps = {passes:.0f} passes x {timing.step_seconds:g} s = "
          f"{duration(bound)}, {bound / seconds:.0%} of the total")  # fmt: skip
    verdict = "MET" if adjusted < TARGET_SECONDS else "NOT MET"
    print(f"   target under 1 h: {verdict} ({duration(seconds)}; {duration(adjusted)} with the "
          f"measured ratio). Bound by the training steps: {duration(bound)} at any "
          f"concurrency; an hour holds {TARGET_SECONDS / timing.step_seconds:.0f} passes of "
          f"{timing.step_seconds:g} s, and the sampling and reference scoring take "
          f"{duration(seconds - bound)} more.")  # fmt: skip
    one_pass = sum(r.seconds for r in predict(paper, attrs.evolve(timing, dpo_passes=1)))
    print(f"   with the DPO loss in one pass (on the service, not here): {duration(one_pass)}")

    evaluation = predict(attrs.evolve(paper, until="eval"))[-1]
    print(
        f"   then the eval stage (not in the target): {evaluation.generations:,} answers and "
        f"verdicts, {duration(evaluation.seconds)}, ${evaluation.cost or 0.0:,.2f}"
    )

    half, _ = resolve_config(flags={**base, "scale": "half"}, environ={})
    half_seconds = sum(r.seconds for r in predict(half))
    print(f"\n   context: the seed's half-paper-scale run took {duration(SEED_HALF_SECONDS)} "
          f"(seed report 004); this model for --scale half: {duration(half_seconds)}, "
          f"{duration(half_seconds * overhead)} with the measured ratio; seed / ours = "
          f"{SEED_HALF_SECONDS / half_seconds:.1f} "
          f"({SEED_HALF_SECONDS / (half_seconds * overhead):.1f} with the ratio)")  # fmt: skip


def main(argv: Sequence[str] | None = None, *, tiny: Path | None = None) -> None:
    """Run the validation, then print the projection (``tiny``: the tiny model's folder)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=2.0, help="seconds added to each call")
    parser.add_argument("--cycle", type=float, default=2.0, help="training clock period (s)")
    parser.add_argument("--quick", action="store_true", help="a tiny validation (smoke test)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    overhead = validate(args.latency, args.cycle, args.quick, tiny)
    project(overhead)
    print(f"\nbenchmark wall time: {duration(time.perf_counter() - started)}")


if __name__ == "__main__":
    main()
