"""The shapes a backend fills: ``Teacher``, ``Student``, ``Trainer`` and ``Backend``.

They are :class:`typing.Protocol` classes, not base classes: a backend satisfies them by having
the right methods, and shares no implementation with the core. Data members are read-only
properties so frozen attrs classes satisfy them too.

Sampling is an async stream because both kinds of backend want it: a remote service (Tinker)
answers each request on its own future, and a local engine (vLLM) gathers the requests that are
waiting into one batch. Either way the caller gets each completion the moment it is ready and
writes it to disk, so a crash loses at most what was in flight.

Training is one blocking call per stage because that is the common denominator: TRL owns its
training loop, Tinker exposes steps and futures that the backend drives itself. Per-step
metrics reach the caller through ``on_step``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import attrs

from opencharacter.training import DPOConfig, SFTConfig
from opencharacter.types import (
    ChatExample,
    Checkpoint,
    Completion,
    GenerationRequest,
    PreferencePair,
)


@runtime_checkable
class Sampler(Protocol):
    """Protocol: turns generation requests into completions, streamed as they finish.

    Contract for implementers:

    * Yield exactly one :class:`Completion` per request, in any order, each carrying its
      ``request_id``. Never yield a completion for a request that was not asked for.
    * On a failure raise :class:`~opencharacter.errors.TransientBackendError` (worth a retry)
      or :class:`~opencharacter.errors.PermanentBackendError`. Requests without a yielded
      completion at that point are unfinished; the caller may send them again.
    * Honour :class:`~opencharacter.types.SamplingParams`, or say in
      :class:`Capabilities` which settings cannot be honoured.
    * Identical requests with a ``seed`` give identical text where the backend supports seeds.
    """

    @property
    def model(self) -> str:
        """The model name (or checkpoint id) completions will report."""
        ...

    def generate(self, requests: Sequence[GenerationRequest]) -> AsyncIterator[Completion]:
        """Yield one completion per request as soon as each is ready."""
        ...


@runtime_checkable
class Teacher(Sampler, Protocol):
    """Protocol: the large model that writes in-character answers (and serves as judge)."""


@runtime_checkable
class Student(Sampler, Protocol):
    """Protocol: the model being trained, sampled at its base weights or at a checkpoint."""

    @property
    def base_model(self) -> str:
        """The base model the student's adapters apply to."""
        ...

    @property
    def checkpoint(self) -> Checkpoint | None:
        """The checkpoint the student samples from; ``None`` for the base weights."""
        ...

    def at(self, checkpoint: Checkpoint | None) -> Student:
        """Return the same student sampling from ``checkpoint`` (``None``: the base weights)."""
        ...


@attrs.frozen(kw_only=True)
class StepMetrics:
    """One optimiser step's numbers, reported while a stage trains.

    Attributes:
        stage: ``"dpo"`` or ``"sft"``.
        step: 1-based step number.
        total_steps: the steps the stage will take.
        metrics: loss and friends, e.g. ``{"loss": 0.69, "accuracy": 0.5, "lr": 5e-5}``.
    """

    stage: str
    step: int
    total_steps: int
    metrics: Mapping[str, float]


StepCallback = Callable[[StepMetrics], None]


@runtime_checkable
class Trainer(Protocol):
    """Protocol: trains a student for a whole stage and returns the resulting checkpoint.

    ``output_dir`` is a folder the stage owns inside the run directory: local backends write
    adapters and resumable trainer state there; remote backends may keep only a record.
    Calling a stage again with the same ``output_dir`` resumes from its saved state.
    """

    def dpo(
        self,
        student: Student,
        pairs: Sequence[PreferencePair],
        config: DPOConfig,
        *,
        output_dir: Path,
        on_step: StepCallback | None = None,
    ) -> Checkpoint:
        """Train ``student`` (from its current checkpoint) on preference pairs with DPO."""
        ...

    def sft(
        self,
        student: Student,
        examples: Sequence[ChatExample],
        config: SFTConfig,
        *,
        output_dir: Path,
        on_step: StepCallback | None = None,
    ) -> Checkpoint:
        """Fine-tune ``student`` (from its current checkpoint) on every assistant turn."""
        ...


@attrs.frozen(kw_only=True)
class Capabilities:
    """What a backend can do, so stages can refuse early instead of failing late.

    Attributes:
        sampling: it can sample (teacher and student).
        training: it can train (DPO and SFT).
        trains_weights: its checkpoints hold real weights (False for the simulated backend).
        remote: requests leave this machine (and may cost money).
        seeded_sampling: ``SamplingParams.seed`` makes sampling reproducible.
        repetition_penalty: ``SamplingParams.repetition_penalty`` is honoured.
        top_k: ``SamplingParams.top_k`` is honoured.
        max_concurrency: requests worth keeping in flight at once; ``None`` for no advice.
    """

    sampling: bool = True
    training: bool = True
    trains_weights: bool = True
    remote: bool = False
    seeded_sampling: bool = True
    repetition_penalty: bool = True
    top_k: bool = True
    max_concurrency: int | None = None


@attrs.frozen
class Readiness:
    """Whether a backend can run here, and if not, every reason why with its fix."""

    problems: tuple[str, ...] = ()

    @property
    def ready(self) -> bool:
        """True when nothing stands in the way."""
        return not self.problems


@runtime_checkable
class Backend(Protocol):
    """Protocol: a plugin that makes teachers, students and trainers.

    Backends are found through the ``opencharacter.backends`` entry-point group; see
    :mod:`opencharacter.registry`. Teacher and student may come from different backends.
    """

    @property
    def name(self) -> str:
        """The registry name, e.g. ``"local"``."""
        ...

    @property
    def capabilities(self) -> Capabilities:
        """What this backend can do."""
        ...

    def teacher(self, model: str) -> Teacher:
        """Return a teacher sampling from ``model``."""
        ...

    def student(self, model: str, checkpoint: Checkpoint | None = None) -> Student:
        """Return a student for ``model``, at ``checkpoint`` if given."""
        ...

    def trainer(self) -> Trainer:
        """Return the trainer for this backend's students."""
        ...
