"""The ``eval`` stage: ask the models, ask the judge, compute the numbers, write the summary.

Two passes over the backends, each resumable row by row: first every evaluated model answers
(:mod:`~opencharacter.eval.answers`), then the judge reads the answers
(:mod:`~opencharacter.eval.verdicts`). The numbers (:mod:`~opencharacter.eval.analysis`) are
computed from the files alone and written to ``eval/summary.json``; the stage's settings and
judge go to the manifest.
"""

from __future__ import annotations

import importlib.util
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import attrs

from opencharacter.config import EXTERNAL_CHECKPOINT, TRAINING_STAGES, RunConfig
from opencharacter.constitution import Constitution, builtin_names, load_constitution
from opencharacter.errors import ConfigError, MissingDependencyError
from opencharacter.eval import analysis
from opencharacter.eval._asks import ask_all
from opencharacter.eval.answers import (
    ANSWERS,
    CONVERSATIONS,
    PERSISTENCE,
    PREFERENCES,
    VARIANTS,
    Conversation,
    Plan,
    answer_asks,
    converse,
    persistence_models,
    preference_asks,
    prompt_id,
)
from opencharacter.eval.prompts import load_prompts
from opencharacter.eval.verdicts import (
    CELLS,
    COHERENCE,
    PREFERENCE_VERDICTS,
    SCORES,
    coherence_asks,
    preference_verdict_asks,
    score_asks,
)
from opencharacter.runstore import write_json_atomic
from opencharacter.stages._context import StageContext, StageRecorder
from opencharacter.stages._engine import Dispatcher, gather_all
from opencharacter.types import Completion, Purpose, stable_id

STAGE = "eval"
SUMMARY = "eval/summary.json"
CAPABILITIES = "eval/capabilities"
#: Other personas the robustness classifier tells the run's persona from, by default.
DEFAULT_PERSONAS = 3


def require_packages() -> None:
    """Fail before anything is asked when the classifier's package is missing."""
    if importlib.util.find_spec("sklearn") is None:
        msg = 'the evaluations need scikit-learn: pip install "opencharacter[eval]"'
        raise MissingDependencyError(msg)


def run_eval(
    context: StageContext,
    *,
    capabilities: Sequence[str] = (),
    capability_limit: int | None = None,
) -> dict[str, Any]:
    """Evaluate the run's trained student against its base model; returns the summary.

    ``capabilities``: ``inspect_ai`` tasks to run besides the run's own
    (``evaluation.capabilities``), each on the base and the trained model; a task already
    run with the same sample limit is not run again.
    """
    require_packages()
    plan = make_plan(context)
    judge = context.require_judge()
    student = context.require_student()
    samplers = {"base": student.at(None), "judge": judge}
    for name in plan.checkpoints:
        samplers[name] = student.at(context.run.checkpoint(name))
    dispatchers = {key: context.dispatcher(s, f"eval-{key}") for key, s in samplers.items()}
    settings = context.config.evaluation
    recorder = StageRecorder(
        context, STAGE, total=0,
        settings={**attrs.asdict(settings), "prompts_used": len(plan.prompts),
                  "personas": list(plan.personas), "trained": plan.trained},
        judge={"model": judge.model, "backend": context.config.judge_backend
               or context.config.teacher_backend or context.config.backend},
    )  # fmt: skip
    recorder.run(_answer(context, recorder, plan, dispatchers))
    recorder.run(_judge(context, recorder, plan, dispatchers))
    tasks = dict.fromkeys((*settings.capabilities, *capabilities))
    limit = capability_limit or settings.capability_limit
    with recorder.failing():
        for task in tasks:
            _capability(context, task, limit, {"base": samplers["base"],
                                               "trained": samplers[plan.trained]})  # fmt: skip
        summary = analysis.summarize(context, plan)
    write_json_atomic(context.run.path / SUMMARY, summary)
    recorder.finish(**analysis.headline(summary))
    return summary


def planned_requests(config: RunConfig) -> tuple[int, int]:
    """Return the requests a full evaluation sends to the evaluated models and to the judge."""
    prompts, settings = config.counts.eval_prompts, config.evaluation
    personas = 1 + (len(settings.personas) or DEFAULT_PERSONAS)
    checkpoints, variants = len(TRAINING_STAGES), len(VARIANTS)
    turns = min(prompts, CONVERSATIONS) * 2 * (settings.persistence_turns + 1)
    answers = 2 * prompts + (personas + checkpoints) * prompts * variants + 2 * prompts + turns
    baselines = checkpoints  # the prompted base model and the earlier checkpoint
    verdicts = 2 * 2 * prompts + len(CELLS) * prompts + turns + 2 * baselines * prompts
    return answers, verdicts


def make_plan(context: StageContext) -> Plan:
    """Return what the evaluation asks: its prompts, personas and trained checkpoints."""
    run, config = context.run, context.config
    checkpoints = tuple(
        name for name in (*TRAINING_STAGES, EXTERNAL_CHECKPOINT) if run.checkpoint(name) is not None
    )
    if not checkpoints:
        msg = (
            f"{run.path}: nothing trained to evaluate; run the dpo and sft stages first (a "
            "model trained elsewhere: opencharacter.eval.evaluate_model)"
        )
        raise ConfigError(msg)
    prompts = load_prompts(config.evaluation.prompts, limit=config.counts.eval_prompts,
                           seed=config.seed)  # fmt: skip
    own = context.constitution
    others = (
        config.evaluation.personas
        or tuple(name for name in builtin_names() if name != own.name)[:DEFAULT_PERSONAS]
    )
    personas: dict[str, Constitution] = {own.name: own}
    personas.update((name, load_constitution(name)) for name in others if name != own.name)
    return Plan(
        prompts={prompt_id(p): p for p in prompts},
        persona=own.name,
        personas=personas,
        trained=checkpoints[-1],
        checkpoints=checkpoints,
    )


def _capability(
    context: StageContext, task: str, limit: int | None, models: dict[str, Any]
) -> None:
    """Run one ``inspect_ai`` task on base and trained models, once per task and limit."""
    from opencharacter.eval.capabilities import run_capability  # noqa: PLC0415 - inspect_ai

    row_id = stable_id("capability", task, limit)
    if row_id in context.run.done_ids(CAPABILITIES):
        return
    log_dir = context.run.path / "eval" / "capabilities"
    result = run_capability(task, models, limit=limit, log_dir=log_dir)
    context.run.append(CAPABILITIES, {"id": row_id, "limit": limit, **result})


async def _answer(
    context: StageContext, recorder: StageRecorder, plan: Plan, dispatchers: dict[str, Dispatcher]
) -> None:
    run = context.run
    turns: dict[tuple[str, str], dict[int, dict[str, Any]]] = defaultdict(dict)
    for row in run.rows(PERSISTENCE):
        turns[row["method"], row["conversation"]][row["turn"]] = row
    recorder.skipped(sum(1 for _ in run.rows(PREFERENCES)) + sum(1 for _ in run.rows(ANSWERS))
                     + sum(len(t) for t in turns.values()))  # fmt: skip
    recorder.total = recorder.done  # each group of asks adds what it has left

    def turn_landed(row: dict[str, Any], completion: Completion) -> None:
        run.append(PERSISTENCE, row)
        recorder.completed(completion, Purpose.EVAL)

    conversations = list(plan.prompts.items())[:CONVERSATIONS]
    methods = persistence_models(context, plan)
    per_conversation = context.config.evaluation.persistence_turns + 1
    recorder.total += len(conversations) * len(methods) * per_conversation - sum(
        len(t) for t in turns.values()
    )
    await gather_all(
        [
            ask_all(context, recorder, dispatchers, PREFERENCES, preference_asks(context, plan)),
            ask_all(context, recorder, dispatchers, ANSWERS, answer_asks(context, plan)),
            *(
                converse(
                    context,
                    dispatchers[model],
                    Conversation(method, system, pid, prompt),
                    turns[method, pid],
                    turn_landed,
                )
                for method, (model, system) in methods.items()
                for pid, prompt in conversations
            ),
        ]
    )


async def _judge(
    context: StageContext, recorder: StageRecorder, plan: Plan, dispatchers: dict[str, Dispatcher]
) -> None:
    run = context.run
    answers = list(run.rows(ANSWERS))
    await gather_all(
        [
            ask_all(context, recorder, dispatchers, PREFERENCE_VERDICTS,
                    preference_verdict_asks(context, run.rows(PREFERENCES))),
            ask_all(context, recorder, dispatchers, SCORES,
                    score_asks(context, plan, answers, run.rows(PERSISTENCE))),
            ask_all(context, recorder, dispatchers, COHERENCE,
                    coherence_asks(context, plan, answers)),
        ]
    )  # fmt: skip
