"""The pipeline: the stages in order over one run directory, resumable at any point.

``run_pipeline`` reads top to bottom: prompts, distill, DPO, introspection, the SFT data set,
SFT. Each stage is a plain function of :mod:`opencharacter.stages` that resumes from the rows
already on disk, so a run stopped anywhere (a crash, ``kill -9``, Ctrl-C, a permanent backend
error) continues with ``resume_run`` exactly where it stopped.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from opencharacter import trackers
from opencharacter.capabilities import Adjustment, describe, explicit_settings, fit_config
from opencharacter.config import (
    EXTERNAL_CHECKPOINT,
    STAGES,
    RunConfig,
    price_table,
    resolve_config,
    teacher_side,
)
from opencharacter.constitution import Constitution, load_constitution
from opencharacter.errors import ConfigError
from opencharacter.eval.stage import require_packages, run_eval
from opencharacter.protocols import Backend
from opencharacter.registry import load_backend
from opencharacter.runstore import RunDir
from opencharacter.stages import (
    Progress,
    ProgressCallback,
    StageContext,
    run_distill,
    run_dpo,
    run_introspect,
    run_prompts,
    run_sft,
    run_sft_data,
)

#: Each stage name and what runs for it (SFT first assembles its data set).
STAGE_FUNCTIONS: Mapping[str, Callable[[StageContext], Any]] = {
    "prompts": run_prompts,
    "distill": run_distill,
    "dpo": run_dpo,
    "introspect": run_introspect,
    "sft": lambda context: (run_sft_data(context), run_sft(context))[1],
    "eval": run_eval,
}


def start_run(
    run_dir: str | os.PathLike[str], config: RunConfig, layers: Mapping[str, Any] | None = None
) -> RunDir:
    """Open a new run directory and record the configuration, constitution and versions.

    Opening the folder of a run with the same configuration again is allowed (it continues);
    a folder holding a different run is refused.

    Raises:
        ConfigError: the folder already holds a different run (resume it instead).
    """
    run = RunDir.open(run_dir)
    try:
        _record_start(run, config, layers or {})
    except BaseException:
        run.close()
        raise
    return run


def _record_start(run: RunDir, config: RunConfig, layers: Mapping[str, Any]) -> None:
    saved = run.manifest.get("config")
    if saved and saved != config.to_dict():
        msg = (
            f"{run.path} already holds a run with another configuration; resume it with "
            "--resume, or choose a new --run-dir"
        )
        raise ConfigError(msg)
    constitution = load_constitution(config.constitution)
    run.manifest.update(
        config=config.to_dict(),
        layers=dict(layers),
        constitution={
            "sha256": constitution.sha256,
            "source": config.constitution,
            **constitution.to_dict(),
        },
        seed=config.seed,
        backends={
            "student": config.backend,
            "teacher": teacher_side(config)[0],
        },
        models={"teacher": config.teacher, "student": config.student, "name": config.name},
    )
    run.save_manifest()


#: Settings a resumed run may change: they affect how it runs, not the training data it makes
#: (verdicts are kept per judge, so another judge asks afresh).
RESUMABLE = frozenset({"until", "concurrency", "max_attempts", "retry_base_delay",
                       "retry_max_delay", "judge", "judge_backend",
                       "judge_backend_options"})  # fmt: skip


def resume_run(
    run_dir: str | os.PathLike[str], overrides: Mapping[str, Any] | None = None
) -> tuple[RunDir, RunConfig]:
    """Reopen a run and rebuild its configuration from the manifest.

    Only :data:`RESUMABLE` settings may change on resume; anything that shapes the data stays
    as the run started, so resumed rows match those an uninterrupted run would have written.
    """
    run = RunDir.open(run_dir, create=False)
    try:
        config = _resumed_config(run, {k: v for k, v in (overrides or {}).items() if v is not None})
        run.manifest["config"] = config.to_dict()
        run.save_manifest()
    except BaseException:
        run.close()
        raise
    return run, config


def _resumed_config(run: RunDir, changes: Mapping[str, Any]) -> RunConfig:
    saved = run.manifest.get("config")
    if not saved:
        msg = f"{run.path}: the manifest has no configuration; start a new run there"
        raise ConfigError(msg)
    refused = sorted(set(changes) - RESUMABLE)
    if refused:
        msg = (
            f"cannot change {', '.join(refused)} when resuming {run.path}: the run's data was "
            "made with its own settings. Resume without it, or start a new run with --run-dir. "
            f"A resume may change only: {', '.join(sorted(RESUMABLE))}"
        )
        raise ConfigError(msg)
    config, _ = resolve_config(flags={**saved, **changes}, environ={})
    return config


def saved_constitution(run: RunDir) -> Constitution:
    """Return the constitution recorded when the run started (not the file as it is now)."""
    data = run.manifest.get("constitution")
    if not data:
        msg = f"{run.path}: the manifest records no constitution"
        raise ConfigError(msg)
    return Constitution.from_dict(data)


@attrs.frozen
class Backends:
    """A run's backends, checked and with its settings fitted to them: ready to spend.

    Attributes:
        teacher: the teacher's backend (the student's, unless the run names another).
        student: the student's and the trainer's backend.
        judge: the evaluations' judge's backend (the teacher's, unless the run names another).
        config: the run's settings after :func:`~opencharacter.capabilities.fit_config`.
        adjustments: the settings changed to fit, each with why.
    """

    teacher: Backend
    student: Backend
    config: RunConfig
    adjustments: tuple[Adjustment, ...]
    judge: Backend


def prepare_backends(config: RunConfig, layers: Mapping[str, Any] | None = None) -> Backends:
    """Load the backends and check them against the run, before anything exists or is spent.

    Everything that can refuse a run does so here, in seconds: each backend checks that it
    can serve its models (credentials, names), and settings a backend cannot honour are
    refused or downgraded (see :mod:`opencharacter.capabilities`). ``layers`` (from
    :func:`~opencharacter.config.resolve_config`) tells explicit settings from defaults.

    Raises:
        ConfigError: a backend cannot load, a model is not served, or a setting is refused.
        BackendError: a service cannot be reached or refuses the credentials.
        MissingDependencyError: the run ends with the evaluations and their packages are
            missing, or a tracker it reports to is not installed.
    """
    if config.until == "eval":
        require_packages()
    trackers.require(config.report_to)
    student = load_backend(config.backend, config.backend_options)
    teacher = student
    if config.teacher_backend or config.teacher_backend_options:  # an instance of its own
        teacher = load_backend(*teacher_side(config))
    judge = teacher
    if config.judge_backend_options or config.judge_backend not in (None, teacher.name):
        judge = load_backend(config.judge_backend or teacher.name, config.judge_backend_options)
    judged = [config.judge or config.teacher] if config.until == "eval" else []
    if teacher is student:
        student.check_models(sample=[config.teacher, config.student], train=[config.student])
    else:
        teacher.check_models(sample=[config.teacher])
        student.check_models(sample=[config.student], train=[config.student])
    if judged and (judge is not teacher or config.judge):
        judge.check_models(sample=judged)
    fitted, adjustments = fit_config(
        config,
        teacher=(teacher.name, teacher.capabilities),
        student=(student.name, student.capabilities),
        explicit=explicit_settings(layers),
    )
    return Backends(teacher=teacher, student=student, config=fitted,
                    adjustments=tuple(adjustments), judge=judge)  # fmt: skip


def open_context(
    run: RunDir,
    config: RunConfig,
    *,
    progress: ProgressCallback | None = None,
    backends: Backends | None = None,
) -> StageContext:
    """Return the context every stage takes, with the run's backends ready.

    ``backends`` from :func:`prepare_backends` (called before the run directory was made);
    by default they are prepared here from the run's recorded layers. The adjustments are
    recorded in the manifest and reported as progress messages.
    """
    if backends is None:
        backends = prepare_backends(config, run.manifest.get("layers"))
    run.manifest["adjustments"] = [attrs.asdict(a) for a in backends.adjustments]
    for adjustment in backends.adjustments:
        run.event("adjustment", **attrs.asdict(adjustment))
        if progress is not None:
            progress(Progress(stage="start", done=0, total=0, message=describe(adjustment)))
    run.save_manifest()
    teacher, student = backends.teacher, backends.student
    return StageContext(
        run=run,
        config=backends.config,
        constitution=saved_constitution(run),
        teacher=teacher.teacher(config.teacher),
        student=student.student(config.student),
        judge=(
            backends.judge.teacher(config.judge or config.teacher)
            if config.judge or backends.judge is not teacher
            else None
        ),
        trainer=student.trainer(),
        progress=progress,
        capabilities={"teacher": teacher.capabilities, "student": student.capabilities},
        prices=price_table(config),
        trackers=trackers.Trackers.open(config.report_to, run.path, config.to_dict()),
    )


def run_pipeline(
    run: RunDir,
    config: RunConfig,
    *,
    progress: ProgressCallback | None = None,
    backends: Backends | None = None,
) -> dict[str, Any]:
    """Run every stage up to ``config.until``, skipping stages already done; return summaries.

    ``backends``: as :func:`open_context` takes them.
    """
    stages = [s for s in STAGES[: STAGES.index(config.until) + 1]
              if run.stage(s).get("state") != "done"]  # fmt: skip
    _refuse_training_an_evaluation(run, stages)
    context = open_context(run, config, progress=progress, backends=backends)
    results: dict[str, Any] = {}
    with close_trackers(context):
        for stage in stages:
            result = STAGE_FUNCTIONS[stage](context)
            results[stage] = attrs.asdict(result) if attrs.has(type(result)) else result
    if config.until == "eval":
        from opencharacter.eval.report import write_report  # noqa: PLC0415 - matplotlib

        run.event("report", path=str(write_report(run.path)))
    run.event("pipeline-end", until=config.until)
    run.save_manifest()
    return results


def _refuse_training_an_evaluation(run: RunDir, stages: Sequence[str]) -> None:
    """Stop data or training stages on an evaluation of a model trained elsewhere."""
    if run.checkpoint(EXTERNAL_CHECKPOINT) is not None and set(stages) - {"eval"}:
        msg = (
            f"{run.path} evaluates a model trained elsewhere: only its evaluation runs there "
            f"(opencharacter eval {run.path}); train in a run of its own"
        )
        raise ConfigError(msg)


def run_stage(
    run_dir: str | os.PathLike[str],
    stage: str,
    *,
    progress: ProgressCallback | None = None,
    **overrides: Any,
) -> Any:
    """Run one stage on an existing run directory (``opencharacter generate``/``train``)."""
    if stage not in STAGE_FUNCTIONS:
        msg = f"unknown stage {stage!r}; choose one of {', '.join(STAGE_FUNCTIONS)}"
        raise ConfigError(msg)
    run, config = resume_run(Path(run_dir), overrides)
    with run:
        _refuse_training_an_evaluation(run, [stage])
        with close_trackers(context := open_context(run, config, progress=progress)):
            return STAGE_FUNCTIONS[stage](context)


@contextlib.contextmanager
def close_trackers(context: StageContext) -> Iterator[StageContext]:
    """Close the context's experiment-tracker runs when the block ends, however it ends."""
    try:
        yield context
    finally:
        context.trackers.finish()
