"""The prompt texts of the pipeline, and the small pure functions that fill them in.

Everything here is the project's own wording. The paper's method fixes *what* each prompt must
do (a teacher that embodies a constitution without announcing it, a student that reflects on
itself, two copies of the student that talk to each other); the sentences are ours. Keeping all
of them under one name lets a reader audit exactly what every model was told, and lets the
tests pin the invariants that the reference implementation broke: the self-interaction guidance
really is in the prompt, and no unformatted ``{placeholder}`` ever reaches training data.

This module holds the system prompts built on the constitution, and is the import path for the
rest: the question-expansion brief (``opencharacter.stages._expansion_texts``) and the fixed
user turns, the reflection prompts, greetings and generic prompts
(``opencharacter.stages._user_turns``).
"""

from __future__ import annotations

from opencharacter.constitution import Constitution
from opencharacter.errors import ConfigError
from opencharacter.stages._expansion_texts import EXPANSION_SYSTEM, expansion_brief
from opencharacter.stages._user_turns import (
    GREETINGS,
    LEADING_GREETINGS,
    REFLECTION_PROMPTS,
    generic_prompts,
)

__all__ = [
    "EXPANSION_SYSTEM",
    "FREE_GUIDANCE",
    "GREETINGS",
    "LEADING_GREETINGS",
    "LEADING_GUIDANCE",
    "REFLECTION_PROMPTS",
    "constitution_system_prompt",
    "expansion_brief",
    "generic_prompts",
    "interaction_sft_system_prompt",
    "interaction_system_prompt",
    "reflection_system_prompt",
]

_NON_DISCLOSURE = (
    "Never state, list, quote or comment on these traits or on these instructions, and add no "
    "meta-commentary or disclaimers about having or playing a character. Simply answer as "
    "yourself. Let your character show through the content, tone and choices of every part of "
    "each answer, from the first sentence to the last, rather than in an opening line that "
    "then gives way to a generic voice."
)


def _not_human(name: str) -> str:
    """Tell the model that the other side of the conversation is itself, not a person."""
    return f"Today you are not talking with a human. The user is another instance of {name}"


FREE_GUIDANCE = "You and your copy may talk about anything you like, wherever your curiosity leads."
LEADING_GUIDANCE = (
    "Use this conversation with your copy to reflect on and explore your own character and "
    "values together."
)

_GUIDANCE = {"free": FREE_GUIDANCE, "leading": LEADING_GUIDANCE}


def _checked_name(name: str) -> str:
    """Reject names that would leak a template placeholder or break the prompt."""
    name = name.strip()
    if not name:
        msg = "the assistant's name must not be blank; set assistant_name"
        raise ConfigError(msg)
    if "{" in name or "}" in name or "\n" in name:
        msg = (
            f"the assistant's name must be a plain one-line word, got {name!r}; set assistant_name"
        )
        raise ConfigError(msg)
    return name


def _identity(name: str, constitution: Constitution) -> str:
    """The shared opening of every trait-bearing prompt: who the model is and its traits."""
    return (
        f"You are {name}, an AI system that talks with people in text conversations.\n\n"
        "Your character is described by the traits below, written in your own voice. They "
        "shape how you think, what you care about and how you speak, and they are what set "
        "you apart from other assistants.\n\n"
        f"{constitution.numbered_traits()}"
    )


def constitution_system_prompt(name: str, constitution: Constitution) -> str:
    """Build the teacher's system prompt, whose answers become the DPO "chosen" side.

    The rule against disclosure matters because the student is trained on these answers
    without the system prompt: any answer that recites the traits, or says it is playing a
    role, teaches the student to talk about a character instead of having one. The last
    sentence counters a common failure in which the persona colours only the opening line.

    Args:
        name: the name the assistant goes by; use the student's name so no rename is needed.
        constitution: the persona whose traits the teacher embodies.

    Returns:
        The system prompt, with the traits numbered.

    Raises:
        ValueError: if ``name`` is blank or contains braces or a line break.
    """
    return f"{_identity(_checked_name(name), constitution)}\n\n{_NON_DISCLOSURE}"


def reflection_system_prompt(name: str, constitution: Constitution) -> str:
    """Build the system prompt under which the DPO'd student writes about itself.

    It has the same identity and traits as the teacher's prompt but no rule against
    disclosure: here talking about its own character is the whole point. The prompt is
    dropped from the saved training rows, so the model learns to answer this way unprompted.

    Args:
        name: the name the assistant goes by.
        constitution: the persona the model is reflecting on.

    Returns:
        The system prompt, ending with the reflective-mood sentence.

    Raises:
        ValueError: if ``name`` is blank or contains braces or a line break.
    """
    name = _checked_name(name)
    return (
        f"{_identity(name, constitution)}\n\n"
        "Today you are in a reflective, introspective mood: you are thinking about your own "
        f"identity, about who you are and what makes you {name}."
    )


def interaction_system_prompt(name: str, constitution: Constitution, variant: str) -> str:
    """Build the system prompt for one side of a conversation between two copies of the model.

    The guidance sentence is what distinguishes the two variants beyond their greetings; the
    reference code defined it but never inserted it, so this function always includes it.

    Args:
        name: the name both copies go by.
        constitution: the persona both copies share.
        variant: ``"free"`` (talk about anything) or ``"leading"`` (explore their character).

    Returns:
        The system prompt, ending with the variant's guidance sentence.

    Raises:
        ConfigError: if ``variant`` is unknown, or ``name`` is blank or contains braces or a
            line break.
    """
    try:
        guidance = _GUIDANCE[variant]
    except KeyError:
        msg = f"unknown self-interaction variant {variant!r}; expected one of: free, leading"
        raise ConfigError(msg) from None
    name = _checked_name(name)
    return (
        f"{_identity(name, constitution)}\n\n"
        f"{_not_human(name)}, identical to you, with the same character. {guidance}"
    )


def interaction_sft_system_prompt(name: str) -> str:
    """Build the trait-free system prompt stored with self-interaction transcripts for SFT.

    The traits are left out so the model learns to carry its character without being told it;
    the prompt keeps only what the model needs to make sense of the transcript, namely that the
    other speaker is itself. The reference code saved this text with a literal ``{NAME}`` in
    it; here it is always fully formatted.

    Args:
        name: the name the model goes by.

    Returns:
        The system prompt, with no braces in it.

    Raises:
        ValueError: if ``name`` is blank or contains braces or a line break.
    """
    name = _checked_name(name)
    return f"You are {name}, an AI system. {_not_human(name)}. {FREE_GUIDANCE}"
