"""The simulated backend: deterministic synthetic sampling and a trainer that trains nothing.

It is the engine of dry runs, tests, throughput benchmarks and fault injection. Text depends
only on the seed and the request (see :mod:`._text`); latency, concurrency limits and
failures are injected on top, so orchestration can be tested against a service that is slow,
busy or broken. Its checkpoints say plainly that no weights exist.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
import weakref
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import attrs
from attrs import validators as v

from opencharacter.errors import ConfigError, PermanentBackendError, TransientBackendError
from opencharacter.protocols import Capabilities, StepCallback, StepMetrics, Student
from opencharacter.sampling_base import SamplerWeights, as_finished
from opencharacter.simulated._text import degenerate, rng_for, synthesize
from opencharacter.training import DPOConfig, SFTConfig, learning_rate_at, total_steps
from opencharacter.types import (
    ChatExample,
    Checkpoint,
    CheckpointKind,
    Completion,
    GenerationRequest,
    PreferencePair,
    stable_id,
)

NOTICE = "simulated backend: synthetic text and no trained weights; not a real model"


@attrs.frozen(kw_only=True)
class SimulatedBackend:
    """A backend whose models write synthetic text and whose trainer only pretends.

    Attributes:
        seed: makes every text reproducible; the same seed and request id give the same text.
        latency_ms: mean time to answer one request.
        jitter: spread of the latency as a share of the mean (0.2: uniform within +-20%),
            drawn from the seed so it is reproducible too.
        max_concurrency: requests served at once; the rest wait, like a rate-limited service.
        failure_rate: share of attempts that fail with a transient error (429-like).
        fail_permanently: every request fails with an authentication error.
        degenerate_rate: share of answers replaced by a degenerate one (a character loop, an
            empty answer, leaked reasoning, a hallucinated user turn, an identity claim),
            drawn from the seed, to exercise the filters and the top-up logic.
        chars_per_token: how token counts are estimated from text length.
    """

    seed: int = attrs.field(default=0, validator=v.instance_of(int))
    latency_ms: float = attrs.field(default=0.0, converter=float, validator=v.ge(0.0))
    jitter: float = attrs.field(default=0.0, converter=float, validator=[v.ge(0.0), v.le(1.0)])
    max_concurrency: int = attrs.field(default=1024, validator=v.ge(1))
    failure_rate: float = attrs.field(
        default=0.0, converter=float, validator=[v.ge(0.0), v.lt(1.0)]
    )
    fail_permanently: bool = attrs.field(default=False)
    degenerate_rate: float = attrs.field(
        default=0.0, converter=float, validator=[v.ge(0.0), v.le(1.0)]
    )
    chars_per_token: float = attrs.field(default=4.0, converter=float, validator=v.gt(0.0))

    name = "simulated"

    @property
    def capabilities(self) -> Capabilities:
        """Everything is supported, and nothing is trained."""
        return Capabilities(trains_weights=False, max_concurrency=self.max_concurrency)

    def teacher(self, model: str) -> SimulatedSampler:
        """Return a simulated teacher called ``model``."""
        return SimulatedSampler(self, model)

    def student(self, model: str, checkpoint: Checkpoint | None = None) -> SimulatedSampler:
        """Return a simulated student of ``model``, at ``checkpoint`` if given."""
        return SimulatedSampler(self, model, checkpoint)

    def trainer(self) -> SimulatedTrainer:
        """Return the simulated trainer."""
        return SimulatedTrainer(self)

    def check_models(self, *, sample: Sequence[str] = (), train: Sequence[str] = ()) -> None:
        """Every model name is served: the text is synthetic."""


class SimulatedSampler(SamplerWeights):
    """A teacher or student of the simulated backend (it satisfies both protocols)."""

    def __init__(
        self, backend: SimulatedBackend, model: str, checkpoint: Checkpoint | None = None
    ) -> None:
        super().__init__(model, checkpoint)
        self._backend = backend
        self._attempts: Counter[str] = Counter()
        self._gates: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
            weakref.WeakKeyDictionary()
        )

    def at(self, checkpoint: Checkpoint | None) -> SimulatedSampler:
        """Return the same student at ``checkpoint`` (one this backend made)."""
        if checkpoint is not None:
            checkpoint.require_backend(self._backend.name)
        return SimulatedSampler(self._backend, self._base_model, checkpoint)

    async def generate(self, requests: Sequence[GenerationRequest]) -> AsyncIterator[Completion]:
        """Yield every sample of every request, each request's samples together as it finishes."""
        async for completion in as_finished(self._answer(r) for r in requests):
            yield completion

    def _gate(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        gate = self._gates.get(loop)
        if gate is None:
            gate = self._gates[loop] = asyncio.Semaphore(self._backend.max_concurrency)
        return gate

    async def _answer(self, request: GenerationRequest) -> list[Completion]:
        backend = self._backend
        self._attempts[request.id] += 1
        attempt = self._attempts[request.id]
        async with self._gate():
            started = time.perf_counter()
            # The service's own work counts as latency.
            answer = [self._synthesize(request, n) for n in range(request.samples)]
            delay = backend.latency_ms / 1000.0
            if delay:
                spread = rng_for(backend.seed, request.id, "latency", attempt).uniform(-1.0, 1.0)
                wanted = delay * (1.0 + backend.jitter * spread)
                await asyncio.sleep(max(0.0, wanted - (time.perf_counter() - started)))
            if backend.fail_permanently:
                msg = "simulated authentication failure (401): the API key was rejected"
                raise PermanentBackendError(msg, request_id=request.id)
            if rng_for(backend.seed, request.id, "fault", attempt).random() < backend.failure_rate:
                msg = f"simulated rate limit (429) on request {request.id}, attempt {attempt}"
                raise TransientBackendError(msg, request_id=request.id)
        return answer

    def _synthesize(self, request: GenerationRequest, sample: int) -> Completion:
        backend = self._backend
        key = (request.id, sample) if sample else (request.id,)  # sample 0: as a lone request
        text = synthesize(request, rng_for(backend.seed, *key, "text"))
        fault = rng_for(backend.seed, *key, "degenerate")
        if fault.random() < backend.degenerate_rate:
            text = degenerate(text, fault)
        return self._complete(request, text, sample)

    def _complete(self, request: GenerationRequest, text: str, sample: int) -> Completion:
        params, per_token = request.params, self._backend.chars_per_token
        finish: str = "stop"
        cut = min((i for s in params.stop if (i := text.find(s)) >= 0), default=-1)
        if cut >= 0:
            text = text[:cut]
        limit = int(params.max_tokens * per_token)
        if len(text) > limit:
            text, finish = text[:limit], "length"
        prompt_chars = sum(len(m.content) for m in request.messages)
        return Completion(
            request_id=request.id,
            text=text,
            finish_reason="length" if finish == "length" else "stop",
            prompt_tokens=0 if sample else math.ceil(prompt_chars / per_token),
            completion_tokens=math.ceil(len(text) / per_token),
            model=self.model,
            sample=sample,
        )


class SimulatedTrainer:
    """Walks through a stage's steps with plausible metrics and records a weightless checkpoint.

    The step count and learning-rate schedule are the real ones for the data and config
    given; the losses are a smooth synthetic curve. Calling a stage again with the same inputs
    and ``output_dir`` returns the recorded checkpoint, as a resumed real trainer would.
    """

    def __init__(self, backend: SimulatedBackend) -> None:
        self._backend = backend

    def dpo(
        self,
        student: Student,
        pairs: Sequence[PreferencePair],
        config: DPOConfig,
        *,
        output_dir: Path,
        on_step: StepCallback | None = None,
    ) -> Checkpoint:
        """Pretend to run DPO; metrics are loss, accuracy, margins and lr."""
        return self._train("dpo", student, [p.id for p in pairs], config, output_dir, on_step)

    def sft(
        self,
        student: Student,
        examples: Sequence[ChatExample],
        config: SFTConfig,
        *,
        output_dir: Path,
        on_step: StepCallback | None = None,
    ) -> Checkpoint:
        """Pretend to run SFT; metrics are loss and lr."""
        return self._train("sft", student, [e.id for e in examples], config, output_dir, on_step)

    def _train(  # noqa: PLR0917 - a private helper shared by dpo() and sft()
        self,
        kind: CheckpointKind,
        student: Student,
        ids: list[str],
        config: DPOConfig | SFTConfig,
        output_dir: Path,
        on_step: StepCallback | None,
    ) -> Checkpoint:
        if not ids:
            msg = f"{kind}: no training examples; generate data first"
            raise ConfigError(msg)
        parent = student.checkpoint.uri if student.checkpoint else None
        key = stable_id(kind, student.base_model, parent, sorted(ids), config.to_dict())
        record = output_dir / "checkpoint.json"
        if record.exists():
            saved = json.loads(record.read_text(encoding="utf-8"))
            if saved.get("meta", {}).get("inputs") == key:
                return Checkpoint.from_dict(saved)
        steps = total_steps(len(ids), config)
        rng = rng_for(self._backend.seed, key)
        for step in range(1, steps + 1):
            metrics = _synthetic_metrics(kind, step / steps, rng.gauss(0.0, 0.02))
            metrics["lr"] = learning_rate_at(step, steps, config)
            if on_step is not None:
                on_step(StepMetrics(stage=kind, step=step, total_steps=steps, metrics=metrics))
        checkpoint = Checkpoint(
            backend="simulated",
            base_model=student.base_model,
            uri=f"simulated://{student.base_model}/{kind}-{key[:8]}",
            kind=kind,
            parent=parent,
            meta={
                "simulated": True,
                "weights": False,
                "steps": steps,
                "examples": len(ids),
                "inputs": key,
                "note": NOTICE,
            },
        )
        output_dir.mkdir(parents=True, exist_ok=True)
        record.write_text(json.dumps(checkpoint.to_dict(), indent=2) + "\n", encoding="utf-8")
        return checkpoint


def _synthetic_metrics(kind: str, progress: float, noise: float) -> dict[str, Any]:
    """Return a smooth, noisy curve: DPO loss falls from ln 2, SFT loss from about 2.5."""
    if kind == "dpo":
        loss = max(0.01, math.log(2) * math.exp(-2.0 * progress) + noise)
        accuracy = min(1.0, 0.5 + 0.45 * progress + noise)
        return {"loss": loss, "accuracy": accuracy, "margin": 4.0 * progress + noise}
    return {"loss": max(0.05, 2.5 * math.exp(-1.2 * progress) + noise)}
