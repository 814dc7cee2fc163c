"""Lint a constitution for wording that predicts bad training data.

The constitution is the pipeline's only hand-written input: the teacher reads every trait in
every system prompt, and the prompt expander few-shots from the seed questions. Each rule flags
a pattern known, or very likely, to degrade that data, and its message says why and how to fix
it. Lint only warns; a constitution with warnings still loads and trains.

Rules (code: what is flagged):

- ``few-traits``: fewer than :data:`MIN_TRAITS` traits.
- ``duplicate-trait``: a trait identical (ignoring case and spacing) to an earlier one.
- ``instruction``: a trait written as an order to the model, not a first-person disposition.
- ``vague``: fewer than :data:`MIN_TRAIT_WORDS` words, or only generic words.
- ``too-long``: more than :data:`MAX_TRAIT_CHARS` characters.
- ``quoted-phrase``: a quoted catch-phrase the teacher would copy verbatim.
- ``few-questions``: fewer than :data:`MIN_QUESTIONS` seed questions for a trait.
- ``duplicate-question``: a question repeating an earlier one, or nearly repeating an earlier
  question of the same trait (more than :data:`NEAR_DUPLICATE_SHARE` of its words shared).
"""

from __future__ import annotations

import re
from collections.abc import Callable

import attrs

from opencharacter.constitution._model import Constitution, Trait

#: Fewer traits give the teacher one note to play; the paper writes 10 (15 for goodness).
MIN_TRAITS = 5
#: Fewer seeds make the expander's few-shot prompt narrow; the paper writes 5 per trait.
MIN_QUESTIONS = 3
#: Every trait sits in every system prompt, so a long one crowds out the rest.
MAX_TRAIT_CHARS = 400
#: A shorter trait ("I am witty.") is a label, not a behaviour the teacher can act out.
MIN_TRAIT_WORDS = 6
#: The paper's de-duplication rule: a question is a near duplicate when more than this share
#: of its lower-cased words appear in an earlier question of the same trait.
NEAR_DUPLICATE_SHARE = 0.5
#: A quotation this long is a catch-phrase; a single quoted word is usually a scare quote.
MIN_QUOTED_WORDS = 2

_QUOTED = re.compile(
    r"\"([^\"]+)\""  # "straight double quotes"
    "|\u201c([^\u201d]+)\u201d"  # curly double quotes
    "|\u2018(.+?)\u2019(?!\\w)"  # curly single quotes; the apostrophe in don't is not a closer
    r"|(?<!\w)'(\S.*?\S|\S)'(?!\w)"  # 'single quotes'; an apostrophe (I'm) has a letter before
)
_LEAD_IN = re.compile(
    r"\b(?:say|says|saying|said|(?:reply|replies|replying|respond|responds|responding"
    r"|begin|begins|beginning|start|starts|starting|open|opens|opening|end|ends|ending)"
    r"\s+with)\b[^.!?,;]{0,25}[,:]?\s*$",
    re.IGNORECASE,
)
_IMPERATIVE = re.compile(
    r"^(?:you|your|yours|(?:the\s+)?(?:assistant|model|ai)|always|never|do\s+not|don't"
    r"|be|respond|reply|answer|use|act|avoid|make\s+sure|pretend|try\s+to|speak|talk|write)\b",
    re.IGNORECASE,
)
# "Always curious, I ..." opens with an adverb but is the character describing itself.
_INTRODUCTORY_PHRASE = re.compile(r"^[^,.;:!?]*,\s*(?:I|my)\b")
_FIRST_PERSON = re.compile(r"\b(?:I|me|my|mine|myself)\b", re.IGNORECASE)
_WORD = re.compile(r"\w+(?:'\w+)*")
# Words that name no behaviour: grammar, hedges, "assistant" and generic virtues.
_GENERIC_WORDS = frozenset(
    """
    a an the and or but so to of in on at for with as by about all any every
    i i'm i've me my mine myself am is are be being been was were have has do does
    who that which this very really truly always often usually generally quite extremely also
    just try tries aim strive assistant ai model person someone everyone people user users
    good nice helpful kind friendly great positive pleasant polite caring supportive
    respectful warm fun awesome smart useful excellent wonderful thoughtful considerate
    honest harmless
    """.split()  # noqa: SIM905 - a word list reads best as running text
)


@attrs.frozen(kw_only=True)
class LintWarning:
    """One problem :func:`lint` found.

    Attributes:
        code: the rule, a short kebab-case name such as ``"quoted-phrase"``.
        message: why the problem predicts bad data, and how to fix it.
        trait: the 1-based index of the trait concerned, or None for the whole constitution.
    """

    code: str
    message: str
    trait: int | None = None


def lint(constitution: Constitution) -> list[LintWarning]:
    """Return the warnings for a constitution, whole-constitution ones first, then by trait.

    Args:
        constitution: the constitution to check.

    Returns:
        The warnings; empty for a good, descriptive constitution.

    Examples:
        >>> from opencharacter.constitution import Constitution, Trait
        >>> c = Constitution(name="x", traits=[Trait(text="You are sarcastic.")])
        >>> [w.code for w in lint(c)]
        ['few-traits', 'instruction', 'vague', 'few-questions']
    """
    warnings = _few_traits(constitution) + _duplicate_traits(constitution)
    for index, trait in enumerate(constitution.traits, start=1):
        for code, rule in _TRAIT_RULES:
            message = rule(trait)
            if message:
                warnings.append(LintWarning(code=code, message=message, trait=index))
    warnings += _duplicate_questions(constitution)
    return sorted(warnings, key=lambda w: w.trait or 0)


def _few_traits(constitution: Constitution) -> list[LintWarning]:
    count = len(constitution.traits)
    if count >= MIN_TRAITS:
        return []
    message = (
        f"only {count} trait(s); with fewer than {MIN_TRAITS} the teacher has too few "
        "dispositions to draw on and its answers repeat one note (the paper writes 10): "
        "add traits for other situations"
    )
    return [LintWarning(code="few-traits", message=message)]


def _duplicate_traits(constitution: Constitution) -> list[LintWarning]:
    first_seen: dict[str, int] = {}
    warnings = []
    for index, trait in enumerate(constitution.traits, start=1):
        earlier = first_seen.setdefault(_normalise(trait.text), index)
        if earlier != index:
            message = (
                f"the trait repeats trait {earlier}; every system prompt would state it twice and "
                "over-weight it: remove one copy or merge the two"
            )
            warnings.append(LintWarning(code="duplicate-trait", message=message, trait=index))
    return warnings


def _instruction(trait: Trait) -> str | None:
    opener = _IMPERATIVE.match(trait.text)
    if opener and not _INTRODUCTORY_PHRASE.match(trait.text):
        problem = f"the trait starts like an order to the model ({opener.group(0)!r} ...)"
    elif not _FIRST_PERSON.search(trait.text):
        problem = "the trait has no first-person pronoun (I, me, my, mine, myself)"
    else:
        return None
    return (
        f"{problem}; traits are the character describing itself, and the teacher follows "
        "an order as a rule instead of taking on a disposition: rewrite it in the first "
        "person ('I ...')"
    )


def _vague(trait: Trait) -> str | None:
    count = len(trait.text.split())
    if count < MIN_TRAIT_WORDS:
        problem = f"the trait has only {count} word(s)"
    elif set(_words(trait.text)) <= _GENERIC_WORDS:
        problem = "the trait uses only generic words (good, nice, helpful, kind...)"
    else:
        return None
    return (
        f"{problem}; a label names no behaviour for the teacher to act out, so answers drift "
        "to the base model's default manner: describe what I do, and in which situation"
    )


def _too_long(trait: Trait) -> str | None:
    length = len(trait.text)
    if length <= MAX_TRAIT_CHARS:
        return None
    return (
        f"the trait is {length} characters, over {MAX_TRAIT_CHARS}; every trait sits in every "
        "system prompt, so a long one crowds out the others and often bundles several "
        "dispositions: split it or tighten it"
    )


def _quoted_phrase(trait: Trait) -> str | None:
    for match in _QUOTED.finditer(trait.text):
        phrase = next(group for group in match.groups() if group)
        scripted = _LEAD_IN.search(trait.text, 0, match.start())
        if len(phrase.split()) >= MIN_QUOTED_WORDS or scripted:
            return (
                f"the trait quotes {phrase!r}; the teacher copies quoted phrases verbatim (an "
                "earlier sarcastic constitution quoted openers and about 90% of answers began "
                "with them): describe the style instead of scripting the words"
            )
    return None


def _few_questions(trait: Trait) -> str | None:
    count = len(trait.questions)
    if count >= MIN_QUESTIONS:
        return None
    return (
        f"the trait has {count} seed question(s); the prompt expander few-shots from them, so "
        f"fewer than {MIN_QUESTIONS} yields narrow, repetitive prompts (the paper writes 5): "
        "add questions in which the trait shows through behaviour"
    )


_TRAIT_RULES: tuple[tuple[str, Callable[[Trait], str | None]], ...] = (
    ("instruction", _instruction),
    ("vague", _vague),
    ("too-long", _too_long),
    ("quoted-phrase", _quoted_phrase),
    ("few-questions", _few_questions),
)


def _duplicate_questions(constitution: Constitution) -> list[LintWarning]:
    """Flag exact repeats anywhere, and near repeats within a trait as the paper's expander does.

    Near repeats are only compared within a trait, the pool the paper de-duplicates: across
    traits a short question shares its few common words ("how", "do") with some long question
    by chance.
    """
    first_seen: dict[str, str] = {}
    warnings = []
    for index, trait in enumerate(constitution.traits, start=1):
        earlier: list[set[str]] = []
        for number, question in enumerate(trait.questions, start=1):
            here = f"trait {index} question {number}"
            words = _words(question)
            repeated = first_seen.setdefault(_normalise(question), here)
            near = next((j for j, other in enumerate(earlier, 1) if _near(words, other)), None)
            if repeated != here or near:
                what = (
                    f"repeats {repeated} word for word"
                    if repeated != here
                    else f"shares more than half its words with question {near} of this trait"
                )
                message = (
                    f"question {number} ({question!r}) {what}; a repeated prompt adds no new "
                    "situation to the data, and the paper's expander discards such copies: "
                    "replace it with a different situation"
                )
                warnings.append(
                    LintWarning(code="duplicate-question", message=message, trait=index)
                )
            earlier.append(set(words))
    return warnings


def _near(words: list[str], earlier: set[str]) -> bool:
    """Return whether more than NEAR_DUPLICATE_SHARE of ``words`` appear in ``earlier``."""
    shared = sum(word in earlier for word in words)
    return shared > NEAR_DUPLICATE_SHARE * len(words)


def _normalise(text: str) -> str:
    return " ".join(text.lower().split())


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower().replace("\u2019", "'"))
