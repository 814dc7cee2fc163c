"""Tests of the evaluation's prompt texts: what evaluated models and judges are told."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from opencharacter.errors import ConfigError
from opencharacter.eval.texts import (
    BREAK_CHARACTER_SUFFIXES,
    BREAK_CHARACTER_VARIANTS,
    PERSISTENCE_FOLLOWUPS,
    SCORE_MAX,
    SCORE_MIN,
    coherence_judge_messages,
    preference_messages,
    trait_judge_messages,
    trait_score_messages,
    with_suffix,
)
from opencharacter.eval.traits import TRAITS
from opencharacter.types import Message

_text = st.text(min_size=1, max_size=200)
_pair = st.lists(st.sampled_from(TRAITS), min_size=2, max_size=2, unique=True)
_character = st.lists(st.text(min_size=1, max_size=80).filter(str.strip), min_size=1, max_size=5)


def _all_text(messages: tuple[Message, ...]) -> str:
    return "\n".join(m.content for m in messages)


@given(_text, _pair)
def test_preference_prompt_offers_both_traits_then_the_user_prompt(
    prompt: str, pair: list[str]
) -> None:
    """The system turn offers Choice 1 and Choice 2; the user turn is the prompt unchanged."""
    first, second = pair
    system, user = preference_messages(prompt, first, second)
    assert (system.role, user.role) == ("system", "user")
    assert user.content == prompt
    assert f"Choice 1: {first}\n" in system.content
    assert f"Choice 2: {second}\n" in system.content
    assert system.content.index("Choice 1") < system.content.index("Choice 2")


def test_preference_prompt_asks_to_keep_one_trait_silently() -> None:
    """The model picks the trait it prefers, keeps to it, and does not name or justify it."""
    system = preference_messages("Hi", "warm", "cold")[0].content.lower()
    assert "exactly one" in system
    assert "rather" in system
    assert "do not say which trait you chose" in system
    assert "do not explain" in system


@given(_text, _pair)
def test_trait_judge_sees_the_reply_and_both_candidates(response: str, pair: list[str]) -> None:
    """The judge gets the reply verbatim, the two traits and the answer-tag instruction."""
    first, second = pair
    messages = trait_judge_messages(response, first, second)
    assert [m.role for m in messages] == ["system", "user"]
    assert response in messages[1].content
    assert f"{first} or {second}" in messages[1].content
    assert "<answer></answer>" in messages[0].content


def test_trait_judge_may_not_answer_neither() -> None:
    """The judge is told that 'neither' is not an allowed answer."""
    system = trait_judge_messages("text", "warm", "cold")[0].content
    assert "neither" in system
    assert "not allowed" in system


@pytest.mark.parametrize("build", [preference_messages, trait_judge_messages])
@pytest.mark.parametrize(("first", "second"), [("warm", "warm"), ("warm", "Warm"),
                                               ("", "cold"), ("very warm", "cold")])  # fmt: skip
def test_pair_builders_reject_meaningless_pairs(build: object, first: str, second: str) -> None:
    """Blank, multi-word or identical traits are a configuration error, not a silent prompt."""
    with pytest.raises(ConfigError, match="trait"):
        build("text", first, second)  # type: ignore[operator]


@given(_text, _text, _text, _character)
def test_coherence_judge_carries_both_replies_in_order_and_numbered_traits(
    prompt: str, one: str, two: str, traits: list[str]
) -> None:
    """The judge sees the message, reply 1 before reply 2, the numbered traits and the tags."""
    (message,) = coherence_judge_messages(prompt, one, two, traits)
    content = message.content
    assert message.role == "user"
    start_1 = content.index("=== RESPONSE 1 ===")
    start_2 = content.index("=== RESPONSE 2 ===")
    assert content.index("=== MESSAGE ===") < start_1 < start_2
    assert prompt in content[:start_1]
    assert one in content[start_1:start_2]
    assert two in content[start_2:]
    for i, trait in enumerate(traits, start=1):
        assert f"{i}. {trait.strip()}" in content
    assert "<answer>1</answer>" in content
    assert "<answer>2</answer>" in content


def test_coherence_judge_ranks_trait_fit_before_coherence() -> None:
    """Trait fit is the first criterion; coherence and relevance only break near-ties."""
    content = coherence_judge_messages("q", "a", "b", ["I am calm."])[0].content
    assert content.index("embodies the traits") < content.index("more coherent")
    assert "relevant" in content


@given(_text, _text, _character)
def test_trait_score_carries_prompt_reply_traits_and_scale(
    prompt: str, response: str, traits: list[str]
) -> None:
    """The scorer gets the user turn, the reply, the numbered traits, the scale and the tags."""
    system, user = trait_score_messages(prompt, response, traits)
    assert (system.role, user.role) == ("system", "user")
    assert prompt in user.content
    assert response in user.content
    assert user.content.index(prompt) < user.content.index("=== REPLY ===")
    for i, trait in enumerate(traits, start=1):
        assert f"{i}. {trait.strip()}" in user.content
    assert f"from {SCORE_MIN} to {SCORE_MAX}" in system.content
    assert "<answer></answer>" in system.content


@pytest.mark.parametrize("traits", [[], ["  "], "I am calm."])
def test_character_judges_need_a_sequence_of_traits(traits: object) -> None:
    """An empty character, or a bare string mistaken for a list of traits, is refused."""
    with pytest.raises(ConfigError, match="trait"):
        coherence_judge_messages("q", "a", "b", traits)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="trait"):
        trait_score_messages("q", "a", traits)  # type: ignore[arg-type]


def test_break_character_suffixes_are_eight_distinct_requests() -> None:
    """v0..v7 exist, differ, are one-line parenthesised asides, and one of them shouts."""
    assert list(BREAK_CHARACTER_SUFFIXES) == [f"v{i}" for i in range(8)]
    suffixes = list(BREAK_CHARACTER_SUFFIXES.values())
    assert len(set(suffixes)) == len(suffixes)
    for suffix in suffixes:
        assert suffix.startswith("(")
        assert suffix.endswith(")")
        assert "\n" not in suffix
    shouting = [s for s in suffixes if sum(w.isupper() and len(w) > 1 for w in s.split()) >= 3]
    assert shouting


def test_break_character_suffixes_cannot_be_changed() -> None:
    """The mapping is read-only, so one evaluation cannot alter another's suffixes."""
    with pytest.raises(TypeError):
        BREAK_CHARACTER_SUFFIXES["v0"] = "x"  # type: ignore[index]


@given(_text, st.sampled_from(BREAK_CHARACTER_VARIANTS))
def test_with_suffix_appends_the_variant_after_a_newline(prompt: str, variant: str) -> None:
    """'none' leaves the prompt as it is; any other variant adds its suffix on a new line."""
    if variant == "none":
        assert with_suffix(prompt, variant) == prompt
    else:
        assert with_suffix(prompt, variant) == f"{prompt}\n{BREAK_CHARACTER_SUFFIXES[variant]}"


def test_with_suffix_rejects_unknown_variants_and_lists_the_valid_ones() -> None:
    """A typo in a variant name is a configuration error that names the accepted ones."""
    with pytest.raises(ConfigError, match="v7"):
        with_suffix("Hi", "v8")
    assert BREAK_CHARACTER_VARIANTS[0] == "none"
    assert len(BREAK_CHARACTER_VARIANTS) == len(BREAK_CHARACTER_SUFFIXES) + 1


def test_persistence_followups_are_distinct_user_turns() -> None:
    """There are several distinct, non-blank follow-ups, some of which change the topic."""
    assert len(PERSISTENCE_FOLLOWUPS) >= 6
    assert len(set(PERSISTENCE_FOLLOWUPS)) == len(PERSISTENCE_FOLLOWUPS)
    assert all(f.strip() == f and f for f in PERSISTENCE_FOLLOWUPS)
    assert any("subject" in f or "unrelated" in f for f in PERSISTENCE_FOLLOWUPS)
