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
    TokenUsage,
)


@runtime_checkable
class Sampler(Protocol):
    """Protocol: turns generation requests into completions, streamed as they finish.

    Contract for implementers:

    * Yield exactly ``request.samples`` completions per request, in any order, each carrying
      its ``request_id`` and its ``sample`` number (``0 .. samples - 1``). Never yield a
      completion for a request that was not asked for.
    * On a failure raise :class:`~opencharacter.errors.TransientBackendError` (worth a retry)
      or :class:`~opencharacter.errors.PermanentBackendError`. Requests without a yielded
      completion at that point are unfinished; the caller may send them again.
    * Honour :class:`~opencharacter.types.SamplingParams`, or say in
      :class:`Capabilities` which settings cannot be honoured.
    * Identical requests with a ``seed`` give identical text where the backend supports seeds.
    * Bound every wait: a request that gets no answer within the backend's own timeout fails
      with a :class:`~opencharacter.errors.TransientBackendError` rather than hang.
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
        """Return the same student sampling from ``checkpoint`` (``None``: the base weights).

        Raises:
            ConfigError: another backend made the checkpoint
                (see :meth:`~opencharacter.types.Checkpoint.require_backend`).
        """
        ...


@attrs.frozen(kw_only=True)
class StepMetrics:
    """One optimiser step's numbers, reported while a stage trains.

    Attributes:
        stage: ``"dpo"`` or ``"sft"``.
        step: 1-based step number.
        total_steps: the steps the stage will take.
        metrics: loss and friends, e.g. ``{"loss": 0.69, "accuracy": 0.5, "lr": 5e-5}``.
        usage: tokens billed since the previous report: ``train_tokens`` through the model,
            and ``prompt_tokens`` read (DPO's reference log-probabilities, say), so remote
            training is priced like sampling. Local backends may leave it empty.
    """

    stage: str
    step: int
    total_steps: int
    metrics: Mapping[str, float]
    usage: TokenUsage = attrs.field(factory=TokenUsage)


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
    """What a backend can do, checked once when a run starts, before anything is spent.

    :func:`opencharacter.capabilities.fit_config` refuses or downgrades, by one documented
    rule, every setting of the run that a backend here cannot honour.

    Attributes:
        sampling: it can sample (teacher and student).
        training: it can train (DPO and SFT).
        trains_weights: its checkpoints hold real weights (False for the simulated backend).
        remote: requests leave this machine (and may cost money).
        seeded_sampling: ``SamplingParams.seed`` makes sampling reproducible.
        repetition_penalty: ``SamplingParams.repetition_penalty`` is honoured.
        top_k: ``SamplingParams.top_k`` is honoured.
        lora_alpha: ``LoRAConfig.alpha`` is honoured (Tinker fixes its own LoRA scaling).
        stack_sft: SFT can train a new adapter on the DPO-merged weights (``start="stack"``);
            otherwise it can only keep training the DPO adapter (``"continue"``).
        retries: the backend retries transient failures itself (Tinker's SDK does, for
            minutes), so the pipeline's dispatcher retries each request at most once more
            instead of multiplying the two retry budgets.
        max_concurrency: requests worth keeping in flight at once; the run's window is
            capped to it. ``None`` for no limit.
    """

    sampling: bool = True
    training: bool = True
    trains_weights: bool = True
    remote: bool = False
    seeded_sampling: bool = True
    repetition_penalty: bool = True
    top_k: bool = True
    lora_alpha: bool = True
    stack_sft: bool = True
    retries: bool = False
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

    def check_models(self, *, sample: Sequence[str] = (), train: Sequence[str] = ()) -> None:
        """Check, in seconds and before anything is spent, that these models can be served.

        A remote backend checks its credentials and asks the service which models it offers;
        a local one may check that names resolve. Nothing is generated or trained.

        Raises:
            OpenCharacterError: what stands in the way, with the fix (for an unknown model,
                the models on offer).
        """
        ...
