"""What a run will cost before anything is spent: generations, tokens, dollars and time per stage.

Token counts use the prompts the stages will actually send (measured in characters, at about
four characters a token) and typical answer lengths; cost uses the configured price table;
time assumes the configured concurrency and a per-request latency. Treat the figures as the
right order of magnitude, then compare with the manifest, which records what was actually used.
"""

from __future__ import annotations

import math

import attrs

from opencharacter.config import Price, RunConfig
from opencharacter.constitution import Constitution
from opencharacter.stages import texts

CHARS_PER_TOKEN = 4.0
#: Typical completion lengths in tokens. Reflections: the paper's introspection data averaged
#: about 667 tokens a sample (8M tokens over 12k samples); the others are typical of
#: instruct models answering in character, capped by the configured limits.
TYPICAL_TOKENS = {"expansion": 1200, "answer": 350, "reflection": 700, "turn": 250}
#: Seconds per request assumed when the backend options give no ``latency_ms``.
ASSUMED_LATENCY_S = 20.0


@attrs.frozen(kw_only=True)
class StageEstimate:
    """The expected size of one stage.

    Attributes:
        stage: the stage name.
        generations: completions it will request.
        prompt_tokens: tokens read, completion_tokens: tokens written,
        train_tokens: tokens trained on (all epochs).
        cost: US dollars at the configured prices, ``None`` when a model has no price.
        seconds: wall time at the configured concurrency and assumed latency.
    """

    stage: str
    generations: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    train_tokens: int = 0
    cost: float | None = 0.0
    seconds: float = 0.0


def _tokens(text: str) -> int:
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def _sampling_cost(price: Price | None, prompt: int, completion: int) -> float | None:
    if price is None:
        return None
    return (prompt * price.prefill + completion * price.sample) / 1e6


def _training_cost(price: Price | None, tokens: int) -> float | None:
    return None if price is None else tokens * price.train / 1e6


def estimate(config: RunConfig, constitution: Constitution) -> list[StageEstimate]:
    """Return the expected generations, tokens, cost and time of every stage up to ``until``."""
    counts, sampling = config.counts, config.sampling
    latency = float(config.backend_options.get("latency_ms", ASSUMED_LATENCY_S * 1000)) / 1000
    teacher_price, student_price = (
        config.prices.get(config.teacher),
        config.prices.get(config.student),
    )
    traits = constitution.traits
    name = config.name

    def timed(generations: int) -> float:
        return math.ceil(generations / config.concurrency) * latency

    missing = [max(0, counts.questions_per_trait - len(t.questions)) for t in traits]
    rounds = sum(math.ceil(m / 45) for m in missing if m)
    brief = sum(_tokens(texts.expansion_brief(t, t.questions, 45)) for t in traits) / len(traits)
    expansion = min(TYPICAL_TOKENS["expansion"], sampling.expansion_tokens)
    prompts = StageEstimate(
        stage="prompts",
        generations=rounds,
        prompt_tokens=round(rounds * brief),
        completion_tokens=rounds * expansion,
        cost=_sampling_cost(teacher_price, round(rounds * brief), rounds * expansion),
        seconds=timed(rounds) * 2,  # rounds run in sequence per trait, about two each
    )

    n_prompts = len(traits) * counts.questions_per_trait + counts.generic_prompts
    pairs = n_prompts * counts.samples_per_prompt
    question = 30
    system = _tokens(texts.constitution_system_prompt(name, constitution))
    answer = min(TYPICAL_TOKENS["answer"], sampling.answer_tokens)
    chosen_cost = _sampling_cost(teacher_price, pairs * (system + question), pairs * answer)
    rejected_cost = _sampling_cost(student_price, pairs * question, pairs * answer)
    distill = StageEstimate(
        stage="distill",
        generations=2 * pairs,
        prompt_tokens=pairs * (system + 2 * question),
        completion_tokens=2 * pairs * answer,
        cost=None if chosen_cost is None or rejected_cost is None else chosen_cost + rejected_cost,
        seconds=timed(pairs),
    )

    dpo_tokens = pairs * 2 * (question + answer) * config.dpo.epochs
    dpo = StageEstimate(stage="dpo", train_tokens=dpo_tokens,
                        cost=_training_cost(student_price, dpo_tokens))  # fmt: skip

    reflections = len(texts.REFLECTION_PROMPTS) * counts.reflections_per_prompt
    reflection_system = _tokens(texts.reflection_system_prompt(name, constitution))
    reflection = min(TYPICAL_TOKENS["reflection"], sampling.reflection_tokens)
    conversations = 2 * counts.interactions_per_variant
    turns = conversations * counts.interaction_turns
    turn = min(TYPICAL_TOKENS["turn"], sampling.turn_tokens)
    turn_system = _tokens(texts.interaction_system_prompt(name, constitution, "free"))
    # Turn t reads the system prompt and the t replies before it.
    turn_context = sum(turn_system + 20 + t * turn for t in range(counts.interaction_turns))
    intro_prompt = reflections * (reflection_system + 40) + conversations * turn_context
    intro_completion = reflections * reflection + turns * turn
    introspect = StageEstimate(
        stage="introspect",
        generations=reflections + turns,
        prompt_tokens=intro_prompt,
        completion_tokens=intro_completion,
        cost=_sampling_cost(student_price, intro_prompt, intro_completion),
        seconds=timed(reflections) + counts.interaction_turns * timed(conversations),
    )

    sft_tokens = (
        reflections * (40 + reflection) + conversations * (counts.interaction_turns * turn + 60)
    ) * config.sft.epochs
    sft = StageEstimate(stage="sft", train_tokens=sft_tokens,
                        cost=_training_cost(student_price, sft_tokens))  # fmt: skip
    order = ("prompts", "distill", "dpo", "introspect", "sft", "eval")
    last = order.index(config.until)
    return [s for s in (prompts, distill, dpo, introspect, sft) if order.index(s.stage) <= last]
