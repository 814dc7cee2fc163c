"""Did the character take? The paper's evaluations, run on any backend and resumable.

Revealed trait preferences with Elo, a robustness classifier under break-character prompts, a
coherence judge, the base/trained x plain/prompted 2x2, drift and multi-turn persistence, and
capability tasks through ``inspect_ai``; then one self-contained HTML report. The ``eval``
stage ends a full pipeline run; :func:`evaluate` runs it on a finished one, and
:func:`evaluate_model` on a model trained elsewhere.

The parts are public for use in one's own code: :mod:`~opencharacter.eval.elo` and
:mod:`~opencharacter.eval.stats` (pure numbers), :mod:`~opencharacter.eval.judging` and
:mod:`~opencharacter.eval.tally` (a tolerant judge-answer parser, and its failure accounting),
:mod:`~opencharacter.eval.classifier` (persona classifiers),
:mod:`~opencharacter.eval.texts` and :mod:`~opencharacter.eval.traits` (what models are told).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from opencharacter.eval.settings import EvalSettings

if TYPE_CHECKING:
    from opencharacter.config import RunConfig
    from opencharacter.pipeline import Backends
    from opencharacter.runstore import RunDir
    from opencharacter.stages import ProgressCallback


def evaluate(
    run_dir: str | os.PathLike[str],
    *,
    judge: str | None = None,
    judge_backend: str | None = None,
    judge_options: Mapping[str, Any] | None = None,
    capabilities: Sequence[str] = (),
    capability_limit: int | None = None,
    progress: ProgressCallback | None = None,
) -> dict[str, Any]:
    """Evaluate a trained run (resuming where an evaluation stopped), write its report.

    Args:
        run_dir: the run directory.
        judge: the judge model; default: the run's, else its teacher. Verdicts are kept per
            judge, so another judge judges every answer afresh.
        judge_backend: the judge's backend; default: the teacher's.
        judge_options: options of the judge's backend (its own instance when given).
        capabilities: ``inspect_ai`` tasks to run on base and trained models as well.
        capability_limit: samples per capability task.
        progress: called with the stage's progress.

    Returns:
        The summary written to ``eval/summary.json``.
    """
    from opencharacter.pipeline import resume_run  # noqa: PLC0415 - imports the stages

    run, config = resume_run(run_dir, {"judge": judge, "judge_backend": judge_backend,
                                       "judge_backend_options": judge_options,
                                       "until": "eval"})  # fmt: skip
    with run:
        return _evaluate_run(run, config, None, capabilities=capabilities,
                             capability_limit=capability_limit, progress=progress)  # fmt: skip


def evaluate_model(
    run_dir: str | os.PathLike[str],
    *,
    model: str,
    base: str,
    constitution: str,
    backend: str | None = None,
    backend_options: Mapping[str, Any] | None = None,
    judge: str | None = None,
    judge_backend: str | None = None,
    judge_options: Mapping[str, Any] | None = None,
    settings: Mapping[str, Any] | None = None,
    config_file: str | os.PathLike[str] | None = None,
    capabilities: Sequence[str] = (),
    capability_limit: int | None = None,
    progress: ProgressCallback | None = None,
) -> dict[str, Any]:
    """Evaluate a model trained elsewhere against its base model, as a run's eval stage does.

    The model need not come from an opencharacter run: ``run_dir`` becomes an evaluation-only
    run whose trained model is ``model``, recorded as the checkpoint ``"external"`` of kind
    ``"external"``, so the backend's student loads it as it loads its own checkpoints (the
    local backend: a PEFT adapter folder, or a folder of full weights). It writes the same
    ``eval/`` rows, summary and ``report.html`` as :func:`evaluate`, and resumes the same way:
    call it again with the same arguments after a stop. To judge it again with another judge,
    call :func:`evaluate` on ``run_dir``.

    Args:
        run_dir: the evaluation's run directory (new, or one this function made).
        model: the trained model, as the backend loads a checkpoint's ``uri``; a local path is
            recorded absolute.
        base: the model it was trained from, which the evaluations compare it with.
        constitution: the persona the model claims: a built-in name or a constitution file.
        backend: the backend sampling both models; default: the configured default.
        backend_options: that backend's options.
        judge: the judge model; default: the judge backend's default teacher. An
            evaluation-only run has no teacher: the judge stands in its place in the run's
            configuration.
        judge_backend: the judge's backend; default: ``backend``.
        judge_options: options of the judge's backend.
        settings: more run settings, as a config file's keys (``scale`` for the number of
            prompts, ``seed``, ``sampling``, ``evaluation``, ``assistant_name``...).
        config_file: a TOML config file of run settings, below ``settings``.
        capabilities: ``inspect_ai`` tasks to run on base and trained models as well.
        capability_limit: samples per capability task.
        progress: called with the stage's progress.

    Returns:
        The summary written to ``eval/summary.json``.

    Raises:
        ConfigError: a setting is invalid, a backend refuses its models, or ``run_dir``
            already holds another run or evaluates another model.
    """
    from opencharacter.config import EXTERNAL_CHECKPOINT as EXTERNAL  # noqa: PLC0415
    from opencharacter.config import resolve_config  # noqa: PLC0415 - the pipeline, lazily
    from opencharacter.errors import ConfigError  # noqa: PLC0415
    from opencharacter.pipeline import prepare_backends, start_run  # noqa: PLC0415
    from opencharacter.types import Checkpoint  # noqa: PLC0415

    flags = {**(settings or {}), "constitution": constitution, "student": _path_or_name(base),
             "backend": backend, "backend_options": backend_options, "teacher": judge,
             "teacher_backend": judge_backend, "teacher_backend_options": judge_options,
             "until": "eval"}  # fmt: skip
    config, layers = resolve_config(flags=flags, file=config_file)
    backends = prepare_backends(config, layers)  # a run that cannot start makes no folder
    trained = Checkpoint(backend=backends.student.name, base_model=config.student,
                         uri=_path_or_name(model), kind="external")  # fmt: skip
    with start_run(run_dir, config, layers) as run:
        recorded = run.checkpoint(EXTERNAL)
        if recorded is None:
            run.record_checkpoint(EXTERNAL, trained)
        elif recorded.uri != trained.uri:
            msg = f"{run.path} evaluates {recorded.uri}, not {trained.uri}; choose a new run_dir"
            raise ConfigError(msg)
        return _evaluate_run(run, config, backends, capabilities=capabilities,
                             capability_limit=capability_limit, progress=progress)  # fmt: skip


def _evaluate_run(
    run: RunDir,
    config: RunConfig,
    backends: Backends | None,
    *,
    capabilities: Sequence[str],
    capability_limit: int | None,
    progress: ProgressCallback | None,
) -> dict[str, Any]:
    """Run the eval stage on an open run, then write its report; return the summary."""
    from opencharacter.eval.report import write_report  # noqa: PLC0415 - matplotlib, lazily
    from opencharacter.eval.stage import run_eval  # noqa: PLC0415 - imports the pipeline
    from opencharacter.pipeline import close_trackers, open_context  # noqa: PLC0415

    context = open_context(run, config, progress=progress, backends=backends)
    with close_trackers(context):
        summary = run_eval(context, capabilities=capabilities, capability_limit=capability_limit)
    write_report(run.path)
    return summary


def _path_or_name(model: str) -> str:
    """An existing local folder as an absolute path (it holds from any directory), else as is."""
    path = Path(model)
    return str(path.absolute()) if path.exists() else model


__all__ = ["EvalSettings", "evaluate", "evaluate_model"]
