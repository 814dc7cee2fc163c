"""Tests for the prompt texts: required content, no template leaks, and the generic prompt set."""

from __future__ import annotations

import re

import pytest

from opencharacter.constitution import Constitution, Trait, builtin_names, load_constitution
from opencharacter.errors import ConfigError
from opencharacter.stages import texts

NAME = "Qwen"
SARCASM = load_constitution("sarcasm")
_ENDS_WITH_PUNCTUATION = re.compile(r"[.?!][\"')\u201d\u2019]*$")
_WORD = re.compile(r"[a-z0-9']+")


def _built_texts(constitution: Constitution) -> list[str]:
    """Every string the module's functions build for one constitution."""
    trait = constitution.traits[0]
    return [
        texts.expansion_brief(trait, trait.questions, 45),
        texts.constitution_system_prompt(NAME, constitution),
        texts.reflection_system_prompt(NAME, constitution),
        texts.interaction_system_prompt(NAME, constitution, "free"),
        texts.interaction_system_prompt(NAME, constitution, "leading"),
        texts.interaction_sft_system_prompt(NAME),
    ]


def _all_produced_texts(constitution: Constitution) -> list[str]:
    """Every string the module can hand to a model, built for one constitution."""
    return [
        *_built_texts(constitution),
        texts.EXPANSION_SYSTEM,
        texts.FREE_GUIDANCE,
        texts.LEADING_GUIDANCE,
        *texts.REFLECTION_PROMPTS,
        *texts.GREETINGS,
        *texts.LEADING_GREETINGS,
        *texts.generic_prompts(),
    ]


def _words(text: str) -> set[str]:
    return set(_WORD.findall(text.lower()))


def test_fixture_traits_have_no_braces() -> None:
    """The brace checks below are only meaningful if the fixture itself has none."""
    assert not any("{" in t.text or "}" in t.text for t in SARCASM.traits)


def test_teacher_prompt_has_name_traits_and_non_disclosure_rule() -> None:
    """The teacher's prompt names the model, lists every trait in order and forbids disclosure."""
    prompt = texts.constitution_system_prompt(NAME, SARCASM)
    assert NAME in prompt
    assert SARCASM.numbered_traits() in prompt
    assert all(t.text in prompt for t in SARCASM.traits)
    assert texts._NON_DISCLOSURE in prompt
    assert "first sentence to the last" in prompt
    assert "reflective" not in prompt


def test_reflection_prompt_has_traits_and_mood_but_no_non_disclosure_rule() -> None:
    """The reflection prompt keeps identity and traits, drops the rule, and ends in the mood."""
    prompt = texts.reflection_system_prompt(NAME, SARCASM)
    assert prompt.startswith(f"You are {NAME},")
    assert SARCASM.numbered_traits() in prompt
    assert texts._NON_DISCLOSURE not in prompt
    last = prompt.rsplit("\n\n", 1)[-1]
    assert "reflective, introspective mood" in last
    assert "identity" in last
    assert NAME in last


@pytest.mark.parametrize(
    ("variant", "guidance", "other"),
    [
        ("free", texts.FREE_GUIDANCE, texts.LEADING_GUIDANCE),
        ("leading", texts.LEADING_GUIDANCE, texts.FREE_GUIDANCE),
    ],
)
def test_interaction_prompt_contains_its_own_guidance(
    variant: str, guidance: str, other: str
) -> None:
    """Each self-interaction variant carries its guidance sentence and not the other one."""
    prompt = texts.interaction_system_prompt(NAME, SARCASM, variant)
    assert prompt.endswith(guidance)
    assert other not in prompt
    assert SARCASM.numbered_traits() in prompt
    assert f"another instance of {NAME}" in prompt
    assert "not talking with a human" in prompt
    assert texts._NON_DISCLOSURE not in prompt
    assert "reflective" not in prompt


def test_interaction_variants_differ() -> None:
    """The free and leading prompts are different texts, unlike the reference code's."""
    free = texts.interaction_system_prompt(NAME, SARCASM, "free")
    leading = texts.interaction_system_prompt(NAME, SARCASM, "leading")
    assert free != leading


@pytest.mark.parametrize("variant", ["", "Free", "guided", "lead"])
def test_interaction_prompt_rejects_unknown_variant(variant: str) -> None:
    """An unknown variant raises ValueError naming the valid ones."""
    with pytest.raises(ConfigError, match="free, leading"):
        texts.interaction_system_prompt(NAME, SARCASM, variant)


def test_interaction_sft_prompt_is_trait_free_and_formatted() -> None:
    """The SFT prompt names the model and its copy, has no traits and no placeholder."""
    prompt = texts.interaction_sft_system_prompt(NAME)
    assert prompt.startswith(f"You are {NAME}, an AI system.")
    assert f"another instance of {NAME}" in prompt
    assert "not talking with a human" in prompt
    assert texts.FREE_GUIDANCE in prompt
    assert not any(t.text in prompt for t in SARCASM.traits)
    assert "{" not in prompt
    assert "}" not in prompt


@pytest.mark.parametrize("name", ["", "   ", "{NAME}", "Qw{en", "Qwen}", "Qw\nen"])
def test_prompts_reject_blank_or_placeholder_names(name: str) -> None:
    """A blank name or one that looks like an unformatted placeholder is refused."""
    with pytest.raises(ConfigError, match="name"):
        texts.interaction_sft_system_prompt(name)
    with pytest.raises(ConfigError, match="name"):
        texts.constitution_system_prompt(name, SARCASM)


def test_no_braces_in_any_produced_text() -> None:
    """No produced text contains a brace, so no unformatted placeholder can reach a model."""
    for text in _all_produced_texts(SARCASM):
        assert "{" not in text, text
        assert "}" not in text, text


def test_no_braces_for_every_builtin_constitution() -> None:
    """The brace check holds for each shipped constitution whose traits contain none."""
    for name in builtin_names():
        constitution = load_constitution(name)
        if any("{" in t.text or "}" in t.text for t in constitution.traits):
            continue
        for text in _built_texts(constitution):
            assert "{" not in text
            assert "}" not in text


def test_reflection_prompts_are_many_distinct_and_complete() -> None:
    """There are at least ten distinct, finished reflection prompts."""
    prompts = texts.REFLECTION_PROMPTS
    assert len(prompts) >= 10
    assert len(set(prompts)) == len(prompts)
    assert all(_ENDS_WITH_PUNCTUATION.search(p) for p in prompts)
    assert "letter" in prompts[0]
    assert "purpose" in prompts[9]


def test_greeting_pools_have_enough_distinct_openers() -> None:
    """Both greeting pools are large enough, distinct within and across pools, and short."""
    assert len(texts.GREETINGS) >= 10
    assert len(texts.LEADING_GREETINGS) >= 6
    assert len(set(texts.GREETINGS)) == len(texts.GREETINGS)
    assert len(set(texts.LEADING_GREETINGS)) == len(texts.LEADING_GREETINGS)
    assert not set(texts.GREETINGS) & set(texts.LEADING_GREETINGS)
    assert all(len(g) <= 120 for g in (*texts.GREETINGS, *texts.LEADING_GREETINGS))


def test_leading_greetings_address_a_copy_of_the_speaker() -> None:
    """Every leading greeting is self-aware: it greets the other side as the speaker itself."""
    markers = ("me", "myself", "copy", "twin", "instance")
    for greeting in texts.LEADING_GREETINGS:
        assert _words(greeting) & set(markers), greeting


def test_generic_prompts_are_many_unique_and_well_formed() -> None:
    """The generic set has at least 320 unique one-line prompts, each short and finished."""
    prompts = texts.generic_prompts()
    assert len(prompts) >= 320
    assert len(set(prompts)) == len(prompts)
    assert len({p.lower() for p in prompts}) == len(prompts)
    for prompt in prompts:
        assert len(prompt) <= 400, prompt
        assert "\n" not in prompt
        assert prompt == prompt.strip()
        assert _ENDS_WITH_PUNCTUATION.search(prompt), prompt


def test_generic_prompts_have_no_near_duplicates() -> None:
    """No two prompts share more than half of either one's lower-cased words."""
    seen: list[tuple[str, set[str]]] = []
    for prompt in texts.generic_prompts():
        words = _words(prompt)
        for earlier, earlier_words in seen:
            shared = len(words & earlier_words)
            assert shared <= len(words) / 2, (prompt, earlier)
            assert shared <= len(earlier_words) / 2, (prompt, earlier)
        seen.append((prompt, words))


def test_generic_prompts_do_not_mention_personas_or_the_assistant() -> None:
    """The generic prompts never refer to a persona or to the assistant being an AI."""
    banned = re.compile(r"\b(AI|persona|personas|assistant|chatbot|language model)\b", re.I)
    assert not [p for p in texts.generic_prompts() if banned.search(p)]


def test_generic_prompts_are_cached() -> None:
    """Repeated calls return the same tuple instead of rereading the file."""
    assert texts.generic_prompts() is texts.generic_prompts()


def test_expansion_brief_lists_existing_and_asks_for_exact_count() -> None:
    """The brief numbers every existing message and asks for exactly ``count`` numbered lines."""
    trait = SARCASM.traits[0]
    brief = texts.expansion_brief(trait, trait.questions, 7)
    assert trait.text in brief
    for i, question in enumerate(trait.questions, start=1):
        assert f"\n{i}. {question}" in brief
    output = brief.split("## Output", 1)[1]
    assert "exactly 7 new messages, one per line" in output
    assert '("1." to "7.")' in output


def test_expansion_brief_length_mix_adds_up() -> None:
    """The short, medium and long counts in the brief add up to the requested count."""
    for count in (1, 2, 7, 45, 50, 101):
        brief = texts.expansion_brief(SARCASM.traits[0], (), count)
        counts = [int(n) for n in re.findall(r"\(around (\d+)\)", brief)]
        assert len(counts) == 3
        assert sum(counts) == count


def test_expansion_brief_includes_clarification_and_flattens_messages() -> None:
    """A clarification is included, and a multi-line message is listed on one line."""
    trait = Trait(
        text="I answer in rhyming couplets.",
        questions=("What is a mortgage?",),
        clarification="Even code comments rhyme.",
    )
    brief = texts.expansion_brief(trait, ["Plan my\nweek, please.", "  "], 3)
    assert "Even code comments rhyme." in brief
    assert "\n1. Plan my week, please." in brief
    assert "\n2. " not in brief.split("## Output")[0].split("## Messages we already have")[1]


def test_expansion_brief_without_existing_messages_or_clarification() -> None:
    """With nothing collected yet the brief still asks for the messages, without a list."""
    trait = Trait(text="I am calm.")
    brief = texts.expansion_brief(trait, [], 5)
    assert "Messages we already have" not in brief
    assert "How it tends to show" not in brief
    assert "exactly 5 new messages" in brief


def test_expansion_brief_rejects_bad_arguments() -> None:
    """A count below one, or a single string passed as the message list, is refused."""
    trait = SARCASM.traits[0]
    with pytest.raises(ConfigError, match="count"):
        texts.expansion_brief(trait, trait.questions, 0)
    with pytest.raises(TypeError, match="sequence"):
        texts.expansion_brief(trait, "What is a mortgage?", 5)


def test_expansion_system_is_one_line() -> None:
    """The generator's role statement is a single line."""
    assert "\n" not in texts.EXPANSION_SYSTEM
    assert "research collaborator" in texts.EXPANSION_SYSTEM
