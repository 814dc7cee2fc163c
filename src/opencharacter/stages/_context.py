"""What every stage works with: the run, its configuration, the models, and stage bookkeeping."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Coroutine, Iterator, Mapping
from typing import Any, TypeVar

import attrs

from opencharacter.capabilities import window_for
from opencharacter.config import RunConfig, family_name
from opencharacter.constitution import Constitution
from opencharacter.errors import ConfigError
from opencharacter.filters import FilterChain, QualityReport
from opencharacter.protocols import Capabilities, StepMetrics, Student, Teacher, Trainer
from opencharacter.runstore import FILTERED, RunDir
from opencharacter.stages._engine import Dispatcher, RetryPolicy
from opencharacter.trackers import Trackers
from opencharacter.types import (
    Completion,
    Price,
    Purpose,
    SamplingParams,
    SamplingSettings,
    TokenUsage,
    stable_id,
)

T = TypeVar("T")

#: Purposes the teacher serves; the student serves every other.
TEACHER_PURPOSES = frozenset({Purpose.EXPAND_QUESTIONS, Purpose.CHOSEN, Purpose.JUDGE})
_LOCAL = Capabilities()


@attrs.frozen(kw_only=True)
class Progress:
    """A stage's progress, sent to the progress callback after every completion.

    Attributes:
        stage: the stage name.
        done: generations finished (this session and before it).
        total: generations the stage expects (it may grow with top-ups and retries).
        usage: tokens used by the stage so far.
        cost: estimated cost in US dollars so far, when prices are known.
        message: a line worth showing (a warning, a summary), else empty.
    """

    stage: str
    done: int
    total: int
    usage: TokenUsage = attrs.field(factory=TokenUsage)
    cost: float = 0.0
    message: str = ""


ProgressCallback = Callable[[Progress], None]


@attrs.frozen(kw_only=True)
class StageContext:
    """The run a stage writes to and the models it uses.

    Build one with :func:`opencharacter.pipeline.open_context`; every stage function takes it.
    A stage that does not sample or train ignores the models it does not need.
    """

    run: RunDir
    config: RunConfig
    constitution: Constitution
    teacher: Teacher | None = None
    student: Student | None = None
    trainer: Trainer | None = None
    judge: Teacher | None = None
    """The evaluations' judge when it is not the teacher (``--judge``, ``--judge-backend``)."""
    progress: ProgressCallback | None = None
    capabilities: Mapping[str, Capabilities] = attrs.field(factory=dict)
    """What the ``"teacher"`` and ``"student"`` backends can do (default: everything, locally)."""
    prices: Mapping[str, Price] = attrs.field(factory=dict)
    """Prices by model: the backends' tables under the run's ``prices`` setting."""
    trackers: Trackers = attrs.field(factory=Trackers)
    """The experiment trackers the run reports to (``report_to``); none by default."""

    def side(self, side: str) -> Capabilities:
        """Return the capabilities of the ``"teacher"`` or ``"student"`` backend."""
        return self.capabilities.get(side, _LOCAL)

    def retry_policy(self, side: str = "student") -> RetryPolicy:
        """Return the configured retry policy for one side's backend.

        A backend that retries transient failures itself (its SDK does, for minutes) gets one
        more try at most from us: two nested retry loops would multiply into hours.
        """
        c = self.config
        attempts = min(c.max_attempts, 2) if self.side(side).retries else c.max_attempts
        return RetryPolicy(
            max_attempts=attempts, base_delay=c.retry_base_delay, max_delay=c.retry_max_delay
        )

    def dispatcher(self, sampler: Teacher | Student, salt: str) -> Dispatcher:
        """Return a dispatcher for ``sampler`` with its backend's window and retry policy."""
        side = "teacher" if sampler is self.teacher or sampler is self.judge else "student"
        seed = int(stable_id(self.config.seed, salt)[:8], 16)
        return Dispatcher(
            sampler,
            concurrency=window_for(self.config, self.side(side)),
            retry=self.retry_policy(side),
            seed=seed,
        )

    def params(self, max_tokens: int, request_id: str) -> SamplingParams:
        """Return sampling settings for one request, seeded from the run seed and its id."""
        sampling = self.config.sampling  # it carries the run's shared settings, and limits
        shared = {f.name: getattr(sampling, f.name) for f in attrs.fields(SamplingSettings)}
        seed = int(stable_id(self.config.seed, request_id)[:8], 16)
        return SamplingParams(max_tokens=max_tokens, seed=seed, **shared)

    def require_teacher(self) -> Teacher:
        """Return the teacher, or fail clearly when the stage was started without one."""
        if self.teacher is None:
            msg = (
                "this stage needs a teacher model; build its context with "
                "opencharacter.pipeline.open_context, or pass teacher= to StageContext"
            )
            raise ConfigError(msg)
        return self.teacher

    def require_student(self) -> Student:
        """Return the student, or fail clearly when the stage was started without one."""
        if self.student is None:
            msg = (
                "this stage needs a student model; build its context with "
                "opencharacter.pipeline.open_context, or pass student= to StageContext"
            )
            raise ConfigError(msg)
        return self.student

    def require_judge(self) -> Teacher:
        """Return the evaluations' judge: the ``--judge`` model, else the teacher."""
        return self.judge or self.require_teacher()

    def require_trainer(self) -> Trainer:
        """Return the trainer, or fail clearly when the stage was started without one."""
        if self.trainer is None:
            msg = (
                "this stage needs a trainer; build its context with "
                "opencharacter.pipeline.open_context, or pass trainer= to StageContext"
            )
            raise ConfigError(msg)
        return self.trainer

    def chain(self, stage: str) -> FilterChain:
        """Return the filter chain of ``stage`` (empty when the run turned filters off).

        The chain is recorded under ``stages.<stage>.filters`` in the manifest, so a run says
        exactly how its data was filtered.
        """
        if self.config.filters:
            chain = FilterChain.for_stage(
                stage, teacher_names=self.teacher_names, student_name=self.config.name
            )
        else:
            chain = FilterChain([], stage=stage)
        self.run.manifest.setdefault("filters", {})[stage] = chain.to_dict()
        return chain

    def price(self, side: str) -> Price | None:
        """Return the price of the ``"teacher"`` or ``"student"`` model, if it costs money."""
        if not self.side(side).remote:
            return None
        return self.prices.get(self.config.teacher if side == "teacher" else self.config.student)

    @property
    def teacher_names(self) -> tuple[str, ...]:
        """Names the teacher may call itself; chosen answers get the persona's name instead."""
        own = family_name(self.config.teacher)
        return () if own == self.config.name else (own,)


class StageRecorder:
    """Counts a stage's work, tokens, cost and quality, and saves them to the manifest.

    Every stage keeps its books here, generating or training: its state, events, progress and
    failure. ``counts`` names what ``done`` counts in the manifest ("generations" or "steps").
    The manifest is saved at most every ``save_interval`` seconds while the stage runs and
    once at the end; ``wall_seconds``, tokens and cost add up across resumed sessions.
    """

    def __init__(
        self,
        context: StageContext,
        stage: str,
        *,
        total: int,
        save_interval: float = 2.0,
        counts: str = "generations",
        **fields: Any,
    ) -> None:
        self.context = context
        self.stage = stage
        self.total = total
        self.counts = counts
        self.done = 0
        self.quality = QualityReport()
        self._started = time.monotonic()
        self._last_save = self._started
        self._save_interval = save_interval
        entry = context.run.stage(stage)
        self._wall_before = float(entry.get("wall_seconds", 0.0))
        self.usage = TokenUsage(**entry.get("usage", {}))
        self.cost = float(entry.get("cost", 0.0))
        entry.update(state="running", **fields)
        context.run.event("stage-start", stage=stage)
        context.run.save_manifest()

    def run(self, work: Coroutine[Any, Any, T]) -> T:
        """Run the stage's async work to its end (see :meth:`failing`)."""
        with self.failing():
            return asyncio.run(work)

    @contextlib.contextmanager
    def failing(self) -> Iterator[None]:
        """Record a failure or Ctrl-C of the block as the stage's state, then let it rise."""
        try:
            yield
        except BaseException as error:
            self.fail(error)
            raise

    def price(self, purpose: Purpose) -> Price | None:
        """Return the price of the model serving ``purpose``, if it is remote and priced."""
        side = "teacher" if purpose in TEACHER_PURPOSES else "student"
        return self.context.price(side)

    def completed(self, completion: Completion, purpose: Purpose) -> None:
        """Count one generation and report progress."""
        self.done += 1
        self.usage += completion.usage
        price = self.price(purpose)
        if price is not None:
            self.cost += price.cost(completion.usage)
        self._report()
        if time.monotonic() - self._last_save >= self._save_interval:
            self._save(state="running")

    def trained(self, step: StepMetrics) -> None:
        """Count one training step: its metrics to ``metrics.jsonl``, its billed tokens here."""
        self.done, self.total = step.step, step.total_steps
        self.usage += step.usage
        price = self.context.price("student")
        if price is not None:
            self.cost += price.cost(step.usage)
        tokens = {key: count for key, count in step.usage.to_dict().items() if count}
        self.context.run.log_metrics({"stage": step.stage, "step": step.step,
                                      "total_steps": step.total_steps, **step.metrics,
                                      **tokens})  # fmt: skip
        self.context.trackers.step(step.stage, {**step.metrics, **tokens})
        self._report()
        self._save(state="running")

    def skipped(self, count: int) -> None:
        """Count generations already on disk from an earlier session."""
        self.done += count
        self._report()

    def say(self, message: str) -> None:
        """Record a notable line in the event log and pass it to the progress callback."""
        self.context.run.event("note", stage=self.stage, message=message)
        self._report(message)

    def _report(self, message: str = "") -> None:
        if self.context.progress is not None:
            self.context.progress(
                Progress(
                    stage=self.stage, done=self.done, total=max(self.total, self.done),
                    usage=self.usage, cost=self.cost, message=message,
                )
            )  # fmt: skip

    def _save(self, **fields: Any) -> None:
        now = time.monotonic()
        self._last_save = now
        self.context.run.update_stage(
            self.stage,
            **{self.counts: self.done},
            wall_seconds=round(self._wall_before + now - self._started, 3),
            usage=self.usage.to_dict(),
            cost=round(self.cost, 6),
            **fields,
        )

    def finish(self, **fields: Any) -> None:
        """Mark the stage done, with its quality report (if it filtered) and extra fields."""
        if self.quality.total:
            self.context.run.save_section("quality", self.stage, self.quality.to_dict())
            fields["quality"] = self.quality.summary()
            self._report(self.quality.summary())
        self._save(state="done", **fields)
        self.context.run.event("stage-end", stage=self.stage, **fields)
        self.context.trackers.stage_done(self.stage, self.context.run.stage(self.stage))

    def fail(self, error: BaseException) -> None:
        """Mark the stage failed (or interrupted), keeping what it counted."""
        state = "interrupted" if isinstance(error, KeyboardInterrupt) else "failed"
        self._save(state=state, error=str(error) or type(error).__name__)
        self.context.run.event(f"stage-{state}", stage=self.stage, error=str(error))


def replay_quality(run: RunDir, stage: str, kept_file: str, report: QualityReport) -> None:
    """Count rows an earlier session already filtered, from the run files, into ``report``."""
    for row in run.rows(kept_file):
        report.count(keep=True, cleaned=[(where, code) for where, code in row.get("cleaned", [])])
    for row in run.rows(FILTERED):
        if row.get("stage") == stage:
            report.count(keep=False, reasons=[(w, c) for w, c in row.get("reasons", [])])
