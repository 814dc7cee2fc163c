"""Resumable generation for the evaluations: every answer a row on disk the moment it lands.

An evaluation is a list of :class:`Ask` records, each with a stable id. :func:`ask_all` sends the
ones whose id is not yet in their file, through each model's dispatcher (its window and
retries), and appends each answer as a row, so a killed evaluation resumes without asking
anything twice.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from opencharacter._messages import Conversation, conversation
from opencharacter.stages._context import StageContext, StageRecorder
from opencharacter.stages._engine import Dispatcher, gather_all
from opencharacter.types import Completion, GenerationRequest, Purpose


@attrs.frozen(kw_only=True)
class Ask:
    """One generation an evaluation needs.

    Attributes:
        id: stable row id (from :func:`~opencharacter.types.stable_id` of its inputs).
        model: which model answers: a key of the dispatchers given to :func:`ask_all`.
        messages: the conversation to continue.
        max_tokens: the answer's token limit.
        purpose: :attr:`Purpose.EVAL` for an evaluated model, :attr:`Purpose.JUDGE` for the judge.
        row: fields saved with the answer (what was asked, of whom, under which variant).
        choices: the answers a judge may give, when it picks one (for backends that
            simulate a judge; real ones read the prompt).
    """

    id: str
    model: str
    messages: Conversation = attrs.field(converter=conversation)
    max_tokens: int
    purpose: Purpose = Purpose.EVAL
    row: Mapping[str, Any] = attrs.field(factory=dict)
    choices: tuple[str, ...] = ()


def pending(context: StageContext, file: str, asks: Iterable[Ask]) -> list[Ask]:
    """Return the asks whose answer is not yet in ``file``."""
    done = context.run.done_ids(file)
    return [ask for ask in asks if ask.id not in done]


async def ask_all(
    context: StageContext,
    recorder: StageRecorder,
    dispatchers: Mapping[str, Dispatcher],
    file: str,
    asks: Iterable[Ask],
) -> None:
    """Answer every ask not yet in ``file``, appending ``{id, model, **row, text}`` rows."""
    by_model: dict[str, list[Ask]] = defaultdict(list)
    for ask in pending(context, file, asks):
        by_model[ask.model].append(ask)
    asked = {ask.id: ask for group in by_model.values() for ask in group}

    def landed(request: GenerationRequest, completion: Completion) -> None:
        ask = asked[request.id]
        context.run.append(file, {"id": ask.id, "model": ask.model, **ask.row,
                                  "text": completion.text,
                                  "finish_reason": completion.finish_reason})  # fmt: skip
        recorder.completed(completion, ask.purpose)

    recorder.total += len(asked)
    await gather_all(
        dispatchers[model].complete_all((request(context, ask) for ask in group), landed)
        for model, group in by_model.items()
    )


def request(context: StageContext, ask: Ask) -> GenerationRequest:
    """Return the generation request of ``ask``, seeded from the run seed and its id."""
    return GenerationRequest(
        id=ask.id,
        messages=ask.messages,
        params=context.params(ask.max_tokens, ask.id),
        purpose=ask.purpose,
        meta={"choices": list(ask.choices)} if ask.choices else {},
    )
