"""The pipeline: the stages in order over one run directory, resumable at any point.

``run_pipeline`` reads top to bottom: prompts, distill, DPO, introspection, the SFT data set,
SFT. Each stage is a plain function of :mod:`opencharacter.stages` that resumes from the rows
already on disk, so a run stopped anywhere (a crash, ``kill -9``, Ctrl-C, a permanent backend
error) continues with ``resume_run`` exactly where it stopped.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import attrs

from opencharacter.capabilities import describe, explicit_settings, fit_config
from opencharacter.config import STAGES, RunConfig, Stage, price_table, resolve_config
from opencharacter.constitution import Constitution, Trait, load_constitution
from opencharacter.errors import ConfigError
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
STAGE_FUNCTIONS: Mapping[Stage, Callable[[StageContext], Any]] = {
    "prompts": run_prompts,
    "distill": run_distill,
    "dpo": run_dpo,
    "introspect": run_introspect,
    "sft": lambda context: (run_sft_data(context), run_sft(context))[1],
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
            "teacher": config.teacher_backend or config.backend,
        },
        models={"teacher": config.teacher, "student": config.student, "name": config.name},
    )
    run.save_manifest()


#: Settings a resumed run may change: they affect how it runs, not what data it makes.
RESUMABLE = frozenset({"until", "concurrency", "max_attempts", "retry_base_delay",
                       "retry_max_delay"})  # fmt: skip


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
        msg = f"cannot change {', '.join(refused)} when resuming; only {sorted(RESUMABLE)}"
        raise ConfigError(msg)
    config, _ = resolve_config(flags={**saved, **changes}, environ={})
    return config


def saved_constitution(run: RunDir) -> Constitution:
    """Return the constitution recorded when the run started (not the file as it is now)."""
    data = run.manifest.get("constitution")
    if not data:
        msg = f"{run.path}: the manifest records no constitution"
        raise ConfigError(msg)
    return Constitution(
        name=data["name"],
        description=data.get("description", ""),
        traits=[Trait(text=t["trait"], questions=t.get("questions", ()),
                      clarification=t.get("clarification")) for t in data["traits"]],
    )  # fmt: skip


def open_context(
    run: RunDir, config: RunConfig, *, progress: ProgressCallback | None = None
) -> StageContext:
    """Load the backends, check them against the run, and return the context every stage takes.

    Everything that can refuse a run does so here, in seconds and before anything is spent:
    each backend checks that it can serve its models (credentials, names), and settings a
    backend cannot honour are refused or downgraded (see :mod:`opencharacter.capabilities`).
    Downgrades are recorded in the manifest and reported as progress messages.
    """
    student_backend = load_backend(config.backend, config.backend_options)
    teacher_backend = student_backend
    if config.teacher_backend or config.teacher_backend_options:
        name = config.teacher_backend or config.backend
        teacher_backend = load_backend(name, config.teacher_backend_options)
    if teacher_backend is student_backend:
        student_backend.check_models(
            sample=[config.teacher, config.student], train=[config.student]
        )
    else:
        teacher_backend.check_models(sample=[config.teacher])
        student_backend.check_models(sample=[config.student], train=[config.student])
    fitted, adjustments = fit_config(
        config,
        teacher=(teacher_backend.name, teacher_backend.capabilities),
        student=(student_backend.name, student_backend.capabilities),
        explicit=explicit_settings(run.manifest.get("layers")),
    )
    run.manifest["adjustments"] = [attrs.asdict(a) for a in adjustments]
    for adjustment in adjustments:
        run.event("adjustment", **attrs.asdict(adjustment))
        if progress is not None:
            progress(Progress(stage="start", done=0, total=0, message=describe(adjustment)))
    run.save_manifest()
    return StageContext(
        run=run,
        config=fitted,
        constitution=saved_constitution(run),
        teacher=teacher_backend.teacher(config.teacher),
        student=student_backend.student(config.student),
        trainer=student_backend.trainer(),
        progress=progress,
        capabilities={
            "teacher": teacher_backend.capabilities,
            "student": student_backend.capabilities,
        },
        prices=price_table(config),
    )


def run_pipeline(
    run: RunDir, config: RunConfig, *, progress: ProgressCallback | None = None
) -> dict[str, Any]:
    """Run every stage up to ``config.until``, skipping stages already done; return summaries."""
    context = open_context(run, config, progress=progress)
    results: dict[str, Any] = {}
    for stage in STAGES[: STAGES.index(config.until) + 1]:
        if run.stage(stage).get("state") == "done":
            continue
        result = STAGE_FUNCTIONS[stage](context)
        results[stage] = attrs.asdict(result) if attrs.has(type(result)) else result
    run.event("pipeline-end", until=config.until)
    run.save_manifest()
    return results


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
        return STAGE_FUNCTIONS[stage](open_context(run, config, progress=progress))
