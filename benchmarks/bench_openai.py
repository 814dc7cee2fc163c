"""The openai backend's request window against the ideal and against the plain client.

Run: python benchmarks/bench_openai.py [--requests 1024] [--window 256] [--latency 0.2]
     [--repeats 3] [--quick]

A fake OpenAI-compatible server (:mod:`opencharacter_openai.fake_server`, in a child process
so its threads do not share this process's interpreter lock) answers every chat request after
``latency`` seconds, however many are in flight. N one-sample requests go through

* **ours**: the run's :class:`~opencharacter.stages._engine.Dispatcher` (a window of W,
  retries) over the backend's :class:`~opencharacter_openai.sampler.OpenAISampler`, as a
  pipeline stage sends them;
* **plain**: the same requests as ``AsyncOpenAI().chat.completions.create`` calls under an
  ``asyncio.Semaphore(W)``, gathered: the library call we wrap, the best a script does.

The ideal bound is ceil(N / W) rounds of the latency: W requests in flight all the time and
nothing else costing time. Printed per side: time to the last completion, requests a second,
and the ratios ideal / ours (1.00: the window is never idle) and plain / ours (1.00: our
layers cost nothing). Each side's best of R runs is kept, alternating, after one warm-up run
each, since other work on a shared machine only ever slows a run down.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from openai import AsyncOpenAI

from opencharacter.registry import load_backend
from opencharacter.stages._engine import Dispatcher, RetryPolicy
from opencharacter.types import GenerationRequest, SamplingParams

MODEL = "bench-teacher"
KEY = "EMPTY"


@contextmanager
def fake_server(latency: float) -> Iterator[str]:
    """Start the fake server in a child process; yield its ``base_url``."""
    command = [sys.executable, "-m", "opencharacter_openai.fake_server", "--model", MODEL,
               "--latency", str(latency)]  # fmt: skip
    child = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        line = child.stdout.readline().strip()
        if not line.startswith("base_url="):
            msg = f"the fake server did not start: {line!r}"
            raise SystemExit(msg)
        yield line.removeprefix("base_url=")
    finally:
        child.terminate()
        child.communicate()  # waits, and closes its pipe


def requests(count: int) -> list[GenerationRequest]:
    """Return ``count`` distinct one-sample chat requests of a few words."""
    params = SamplingParams(max_tokens=16, temperature=0.7, top_p=0.95)
    return [GenerationRequest(id=f"r{i}", params=params,
                              messages=[{"role": "user", "content": f"Question {i}?"}])
            for i in range(count)]  # fmt: skip


def ours(base_url: str, batch: list[GenerationRequest], window: int) -> float:
    """Send ``batch`` as a pipeline stage does; return the seconds to the last completion."""
    teacher = load_backend("openai", {"base_url": base_url, "max_concurrency": window,
                                      "max_retries": 0}).teacher(MODEL)  # fmt: skip
    dispatcher = Dispatcher(teacher, concurrency=window, retry=RetryPolicy(max_attempts=1))
    arrived: list[str] = []
    started = time.perf_counter()
    asyncio.run(dispatcher.complete_all(batch, lambda r, _c: arrived.append(r.id)))
    elapsed = time.perf_counter() - started
    assert len(arrived) == len(batch)
    return elapsed


def plain(base_url: str, batch: list[GenerationRequest], window: int) -> float:
    """Send ``batch`` with the bare client under a semaphore; return the seconds taken."""

    async def run() -> float:
        limit = asyncio.Semaphore(window)
        async with AsyncOpenAI(base_url=base_url, api_key=KEY, max_retries=0) as client:

            async def one(request: GenerationRequest) -> str:
                async with limit:
                    response = await client.chat.completions.create(
                        model=MODEL,
                        messages=[m.to_dict() for m in request.messages],  # type: ignore[misc]
                        max_completion_tokens=request.params.max_tokens,
                        temperature=request.params.temperature,
                        top_p=request.params.top_p,
                    )
                return response.choices[0].message.content or ""

            started = time.perf_counter()
            answers = await asyncio.gather(*(one(r) for r in batch))
            elapsed = time.perf_counter() - started
        assert len(answers) == len(batch)
        return elapsed

    return asyncio.run(run())


def main(argv: Sequence[str] | None = None) -> dict[str, float]:
    """Run both sides, print the table; return the best seconds per side and the ideal."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1024)
    parser.add_argument("--window", type=int, default=256)
    parser.add_argument("--latency", type=float, default=0.2, help="seconds a request waits")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="64 requests, window 16, 1 repeat")
    args = parser.parse_args(argv)
    if args.quick:
        args.requests, args.window, args.repeats = 64, 16, 1
    batch = requests(args.requests)
    ideal = math.ceil(args.requests / args.window) * args.latency
    sides: dict[str, Callable[[str, list[GenerationRequest], int], float]] = {
        "ours": ours, "plain": plain}  # fmt: skip
    best = dict.fromkeys(sides, math.inf)
    with fake_server(args.latency) as base_url:
        for side in sides.values():
            side(base_url, batch[: args.window], args.window)  # warm-up: imports, connections
        for repeat in range(args.repeats):
            order = list(sides) if repeat % 2 == 0 else list(sides)[::-1]
            for name in order:
                best[name] = min(best[name], sides[name](base_url, batch, args.window))
    print(f"openai backend: {args.requests} requests, window {args.window}, fake server "
          f"latency {args.latency:g} s (child process), best of {args.repeats}; "
          f"{os.cpu_count()} CPUs")  # fmt: skip
    print(f"   {'side':<8}{'last answer':>12}{'requests/s':>12}{'ideal/side':>12}"
          f"{'plain/side':>12}")  # fmt: skip
    print(f"   {'ideal':<8}{ideal:>11.2f}s{args.requests / ideal:>12.0f}{1:>12.2f}{'-':>12}")
    for name, seconds in best.items():
        print(f"   {name:<8}{seconds:>11.2f}s{args.requests / seconds:>12.0f}"
              f"{ideal / seconds:>12.2f}{best['plain'] / seconds:>12.2f}")  # fmt: skip
    return {**best, "ideal": ideal}


if __name__ == "__main__":
    main()
