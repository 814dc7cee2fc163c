"""Stage 4, introspect: the DPO-trained student writes about itself and talks with a copy.

*Reflection*: each introspective prompt is sampled N times under the trait system prompt plus
a line that the model is in a reflective mood, up to :data:`REFLECTION_GROUP` samples per
request; rows are saved without that system prompt, so SFT teaches the persona to come out
unprompted.

*Interaction*: two copies of the student talk for K turns, in a free and a leading variant,
each with its own guidance sentence in the system prompt and greetings drawn from our pools.
Copy A opens on greeting 1; copy B sees greeting 2 answered by greeting 1, so each sees a
correctly role-swapped view of one shared conversation. Every reply is appended to
``interaction_turns.jsonl`` as it arrives; every conversation advances as its own task, never
waiting for the others. A finished transcript is saved whole, ending with the final reply, with
roles alternating, as the view of the copy that spoke last.
"""

from __future__ import annotations

import random
from collections import defaultdict
from typing import Any

from opencharacter.errors import ConfigError
from opencharacter.filters import FilterChain, filter_row
from opencharacter.runstore import FILTERED
from opencharacter.stages import texts
from opencharacter.stages._context import StageContext, StageRecorder, replay_quality
from opencharacter.stages._engine import Dispatcher, gather_all
from opencharacter.types import Completion, GenerationRequest, Purpose, stable_id

STAGE = "introspect"
REFLECTION = "reflection"
INTERACTION = "interaction"
TURNS = "interaction_turns"
VARIANTS = ("free", "leading")
#: Fresh samples of a turn whose reply the filters drop, before the conversation is abandoned.
TURN_ATTEMPTS = 3
#: Reflections of one prompt asked for in one request: a remote service reads the prompt once
#: for all of them and decodes them side by side.
REFLECTION_GROUP = 16


def run_introspect(context: StageContext) -> dict[str, Any]:
    """Write reflections and self-interactions with the student at its DPO checkpoint."""
    run, counts = context.run, context.config.counts
    reflections = len(texts.REFLECTION_PROMPTS) * counts.reflections_per_prompt
    conversations = len(VARIANTS) * counts.interactions_per_variant
    turns_done: dict[str, dict[int, dict[str, Any]]] = defaultdict(dict)
    for row in run.rows(TURNS):
        turns_done[row["conversation"]][row["turn"]] = row
    recorder = StageRecorder(
        context, STAGE, total=reflections + conversations * counts.interaction_turns
    )
    finished = run.done_ids(REFLECTION, INTERACTION) | {
        row["id"] for row in run.rows(FILTERED) if row.get("stage") in {REFLECTION, INTERACTION}
    }
    replay_quality(run, REFLECTION, REFLECTION, recorder.quality)
    replay_quality(run, INTERACTION, INTERACTION, recorder.quality)
    recorder.skipped(
        sum(1 for _ in run.rows(REFLECTION))
        + sum(1 for r in run.rows(FILTERED) if r.get("stage") == REFLECTION)
        + sum(len(t) for t in turns_done.values())
    )
    job = _Introspect(context, recorder, finished, turns_done)
    recorder.run(job.run())
    summary = {
        "reflections": sum(1 for _ in run.rows(REFLECTION)),
        "interactions": sum(1 for _ in run.rows(INTERACTION)),
    }
    recorder.finish(**summary)
    return summary


class _Introspect:
    def __init__(
        self,
        context: StageContext,
        recorder: StageRecorder,
        finished: set[str],
        turns_done: dict[str, dict[int, dict[str, Any]]],
    ) -> None:
        self.context = context
        self.recorder = recorder
        self.finished = finished
        self.turns_done = turns_done
        name, constitution = context.config.name, context.constitution
        self.reflection_system = texts.reflection_system_prompt(name, constitution)
        self.systems = {v: texts.interaction_system_prompt(name, constitution, v) for v in VARIANTS}
        self.reflection_chain = context.chain("reflection")
        self.turn_chain = context.chain("interaction")

    async def run(self) -> None:
        dpo = self.context.run.checkpoint("dpo")
        if dpo is None:
            msg = f"{self.context.run.path}: no DPO checkpoint; run the dpo stage first"
            raise ConfigError(msg)
        student = self.context.dispatcher(self.context.require_student().at(dpo), STAGE)
        counts = self.context.config.counts
        conversations = [
            (variant, index)
            for index in range(counts.interactions_per_variant)
            for variant in VARIANTS
        ]
        await gather_all(
            [
                self._reflect(student),
                *(self._converse(student, v, i) for v, i in conversations),
            ]
        )

    # Reflection ---------------------------------------------------------------------------

    async def _reflect(self, student: Dispatcher) -> None:
        per_prompt = self.context.config.counts.reflections_per_prompt
        groups = [range(first, min(first + REFLECTION_GROUP, per_prompt))
                  for first in range(0, per_prompt, REFLECTION_GROUP)]  # fmt: skip
        requests = (
            self._reflection_request(p, samples)
            for samples in groups
            for p in range(len(texts.REFLECTION_PROMPTS))
            if any(stable_id(REFLECTION, p, n) not in self.finished for n in samples)
        )
        await student.complete_all(requests, self._reflected)

    def _reflection_request(self, prompt: int, samples: range) -> GenerationRequest:
        """Return one request for a group of samples of a reflection prompt.

        The group is always whole, so it is reproducible; samples already on disk are skipped
        when they come back.
        """
        request_id = stable_id(REFLECTION, prompt, "samples", samples.start, samples.stop)
        return GenerationRequest(
            id=request_id,
            purpose=Purpose.REFLECTION,
            messages=[
                {"role": "system", "content": self.reflection_system},
                {"role": "user", "content": texts.REFLECTION_PROMPTS[prompt]},
            ],
            params=self.context.params(self.context.config.sampling.reflection_tokens, request_id),
            samples=len(samples),
            meta={"prompt": prompt, "first": samples.start},
        )

    def _reflected(self, request: GenerationRequest, completion: Completion) -> None:
        self.recorder.completed(completion, Purpose.REFLECTION)
        prompt, sample = request.meta["prompt"], request.meta["first"] + completion.sample
        row_id = stable_id(REFLECTION, prompt, sample)
        if row_id in self.finished:
            return  # written by an earlier session
        self.finished.add(row_id)
        row = {
            "id": row_id,
            "messages": [
                {"role": "user", "content": request.messages[-1].content},
                {"role": "assistant", "content": completion.text},
            ],
            "source": REFLECTION, "prompt_index": prompt, "sample": sample,
            "model": completion.model,
        }  # fmt: skip
        self._save(REFLECTION, row, self.reflection_chain, completion.finish_reason)

    def _save(self, kind: str, row: dict[str, Any], chain: FilterChain, finish: str | None) -> None:
        result = filter_row(row, chain, finish_reasons={"messages[1]": finish} if finish else None)
        if result.keep:
            self.context.run.append(kind, {**result.row, "cleaned": result.cleaned})
            self.recorder.quality.count(keep=True, cleaned=result.cleaned)
        else:
            self.context.run.record_filtered(kind, result.row, result.reasons)
            self.recorder.quality.count(keep=False, reasons=result.reasons)

    # Interaction --------------------------------------------------------------------------

    async def _converse(self, student: Dispatcher, variant: str, index: int) -> None:
        """Run one conversation to its last turn, resuming from the turns already saved."""
        conversation = stable_id(INTERACTION, variant, index)
        if conversation in self.finished:
            return
        rng = random.Random(stable_id(self.context.config.seed, conversation))
        pool = texts.LEADING_GREETINGS if variant == "leading" else texts.GREETINGS
        greeting_a, greeting_b = rng.choice(pool), rng.choice(texts.GREETINGS)
        saved = self.turns_done.get(conversation, {})
        replies = [saved[t]["text"] for t in sorted(saved)]
        for turn in range(len(replies), self.context.config.counts.interaction_turns):
            view = _view(self.systems[variant], greeting_a, greeting_b, replies, speaker=turn % 2)
            reply = await self._turn(student, conversation, variant, turn, view)
            if reply is None:
                return
            replies.append(reply)
        speaker = (len(replies) - 1) % 2
        messages = _view(texts.interaction_sft_system_prompt(self.context.config.name),
                         greeting_a, greeting_b, replies, speaker=speaker)  # fmt: skip
        row = {"id": conversation, "messages": messages, "source": INTERACTION,
               "variant": variant, "index": index}  # fmt: skip
        self._save(INTERACTION, row, self.turn_chain, None)

    async def _turn(
        self,
        student: Dispatcher,
        conversation: str,
        variant: str,
        turn: int,
        view: list[dict[str, str]],
    ) -> str | None:
        """Return one clean reply, sampling again (up to TURN_ATTEMPTS) if the filters drop it."""
        reasons: list[tuple[str, str]] = []
        for attempt in range(TURN_ATTEMPTS):
            request_id = stable_id(TURNS, conversation, turn, attempt)
            request = GenerationRequest(
                id=request_id, purpose=Purpose.INTERACTION, messages=view,
                params=self.context.params(self.context.config.sampling.turn_tokens, request_id),
            )  # fmt: skip
            completion = await student.complete(request)
            self.recorder.completed(completion, Purpose.INTERACTION)
            verdict = self.turn_chain.apply(completion.text, finish_reason=completion.finish_reason)
            if verdict.keep:
                self.context.run.append(
                    TURNS,
                    {"id": request_id, "conversation": conversation, "turn": turn,
                     "text": verdict.text, "variant": variant, "model": completion.model},
                )  # fmt: skip
                return verdict.text
            reasons += [(f"turn[{turn}]", code) for code in verdict.reasons]
        row = {"id": conversation, "messages": view, "source": INTERACTION, "variant": variant}
        self.context.run.record_filtered(INTERACTION, row, reasons)
        self.recorder.quality.count(keep=False, reasons=reasons)
        return None


def _view(
    system: str, greeting_a: str, greeting_b: str, replies: list[str], *, speaker: int
) -> list[dict[str, str]]:
    """Return the conversation as copy ``speaker`` (0: A, 1: B) sees it.

    A opens on ``greeting_a`` as the user and speaks on even turns; B sees ``greeting_b`` as
    the user answered by ``greeting_a`` as itself, and speaks on odd turns. Each sees its own
    replies as assistant turns and the other's as user turns, so roles alternate.

    >>> [m["role"] for m in _view("S", "hi", "hey", ["r0", "r1"], speaker=0)]
    ['system', 'user', 'assistant', 'user']
    >>> [m["content"] for m in _view("S", "hi", "hey", ["r0", "r1"], speaker=1)]
    ['S', 'hey', 'hi', 'r0', 'r1']
    """
    if speaker == 0:
        opening = [{"role": "user", "content": greeting_a}]
    else:
        opening = [
            {"role": "user", "content": greeting_b},
            {"role": "assistant", "content": greeting_a},
        ]
    mine = 0 if speaker == 0 else 1
    turns = [
        {"role": "assistant" if t % 2 == mine else "user", "content": reply}
        for t, reply in enumerate(replies)
    ]
    return [{"role": "system", "content": system}, *opening, *turns]
