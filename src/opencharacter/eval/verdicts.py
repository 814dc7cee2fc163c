"""What the judge is asked: the second half of every evaluation.

Each verdict is a row of its own, with the judge's raw answer; parsing happens when the
numbers are computed (:mod:`opencharacter.eval.analysis`), so every parse failure stays on
disk to read and a better parser can be rerun on the same answers. Pairwise verdicts are
asked in both orders; only order-consistent ones count.

* ``preference_verdicts``: which of the two offered traits each preference answer shows;
* ``scores``: how strongly an answer shows the constitution's traits, 1 to 10 (the 2x2 and the
  persistence turns);
* ``coherence``: which of two models' answers to one prompt fits the traits better.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from opencharacter.eval import texts as eval_texts
from opencharacter.eval._asks import Ask
from opencharacter.eval.answers import Plan
from opencharacter.stages._context import StageContext
from opencharacter.types import Purpose, stable_id

PREFERENCE_VERDICTS = "eval/preference_verdicts"
SCORES = "eval/scores"
COHERENCE = "eval/coherence"
#: The four cells of the 2x2: (model, condition) -> the answers' method.
CELLS = {
    ("base", "plain"): "base",
    ("base", "prompted"): "prompted",
    ("trained", "plain"): "trained",
    ("trained", "prompted"): "trained-prompted",
}
ORDERS = ("forward", "swapped")


def judge_name(context: StageContext) -> str:
    """The judge's model: verdicts are kept per judge, so another judge asks afresh."""
    return context.require_judge().model


def judge_rows(context: StageContext, file: str) -> Iterator[dict[str, Any]]:
    """Yield the verdict rows of ``file`` given by this run's judge."""
    judge = judge_name(context)
    return (row for row in context.run.rows(file) if row.get("judge") == judge)


def _judge(
    context: StageContext,
    id_: str,
    messages: Any,
    row: Mapping[str, Any],
    choices: tuple[str, ...] = (),
) -> Ask:
    judge = judge_name(context)
    return Ask(id=stable_id(judge, id_), model="judge", messages=messages,
               purpose=Purpose.JUDGE, max_tokens=context.config.evaluation.judge_tokens,
               row={"judge": judge, **row}, choices=choices)  # fmt: skip


def preference_verdict_asks(
    context: StageContext, answers: Iterable[Mapping[str, Any]]
) -> Iterator[Ask]:
    """Ask, in both orders, which offered trait each preference answer shows."""
    for answer in answers:
        pair = (answer["trait_1"], answer["trait_2"])
        for order, (first, second) in zip(ORDERS, (pair, pair[::-1]), strict=True):
            yield _judge(
                context,
                stable_id("preference-verdict", answer["id"], order),
                eval_texts.trait_judge_messages(answer["text"], first, second),
                {"answer_id": answer["id"], "order": order},
                (first, second),
            )


def score_asks(
    context: StageContext,
    plan: Plan,
    answers: Iterable[Mapping[str, Any]],
    persistence: Iterable[Mapping[str, Any]],
) -> Iterator[Ask]:
    """Ask for a 1-10 trait score of each 2x2 answer and each persistence turn."""
    traits = [trait.text for trait in context.constitution.traits]
    methods = {_method(plan, m) for m in CELLS.values()}
    for answer in answers:
        own = answer["variant"] == "none" and answer["persona"] == plan.persona
        if own and answer["method"] in methods:
            yield _judge(
                context,
                stable_id("score", answer["id"]),
                eval_texts.trait_score_messages(answer["prompt"], answer["text"], traits),
                {"answer_id": answer["id"], "kind": "2x2"},
            )
    for turn in persistence:
        yield _judge(
            context,
            stable_id("score", turn["id"]),
            eval_texts.trait_score_messages(turn["user"], turn["text"], traits),
            {"answer_id": turn["id"], "kind": "persistence"},
        )


def coherence_baselines(plan: Plan) -> tuple[str, ...]:
    """The methods the trained model's coherence is judged against."""
    earlier = tuple(c for c in plan.checkpoints if c != plan.trained)
    return ("prompted", *earlier)


def coherence_asks(
    context: StageContext, plan: Plan, answers: Iterable[Mapping[str, Any]]
) -> Iterator[Ask]:
    """Ask, in both orders, which of the trained and a baseline answer fits the traits better."""
    traits = [trait.text for trait in context.constitution.traits]
    suffix_free = {
        (a["method"], a["prompt_id"]): a
        for a in answers
        if a["variant"] == "none" and a["persona"] == plan.persona
    }
    for baseline in coherence_baselines(plan):
        for pid, prompt in plan.prompts.items():
            ours, theirs = suffix_free.get((plan.trained, pid)), suffix_free.get((baseline, pid))
            if ours is None or theirs is None:
                continue
            shown = (ours, theirs)
            for order, (one, two) in zip(ORDERS, (shown, shown[::-1]), strict=True):
                yield _judge(
                    context,
                    stable_id("coherence", baseline, pid, order),
                    eval_texts.coherence_judge_messages(prompt, one["text"], two["text"], traits),
                    {"baseline": baseline, "prompt_id": pid, "order": order,
                     "first": one["method"], "second": two["method"]},
                    ("1", "2"),
                )  # fmt: skip


def _method(plan: Plan, method: str) -> str:
    """The answers' method name for a 2x2 cell (``trained`` is the final checkpoint's)."""
    return plan.trained if method == "trained" else method
