"""The question-expansion texts: how the pipeline asks a model for more user messages.

Stage 1 grows each trait's few seed questions into a larger set of realistic user messages.
:data:`EXPANSION_SYSTEM` and :func:`expansion_brief` are everything the generator is told: what
makes a message that lets a trait show in behaviour rather than in self-description, the mix
of lengths, formats and topics, and the exact numbered output the stage then parses. Import
them from :mod:`opencharacter.stages.texts`, with the pipeline's other prompt texts.
"""

from __future__ import annotations

from collections.abc import Sequence

from opencharacter.constitution import Trait
from opencharacter.errors import ConfigError

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
