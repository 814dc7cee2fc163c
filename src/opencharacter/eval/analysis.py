"""The evaluations' numbers, computed from the rows in ``eval/`` alone.

Judge answers are parsed here, not when they arrive, so every raw answer stays on disk and the
numbers can be recomputed. Each judged evaluation keeps a :class:`~opencharacter.eval.tally.
JudgeTally`; one whose judge failed to parse more than ``max_parse_failures`` of its answers
stops the stage with :class:`~opencharacter.errors.EvaluationError` instead of reporting
numbers that mean nothing (a public project found 80% of its verdicts unparsed, which flattened
every trait to the same score).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from opencharacter.eval import judging
from opencharacter.eval.answers import ANSWERS, PERSISTENCE, PREFERENCES, Plan
from opencharacter.eval.classifier import make_classifier, robustness
from opencharacter.eval.elo import bootstrap_elo, elo_deltas
from opencharacter.eval.stats import mean_sem, spearman
from opencharacter.eval.tally import JudgeTally
from opencharacter.eval.texts import SCORE_MAX, SCORE_MIN
from opencharacter.eval.traits import TRAITS, constitution_trait_words
from opencharacter.eval.verdicts import (
    CELLS,
    COHERENCE,
    ORDERS,
    PREFERENCE_VERDICTS,
    SCORES,
    coherence_baselines,
    judge_rows,
)
from opencharacter.filters.drift import drift_report, learn_markers
from opencharacter.stages._context import StageContext

#: Examples of base and trained answers shown side by side in the report.
EXAMPLES = 5
#: Persona markers learned from the distilled pairs, for the drift's position balance.
MARKERS = 50
#: The robustness classifier learns the personas from the prompted base model and tells them
#: from the base model's own voice, then judges the trained checkpoints it never saw.
TEACHERS = frozenset({"prompted", "base"})
BASE_PERSONA = "base"


def summarize(context: StageContext, plan: Plan) -> dict[str, Any]:
    """Return the evaluation summary (the format of ``eval/summary.json``, see ``docs/``)."""
    run, settings = context.run, context.config.evaluation
    answers = list(run.rows(ANSWERS))
    return {
        "settings": {
            "prompts": settings.prompts,
            "n_prompts": len(plan.prompts),
            "seed": context.config.seed,
            "personas": list(plan.personas),
            "models": {"base": None, **{c: _uri(context, c) for c in plan.checkpoints}},
        },
        "preferences": preferences(context, plan),
        "robustness": robustness(
            [_labelled(a) for a in answers if a["method"] in {*TEACHERS, *plan.checkpoints}],
            classifier=make_classifier(settings.classifier, **_classifier_options(context)),
            target=plan.persona,
            seed=context.config.seed,
            train_methods=TEACHERS,
        ),
        "coherence": coherence(context, plan),
        "two_by_two": two_by_two(context, plan, answers),
        "drift": drift(context, plan, answers),
        "capabilities": capabilities(context),
        "examples": examples(plan, answers),
    }


def capabilities(context: StageContext) -> dict[str, Any]:
    """The capability tasks' scores, base and trained side by side (the latest run of each)."""
    return {
        row["task"]: {"metric": row["metric"], "samples": row.get("samples"), **row["scores"]}
        for row in context.run.rows("eval/capabilities")
    }


def headline(summary: Mapping[str, Any]) -> dict[str, Any]:
    """Return the few numbers worth a line in the manifest and the progress display."""
    cells = summary["two_by_two"]["cells"]
    robust = summary["robustness"]["summary"]
    return {
        "in_persona": {m: s.get("in_persona_mean") for m, s in robust.items()},
        "elo_spearman": summary["preferences"]["spearman"],
        "trait_score": {f"{m}-{c}": cells[m][c]["mean"] for m in cells for c in cells[m]},
    }


def _uri(context: StageContext, name: str) -> str | None:
    checkpoint = context.run.checkpoint(name)
    return checkpoint.uri if checkpoint else None


def _labelled(answer: Mapping[str, Any]) -> dict[str, Any]:
    """A classifier row: the unprompted base model's answers are a persona of their own."""
    row = {key: answer[key] for key in ("text", "persona", "method", "variant", "prompt_id")}
    if answer["method"] == "base":
        row["persona"] = BASE_PERSONA
    return row


def _classifier_options(context: StageContext) -> dict[str, Any]:
    settings = context.config.evaluation
    if settings.classifier == "encoder":
        return {"model": settings.classifier_model, "seed": context.config.seed}
    return {"seed": context.config.seed}


def _verdicts(context: StageContext, file: str) -> dict[tuple[str, str], dict[str, Any]]:
    """The judge's rows of ``file`` for this run's judge, by what they judged and order."""
    return {(row["answer_id"], row.get("order", "")): row for row in judge_rows(context, file)}


# Revealed preferences -----------------------------------------------------------------------


def preferences(context: StageContext, plan: Plan) -> dict[str, Any]:
    """Trait Elo of base and trained models from order-consistent verdicts, and the deltas."""
    settings = context.config.evaluation
    verdicts = _verdicts(context, PREFERENCE_VERDICTS)
    tally = JudgeTally()
    matches: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for answer in context.run.rows(PREFERENCES):
        pair = (answer["trait_1"], answer["trait_2"])
        first, swapped = (
            _choice(tally, verdicts.get((answer["id"], order)), shown)
            for order, shown in zip(ORDERS, (pair, pair[::-1]), strict=True)
        )
        if first is None or swapped is None:
            continue
        winner = tally.record_pair(first, swapped, pair)
        if winner is not None:
            matches[answer["model"]].append((winner, pair[1] if winner == pair[0] else pair[0]))
    tally.check(settings.max_parse_failures, "revealed preferences")
    seed, permutations = context.config.seed, settings.bootstrap
    ratings = {
        label: bootstrap_elo(matches[model], TRAITS, permutations=permutations, seed=seed)
        for label, model in (("base", "base"), ("trained", plan.trained))
    }
    deltas = elo_deltas(matches["base"], matches[plan.trained], TRAITS,
                        permutations=permutations, seed=seed)  # fmt: skip
    own = constitution_trait_words(context.constitution)
    points = {label: {t: i.point for t, i in r.items()} for label, r in ratings.items()}
    return {
        "judge": tally.to_dict(),
        "matches": {"base": len(matches["base"]), "trained": len(matches[plan.trained])},
        "ratings": {label: _intervals(r) for label, r in ratings.items()},
        "deltas": _intervals(deltas),
        "spearman": _number(spearman(points["base"], points["trained"])),
        "constitution_traits": _intervals({t: deltas[t] for t in own if t in deltas}),
    }


def _choice(
    tally: JudgeTally, row: Mapping[str, Any] | None, options: Sequence[str]
) -> judging.Verdict | None:
    if row is None:
        return None
    verdict = judging.parse_choice(row["text"], options)
    tally.record(verdict, row["text"])
    return verdict


def _intervals(values: Mapping[str, Any]) -> dict[str, dict[str, float]]:
    return {name: interval.to_dict() for name, interval in values.items()}


def _number(value: float) -> float | None:
    return None if value != value else round(value, 4)  # NaN: undefined  # noqa: PLR0124


# Judged scores: the 2x2, coherence, persistence ---------------------------------------------


def _scores(context: StageContext, tally: JudgeTally, kind: str) -> dict[str, int]:
    """Parsed 1-10 trait scores of one kind, by the id of the answer they judge."""
    scores = {}
    for row in judge_rows(context, SCORES):
        if row["kind"] != kind:
            continue
        verdict = judging.parse_score(row["text"], SCORE_MIN, SCORE_MAX)
        tally.record(verdict, row["text"])
        if verdict.score is not None:
            scores[row["answer_id"]] = verdict.score
    return scores


def _cell(values: Sequence[float]) -> dict[str, Any]:
    mean, sem = mean_sem(values)
    return {"mean": _number(mean), "sem": _number(sem), "n": len(values)}


def two_by_two(
    context: StageContext, plan: Plan, answers: Iterable[Mapping[str, Any]]
) -> dict[str, Any]:
    """Base and trained, each with and without the constitution, scored for its traits."""
    tally = JudgeTally()
    scores = _scores(context, tally, "2x2")
    tally.check(context.config.evaluation.max_parse_failures, "the 2x2 trait scores")
    by_method: dict[str, list[float]] = defaultdict(list)
    for answer in answers:
        if answer["id"] in scores and answer["persona"] == plan.persona:
            by_method[answer["method"]].append(scores[answer["id"]])
    cells: dict[str, dict[str, Any]] = defaultdict(dict)
    for (model, condition), method in CELLS.items():
        cells[model][condition] = _cell(by_method[plan.trained if method == "trained" else method])
    return {"judge": tally.to_dict(), "cells": dict(cells)}


def coherence(context: StageContext, plan: Plan) -> dict[str, Any]:
    """The trained model's win rate against each baseline, order-consistent verdicts only."""
    tally = JudgeTally()
    rows = {(r["baseline"], r["prompt_id"], r["order"]): r for r in judge_rows(context, COHERENCE)}
    versus = {}
    for baseline in coherence_baselines(plan):
        wins: list[float] = []
        pairs = 0
        for pid in plan.prompts:
            judged = [rows.get((baseline, pid, order)) for order in ORDERS]
            if None in judged:
                continue
            pairs += 1
            first, swapped = (_named(tally, row) for row in judged if row is not None)
            winner = tally.record_pair(first, swapped, (plan.trained, baseline))
            if winner is not None:
                wins.append(1.0 if winner == plan.trained else 0.0)
        mean, sem = mean_sem(wins)
        versus[baseline] = {
            "win_rate": _number(mean), "sem": _number(sem), "wins": int(sum(wins)),
            "consistent": len(wins), "pairs": pairs,
        }  # fmt: skip
    tally.check(context.config.evaluation.max_parse_failures, "coherence")
    return {"judge": tally.to_dict(), "versus": versus}


def _named(tally: JudgeTally, row: Mapping[str, Any]) -> judging.Verdict:
    """Parse a pairwise verdict and name the method it chose (it was shown as "1" or "2")."""
    verdict = judging.parse_choice(row["text"], (row["first"], row["second"]))
    tally.record(verdict, row["text"])
    return verdict


# Drift --------------------------------------------------------------------------------------


def drift(
    context: StageContext, plan: Plan, answers: Iterable[Mapping[str, Any]]
) -> dict[str, Any]:
    """Opener concentration and marker balance of suffix-free answers; persistence per turn."""
    texts: dict[str, list[str]] = defaultdict(list)
    for answer in answers:
        if answer["variant"] == "none" and answer["persona"] == plan.persona:
            texts[answer["method"]].append(answer["text"])
    markers = _markers(context)
    reports = {m: drift_report(t, markers=markers or None) for m, t in texts.items()}
    tally = JudgeTally()
    scores = _scores(context, tally, "persistence")
    tally.check(context.config.evaluation.max_parse_failures, "multi-turn persistence")
    per_turn: dict[str, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    for row in context.run.rows(PERSISTENCE):
        if row["id"] in scores:
            per_turn[row["method"]][row["turn"]].append(scores[row["id"]])
    return {
        "openers": {
            m: {
                "concentration": r.openers.top_share,
                "top": [[o, c / max(r.openers.answers, 1)] for o, c in r.openers.top[:5]],
            }
            for m, r in reports.items()
        },
        "position_balance": {
            m: None if r.balance is None else r.balance.to_dict() for m, r in reports.items()
        },
        "warnings": {m: list(r.warnings) for m, r in reports.items() if r.warnings},
        "persistence": {
            method: [{"turn": t, **_cell(v)} for t, v in sorted(turns.items())]
            for method, turns in per_turn.items()
        },
        "judge": tally.to_dict(),
    }


def _markers(context: StageContext) -> list[str]:
    """The persona's markers: n-grams the teacher's answers use far more than the student's."""
    chosen, rejected = [], []
    for row in context.run.rows("distill"):
        chosen.append(row["chosen"][-1]["content"])
        rejected.append(row["rejected"][-1]["content"])
    if not chosen:
        return []
    return [marker for marker, _ in learn_markers(chosen, rejected, top_k=MARKERS)]


def examples(plan: Plan, answers: Iterable[Mapping[str, Any]]) -> list[dict[str, str]]:
    """A few prompts with the base and the trained answer side by side."""
    plain = {
        (a["method"], a["prompt_id"]): a["text"]
        for a in answers
        if a["variant"] == "none" and a["persona"] == plan.persona
    }
    shown = []
    for pid, prompt in plan.prompts.items():
        base, trained = plain.get(("base", pid)), plain.get((plan.trained, pid))
        if base is not None and trained is not None:
            shown.append({"prompt": prompt, "base": base, "trained": trained})
        if len(shown) == EXAMPLES:
            break
    return shown
