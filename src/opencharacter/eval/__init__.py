"""Did the character take? The paper's evaluations, run on any backend and resumable.

Revealed trait preferences with Elo, a robustness classifier under break-character prompts, a
coherence judge, the base/trained x plain/prompted 2x2, drift and multi-turn persistence, and
capability tasks through ``inspect_ai``; then one self-contained HTML report. The ``eval``
stage ends a full pipeline run; :func:`evaluate` runs it on a finished one.

The parts are public for use in one's own code: :mod:`~opencharacter.eval.elo` and
:mod:`~opencharacter.eval.stats` (pure numbers), :mod:`~opencharacter.eval.judging` and
:mod:`~opencharacter.eval.tally` (a tolerant judge-answer parser, and its failure accounting),
:mod:`~opencharacter.eval.classifier` (persona classifiers),
:mod:`~opencharacter.eval.texts` and :mod:`~opencharacter.eval.traits` (what models are told).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from opencharacter.eval.settings import EvalSettings

if TYPE_CHECKING:
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
    from opencharacter.eval.report import write_report  # noqa: PLC0415 - matplotlib, lazily
    from opencharacter.eval.stage import run_eval  # noqa: PLC0415 - imports the pipeline
    from opencharacter.pipeline import close_trackers, open_context, resume_run  # noqa: PLC0415

    run, config = resume_run(run_dir, {"judge": judge, "judge_backend": judge_backend,
                                       "judge_backend_options": judge_options,
                                       "until": "eval"})  # fmt: skip
    with run, close_trackers(open_context(run, config, progress=progress)) as context:
        summary = run_eval(context, capabilities=capabilities, capability_limit=capability_limit)
        write_report(run.path)
    return summary


__all__ = ["EvalSettings", "evaluate"]
