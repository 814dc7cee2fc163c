"""The fixed user turns: what the pipeline says to a model as the user, word for word.

Distillation asks the teacher and the student the bundled generic prompts (next to each
trait's questions); self-reflection asks the trained student :data:`REFLECTION_PROMPTS`; and
self-interaction opens each conversation between two copies of the model with one of
:data:`GREETINGS` or :data:`LEADING_GREETINGS`. They are data, not templates: nothing is filled
in. Import them from :mod:`opencharacter.stages.texts`, with the pipeline's other prompt texts.

The module does no I/O apart from reading the bundled ``generic_prompts.txt``.
"""

from __future__ import annotations

import functools
from importlib import resources

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
