"""What a run will cost before anything is spent: generations, tokens, dollars and time per stage.

Token counts use the prompts the stages will actually send (measured in characters, at about
four characters a token) and typical answer lengths; cost uses the configured price table;
time comes from each backend's timing model (:class:`~opencharacter.registry.ServiceTiming`,
which a plugin declares with its sources) at the configured concurrency. Treat the figures as
the right order of magnitude, then compare with the manifest, which records what was used.
"""

from __future__ import annotations

import math

import attrs

from opencharacter.config import STAGES, RunConfig, price_table, teacher_side
from opencharacter.constitution import Constitution
from opencharacter.eval.stage import planned_requests
from opencharacter.registry import ServiceTiming, get_backend_spec
from opencharacter.stages import texts
from opencharacter.stages.introspect import REFLECTION_GROUP
from opencharacter.training import total_steps
from opencharacter.types import Price, TokenUsage

CHARS_PER_TOKEN = 4.0
#: Typical completion lengths in tokens. Reflections: the paper's introspection data averaged
#: about 667 tokens a sample (8M tokens over 12k samples); the others are typical of
#: instruct models answering in character, capped by the configured limits.
TYPICAL_TOKENS = {"expansion": 1200, "answer": 350, "reflection": 700, "turn": 250}
#: Seconds per request assumed for a backend whose plugin declares no time model.
ASSUMED_LATENCY_S = 20.0


@attrs.frozen(kw_only=True)
class StageEstimate:
    """The expected size of one stage.

    Attributes:
        stage: the stage name.
        generations: completions it will get.
        requests: requests it will send (a request may ask for several completions).
        prompt_tokens: tokens read, completion_tokens: tokens written,
        train_tokens: tokens trained on (all epochs).
        cost: US dollars at the configured prices, ``None`` when a model has no price.
        seconds: wall time at the configured concurrency and assumed latency.
    """

    stage: str
    generations: int = 0
    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    train_tokens: int = 0
    cost: float | None = 0.0
    seconds: float = 0.0


def format_duration(seconds: float) -> str:
    """Return a duration compactly: 40 s, 12.5 min, 2 h 07 min."""
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.1f} min"
    return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60):02d} min"


def _tokens(text: str) -> int:
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def _add(*costs: float | None) -> float | None:
    return None if any(c is None for c in costs) else sum(c or 0.0 for c in costs)


def _sampling_cost(price: Price | None, prompt: int, completion: int) -> float | None:
    usage = TokenUsage(prompt_tokens=prompt, completion_tokens=completion)
    return None if price is None else price.cost(usage)


def _training_cost(price: Price | None, tokens: int) -> float | None:
    if price is None or price.train is None:
        return None
    return price.cost(TokenUsage(train_tokens=tokens))


def side_timing(config: RunConfig, side: str) -> ServiceTiming:
    """Return the time model of the ``"teacher"`` or ``"student"`` side's backend.

    The plugin's own (given that side's options), or a flat assumed latency without one.
    """
    backend, options = (
        teacher_side(config) if side == "teacher" else (config.backend, config.backend_options)
    )
    timing = get_backend_spec(backend).timing_for(options)
    if timing is None:
        return ServiceTiming(request_seconds=ASSUMED_LATENCY_S, source=f"{ASSUMED_LATENCY_S:g} s "
                             "per request, assumed")  # fmt: skip
    return timing


def estimate(config: RunConfig, constitution: Constitution) -> list[StageEstimate]:
    """Return the expected generations, tokens, cost and time of every stage up to ``until``.

    Time is the backends' :class:`~opencharacter.registry.ServiceTiming` model: each request
    of a window of ``concurrency`` takes the time to start plus its tokens at the decode
    speed; each training step takes the service's step time (or nothing, when unknown).
    """
    counts, sampling = config.counts, config.sampling
    teacher_timing = side_timing(config, "teacher")
    student_timing = side_timing(config, "student")
    prices = price_table(config)
    teacher_price, student_price = prices.get(config.teacher), prices.get(config.student)
    traits = constitution.traits
    name = config.name

    def timed(timing: ServiceTiming, requests: int, tokens: int) -> float:
        return math.ceil(requests / config.concurrency) * timing.request(tokens)

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
        requests=rounds,
        seconds=timed(teacher_timing, rounds, expansion) * 2,  # rounds of a trait in sequence
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
        requests=2 * n_prompts,  # the K answers of a prompt are one request per side
        prompt_tokens=n_prompts * (system + 2 * question),
        completion_tokens=2 * pairs * answer,
        cost=None if chosen_cost is None or rejected_cost is None else chosen_cost + rejected_cost,
        seconds=max(timed(teacher_timing, n_prompts, answer),
                    timed(student_timing, n_prompts, answer)),  # the sides run side by side
    )  # fmt: skip

    # Both sides of every pair through the model; a step's loss needs dpo_passes passes.
    dpo_tokens = pairs * 2 * (question + answer) * config.dpo.epochs * student_timing.dpo_passes
    dpo_steps = total_steps(pairs, config.dpo)
    reference_tokens = 2 * pairs * (question + answer)  # each answer scored once, in full
    dpo = StageEstimate(
        stage="dpo",
        requests=2 * pairs,
        prompt_tokens=reference_tokens,
        train_tokens=dpo_tokens,
        cost=_add(_training_cost(student_price, dpo_tokens),
                  _sampling_cost(student_price, reference_tokens, 0)),
        seconds=timed(student_timing, 2 * pairs, 0)
        + dpo_steps * student_timing.dpo_passes * student_timing.step_seconds,
    )  # fmt: skip

    reflections = len(texts.REFLECTION_PROMPTS) * counts.reflections_per_prompt
    groups = math.ceil(counts.reflections_per_prompt / REFLECTION_GROUP)
    reflection_requests = len(texts.REFLECTION_PROMPTS) * groups
    reflection_system = _tokens(texts.reflection_system_prompt(name, constitution))
    reflection = min(TYPICAL_TOKENS["reflection"], sampling.reflection_tokens)
    conversations = 2 * counts.interactions_per_variant
    turns = conversations * counts.interaction_turns
    turn = min(TYPICAL_TOKENS["turn"], sampling.turn_tokens)
    turn_system = _tokens(texts.interaction_system_prompt(name, constitution, "free"))
    # Turn t reads the system prompt and the t replies before it.
    turn_context = sum(turn_system + 20 + t * turn for t in range(counts.interaction_turns))
    intro_prompt = reflection_requests * (reflection_system + 40) + conversations * turn_context
    intro_completion = reflections * reflection + turns * turn
    introspect = StageEstimate(
        stage="introspect",
        generations=reflections + turns,
        requests=reflection_requests + turns,
        prompt_tokens=intro_prompt,
        completion_tokens=intro_completion,
        cost=_sampling_cost(student_price, intro_prompt, intro_completion),
        # One window serves both; a conversation's turns follow one another.
        seconds=max(timed(student_timing, reflection_requests, reflection)
                    + timed(student_timing, turns, turn),
                    counts.interaction_turns * student_timing.request(turn)),
    )  # fmt: skip

    sft_tokens = (
        reflections * (40 + reflection) + conversations * (counts.interaction_turns * turn + 60)
    ) * config.sft.epochs
    sft_steps = total_steps(reflections + conversations, config.sft)
    sft = StageEstimate(stage="sft", train_tokens=sft_tokens,
                        cost=_training_cost(student_price, sft_tokens),
                        seconds=sft_steps * student_timing.step_seconds)  # fmt: skip
    asked, judged = planned_requests(config)
    verdict = 150  # a short reasoning and the tagged answer
    eval_prompt, judge_prompt = asked * (question + 150), judged * (answer + 250)
    evaluation = StageEstimate(
        stage="eval",
        generations=asked + judged,
        requests=asked + judged,
        prompt_tokens=eval_prompt + judge_prompt,
        completion_tokens=asked * answer + judged * verdict,
        cost=_add(_sampling_cost(student_price, eval_prompt, asked * answer),
                  _sampling_cost(teacher_price, judge_prompt, judged * verdict)),
        # The models answer, then the judge reads the answers.
        seconds=timed(student_timing, asked, answer) + timed(teacher_timing, judged, verdict),
    )  # fmt: skip
    last = STAGES.index(config.until)
    stages = (prompts, distill, dpo, introspect, sft, evaluation)
    return [s for s in stages if STAGES.index(s.stage) <= last]
