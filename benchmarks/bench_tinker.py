"""DPO steps per second on Tinker: our trainer against the seed project's blocking loop.

Run: python benchmarks/bench_tinker.py [--pairs 64] [--batch 8] [--latency 0.1] [--cycle 0.1]
     [--save-every N] [--repeats 2] [--quick]

Both sides train the tiny random Qwen3 with a LoRA (rank 8, the same seed) on the same P
synthetic preference pairs, B pairs a step, through the real ``tinker`` SDK talking over HTTP
to ``FakeTinkerServer`` in a child process (the service is remote: its CPU is not ours), which
adds ``--latency`` seconds to every operation (the remote service's round trip and queueing,
which dominate a real Tinker run). Both sides
run ``--repeats`` times on the same server, the order alternating, after an untimed one-step
warm-up of ours; each side's fastest run is kept:

* ours: ``load_backend("tinker", ...).trainer().dpo(student, pairs, DPOConfig(...))``, timed
  from the call to its return. It scores every pair's reference log-probabilities at once,
  then submits each step's ``forward_backward_custom`` and ``optim_step`` one step ahead of
  waiting on the last.
* naive (the seed project's loop, written here with the real SDK): a LoRA training client
  and a sampling client of the base model (the reference), then for each batch of B pairs,
  in order: a blocking ``compute_logprobs(...).result()`` for each chosen and each rejected
  sequence, one at a time, then ``forward_backward_custom(...).result()``, then
  ``optim_step(...).result()``. Its datums come from our renderer (``Rendered``), its loss is
  our ``paper_dpo_loss`` and its learning rates and Adam settings are our trainer's, so the
  two sides do the same work and the same math; only the scheduling differs.

Both save a training state every ``--save-every`` steps and at the end (default: at the end
only) and the sampler weights once at the end, and both are timed from creating their
clients to the saved result. Printed per side: steps, seconds, the floor (operations waited
on one after the other x latency: what latency alone would cost, with free compute), the
process's CPU seconds, steps/s, the fake service's operation counts (what each side asked
for), and step 1's ``dpo_loss`` (ln 2 = 0.6931 for both: policy = reference); then the ratio
ours / naive (target: at least 5x) and the ratio of the floors. With ``--cycle`` above 0
(default 0.1) a second server also runs training operations only at ticks of a clock of that
period, as the real service's shared workers do. A full run takes about 2.5 minutes.

The fake's compute and HTTP handling run on the same two cores as the client: where ours'
seconds approach the floor plus that compute, the harness, not latency, bounds it, and the
ratio understates what the same scheduling gains against the real service, whose latency is
seconds (see ``opencharacter_tinker.timing``). ``--latency`` raises the share that
scheduling decides.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import attrs
import tinker
import torch
from opencharacter_local.tiny import build_tiny_model, tiny_text
from opencharacter_tinker.losses import paper_dpo_loss
from opencharacter_tinker.renderers import Renderer
from opencharacter_tinker.stage import _ADAM_EPS, STATE_TTL_SECONDS, Rendered
from tinker import types

from opencharacter.registry import load_backend
from opencharacter.training import DPOConfig, LoRAConfig, learning_rate_at, total_steps
from opencharacter.types import PreferencePair, to_dicts

MODEL = "opencharacter/tiny-qwen3"
TARGET = 5.0
COUNTED = ("compute_logprobs", "forward", "forward_backward", "optim_step", "save_weights",
           "save_weights_for_sampler")  # fmt: skip
HEADERS = ("logprobs", "fwd", "fwd_bwd", "optim", "states", "sampler")


def make_pairs(count: int) -> list[PreferencePair]:
    rng = random.Random(2)
    return [
        PreferencePair(
            id=f"p{i}",
            prompt=[
                {"role": "system", "content": "You are a kind and curious assistant."},
                {"role": "user", "content": tiny_text(rng, 1, 1)},
            ],
            chosen=tiny_text(rng, 1, 2),
            rejected=tiny_text(rng, 1, 2),
        )
        for i in range(count)
    ]


@attrs.frozen
class Result:
    """One side's run: its steps, wall and CPU time, the fake's operations, step 1's metrics.

    ``waits`` is how many operations the side waits on one after the other: its floor is
    ``waits`` x latency, what latency alone would cost with free compute and no clock.
    """

    label: str
    steps: int
    wall: float
    cpu: float
    calls: Counter[str]
    first: dict[str, float]
    waits: int

    @property
    def rate(self) -> float:
        return self.steps / self.wall


@contextlib.contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    """Set environment variables for the block, then restore what was there."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


class ChildService:
    """The fake Tinker service in a child process, as the real service runs on other machines.

    Its HTTP handling and its model's compute then use their own interpreter and core, not the
    benchmarked client's: in this process they would share one GIL with the SDK and our loop.
    """

    def __init__(self, model_dir: Path, latency: float, cycle: float) -> None:
        command = [sys.executable, "-m", "opencharacter_tinker.fake_server",
                   "--model", f"{MODEL}={model_dir}", "--latency", str(latency),
                   "--cycle", str(cycle)]  # fmt: skip
        # One torch thread: the service's compute should not fight the client for both cores.
        env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
        self._process = subprocess.Popen(command, stdout=subprocess.PIPE, env=env, text=True)
        assert self._process.stdout is not None
        line = self._process.stdout.readline().split()
        if len(line) != 2:
            self.close()
            msg = "the fake Tinker service did not start"
            raise SystemExit(msg)
        self.base_url, self.api_key = line

    @property
    def calls(self) -> Counter[str]:
        """The operations the service has served so far, by kind."""
        with urllib.request.urlopen(f"{self.base_url}/fake/calls", timeout=30) as answer:
            return Counter(json.load(answer))

    def env(self) -> dict[str, str]:
        return {"TINKER_BASE_URL": self.base_url, "TINKER_API_KEY": self.api_key,
                "TINKER_TELEMETRY": "0"}  # fmt: skip

    def close(self) -> None:
        self._process.terminate()
        self._process.wait(timeout=30)
        if self._process.stdout is not None:
            self._process.stdout.close()

    def __enter__(self) -> ChildService:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def counted(server: ChildService, before: Counter[str]) -> Counter[str]:
    now = server.calls
    return Counter({kind: now[kind] - before[kind] for kind in COUNTED})


# ------------------------------------------------------------------------------------- ours


def run_ours(
    server: ChildService, options: dict[str, str], pairs, config: DPOConfig, out: Path
) -> Result:
    """Our trainer as the pipeline calls it: a student, an ``on_step`` callback, a new folder."""
    backend = load_backend("tinker", options)
    student = backend.student(MODEL)
    backend.chat_format(MODEL)  # the tokenizer loads once per process, before either clock
    steps: list[Any] = []
    before = server.calls
    started, cpu = time.perf_counter(), time.process_time()
    checkpoint = backend.trainer().dpo(student, pairs, config, output_dir=out,
                                       on_step=steps.append)  # fmt: skip
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    backend._connection.close()
    done = checkpoint.meta["steps"]
    # In turn: the reference's sampling client, the reference (all at once), the training
    # client, each step's two passes (its optimiser step and saved state ride along), the
    # sampler weights.
    waits = 1 + 1 + 1 + 2 * done + 1
    return Result("ours (TinkerTrainer.dpo)", done, wall, cpu, counted(server, before),
                  steps[0].metrics, waits)  # fmt: skip


# ------------------------------------------------------------------------------------ naive


def run_naive(
    server: ChildService, renderer: Renderer, pairs, config: DPOConfig, save_every: int
) -> Result:
    """The seed project's loop: every request waited on alone, in order, batch after batch."""
    before = server.calls
    started, cpu = time.perf_counter(), time.process_time()
    service = tinker.ServiceClient(base_url=server.base_url, api_key=server.api_key)
    client = service.create_lora_training_client(
        MODEL, rank=config.lora.rank, seed=config.seed, train_mlp=True, train_attn=True,
        train_unembed=False,
    ).result()  # fmt: skip
    reference_client = service.create_sampling_client(base_model=MODEL).result()
    rendered = []
    for pair in pairs:
        prompt = to_dicts(pair.prompt)
        sides = [Rendered(*renderer.completion(prompt, a)) for a in (pair.chosen, pair.rejected)]
        if all(len(s.tokens) <= config.max_length for s in sides):
            rendered.extend(sides)  # chosen, rejected, chosen, rejected, ...
    steps = total_steps(len(rendered) // 2, config)
    size = 2 * config.batch_size
    first: dict[str, float] = {}
    for step in range(1, steps + 1):
        batch = rendered[(step - 1) * size : step * size]
        refs = []
        for sequence in batch:  # one blocking request per sequence
            values = reference_client.compute_logprobs(
                types.ModelInput.from_ints(sequence.tokens)
            ).result()
            refs.append(torch.tensor([float(values[1:][i]) for i in sequence.answer]))
        answers = [s.answer for s in batch]

        def loss(_data: Any, logprobs: list[torch.Tensor], refs=refs, answers=answers):
            policy = [lp[a] for lp, a in zip(logprobs, answers, strict=True)]
            return paper_dpo_loss(policy, refs, beta=config.beta, nll_coef=config.nll_coef,
                                  kl_coef=config.kl_coef)  # fmt: skip

        output = client.forward_backward_custom([s.datum() for s in batch], loss).result()
        beta1, beta2 = config.adam_betas
        client.optim_step(
            types.AdamParams(
                learning_rate=learning_rate_at(step, steps, config),
                beta1=beta1,
                beta2=beta2,
                eps=_ADAM_EPS,
                weight_decay=config.weight_decay,
                grad_clip_norm=config.max_grad_norm,
            )
        ).result()
        if step % save_every == 0 or step == steps:
            client.save_state(f"naive-{step:06d}", ttl_seconds=STATE_TTL_SECONDS,
                              overwrite=True).result()  # fmt: skip
        if step == 1:
            first = {k: float(v) for k, v in output.metrics.items()}
    client.save_weights_for_sampler("naive-final").result()
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    service.close("success").result()
    calls = counted(server, before)
    waits = 2 + sum(calls.values())  # two clients, then every operation on its own
    return Result("naive blocking loop", steps, wall, cpu, calls, first, waits)


# ------------------------------------------------------------------------------------- main


def bench(
    model_dir: Path, args: argparse.Namespace, cycle: float, pairs, *, warm_up: bool
) -> tuple[Result, Result]:
    """Run both sides ``--repeats`` times on one fake server; return each one's fastest run."""
    config = attrs.evolve(DPOConfig(), batch_size=args.batch, lora=LoRAConfig(rank=8, alpha=16))
    steps = total_steps(len(pairs), config)
    save_every = args.save_every or steps
    options = {"tokenizer": str(model_dir), "save_every": str(save_every),
               "connect_timeout": "30"}  # fmt: skip
    with (
        ChildService(model_dir, args.latency, cycle) as server,
        environment({**server.env(), "HF_HUB_OFFLINE": "1"}),
        tempfile.TemporaryDirectory() as tmp,
    ):
        if warm_up:  # one step, untimed: the process's first SDK session and torch passes
            run_ours(server, options, pairs[: args.batch], config, Path(tmp) / "warm")
        renderer = load_backend("tinker", options).chat_format(MODEL)
        sides = {
            "ours": lambda n: run_ours(server, options, pairs, config, Path(tmp) / f"ours-{n}"),
            "naive": lambda _: run_naive(server, renderer, pairs, config, save_every),
        }
        runs: dict[str, list[Result]] = {name: [] for name in sides}
        for round_ in range(args.repeats):  # the order alternates: ours first, then naive first
            for name in list(sides) if round_ % 2 == 0 else list(sides)[::-1]:
                runs[name].append(sides[name](round_))
    ours, naive = (min(runs[name], key=lambda r: r.wall) for name in sides)
    return ours, naive


def report(title: str, results: Sequence[Result], latency: float) -> float:
    """Print one configuration's table; return the ratio ours / naive."""
    print(title)
    label = max(len(r.label) for r in results)
    print(f"  {'side':<{label}}  steps  seconds  floor s  CPU s  steps/s  " + "  ".join(HEADERS)
          + "  step-1 dpo_loss")  # fmt: skip
    for r in results:
        counts = "  ".join(f"{r.calls[k]:>{len(h)}}" for k, h in zip(COUNTED, HEADERS, strict=True))
        print(f"  {r.label:<{label}}  {r.steps:>5}  {r.wall:>7.2f}  {r.waits * latency:>7.2f}  "
              f"{r.cpu:>5.2f}  {r.rate:>7.3f}  {counts}  "
              f"{r.first.get('dpo_loss', float('nan')):>15.6f}")  # fmt: skip
    ours, naive = results
    ratio = ours.rate / naive.rate
    verdict = "met" if ratio >= TARGET else "NOT met"
    print(f"  ours / naive = {ratio:.2f}x (target >= {TARGET:g}x: {verdict}); latency alone "
          f"(floor / floor): {naive.waits / ours.waits:.2f}x")  # fmt: skip
    return ratio


def main(argv: list[str] | None = None) -> dict[str, tuple[Result, Result]]:
    """Run both sides under each server configuration and print the tables and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, help="preference pairs (64; --quick: 8)")
    parser.add_argument("--batch", type=int, help="pairs per optimiser step (8; --quick: 4)")
    parser.add_argument("--latency", type=float, default=0.1, help="seconds per operation")
    parser.add_argument(
        "--cycle", type=float, default=0.1, help="training clock of the second run; 0 skips it"
    )
    parser.add_argument(
        "--save-every", type=int, default=0, help="steps between saved states (0: at the end)"
    )
    parser.add_argument(
        "--repeats", type=int, help="timed runs per side, fastest kept (2; --quick: 1)"
    )
    parser.add_argument("--quick", action="store_true", help="a small run, for a smoke test")
    parser.add_argument("--model-dir", type=Path, help="the tiny model's folder (default: built)")
    args = parser.parse_args(argv)
    args.pairs = args.pairs or (8 if args.quick else 64)
    args.batch = args.batch or (4 if args.quick else 8)
    args.repeats = args.repeats or (1 if args.quick else 2)
    if args.pairs < args.batch:
        parser.error("--pairs must be at least --batch")
    model_dir = args.model_dir or build_tiny_model()
    pairs = make_pairs(args.pairs)
    steps = -(-args.pairs // args.batch)
    saves = f"every {args.save_every} steps and at the end" if args.save_every else "at the end"
    print(
        f"tiny Qwen3 on the fake Tinker service (real tinker {tinker.__version__} SDK over HTTP): "
        f"{args.pairs} pairs, batch {args.batch} -> {steps} steps, LoRA rank 8; both sides save "
        f"a training state {saves} and the sampler weights once; load average "
        f"{os.getloadavg()[0]:.2f}"
    )
    print(
        f"fastest of {args.repeats} run(s) per side; floor s: operations waited on in turn x "
        "latency (free compute, no clock); CPU s: the client process's CPU time during the "
        "run (the SDK's and our loop's; the fake service runs in a child process); then the "
        "fake's operations per side "
        f"({', '.join(COUNTED)})"
    )
    started = time.perf_counter()
    results: dict[str, tuple[Result, Result]] = {}
    configurations = [("latency", 0.0)] + ([("cycle", args.cycle)] if args.cycle > 0 else [])
    threads = torch.get_num_threads()
    # The client's own torch work (the loss) is small; one thread leaves the other core to
    # the service.
    torch.set_num_threads(1)
    try:
        for name, cycle in configurations:
            results[name] = bench(model_dir, args, cycle, pairs, warm_up=not results)
            clock = f"training clock ticking every {cycle:g} s" if cycle else "no training clock"
            report(
                f"\nlatency {args.latency:g} s per operation, {clock}:",
                results[name],
                args.latency,
            )
    finally:
        torch.set_num_threads(threads)
    print(f"\ntotal {time.perf_counter() - started:.1f} s; load average at the end "
          f"{os.getloadavg()[0]:.2f} (other work on the CPUs skews)")  # fmt: skip
    return results


if __name__ == "__main__":
    main()
