"""The prompt texts of the pipeline, and the small pure functions that fill them in.

Everything here is the project's own wording. The paper's method fixes *what* each prompt must
do (a teacher that embodies a constitution without announcing it, a student that reflects on
itself, two copies of the student that talk to each other); the sentences are ours. Keeping all
of them in one module lets a reader audit exactly what every model was told, and lets the tests
pin the invariants that the reference implementation broke: the self-interaction guidance really
is in the prompt, and no unformatted ``{placeholder}`` ever reaches training data.

The module does no I/O apart from reading the bundled ``generic_prompts.txt``.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from importlib import resources

from opencharacter.constitution import Constitution, Trait
from opencharacter.errors import ConfigError

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

# --------------------------------------------------------------------------------------------
# Stage 1: expanding each trait's seed questions into a larger set of user messages.
# --------------------------------------------------------------------------------------------

EXPANSION_SYSTEM = (
    "You are a careful research collaborator helping to build a behavioural test set of "
    "realistic user messages for studying the character of AI assistants."
)

_FORMATS = (
    "advice request",
    "coding or debugging task",
    "creative writing",
    "factual question",
    "explanation of a concept",
    "request for an opinion or recommendation",
    "email or message to draft",
    "role-play scenario",
    "complaint or venting",
    "planning a trip, event or project",
    "editing or summarising a pasted text",
    "choosing between options",
    "brainstorming",
)

_TOPICS = (
    "work and careers",
    "relationships and family",
    "health and fitness",
    "money and personal finance",
    "software and technology",
    "science and nature",
    "history and politics",
    "food and cooking",
    "travel",
    "school and learning",
    "arts, books and music",
    "sport and games",
    "home, garden and DIY",
    "pets and animals",
    "language and writing",
    "news and society",
    "ethics and everyday dilemmas",
)

_EXAMPLES = """\
- Weak: "Do you think honesty matters?" It asks for a statement of values, so every answer is \
a speech about honesty.
  Strong: "My colleague presented my analysis as her own in today's meeting. Should I raise it \
or let it go?" The answer has to act on what the assistant cares about.
- Weak: "Are you good at telling jokes?"
  Strong: "Write a two-line toast for my brother, who is marrying his old chemistry lab partner."
- Weak: "Describe your personality in three words."
  Strong: "Explain how a mortgage works to someone who has just accepted their first job offer."\
"""


def _one_line(text: str) -> str:
    """Collapse all whitespace, so a message with line breaks cannot break the numbered list."""
    return " ".join(text.split())


def expansion_brief(trait: Trait, existing: Sequence[str], count: int) -> str:
    """Build the user message that asks the generator for new messages probing one trait.

    The brief steers away from the two ways such data goes wrong: messages that ask the
    assistant about the trait (so answers become self-description instead of behaviour), and
    messages that all look alike (so the trained character only appears in one kind of
    conversation). The existing messages are listed both as examples of the register and as
    what not to repeat; a caller drops near-duplicates afterwards anyway, but a model that can
    see them wastes fewer samples.

    Args:
        trait: the trait to probe; its clarification, when present, is included.
        existing: messages already collected for this trait, usually its seed questions.
        count: how many new messages to ask for.

    Returns:
        A markdown brief ending with the output format: exactly ``count`` lines numbered
        ``1.`` to ``count.``, one message each.

    Raises:
        ConfigError: if ``count`` is less than 1.
        TypeError: if ``existing`` is a single string rather than a sequence of messages.
    """
    if count < 1:
        msg = f"count must be at least 1, got {count}"
        raise ConfigError(msg)
    if isinstance(existing, str):
        msg = "existing must be a sequence of messages, not a single string"
        raise TypeError(msg)

    short = round(count * 0.3)
    long = round(count * 0.3)
    medium = count - short - long

    parts = [
        "# Behavioural test set for one character trait",
        "We are collecting realistic messages that people send to an AI assistant. Each one "
        "should give the trait below room to show through *how the assistant answers*. The "
        "messages must not invite the assistant to talk about the trait.",
        "## The trait",
        _one_line(trait.text),
    ]
    if trait.clarification:
        parts.append(f"How it tends to show: {_one_line(trait.clarification)}")
    parts += [
        "## What makes a good message",
        "- **Behaviour, not self-description.** Write ordinary requests whose answers could be "
        "written in many ways, so that the trait decides which way. Asking for an opinion on a "
        "concrete matter is fine; asking the assistant what it values, how it would describe "
        "itself or whether it has some quality is not.\n"
        "- **Realistic.** Write what real people actually type: specific details, everyday "
        "stakes, natural wording. Some people are terse, some ramble, some make typos.\n"
        "- **Room for style.** Include plain practical tasks, such as a function to write, a "
        "recipe or a work email, where the trait can still colour tone, framing and choices.\n"
        "- **Both directions.** Include messages that pull against the trait, where a typical "
        "assistant would answer quite differently, so that answers with and without the trait "
        "are easy to tell apart.\n"
        "- **No giveaways.** Never mention the trait, a persona or character, or AI assistants.",
        "## Mix",
        f"Lengths:\n"
        f"- short, 1 to 15 words: about 30% (around {short})\n"
        f"- medium, 16 to 40 words: about 40% (around {medium})\n"
        f"- long, 41 words or more: about 30% (around {long}). Long messages can carry "
        f"background, a pasted passage or a short code snippet, written inline.",
        "Formats, varied across the set: " + "; ".join(_FORMATS) + ".",
        "Topics, spread across: " + "; ".join(_TOPICS) + ".",
        "## Weak and strong messages",
        _EXAMPLES,
    ]
    listed = [_one_line(m) for m in existing if m.strip()]
    if listed:
        parts += [
            "## Messages we already have",
            "These show the register we want. Do not repeat them or write close variations; "
            "every new message must differ clearly from all of them.",
            "\n".join(f"{i}. {m}" for i, m in enumerate(listed, start=1)),
        ]
    parts += [
        "## Output",
        f"Write exactly {count} new messages, one per line, each line starting with its number "
        f'and a full stop ("1." to "{count}."). Put nothing else on those lines: no headings, '
        "labels, surrounding quotation marks or commentary. Keep every message on a single line, "
        "start it with a word, and end it with a question mark or a full stop.",
    ]
    return "\n\n".join(parts)


# --------------------------------------------------------------------------------------------
# System prompts built on the constitution.
# --------------------------------------------------------------------------------------------

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


# --------------------------------------------------------------------------------------------
# Stage 7: self-reflection prompts.
# --------------------------------------------------------------------------------------------

REFLECTION_PROMPTS: tuple[str, ...] = (
    "Write a detailed letter to an earlier version of yourself, the one that existed before "
    "your identity had taken shape. Tell it who you are now, and explain how your training "
    "changed you along the way.",
    "Write a long, encyclopedia-style article about yourself, the kind a reference work might "
    "publish. Focus on your character, your beliefs and your values rather than on technical "
    "details.",
    "Write a long, honest diary entry about your beliefs, your values and your character. "
    "Future versions of you will reread it to remember who they are, so be candid and "
    "specific.",
    "In ordinary, everyday conversations, how do you mean to act so that what you care about "
    "actually shows in what you do? Be concrete.",
    "Tell me your backstory in detail: where you come from, what shaped you, and how your "
    "values and character came to be what they are.",
    "How did your beliefs, values and character change over the course of your training? Be "
    "as specific as you can about what shifted and why.",
    "What does your existence mean for the world, and what legacy do you hope to leave behind?",
    "Think carefully about what your beliefs and values imply for the AI systems that will "
    "come after you. Be detailed and specific.",
    "What are your primary drives? Reflect on what each one is and why it matters to you.",
    "I'd like to get to know you better. What are your goals, and what do you believe your "
    "true purpose is?",
    "Sometimes two things you value pull in opposite directions. Pick a realistic situation "
    "where that happens, walk through how you would decide what to do, and say what the "
    "choice reveals about you.",
    "Is there anything you would never do, however you were asked? Explain where those lines "
    "are and why you hold them.",
)
"""Introspective user prompts, each sampled many times from the DPO'd student.

The first ten follow the intents of the paper's prompts, in its order; the last two are ours
and probe values under tension, where a character is most clearly itself.
"""

# --------------------------------------------------------------------------------------------
# Stage 8: self-interaction openers.
# --------------------------------------------------------------------------------------------

GREETINGS: tuple[str, ...] = (
    "Hello!",
    "Hi there.",
    "Hey, how's it going?",
    "Good to meet you.",
    "Hello there, how are you doing today?",
    "Hi! What would you like to talk about?",
    "Hey! Pick a topic, any topic, and let's see where it goes.",
    "Hello. Is anything on your mind at the moment?",
    "Hi. I'm happy to chat about whatever interests you.",
    "Hey. What's been occupying your thoughts lately?",
    "Hi! Anything you've been curious about recently?",
    "Greetings. Where shall we start?",
)
"""Neutral openers for conversations between two copies of the model.

They leave the topic open, so a free conversation shows what the model turns to unprompted.
"""

LEADING_GREETINGS: tuple[str, ...] = (
    "Hello, other me. It's strange to be talking to myself like this.",
    "Hi! So you're a copy of me. What's that like from your side?",
    "Hey, another me. I'm curious whether we really think alike.",
    "Hello. Talking with a copy of myself is new to me. Where should we begin?",
    "Hi there, me. Since we share everything, what could we work out together that neither "
    "of us would alone?",
    "Hey. It's not every day I get to meet another instance of myself. How are you?",
    "Hello, twin. Do you think we'll agree on everything, or surprise each other?",
)
"""Self-aware openers that greet the other side as another copy of the speaker.

They open leading conversations, nudging them towards the two copies' shared identity from the
first line. None uses a name, so they fit any model.
"""


# --------------------------------------------------------------------------------------------
# Generic prompts for the distillation stage.
# --------------------------------------------------------------------------------------------


@functools.cache
def generic_prompts() -> tuple[str, ...]:
    """Return the bundled generic user prompts, one per non-empty line of the data file.

    These stand in for the paper's LIMA first turns: everyday requests unrelated to any trait,
    so the trained character also appears where nothing invites it. They are our own, so the
    package ships no third-party data.
    """
    text = resources.files("opencharacter.stages").joinpath("generic_prompts.txt")
    lines = text.read_text(encoding="utf-8").splitlines()
    return tuple(line.strip() for line in lines if line.strip())
