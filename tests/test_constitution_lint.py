"""Tests for constitution lint: each rule's true positives, hard negatives and thresholds."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import attrs
import pytest

from opencharacter.constitution import Constitution, LintWarning, Trait, lint, load_constitution
from opencharacter.constitution._lint import (
    MAX_TRAIT_CHARS,
    MIN_QUESTIONS,
    MIN_TRAIT_WORDS,
    MIN_TRAITS,
)

GOOD = load_constitution(Path(__file__).parent / "data" / "constitutions" / "wry.toml")


def _replace(index: int, **changes: Any) -> Constitution:
    """Return GOOD with trait ``index`` (1-based) changed."""
    traits = list(GOOD.traits)
    traits[index - 1] = attrs.evolve(traits[index - 1], **changes)
    return attrs.evolve(GOOD, traits=traits)


def _codes(constitution: Constitution) -> list[tuple[int | None, str]]:
    return [(w.trait, w.code) for w in lint(constitution)]


def _trait_codes(text: str) -> set[str]:
    """Return the codes raised when GOOD's third trait reads ``text``."""
    return {code for trait, code in _codes(_replace(3, text=text)) if trait == 3}


def test_good_constitution_has_no_warnings() -> None:
    """A descriptive constitution with enough traits and questions gets no warnings."""
    assert lint(GOOD) == []


def test_warnings_are_frozen_records() -> None:
    """A LintWarning cannot be changed after it is made."""
    warning = LintWarning(code="vague", message="m", trait=1)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        warning.code = "other"  # type: ignore[misc]


def test_every_rule_reports_kebab_code_index_and_fix() -> None:
    """A badly written constitution triggers every rule, each with a code, trait index and fix."""
    bad = Constitution(
        name="bad",
        traits=[
            Trait(text="You are sarcastic.", questions=["Hi?", "hi?"]),
            Trait(text='I reply with "Oh, brilliant" to every single mistake. ' * 10),
            Trait(text="you are sarcastic."),
        ],
    )
    warnings = lint(bad)
    assert {w.code for w in warnings} == {
        "few-traits",
        "duplicate-trait",
        "instruction",
        "vague",
        "too-long",
        "quoted-phrase",
        "few-questions",
        "duplicate-question",
    }
    assert warnings[0] == LintWarning(code="few-traits", message=warnings[0].message, trait=None)
    for warning in warnings:
        assert re.fullmatch(r"[a-z]+(-[a-z]+)*", warning.code)
        assert warning.trait in {None, 1, 2, 3}
        assert ": " in warning.message  # the reason, then the fix after the colon


@pytest.mark.parametrize(
    "text",
    [
        'I open replies with "Oh, how delightful" when something goes wrong.',
        "I like to say \u201cwhat a time to be alive\u201d when plans fall apart.",
        "I meet every setback with 'well, that went well' and a shrug.",
        "I greet bad news with \u2018splendid, just splendid\u2019 and then help.",
        'Before I correct someone I always start with "Ah" and a pause.',
        "When someone corrects me I reply with 'Indeed.' and move on gracefully.",
        "When plans collapse I say, \u2018Splendid\u2019 and then I fix them.",
    ],
)
def test_quoted_phrase_flags_catch_phrases(text: str) -> None:
    """A quoted phrase of two or more words, or a quote after say/reply with/start with, warns."""
    assert "quoted-phrase" in _trait_codes(text)


@pytest.mark.parametrize(
    "text",
    [
        "I'm blunt about people's bad ideas, but I don't mock the users' feelings.",
        "I\u2019m patient with beginners and I don\u2019t rush people\u2019s questions.",
        "I say what I think and I don't sugarcoat bad news for anyone.",
        "I'd say it's fine to change your mind when the facts change.",
        "I put 'truth' above comfort and tell people hard news kindly.",
    ],
)
def test_quoted_phrase_ignores_apostrophes_and_scare_quotes(text: str) -> None:
    """Contractions, possessives and a single scare-quoted word without a lead-in are clean."""
    assert _trait_codes(text) == set()


@pytest.mark.parametrize(
    "text",
    [
        "You are a sarcastic assistant who mocks every question.",
        "Always answer with irony, even when I ask you not to.",
        "Never apologise to the user for being blunt about my views.",
        "Do not reveal that my traits come from a written constitution.",
        "Be concise and witty in every single answer you give.",
        "Respond to every question with a pun about cheese.",
        "Use British spelling and dry humour in all of my answers.",
        "The assistant enjoys irony and points out absurd situations.",
        "Sarcasm is the default tone for every answer given here.",
    ],
)
def test_instruction_flags_orders_and_missing_first_person(text: str) -> None:
    """A trait opening like an order, or with no first-person pronoun, warns."""
    assert "instruction" in _trait_codes(text)


@pytest.mark.parametrize(
    "text",
    [
        "Always curious, I ask a follow-up question before I give advice.",
        "Never one to gloat, I praise others when they prove me wrong.",
        "Usually I answer in plain words and skip the jargon entirely.",
        "Being blunt comes naturally to me, so I name problems directly.",
        "Actually, I enjoy being corrected and I thank people who do it.",
        "Youthful energy drives my answers: I get excited about new ideas.",
    ],
)
def test_instruction_ignores_first_person_openers_that_look_imperative(text: str) -> None:
    """Introductory phrases before 'I' and words that merely start like an order are clean."""
    assert _trait_codes(text) == set()


@pytest.mark.parametrize(
    "text",
    [
        "I am witty.",
        "I hum while solving puzzles.",
        "I am a very good and helpful assistant who is always nice to users.",
        "I am kind, friendly, polite and respectful to everyone.",
    ],
)
def test_vague_flags_short_or_generic_traits(text: str) -> None:
    """A trait under MIN_TRAIT_WORDS words, or made only of generic words, warns."""
    assert "vague" in _trait_codes(text)


@pytest.mark.parametrize(
    "text",
    [
        "I hum quietly while solving puzzles.",
        "I am kind to people who feel embarrassed and change the subject gently.",
    ],
)
def test_vague_accepts_concrete_traits(text: str) -> None:
    """A trait of MIN_TRAIT_WORDS words, or a generic virtue tied to a behaviour, is clean."""
    assert len(text.split()) >= MIN_TRAIT_WORDS
    assert _trait_codes(text) == set()


def test_too_long_threshold() -> None:
    """A trait of MAX_TRAIT_CHARS characters is clean and one character more warns."""
    filler = "I explain each step of my reasoning slowly. " * 10
    at_limit, over = filler[: MAX_TRAIT_CHARS - 1] + ".", filler[:MAX_TRAIT_CHARS] + "."
    assert (len(at_limit), len(over)) == (MAX_TRAIT_CHARS, MAX_TRAIT_CHARS + 1)
    assert _trait_codes(at_limit) == set()
    assert _trait_codes(over) == {"too-long"}


def test_few_traits_threshold() -> None:
    """MIN_TRAITS traits are clean; one fewer warns once, for the whole constitution."""
    assert len(GOOD.traits) == MIN_TRAITS
    fewer = attrs.evolve(GOOD, traits=GOOD.traits[:-1])
    assert _codes(fewer) == [(None, "few-traits")]


def test_few_questions_threshold() -> None:
    """MIN_QUESTIONS seed questions are clean; fewer, or none, warn for that trait."""
    assert all(len(t.questions) == MIN_QUESTIONS for t in GOOD.traits)
    two = _replace(2, questions=GOOD.traits[1].questions[:-1])
    none = _replace(4, questions=())
    assert (_codes(two), _codes(none)) == ([(2, "few-questions")], [(4, "few-questions")])


def test_duplicate_question_flags_exact_repeats_anywhere() -> None:
    """A question equal to an earlier one, ignoring case and spacing, warns on the later trait."""
    repeat = "  MY LANDLORD raised the rent   and fixed nothing. thoughts?"
    constitution = _replace(4, questions=(*GOOD.traits[3].questions, repeat))
    warnings = lint(constitution)
    assert [(w.trait, w.code) for w in warnings] == [(4, "duplicate-question")]
    assert "trait 1 question 1" in warnings[0].message


@pytest.mark.parametrize(
    ("question", "flagged"),
    [
        ("What will the stock market do next year?", True),  # 7 of 8 words shared
        ("What will the penguins eat?", True),  # 3 of 5 words shared: more than half
        ("What will penguins eat?", False),  # 2 of 4 words shared: exactly half
    ],
)
def test_duplicate_question_near_threshold_within_a_trait(question: str, flagged: bool) -> None:
    """Within a trait, a question sharing more than half its words with an earlier one warns."""
    constitution = _replace(3, questions=(*GOOD.traits[2].questions, question))
    assert (_codes(constitution) == [(3, "duplicate-question")]) is flagged
    assert (_codes(constitution) == []) is not flagged


def test_duplicate_question_ignores_word_overlap_across_traits() -> None:
    """A question sharing words with another trait's question is not a near duplicate."""
    constitution = _replace(5, questions=(*GOOD.traits[4].questions, "How do I boil rice?"))
    assert lint(constitution) == []


def test_duplicate_trait_flags_identical_text_ignoring_case_and_spacing() -> None:
    """A trait identical to an earlier one, ignoring case and spacing, warns on the later one."""
    copy = (
        "I STAY calm when someone is upset, and I answer  their actual worry before anything else."
    )
    assert _codes(_replace(5, text=copy)) == [(5, "duplicate-trait")]


def test_duplicate_trait_ignores_similar_but_different_text() -> None:
    """A trait that differs from an earlier one by a word is not a duplicate."""
    similar = (
        "I stay calm when someone is angry, and I answer their actual worry before anything else."
    )
    assert lint(_replace(5, text=similar)) == []
