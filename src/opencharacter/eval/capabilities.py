"""Capabilities kept: any ``inspect_ai`` task (IFEval, GSM8K, MMLU-Pro...) on our samplers.

Character training can cost general ability, so a trained model is worth scoring on the
benchmarks the base model was scored on. Rather than re-implement benchmarks, this module makes
every :class:`~opencharacter.protocols.Sampler` (a teacher, or a student at any checkpoint, on
any backend) an ``inspect_ai`` model, and :func:`run_capability` runs one task on several of
them and puts the scores side by side::

    run_capability("inspect_evals/gsm8k", {"base": student, "trained": student.at(sft)},
                   limit=200, log_dir=run_dir / "eval" / "capabilities")
    # {"task": "gsm8k", "metric": "accuracy", "scores": {"base": 0.61, "trained": 0.6}, ...}

The models come from :mod:`~opencharacter.eval.inspect_provider`, which refuses settings we
cannot honour rather than dropping them (log-probabilities, structured output, penalties, tools,
images), as :mod:`opencharacter.capabilities` does for a run's settings: a score measured under
silently different settings is not the score the task defines.

``inspect_ai`` is an optional dependency (``pip install "opencharacter[eval]"``); it is imported
only when a model is built or a task is run, never by ``import opencharacter.eval``.
"""

from __future__ import annotations

import gc
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from opencharacter.errors import ConfigError, EvaluationError
from opencharacter.eval.inspect_provider import (
    INSTALL,
    MAX_CONNECTIONS,
    PROVIDER,
    inspect_model,
    require_inspect,
    to_messages,
    to_sampling_params,
)
from opencharacter.protocols import Sampler

if TYPE_CHECKING:
    from inspect_ai import Task
    from inspect_ai.log import EvalLog


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
    try:
        logs = inspect_eval(
            resolved,
            model=list(apis.values()),
            limit=limit,
            log_dir=str(log_dir),
            metadata={"opencharacter_models": {n: s.model for n, s in models.items()}},
            **eval_args,
        )
    finally:
        _collect_unclosed_streams()
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


def _collect_unclosed_streams() -> None:
    """Collect the memory streams ``inspect_ai`` leaves unclosed, without their warnings.

    Left to the garbage collector, their ``ResourceWarning`` would surface later in unrelated
    code (and fail a test suite that turns warnings into errors).
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()


def _load_task(task: str | Task) -> Task:
    """Resolve a task name or file spec to a ``Task`` once, so both models share its samples."""
    require_inspect()
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


__all__ = [
    "INSTALL",
    "MAX_CONNECTIONS",
    "PROVIDER",
    "inspect_model",
    "run_capability",
    "to_messages",
    "to_sampling_params",
]
