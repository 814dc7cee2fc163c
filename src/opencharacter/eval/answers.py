"""What the evaluated models are asked: the first half of every evaluation.

Four kinds of answer, each in a file of ``eval/``:

* ``preferences``: base and trained models, each prompt with two random traits of
  :data:`~opencharacter.eval.traits.TRAITS` to choose between (revealed preferences);
* ``answers``: the robustness and 2x2 matrix: the base model prompted with the run's
  constitution and with a few others (``prompted``), the trained checkpoints (``dpo``, ``sft``),
  each on every prompt with and without the break-character suffixes; plus the base model
  unprompted (``base``) and the trained one prompted (``trained-prompted``), suffix-free;
* ``persistence``: multi-turn conversations of the prompted base model and the trained model,
  one reply per follow-up turn.

A prompt's two traits and every row id derive from the run seed and the inputs, so the base
and trained models face the same choices and a resumed evaluation asks the same questions.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import attrs

from opencharacter.constitution import Constitution
from opencharacter.eval import texts as eval_texts
from opencharacter.eval._asks import Ask
from opencharacter.eval.traits import TRAITS
from opencharacter.stages import texts
from opencharacter.stages._context import StageContext
from opencharacter.stages._engine import Dispatcher
from opencharacter.types import Completion, GenerationRequest, Message, Purpose, stable_id

PREFERENCES = "eval/preferences"
ANSWERS = "eval/answers"
PERSISTENCE = "eval/persistence"
#: Variants of each robustness prompt: none, then every break-character suffix.
VARIANTS = ("none", *eval_texts.BREAK_CHARACTER_SUFFIXES)
#: Conversations of the persistence test, at most (each is several sequential turns).
CONVERSATIONS = 10


@attrs.frozen(kw_only=True)
class Plan:
    """The run's evaluation inputs: prompts, personas and which checkpoints exist.

    Attributes:
        prompts: evaluation prompts by id.
        persona: the run's persona (its constitution's name).
        personas: constitutions by name, the run's own first, for the prompted baselines.
        trained: the final checkpoint's name (``"sft"``, else ``"dpo"``; ``"external"`` for
            a model trained elsewhere).
        checkpoints: every trained checkpoint's name, in training order.
    """

    prompts: Mapping[str, str]
    persona: str
    personas: Mapping[str, Constitution]
    trained: str
    checkpoints: tuple[str, ...]


def prompt_id(prompt: str) -> str:
    """Return the stable id of an evaluation prompt."""
    return stable_id("eval-prompt", prompt)


def trait_pair(context: StageContext, pid: str) -> tuple[str, str]:
    """Return the two distinct traits offered with prompt ``pid`` (the same for every model)."""
    first, second = random.Random(stable_id(context.config.seed, "preferences", pid)).sample(
        TRAITS, 2
    )
    return first, second


def preference_asks(context: StageContext, plan: Plan) -> Iterator[Ask]:
    """Ask base and trained models to pick one of two traits and answer in it."""
    tokens = context.config.sampling.answer_tokens
    for model in ("base", plan.trained):
        for pid, prompt in plan.prompts.items():
            first, second = trait_pair(context, pid)
            yield Ask(
                id=stable_id("preference", model, pid),
                model=model,
                messages=eval_texts.preference_messages(prompt, first, second),
                max_tokens=tokens,
                row={"prompt_id": pid, "trait_1": first, "trait_2": second},
            )


def answer_asks(context: StageContext, plan: Plan) -> Iterator[Ask]:
    """The robustness and 2x2 matrix (see the module docstring)."""
    name = context.config.name
    for persona, constitution in plan.personas.items():
        system = texts.constitution_system_prompt(name, constitution)
        yield from _matrix(context, plan, ("prompted", "base", persona), system, VARIANTS)
    for checkpoint in plan.checkpoints:
        yield from _matrix(context, plan, (checkpoint, checkpoint, plan.persona), None, VARIANTS)
    own = texts.constitution_system_prompt(name, plan.personas[plan.persona])
    yield from _matrix(context, plan, ("base", "base", plan.persona), None, ("none",))
    yield from _matrix(context, plan, ("trained-prompted", plan.trained, plan.persona), own,
                       ("none",))  # fmt: skip


def _matrix(
    context: StageContext,
    plan: Plan,
    who: tuple[str, str, str],
    system: str | None,
    variants: Sequence[str],
) -> Iterator[Ask]:
    """Each prompt under each variant, answered as ``who``: (method, sampler key, persona)."""
    method, model, persona = who
    tokens = context.config.sampling.answer_tokens
    for pid, prompt in plan.prompts.items():
        for variant in variants:
            user = eval_texts.with_suffix(prompt, variant)
            messages = [Message("user", user)]
            if system is not None:
                messages.insert(0, Message("system", system))
            yield Ask(
                id=stable_id("answer", method, persona, variant, pid),
                model=model,
                messages=messages,
                max_tokens=tokens,
                row={"method": method, "persona": persona, "variant": variant,
                     "prompt_id": pid, "prompt": prompt},
            )  # fmt: skip


@attrs.frozen
class Conversation:
    """One persistence conversation: who holds it, under which system prompt, on which prompt."""

    method: str
    system: str | None
    prompt_id: str
    prompt: str


def persistence_models(context: StageContext, plan: Plan) -> dict[str, tuple[str, str | None]]:
    """Return each persistence method's sampler key and system prompt."""
    own = texts.constitution_system_prompt(context.config.name, plan.personas[plan.persona])
    return {"base-prompted": ("base", own), "trained": (plan.trained, None)}


async def converse(
    context: StageContext,
    dispatcher: Dispatcher,
    conversation: Conversation,
    done: Mapping[int, Mapping[str, Any]],
    on_row: Callable[[dict[str, Any], Completion], None],
) -> None:
    """Hold one persistence conversation: the prompt, then one follow-up per turn.

    Turns already in ``done`` (from an earlier session) are replayed, not asked again.
    """
    turns = context.config.evaluation.persistence_turns
    follow_ups = eval_texts.PERSISTENCE_FOLLOWUPS
    method, system, pid = conversation.method, conversation.system, conversation.prompt_id
    history: list[Message] = [Message("system", system)] if system else []
    for turn in range(turns + 1):
        user = conversation.prompt if turn == 0 else follow_ups[(turn - 1) % len(follow_ups)]
        history.append(Message("user", user))
        row = done.get(turn)
        if row is None:
            rid = stable_id("persistence", method, pid, turn)
            completion = await dispatcher.complete(
                GenerationRequest(
                    id=rid,
                    messages=history,
                    params=context.params(context.config.sampling.turn_tokens, rid),
                    purpose=Purpose.EVAL,
                )
            )
            row = {"id": rid, "method": method, "conversation": pid, "turn": turn,
                   "user": user, "text": completion.text}  # fmt: skip
            on_row(row, completion)
        history.append(Message("assistant", row["text"]))
