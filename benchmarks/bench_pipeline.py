"""Stage throughput against the ideal N x L / C, and the orchestration's CPU per generation.

Run: python benchmarks/bench_pipeline.py [--generations 10000] [--latency-ms 500] [--window 256]

A stage of N generations (the reflection part of the introspection stage) runs on the
simulated backend with latency L per request and a window of C requests in flight. The ideal
wall time is N x L / C; the stage must finish within 5% of it. The orchestration's own CPU time
per generation (windowing, retries bookkeeping, filtering, writing rows, progress) is the
stage's process CPU time minus that of the same requests sent straight to the bare simulated
sampler with no latency (which measures the backend's own text synthesis), both in this run;
the budget is 0.5 ms, so one core could feed 2,000 generations a second.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import tempfile
import time
from pathlib import Path

import attrs

from opencharacter.config import resolve_config
from opencharacter.pipeline import open_context, start_run
from opencharacter.simulated._backend import SimulatedBackend
from opencharacter.stages import run_introspect, texts
from opencharacter.stages.introspect import _Introspect
from opencharacter.types import Checkpoint

BUDGET_SECONDS = 0.5e-3


def bare_cpu(context, n_per_prompt: int) -> tuple[float, int]:
    """CPU seconds for the bare sampler to answer the same requests, without orchestration."""
    job = _Introspect(context, None, set(), {})  # only its request builder is used
    requests = [
        job._reflection_request(p, n)
        for n in range(n_per_prompt)
        for p in range(len(texts.REFLECTION_PROMPTS))
    ]
    sampler = SimulatedBackend(seed=0).student("bench")

    async def answer_all() -> int:
        count = 0
        for start in range(0, len(requests), 256):
            async for _ in sampler.generate(requests[start : start + 256]):
                count += 1
        return count

    started = time.process_time()
    count = asyncio.run(answer_all())
    return time.process_time() - started, count


def main() -> None:
    """Run the stage and the baseline, and print both ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generations", type=int, default=10_000)
    parser.add_argument("--latency-ms", type=float, default=500.0)
    parser.add_argument("--window", type=int, default=256)
    args = parser.parse_args()
    per_prompt = math.ceil(args.generations / len(texts.REFLECTION_PROMPTS))
    config, layers = resolve_config(
        flags={
            "constitution": "sarcasm", "backend": "simulated", "concurrency": args.window,
            "backend_options": {"latency_ms": str(args.latency_ms), "max_concurrency": "100000"},
            "counts": {"reflections_per_prompt": per_prompt, "interactions_per_variant": 0},
        },
        environ={},
    )  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        run = start_run(Path(tmp) / "run", config, layers)
        with run:
            run.record_checkpoint(
                "dpo",
                Checkpoint(
                    backend="simulated", base_model="bench", uri="simulated://bench/dpo", kind="dpo"
                ),
            )
            context = open_context(run, config)
            wall_started, cpu_started = time.perf_counter(), time.process_time()
            summary = run_introspect(context)
            wall = time.perf_counter() - wall_started
            cpu = time.process_time() - cpu_started
            generations = run.stage("introspect")["generations"]
            baseline, count = bare_cpu(attrs.evolve(context), per_prompt)
    ideal = generations * args.latency_ms / 1000 / args.window
    per_generation = (cpu - baseline) / generations
    print(f"generations: {generations} (kept {summary['reflections']}), L = {args.latency_ms:g} ms,"
          f" C = {args.window}")  # fmt: skip
    print(f"wall: {wall:.2f} s; ideal N x L / C: {ideal:.2f} s; ideal / actual = {ideal / wall:.3f}"
          f" ({'within' if wall <= ideal * 1.05 else 'NOT within'} 5%)")  # fmt: skip
    print(f"CPU: stage {cpu:.2f} s, bare simulated sampler {baseline:.2f} s for {count} answers")
    print(
        f"orchestration CPU per generation: {per_generation * 1e3:.3f} ms = "
        f"{per_generation / BUDGET_SECONDS:.2f} of the 0.5 ms budget"
    )


if __name__ == "__main__":
    main()
