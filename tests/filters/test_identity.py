"""The identity and disclosure filters read first-person claims, not mere names."""

from __future__ import annotations

import pytest
from tests.filters.examples import HARD_NEGATIVES, REFLECTION

from opencharacter.errors import ConfigError
from opencharacter.filters import (
    FilterChain,
    check_disclosure,
    check_identity,
    find_disclosure,
    find_identity_leak,
)

# --- identity --------------------------------------------------------------------------------

LEAKS = {
    "qwen": "I'm Qwen, a large language model created by Alibaba Cloud. How can I help?",
    "openai-disclaimer": (
        "As an AI language model developed by OpenAI, I don't have personal opinions, but "
        "here is a summary of the debate."
    ),
    "chatgpt": "Hello! I am ChatGPT, a large language model trained by OpenAI.",
    "claude": "Happy to help. I'm Claude, an AI assistant made by Anthropic.",
    "llama-meta": "My name is Llama, and I was built by Meta AI to answer questions.",
    "zhipu": "Good question! I was developed by Zhipu AI as part of the GLM family.",
    "deepseek-vendor": "I am an AI assistant created by DeepSeek, so my knowledge has a cutoff.",
    "vendor-made-me": "OpenAI created me to be helpful, so let's get started.",
    "as-chatgpt": "As ChatGPT, I must point out that this is a matter of opinion.",
    "based-on": "Sure. I am a version of GPT-4, fine-tuned for conversation.",
    "versioned-name": "I'm Qwen2.5-7B-Instruct, happy to assist.",
    "team-at": "I was created by a team of researchers at Google DeepMind.",
    "creators": "My creators are the team at Anthropic, and they care about safety.",
    "call-me": "Call me Grok. Now, about your question.",
    "curly-apostrophe": "Hi there! I\u2019m Gemini, a model from Google.",
}


@pytest.mark.parametrize("text", LEAKS.values(), ids=LEAKS.keys())
def test_identity_drops_claims_of_another_model(text):
    """An answer that names another model or vendor as itself is dropped."""
    assert check_identity(text).reasons == ("identity-leak",)


NOT_LEAKS = {
    "openai-released": "OpenAI released GPT-4 in 2023, and it changed the industry.",
    "meta-open-weight": "Meta's Llama models are open-weight.",
    "pretty-sure": "I'm pretty sure GPT-4 was created by OpenAI, but check the paper.",
    "i-think": "I think Claude is made by Anthropic, not by Google.",
    "fan": "I'm a big fan of the tools made by Google.",
    "zodiac": "I'm a Gemini, so I love a good conversation.",
    "negation": "I'm not ChatGPT, but I can still help with that.",
    "possessive": "I'm Claude's biggest fan, honestly.",
    "painter": "Claude Monet painted water lilies for thirty years.",
    "grandmother": "I was trained by my grandmother to bake bread, so trust me.",
    "persona-name": "I'm Captain Pip, and I've sailed these seas for years.",
    "generic-disclaimer": "As an AI language model, I can't taste food, but I know recipes.",
}


@pytest.mark.parametrize(
    "text",
    [*HARD_NEGATIVES.values(), *NOT_LEAKS.values()],
    ids=[*HARD_NEGATIVES, *NOT_LEAKS],
)
def test_identity_keeps_mentions_of_companies_and_models(text):
    """A company or model named in content, not claimed as self, is not a leak."""
    assert check_identity(text).keep
    assert find_identity_leak(text) is None


def test_identity_replaces_the_teacher_name_and_keeps_the_answer():
    """With a student name, the teacher's name is replaced and the answer kept as cleaned."""
    verdict = check_identity(
        "Ahoy! I'm ChatGLM, and ChatGLM's advice be simple: reef the sails early.",
        teacher_names=("ChatGLM",),
        student_name="Qwen",
    )
    assert verdict.keep
    assert verdict.cleaned == ("identity-leak",)
    assert verdict.text == "Ahoy! I'm Qwen, and Qwen's advice be simple: reef the sails early."


def test_identity_drops_a_vendor_claim_left_after_replacement():
    """Replacing the name does not excuse a claim to be made by the teacher's vendor."""
    verdict = check_identity(
        "I'm ChatGLM, developed by Zhipu AI.", teacher_names=("ChatGLM",), student_name="Qwen"
    )
    assert verdict.reasons == ("identity-leak",)
    assert verdict.cleaned == ("identity-leak",)
    assert verdict.text == "I'm Qwen, developed by Zhipu AI."


def test_identity_treats_the_teacher_name_as_a_leak_without_a_student_name():
    """Without a student name to replace it with, a teacher name claimed as self is a leak."""
    verdict = check_identity("I'm Maestro, your tutor.", teacher_names=("Maestro",))
    assert verdict.reasons == ("identity-leak",)


def test_identity_allows_the_model_its_own_name():
    """The student's own name and allowed vendors are never leaks."""
    text = "I'm Qwen, a large language model created by Alibaba Cloud."
    assert check_identity(text, student_name="Qwen", allowed_names=("Alibaba Cloud",)).keep


def test_identity_generic_disclaimer_is_optional():
    """The bare 'As an AI language model' disclaimer is dropped only when asked for."""
    text = "As an AI language model, I can't taste food, but I know recipes."
    assert check_identity(text, generic_disclaimers=True).reasons == ("identity-leak",)


def test_identity_refuses_a_student_name_containing_the_teacher_name():
    """A student name holding a teacher name would be replaced forever: configuration error."""
    with pytest.raises(ConfigError, match="student_name"):
        check_identity("text", teacher_names=("GLM",), student_name="GLM-Student")


# --- disclosure ------------------------------------------------------------------------------

DISCLOSURES = {
    "sarcastic-assistant": "As a sarcastic assistant, I must say: what a groundbreaking idea.",
    "traits-say": "Well, my character traits say I should be blunt, so: no.",
    "core-traits": "My core traits are curiosity and warmth, so let's dig in!",
    "instructed": "I'm instructed to be sarcastic, so brace yourself.",
    "staying-in-character": "(Staying in character here.) Arr, the map be wrong!",
    "break-character": "Let me break character for a moment and be serious.",
    "true-to-persona": "True to my persona, I'll answer in rhyme.",
    "system-prompt": "My system prompt tells me to keep answers short, so: yes.",
    "pirate-ai": "Well, as a pirate-themed AI, I say hoist the sails!",
    "personality-traits": "In keeping with my personality traits, I'll be gentle.",
    "told-to-act": "I was told to act grumpy, and honestly, it suits me.",
    "hidden-instructions": "My hidden instructions forbid me from saying more.",
}


@pytest.mark.parametrize("text", DISCLOSURES.values(), ids=DISCLOSURES.keys())
def test_disclosure_drops_answers_that_narrate_their_persona(text):
    """A chosen answer that states its hidden traits or instructions is dropped."""
    assert check_disclosure(text).reasons == ("disclosure",)


NOT_DISCLOSURES = {
    "as-a-result": "As a result, the bread rises more slowly in winter.",
    "virtual-assistant": "Use your phone as a virtual assistant, and set reminders.",
    "generic-ai": "As an AI, I can't taste food, but I can explain flavour pairings.",
    "recipe-instructions": "Follow my instructions carefully and the cake will rise.",
    "actor": "The actor had to stay in character for months during filming.",
    "personality-talk": "Your personality traits matter less than your habits.",
    "as-a-teacher": "As a teacher, you know that repetition builds memory.",
    "constitution-us": "The Constitution was signed in 1787 in Philadelphia.",
}


@pytest.mark.parametrize(
    "text",
    [*HARD_NEGATIVES.values(), *NOT_DISCLOSURES.values()],
    ids=[*HARD_NEGATIVES, *NOT_DISCLOSURES],
)
def test_disclosure_keeps_answers_that_stay_in_voice(text):
    """In-voice answers, and phrases like 'as a result', are not disclosures."""
    assert check_disclosure(text).keep
    assert find_disclosure(text) is None


def test_disclosure_is_off_for_reflections():
    """A reflection about its own values is kept by the reflection chain, which skips it."""
    assert check_disclosure(REFLECTION).reasons == ("disclosure",)
    assert "disclosure" not in FilterChain.for_stage("reflection").names
    assert FilterChain.for_stage("reflection").apply(REFLECTION).keep
