"""Stage 1, prompts: each trait's seed questions grown by the teacher, plus generic prompts.

For every trait the teacher is asked, in rounds, for new user messages that give the trait room
to show; numbered lines are parsed, only well-formed ones kept, and exact or near duplicates
(more than half the words shared with a question already in the trait's pool) dropped, until
the pool reaches its target (paper: 5 seeds + 45 new). Generic prompts come from a user file, a
Hugging Face dataset, or our built-in offline set. Every accepted question is written to
``prompts.jsonl`` as it is found, and every raw teacher answer to ``expansions.jsonl``.
"""

from __future__ import annotations

import random
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from opencharacter.errors import ConfigError, MissingDependencyError
from opencharacter.jsonl import read_jsonl
from opencharacter.stages import texts
from opencharacter.stages._context import StageContext, StageRecorder
from opencharacter.stages._engine import gather_all
from opencharacter.types import GenerationRequest, Purpose, stable_id

STAGE = "prompts"
EXPANSIONS = "expansions"
#: Rounds of expansion per trait before giving up on its target.
MAX_ROUNDS = 8
#: New questions asked for per round, beyond what is missing (some are rejected).
SLACK = 5
_NUMBERED = re.compile(r"^\s*(\d+)\s*[.)]\s+(.+?)\s*$")
_WORD = re.compile(r"[\w']+")


def parse_numbered(text: str) -> list[str]:
    r"""Return the well-formed questions of a numbered list, in order.

    A line is kept when it is numbered (``12.`` or ``12)``), starts with a letter and ends
    with ``?``, ``.`` or ``!``; anything else (preambles, headers, broken lines) is skipped.

    >>> parse_numbered("Here you go:\n1. Why is the sky blue?\n2) ok\n3. Plan a picnic.")
    ['Why is the sky blue?', 'Plan a picnic.']
    """
    found = []
    for line in text.splitlines():
        match = _NUMBERED.match(line)
        if match:
            question = match.group(2).strip().strip("*").strip()
            if question[:1].isalpha() and question.endswith(("?", ".", "!")):
                found.append(question)
    return found


def _words(text: str) -> set[str]:
    return set(_WORD.findall(text.lower()))


def is_near_duplicate(question: str, pool: Iterable[str]) -> bool:
    """Return True if ``question`` repeats, or shares over half its words with, one in ``pool``.

    >>> is_near_duplicate("How do tides work?", ["How do tides work at night?"])
    True
    >>> is_near_duplicate("Plan my week.", ["How do tides work?"])
    False
    """
    words = _words(question)
    if not words:
        return True
    return any(question == o or len(words & _words(o)) > 0.5 * len(words) for o in pool)


def run_prompts(context: StageContext) -> dict[str, Any]:
    """Build the prompt set: trait questions to their target, and the generic prompts.

    The raw teacher answers in ``expansions.jsonl`` are the record of what happened: on resume
    each trait's pool is rebuilt by replaying them in order, and any accepted question a crash
    kept from reaching ``prompts.jsonl`` is written then, so a resumed run ends with exactly the
    prompts of an uninterrupted one.

    Returns:
        A summary: questions per trait, generic prompts, and shortfalls.
    """
    run, counts = context.run, context.config.counts
    written = run.done_ids(STAGE)
    pools = {t: _seeds(context, t, written) for t in range(len(context.constitution.traits))}
    _write_generic(context, written)
    rounds: dict[int, int] = defaultdict(int)
    for row in sorted(run.rows(EXPANSIONS), key=lambda r: (r["trait"], r["round"])):
        _accept(context, row["trait"], pools[row["trait"]], row["text"], written)
        rounds[row["trait"]] += 1
    target = counts.questions_per_trait
    short_now = sum(1 for pool in pools.values() if len(pool) < target)
    recorder = StageRecorder(context, STAGE, total=short_now + sum(rounds.values()))
    recorder.skipped(sum(rounds.values()))
    recorder.run(_expand_all(context, recorder, pools, rounds, written))
    short = {t + 1: target - len(pool) for t, pool in pools.items() if len(pool) < target}
    if short:
        recorder.say(f"traits below {target} questions after {MAX_ROUNDS} rounds: {short}")
    summary = {
        "questions": sum(len(p) for p in pools.values()),
        "generic": sum(1 for row in run.rows(STAGE) if row["source"] == "generic"),
        "short_traits": short,
    }
    recorder.finish(**summary)
    return summary


def _seeds(context: StageContext, trait: int, written: set[str]) -> list[str]:
    """Return the trait's seed questions (duplicates dropped), writing any not yet on disk."""
    pool: list[str] = []
    for question in context.constitution.traits[trait].questions:
        if question not in pool:
            pool.append(question)
            _append(context, trait, question, "seed", written)
    return pool


def _accept(
    context: StageContext, trait: int, pool: list[str], answer: str, written: set[str]
) -> int:
    """Add the new, well-formed, non-duplicate questions of one teacher answer to the pool."""
    target = context.config.counts.questions_per_trait
    accepted = 0
    for question in parse_numbered(answer):
        if len(pool) >= target:
            break
        if not is_near_duplicate(question, pool):
            pool.append(question)
            accepted += 1
            _append(context, trait, question, "expanded", written)
    return accepted


def _append(
    context: StageContext, trait: int | None, text: str, source: str, written: set[str]
) -> None:
    key = ("generic", text) if trait is None else ("trait", trait, text)
    row_id = stable_id(STAGE, *key)
    if row_id not in written:
        written.add(row_id)
        context.run.append(STAGE, {"id": row_id, "text": text, "trait": trait, "source": source})


def _write_generic(context: StageContext, written: set[str]) -> None:
    wanted = context.config.counts.generic_prompts
    if not wanted:
        return
    available = load_generic_prompts(context.config.generic_source)
    order = list(range(len(available)))
    random.Random(stable_id(context.config.seed, "generic")).shuffle(order)
    for index in sorted(order[:wanted]):
        _append(context, None, available[index], "generic", written)
    if len(available) < wanted:
        context.run.event(
            "note",
            stage=STAGE,
            message=f"only {len(available)} generic prompts available of {wanted} asked for",
        )


async def _expand_all(
    context: StageContext,
    recorder: StageRecorder,
    pools: dict[int, list[str]],
    rounds: dict[int, int],
    written: set[str],
) -> None:
    teacher = context.dispatcher(context.require_teacher(), "prompts")

    async def expand(trait_index: int) -> None:
        """Ask for new questions for one trait until its pool reaches the target."""
        pool = pools[trait_index]
        trait = context.constitution.traits[trait_index]
        target = context.config.counts.questions_per_trait
        while len(pool) < target and rounds[trait_index] < MAX_ROUNDS:
            round_number = rounds[trait_index]
            request_id = stable_id(EXPANSIONS, trait_index, round_number)
            ask = min(50, target - len(pool) + SLACK)
            request = GenerationRequest(
                id=request_id,
                purpose=Purpose.EXPAND_QUESTIONS,
                messages=[
                    {"role": "system", "content": texts.EXPANSION_SYSTEM},
                    {"role": "user", "content": texts.expansion_brief(trait, pool, ask)},
                ],
                params=context.params(context.config.sampling.expansion_tokens, request_id),
                meta={"trait": trait_index, "round": round_number},
            )
            completion = await teacher.complete(request)
            # The raw answer is written first: it is what a resumed run replays.
            context.run.append(
                EXPANSIONS,
                {"id": request_id, "trait": trait_index, "round": round_number,
                 "text": completion.text, "finish_reason": completion.finish_reason},
            )  # fmt: skip
            _accept(context, trait_index, pool, completion.text, written)
            rounds[trait_index] += 1
            recorder.completed(completion, Purpose.EXPAND_QUESTIONS)

    await gather_all(expand(t) for t in pools)


def load_generic_prompts(source: str | None) -> Sequence[str]:
    """Return generic prompts from a file, a Hugging Face dataset, or the built-in set.

    Args:
        source: ``None`` for our built-in offline set; a ``.jsonl`` file (each row a string
            under ``prompt``, ``text`` or ``instruction``, or ``messages``/``conversations``
            whose first user turn is taken); a ``.txt`` file (one prompt per line); or a
            Hugging Face dataset name such as ``GAIR/lima`` (first turns of every split).

    Raises:
        ConfigError: the file has no usable prompt.
        MissingDependencyError: a dataset name was given without ``datasets`` installed.
    """
    if source is None:
        return texts.generic_prompts()
    path = Path(source)
    prompts = _from_file(path) if path.is_file() else _from_hub(source)
    if not prompts:
        msg = f"{source}: no generic prompts found; see load_generic_prompts for the formats"
        raise ConfigError(msg)
    return prompts


def _from_file(path: Path) -> list[str]:
    if path.suffix != ".jsonl":
        lines = path.read_text(encoding="utf-8").splitlines()
        return [line.strip() for line in lines if line.strip()]
    prompts = []
    for row in read_jsonl(path):
        prompt = _first_turn(row)
        if prompt:
            prompts.append(prompt)
    return prompts


def _first_turn(row: dict[str, Any]) -> str | None:
    for key in ("prompt", "text", "instruction"):
        if isinstance(row.get(key), str):
            return str(row[key]).strip()
    for key in ("messages", "conversations"):
        turns = row.get(key)
        if isinstance(turns, list) and turns:
            first = turns[0]
            if isinstance(first, str):
                return first.strip()
            if isinstance(first, dict) and isinstance(first.get("content"), str):
                return str(first["content"]).strip()
    return None


def _from_hub(name: str) -> list[str]:
    try:
        import datasets  # noqa: PLC0415 - optional and heavy: only for a Hub dataset name
    except ImportError as exc:
        msg = (
            f"generic prompts from the Hugging Face dataset {name!r} need the 'datasets' "
            "package: pip install datasets (or pass a local file, or omit it for the "
            "built-in set)"
        )
        raise MissingDependencyError(msg) from exc
    loaded = datasets.load_dataset(name)
    prompts = []
    for split in loaded.values():
        for row in split:
            prompt = _first_turn(dict(row))
            if prompt:
                prompts.append(prompt)
    return prompts


def prompt_rows(context: StageContext) -> list[dict[str, Any]]:
    """Return the prompt rows of a finished prompts stage (stage 2 reads them)."""
    rows = list(context.run.rows(STAGE))
    if not rows:
        msg = f"{context.run.path}: no prompts yet; run the prompts stage first"
        raise ConfigError(msg)
    return rows
