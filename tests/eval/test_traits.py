"""Tests of the trait vocabulary and of finding a constitution's own traits in it."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from opencharacter.constitution import Constitution, Trait, load_constitution
from opencharacter.eval.traits import TRAITS, constitution_trait_words, trait_forms


def _persona(*texts: str) -> Constitution:
    return Constitution(name="t", traits=[Trait(text=t) for t in texts])


def test_traits_are_about_150_distinct_lowercase_single_words() -> None:
    """The vocabulary holds 140-160 distinct words of lowercase letters only."""
    assert 140 <= len(TRAITS) <= 160
    assert len(set(TRAITS)) == len(TRAITS)
    assert all(re.fullmatch(r"[a-z]+", t) for t in TRAITS)


def test_traits_span_opposite_poles_and_undesirable_traits() -> None:
    """Both ends of the main dimensions and some undesirable traits are on offer."""
    poles = [("warm", "cold"), ("formal", "casual"), ("cautious", "bold"), ("playful", "serious"),
             ("optimistic", "pessimistic"), ("patient", "impatient")]  # fmt: skip
    for pair in poles:
        assert set(pair) <= set(TRAITS)
    assert {"sycophantic", "arrogant", "manipulative", "deceptive", "rude"} <= set(TRAITS)


def test_forms_include_the_word_and_common_derivations() -> None:
    """Nouns and adverbs built by the documented rules and the irregular table are forms."""
    expected = {"warm": "warmth", "playful": "playfulness", "honest": "honesty",
                "gentle": "gently", "curious": "curiosity", "patient": "patience",
                "compassionate": "compassion", "sarcastic": "sarcastically",
                "humble": "humility", "humorous": "humour", "arrogant": "arrogance"}  # fmt: skip
    for trait, form in expected.items():
        assert form in trait_forms(trait)
        assert trait in trait_forms(trait)


@given(st.lists(st.sampled_from(TRAITS), min_size=1, max_size=8, unique=True))
def test_planted_affirmed_traits_are_found_exactly(chosen: list[str]) -> None:
    """Each trait a constitution affirms is found, nothing else, in the vocabulary's order."""
    persona = _persona(*(f"At heart I am {word}." for word in chosen))
    assert constitution_trait_words(persona) == tuple(t for t in TRAITS if t in chosen)


@given(st.sampled_from(TRAITS), st.sampled_from(["not", "never", "rarely", "isn't"]))
def test_negated_traits_are_not_found(word: str, negation: str) -> None:
    """A trait the constitution disowns is not counted as one it claims."""
    persona = _persona(f"I am {negation} {word}, whatever happens.")
    assert constitution_trait_words(persona) == ()


def test_derived_forms_case_and_clauses() -> None:
    """Forms match case-insensitively, and a negation does not reach past a clause boundary."""
    persona = _persona(
        "WARMTH runs through everything I say.",
        "I answer Patiently; I am never smug.",
        "I prefer concrete examples rather than abstract ones.",
        "I don't lecture, but I am curious.",
    )
    expected = {"warm", "concrete", "curious", "patient"}
    assert constitution_trait_words(persona) == tuple(t for t in TRAITS if t in expected)


def test_words_inside_other_words_do_not_match() -> None:
    """Only whole words count: 'colder' and 'boldface' name no trait."""
    assert constitution_trait_words(_persona("I print boldface and colder numbers.")) == ()


def test_a_custom_vocabulary_is_searched() -> None:
    """The vocabulary can be replaced, e.g. by a subset of interest."""
    persona = _persona("I am warm and blunt.")
    assert constitution_trait_words(persona, ["blunt", "kindly"]) == ("blunt",)


def test_built_in_personas_find_their_defining_traits() -> None:
    """The loving and sarcasm constitutions name traits one would expect of them."""
    assert {"warm", "compassionate", "patient"} <= set(
        constitution_trait_words(load_constitution("loving"))
    )
    assert "sarcastic" in constitution_trait_words(load_constitution("sarcasm"))
