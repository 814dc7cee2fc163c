"""Capabilities kept: any ``inspect_ai`` task (IFEval, GSM8K, MMLU-Pro...) on our samplers.

Character training can cost general ability, so a trained model is worth scoring on the
benchmarks the base model was scored on. Rather than re-implement benchmarks, this module makes
every :class:`~opencharacter.protocols.Sampler` (a teacher, or a student at any checkpoint, on
any backend) an ``inspect_ai`` model, and :func:`run_capability` runs one task on several of
them and puts the scores side by side::

    run_capability("inspect_evals/gsm8k", {"base": student, "trained": student.at(sft)},
                   limit=200, log_dir=run_dir / "eval" / "capabilities")
    # {"task": "gsm8k", "metric": "accuracy", "scores": {"base": 0.61, "trained": 0.6}, ...}

Two decisions worth knowing:

* **No entry point, no model string.** A sampler is a live object, so a model is built from it
  with :func:`inspect_model` and handed to ``inspect_ai.eval`` as a ``Model``. ``inspect_ai``
  names a model by its provider's registry entry, so the provider is registered in its
  in-process registry (as ``opencharacter``) on first use, through its public ``modelapi``
  decorator; ``get_model("opencharacter/...")`` is refused with a pointer here.
* **Settings we cannot honour are refused, not dropped** (log-probabilities, structured output,
  penalties, tools, images), as :mod:`opencharacter.capabilities` does for a run's settings: a
  score measured under silently different settings is not the score the task defines.

``inspect_ai`` is an optional dependency (``pip install "opencharacter[eval]"``); it is imported
only when a model is built or a task is run, never by ``import opencharacter.eval``.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from opencharacter.errors import (
    ConfigError,
    EvaluationError,
    MissingDependencyError,
    OpenCharacterError,
    TransientBackendError,
)
from opencharacter.protocols import Sampler
from opencharacter.types import (
    Completion,
    GenerationRequest,
    Message,
    Purpose,
    SamplingParams,
    stable_id,
)

if TYPE_CHECKING:
    from inspect_ai import Task
    from inspect_ai.log import EvalLog
    from inspect_ai.model import ChatMessage, GenerateConfig, Model, ModelAPI, ModelOutput

#: The provider name models carry in ``inspect_ai`` logs: ``opencharacter/<name>``.
PROVIDER = "opencharacter"

INSTALL = 'pip install "opencharacter[eval]"'

#: Requests kept in flight per model. Above inspect's default of 10 because our samplers gather
#: concurrent requests into batches (a local engine) or pipeline them (a remote service).
MAX_CONNECTIONS = 32

# GenerateConfig settings no Sampler honours; a task that sets one is refused.
_UNHONOURED = (
    "best_of",
    "frequency_penalty",
    "logit_bias",
    "logprobs",
    "presence_penalty",
    "prompt_logprobs",
    "response_schema",
    "top_logprobs",
)


def inspect_model(sampler: Sampler, name: str, *, params: SamplingParams | None = None) -> Model:
    """Return an ``inspect_ai`` model that answers with ``sampler``.

    Args:
        sampler: any teacher or student (at any checkpoint) of any backend.
        name: what logs call the model, ``opencharacter/<name>`` (e.g. ``"trained"``).
        params: sampling settings for whatever the task leaves unset (default
            :class:`~opencharacter.types.SamplingParams`: temperature 0.7, top_p 0.95, 1024
            tokens); the task's and ``eval``'s ``GenerateConfig`` override them field by field.

    Raises:
        MissingDependencyError: ``inspect_ai`` is not installed.
    """
    _require_inspect()
    provider = _provider()
    from inspect_ai.model import GenerateConfig, Model  # noqa: PLC0415 - optional

    return Model(provider(model_name=name, sampler=sampler, params=params), GenerateConfig())


def to_messages(messages: Sequence[ChatMessage]) -> tuple[Message, ...]:
    """Return inspect's chat messages as ours: text-only system, user and assistant turns.

    Reasoning blocks in earlier assistant turns are left out (our samplers take plain text).

    Raises:
        ConfigError: a tool call or result, or an image, audio or other non-text content.
    """
    from inspect_ai.model import ChatMessageAssistant  # noqa: PLC0415 - optional

    converted = []
    for message in messages:
        role = message.role
        if role == "tool" or (isinstance(message, ChatMessageAssistant) and message.tool_calls):
            msg = (
                "this task uses tools; opencharacter samplers answer plain chat only, so "
                "evaluate with a task without tools"
            )
            raise ConfigError(msg)
        converted.append(Message(role=role, content=_text(message)))
    return tuple(converted)


def to_sampling_params(config: GenerateConfig, base: SamplingParams) -> SamplingParams:
    """Return ``base`` with every setting ``config`` gives (temperature, top_p, top_k, stop...).

    Raises:
        ConfigError: ``config`` sets what samplers cannot honour (log-probabilities, penalties,
            a response schema), or a value our sampling settings reject.
    """
    refused = [name for name in _UNHONOURED if getattr(config, name)]
    if refused:
        msg = (
            f"the task sets {', '.join(refused)}, which opencharacter samplers cannot honour; "
            "evaluate with a task that does not need them"
        )
        raise ConfigError(msg)
    given: dict[str, Any] = {
        "temperature": config.temperature,
        "top_p": config.top_p,
        "max_tokens": config.max_tokens,
        "seed": config.seed,
    }
    changes = {key: value for key, value in given.items() if value is not None}
    if config.top_k is not None:  # 0 or -1 mean "off" in the APIs inspect speaks to
        changes["top_k"] = config.top_k if config.top_k > 0 else None
    if config.stop_seqs is not None:
        changes["stop"] = tuple(stop for stop in config.stop_seqs if stop)
    try:
        return attrs.evolve(base, **changes)
    except (TypeError, ValueError) as exc:
        msg = f"the task's generation settings {changes} are not valid sampling settings: {exc}"
        raise ConfigError(msg) from exc


def run_capability(
    task: str | Task,
    models: Mapping[str, Sampler],
    *,
    limit: int | None = None,
    log_dir: Path,
    **eval_args: Any,
) -> dict[str, Any]:
    """Run one ``inspect_ai`` task on each model and return the scores side by side.

    All models run in one ``inspect_ai.eval`` call, on the same samples, each with its own
    request window (see :data:`MAX_CONNECTIONS`). It blocks, running an event loop of its own:
    from async code, ``await asyncio.to_thread(run_capability, ...)``. Note that
    ``inspect_ai`` adds a handler of its own to the root logger when it runs.

    Args:
        task: a registered task name (``"inspect_evals/gsm8k"``), a file and task
            (``"path/to/tasks.py@my_task"``) or a ``Task``.
        models: a name for each sampler, e.g. ``{"base": student, "trained": student.at(c)}``.
        limit: samples to run from the start of the task's dataset (``None``: all of them).
        log_dir: where ``inspect_ai`` writes its logs, one per model (the evaluation stage
            passes ``RUN_DIR/eval/capabilities/``); read them with ``inspect view``.
        **eval_args: passed to ``inspect_ai.eval`` as they are (``temperature=0.0``,
            ``max_connections=8``, ``epochs=3``...).

    Returns:
        A JSON-ready record: ``task`` (its name), ``metric`` (the task's headline metric, else
        its first), ``scores`` and ``stderr`` (per model name; ``stderr`` only for models whose
        scorer reports one), ``samples`` (scored per model) and ``logs`` (each model's log).

    Raises:
        MissingDependencyError: ``inspect_ai`` is not installed.
        ConfigError: ``models`` is empty, or ``task`` names nothing installed or on disk.
        EvaluationError: a model's evaluation failed, or gave no score.
        OpenCharacterError: what a sampler raised (a refused setting, a backend failure).
    """
    if not models:
        msg = "run_capability needs at least one model, e.g. {'base': student}"
        raise ConfigError(msg)
    resolved = _load_task(task)
    apis = {name: inspect_model(sampler, name) for name, sampler in models.items()}
    from inspect_ai import eval as inspect_eval  # noqa: PLC0415 - optional

    eval_args.setdefault("display", "none")  # a library prints nothing of its own
    logs = inspect_eval(
        resolved,
        model=list(apis.values()),
        limit=limit,
        log_dir=str(log_dir),
        metadata={"opencharacter_models": {n: s.model for n, s in models.items()}},
        **eval_args,
    )
    for model in apis.values():
        failure = getattr(model.api, "failure", None)
        if failure is not None:
            raise failure
    by_model = {str(log.eval.model): log for log in logs}
    return _side_by_side({name: by_model.get(str(m)) for name, m in apis.items()})


def _side_by_side(logs: Mapping[str, EvalLog | None]) -> dict[str, Any]:
    from inspect_ai.log import headline_metric  # noqa: PLC0415 - optional

    scores: dict[str, float] = {}
    stderr: dict[str, float] = {}
    samples: dict[str, int] = {}
    task = metric = ""
    for name, log in logs.items():
        if log is None or log.status != "success" or log.results is None:
            why = log.error.message if log is not None and log.error else "it did not finish"
            msg = f"the capability evaluation of {name!r} failed: {why}"
            raise EvaluationError(msg)
        task = log.eval.task
        headline = headline_metric(log)  # the task's declared one, else its first metric
        if headline is None:
            msg = f"the task {task!r} gave {name!r} no score; does it have a scorer?"
            raise EvaluationError(msg)
        metric = headline.name
        scores[name] = float(headline.metric.value)
        if "stderr" in headline.score.metrics:
            stderr[name] = float(headline.score.metrics["stderr"].value)
        samples[name] = log.results.completed_samples
    if len(set(samples.values())) > 1:
        msg = f"the models were scored on different numbers of samples: {samples}"
        raise EvaluationError(msg)
    return {
        "task": task,
        "metric": metric,
        "scores": scores,
        "stderr": stderr,
        "samples": next(iter(samples.values())),
        "logs": {name: log.location for name, log in logs.items() if log is not None},
    }


def _load_task(task: str | Task) -> Task:
    """Resolve a task name or file spec to a ``Task`` once, so both models share its samples."""
    _require_inspect()
    if not isinstance(task, str):
        return task
    # The loader inspect_ai.eval itself uses; private, so tests cover each form it takes here.
    from inspect_ai._eval.loader import load_tasks  # noqa: PLC0415 - optional
    from inspect_ai._util.error import PrerequisiteError  # noqa: PLC0415 - likewise

    cause: Exception | None = None
    try:
        found = load_tasks([task])
    except (FileNotFoundError, PrerequisiteError, LookupError) as exc:
        found, cause = [], exc
    if len(found) != 1:
        what = "no task" if not found else f"{len(found)} tasks"
        msg = (
            f"the capability task {task!r} resolves to {what}. For the inspect_evals "
            "benchmarks (inspect_evals/gsm8k, inspect_evals/ifeval...): pip install "
            "inspect-evals. For your own file, name one task: path/to/tasks.py@task_name"
        )
        raise ConfigError(msg) from cause
    return found[0]


def _text(message: ChatMessage) -> str:
    if isinstance(message.content, str):
        return message.content
    kinds = {part.type for part in message.content} - {"text", "reasoning"}
    if kinds:
        msg = (
            f"this task sends {', '.join(sorted(kinds))} content; opencharacter samplers read text"
        )
        raise ConfigError(msg)
    return "\n".join(part.text for part in message.content if part.type == "text")


def _require_inspect() -> None:
    try:
        import inspect_ai  # noqa: F401, PLC0415 - optional
    except ImportError as exc:
        msg = f"capability evaluations run on inspect_ai, which is not installed: {INSTALL}"
        raise MissingDependencyError(msg) from exc


@functools.cache
def _provider() -> Callable[..., ModelAPI]:
    """Define the provider class once, when inspect_ai is known to be installed."""
    _require_inspect()
    from inspect_ai.model import (  # noqa: PLC0415 - optional
        ChatCompletionChoice,
        ChatMessageAssistant,
        ModelAPI,
        ModelOutput,
        ModelUsage,
        modelapi,
    )

    class SamplerAPI(ModelAPI):
        """An inspect_ai model provider that answers with one opencharacter sampler."""

        def __init__(
            self,
            model_name: str,
            *,
            sampler: Sampler | None = None,
            params: SamplingParams | None = None,
            **_inspect: Any,
        ) -> None:
            super().__init__(model_name=model_name)
            if sampler is None:
                msg = (
                    f"the {PROVIDER!r} inspect_ai provider serves a sampler object and has no "
                    "string form; build the model with "
                    "opencharacter.eval.capabilities.inspect_model(sampler, name)"
                )
                raise ConfigError(msg)
            self.sampler = sampler
            self.params = params or SamplingParams()
            self.failure: OpenCharacterError | None = None

        async def generate(
            self, input: list[ChatMessage], tools: list[Any], tool_choice: Any, config: Any
        ) -> ModelOutput:
            try:
                if tools:
                    msg = "this task offers tools; opencharacter samplers answer plain chat only"
                    raise ConfigError(msg)
                request = self._request(input, config)
                completions = [c async for c in self.sampler.generate([request])]
            except OpenCharacterError as exc:
                if not isinstance(exc, TransientBackendError):  # inspect retries those
                    self.failure = self.failure or exc
                raise
            return self._output(sorted(completions, key=lambda c: c.sample))

        def _request(self, input: list[ChatMessage], config: Any) -> GenerationRequest:
            messages = to_messages(input)
            params = to_sampling_params(config, self.params)
            samples = config.num_choices or 1
            key = (self.model_name, [m.to_dict() for m in messages], attrs.asdict(params))
            return GenerationRequest(
                id=stable_id("capabilities", *key, samples),
                messages=messages,
                params=params,
                samples=samples,
                purpose=Purpose.EVAL,
            )

        def _output(self, completions: list[Completion]) -> ModelOutput:
            model = next((c.model for c in completions if c.model), self.sampler.model)
            choices = [
                ChatCompletionChoice(
                    message=ChatMessageAssistant(content=c.text, model=model, source="generate"),
                    stop_reason="max_tokens" if c.finish_reason == "length" else "stop",
                )
                for c in completions
            ]
            read = sum(c.prompt_tokens for c in completions)
            wrote = sum(c.completion_tokens for c in completions)
            cached = sum(c.cached_prompt_tokens for c in completions)
            usage = ModelUsage(
                input_tokens=read,
                output_tokens=wrote,
                total_tokens=read + wrote,
                input_tokens_cache_read=cached or None,
            )
            return ModelOutput(model=model, choices=choices, usage=usage)

        def should_retry(self, ex: Exception) -> bool:
            return isinstance(ex, TransientBackendError)

        def max_connections(self) -> int:
            return MAX_CONNECTIONS

        def connection_key(self) -> str:
            # One request window per sampler: two models must not share (and halve) one.
            return f"{self.model_name}:{id(self.sampler)}"

        def collapse_system_messages(self) -> bool:
            return True  # chat templates take one system turn, first

        async def count_text_tokens(self, text: str) -> int:
            # inspect's default downloads a tiktoken encoding; an estimate must not need the
            # network (our samplers report the real counts with each completion).
            return math.ceil(len(text) / 4)

    return modelapi(name=PROVIDER)(SamplerAPI)


__all__ = [
    "INSTALL",
    "MAX_CONNECTIONS",
    "PROVIDER",
    "inspect_model",
    "run_capability",
    "to_messages",
    "to_sampling_params",
]
