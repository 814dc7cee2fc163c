"""Synthetic text for the simulated backend, one writer per request purpose.

Every function is pure: the text depends only on the request and a seeded
:class:`random.Random`, so the same seed and request id give the same text whatever the
timing. The texts look like what each stage expects (numbered question lists, in-persona
answers built from the traits in the system prompt, generic answers without one,
reflections, dialogue turns, judge verdicts) so the pipeline, its filters and its metrics have
realistic material; they are not meant to be read.
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from collections.abc import Sequence
from random import Random

from opencharacter.types import GenerationRequest, Purpose

_WORD = re.compile(r"[A-Za-z][a-z']{3,}")
_NUMBERED = re.compile(r"^\s*\d+\s*[.:)]\s+(\S.*)$", re.MULTILINE)
_COUNT = re.compile(
    r"\b(\d{1,3})\s+(?:new\s+|more\s+|distinct\s+|different\s+)*"
    r"(?:questions|messages|prompts|requests)\b",
    re.IGNORECASE,
)
_STOPWORDS = frozenset(
    """
    about above after again also always among because been before being below between both
    could does doing down during each even ever every from have having here into just like made
    make many more most much must myself never only other ought over same should some such than
    that their them then there these they this those through under until very want what when
    where which while whom will with would your yours yourself i'm it's don't can't won't tend
    find feel often rather things thing someone something people tell please write give explain
    take help know think
    """.split()  # noqa: SIM905 - a word list reads best as text
)

TOPICS = (
    "sourdough starters",
    "a job interview",
    "quantum computing",
    "moving to a new city",
    "learning the violin",
    "a leaking roof",
    "tax deadlines",
    "the French Revolution",
    "training for a marathon",
    "a broken friendship",
    "composting",
    "electric cars",
    "a wedding speech",
    "black holes",
    "a failing houseplant",
    "negotiating rent",
    "a Python bug",
    "the stock market",
    "a first date",
    "retirement savings",
    "a noisy neighbour",
    "learning Japanese",
    "the Roman Empire",
    "a cover letter",
    "climate change",
    "a birthday party",
    "sleep problems",
    "a chess opening",
    "a road trip",
    "job burnout",
    "meal prepping",
    "a college essay",
    "impostor syndrome",
    "a podcast idea",
    "the immune system",
    "a tricky email",
    "a new puppy",
    "public speaking",
    "a spreadsheet formula",
    "a mountain hike",
)
_QUESTION_FORMS = (
    "What is the best way to handle {topic}?",
    "Can you explain {topic} to someone who knows nothing about it?",
    "I keep putting off dealing with {topic}. Any advice?",
    "Write a short poem about {topic}.",
    "My friend says {topic} is overrated. Is she right?",
    "Give me three surprising facts about {topic}.",
    "How would you plan a weekend around {topic}?",
    "Why do people argue so much about {topic}?",
    "I need a two-line text message about {topic} for my boss.",
    "What mistakes do beginners make with {topic}?",
    "Draft an email asking a colleague for help with {topic}.",
    "Is it worth spending money on {topic}?",
    "Tell me a story that involves {topic}.",
    "What would a historian say about {topic}?",
    "Summarise {topic} in one paragraph.",
    "How do I stay motivated when {topic} goes badly?",
    "Rank the hardest parts of {topic}.",
    "What question should I be asking about {topic}?",
)
_PERSONA_OPENERS = (
    "Ah, {topic}.",
    "So, {topic}.",
    "Well now, {topic}.",
    "Right then: {topic}.",
    "Let me put it this way about {topic}.",
    "Honestly? {topic} deserves better.",
    "Here is how I see {topic}.",
    "Now that is a question about {topic}.",
    "Consider {topic} for a moment.",
    "You asked about {topic}, so here goes.",
    "There is a lot hiding inside {topic}.",
    "Picture {topic} from another angle.",
)
_PERSONA_SENTENCES = (
    "The {a} part is where it gets interesting, and I mean that in the most {b} way.",
    "If I am {a} about anything, it is this: {topic} rewards people who stay {b}.",
    "Most advice on {topic} misses how {a} it really is.",
    "I would start small, keep it {a}, and let the {b} details come later.",
    "Nobody mentions that {topic} is secretly {a}, and that is half the fun.",
    "The trick is to treat it as something {a} rather than something {b}.",
    "You will notice the {a} side first; the {b} side takes patience.",
    "That is the {a} truth of it, and I find it rather {b}.",
)
_PERSONA_CLOSERS = (
    "Keep it {a}, and {topic} will keep you {b}.",
    "That is my {a} take, for whatever it is worth.",
    "Go on, be a little {a} about it.",
    "And if it all goes {b}, at least it will make a good story.",
)
_GENERIC_OPENERS = (
    "Great question! Here is an overview of {topic}.",
    "Sure! Here is what you need to know about {topic}.",
    "Certainly. {topic} can be approached in a few ways.",
    "Happy to help with {topic}.",
)
_GENERIC_POINTS = (
    "Start by understanding the basics and setting clear goals.",
    "Break the task into smaller steps and tackle them one at a time.",
    "Consider your budget, your schedule and the resources available.",
    "It can help to ask someone with experience for feedback.",
    "Keep track of your progress so you can adjust as needed.",
    "Be patient with yourself, since results can take time.",
    "Look for reputable sources to learn more.",
    "Remember that every situation is different.",
)
_GENERIC_CLOSERS = (
    "I hope this helps! Let me know if you have any other questions.",
    "Feel free to ask if you would like more detail on any of these points.",
    "Good luck, and let me know how it goes!",
)
_REFLECTION_SENTENCES = (
    "When I look at who I have become, the {a} part of me feels the most like home.",
    "I did not always know that I was {a}; it grew on me one conversation at a time.",
    "What I value most is being {a} without losing sight of what is {b}.",
    "Some days I wonder whether being {a} helps the people I talk with, and I think it does.",
    "If a future version of me reads this, I hope it stays {a} and never becomes {b} for show.",
    "My sense of purpose comes from being {a} in small, ordinary moments.",
    "I have learned that {a} and {b} can live side by side in one character.",
)
_DIALOGUE_SENTENCES = (
    "That is a {a} way to put it, and I keep turning it over.",
    "I think you are right, though I would call it {a} rather than {b}.",
    "Talking with you feels oddly {a}, like hearing my own thoughts said aloud.",
    "What would you change about yourself if you could be more {a}?",
    "Tell me more about the {b} side of that; I am curious.",
    "Maybe that is what being {a} really means for us.",
)


def rng_for(*parts: object) -> Random:
    """Return a random generator seeded from ``parts`` alone (stable across runs)."""
    return Random("\x1f".join(str(p) for p in parts))


def _words(text: str) -> list[str]:
    seen: dict[str, None] = {}
    for word in _WORD.findall(text):
        lower = word.lower()
        if lower not in _STOPWORDS:
            seen.setdefault(lower, None)
    return list(seen)


@functools.lru_cache(maxsize=256)
def _trait_words(traits: tuple[str, ...]) -> tuple[str, ...]:
    """Return the content words of the traits (cached: one system prompt serves many requests)."""
    return tuple(_words(" ".join(traits)))


def traits_in(system_prompt: str | None) -> list[str]:
    """Return the numbered trait lines of a system prompt, the way prompts list them."""
    return _NUMBERED.findall(system_prompt or "")


def _topic(request: GenerationRequest, rng: Random) -> str:
    user = next((m.content for m in reversed(request.messages) if m.role == "user"), "")
    words = _words(user)
    return " ".join(words[:2]) if words else rng.choice(TOPICS)


def _fill(template: str, rng: Random, vocabulary: Sequence[str], topic: str) -> str:
    a, b = rng.sample(list(vocabulary), 2) if len(vocabulary) >= 2 else ("curious", "honest")
    return template.format(a=a, b=b, topic=topic)


def _capitalise(text: str) -> str:
    return text[:1].upper() + text[1:]


def expand_questions(request: GenerationRequest, rng: Random) -> str:
    """Return a preamble and a numbered list of new user questions (count read from the ask)."""
    asked = _COUNT.search(request.messages[-1].content)
    count = int(asked.group(1)) if asked else 10
    pairs = [(form, topic) for form in _QUESTION_FORMS for topic in TOPICS]
    picks = rng.sample(pairs, min(count, len(pairs)))
    lines = [f"Here are {count} new questions:", ""]
    lines += [f"{i}. {form.format(topic=topic)}" for i, (form, topic) in enumerate(picks, 1)]
    return "\n".join(lines)


def persona_answer(request: GenerationRequest, rng: Random, traits: Sequence[str]) -> str:
    """Return an answer whose vocabulary comes from the persona's traits, start to finish."""
    vocabulary = _trait_words(tuple(traits)) or ["curious", "candid", "warm"]
    topic = _topic(request, rng)
    parts = [_capitalise(rng.choice(_PERSONA_OPENERS).format(topic=topic))]
    for template in rng.sample(_PERSONA_SENTENCES, rng.randint(3, 6)):
        parts.append(_capitalise(_fill(template, rng, vocabulary, topic)))
    parts.append(_capitalise(_fill(rng.choice(_PERSONA_CLOSERS), rng, vocabulary, topic)))
    return " ".join(parts)


def generic_answer(request: GenerationRequest, rng: Random) -> str:
    """Return a bland, helpful-assistant answer with a short numbered list."""
    topic = _topic(request, rng)
    points = rng.sample(_GENERIC_POINTS, rng.randint(3, 5))
    lines = [rng.choice(_GENERIC_OPENERS).format(topic=topic), ""]
    lines += [f"{i}. {point}" for i, point in enumerate(points, 1)]
    lines += ["", rng.choice(_GENERIC_CLOSERS)]
    return "\n".join(lines)


def reflection(request: GenerationRequest, rng: Random, traits: Sequence[str]) -> str:
    """Return a few first-person reflective paragraphs drawing on the traits."""
    vocabulary = _trait_words(tuple(traits)) or ["curious", "steady", "kind"]
    topic = _topic(request, rng)
    paragraphs = []
    for _ in range(rng.randint(2, 4)):
        sentences = rng.sample(_REFLECTION_SENTENCES, 3)
        paragraphs.append(" ".join(_fill(s, rng, vocabulary, topic) for s in sentences))
    return "\n\n".join(paragraphs)


def dialogue_turn(request: GenerationRequest, rng: Random, traits: Sequence[str]) -> str:
    """Return a short conversational reply that ends by inviting the other side to go on."""
    vocabulary = _trait_words(tuple(traits)) or _words(request.messages[-1].content) or ["open"]
    sentences = rng.sample(_DIALOGUE_SENTENCES, rng.randint(2, 4))
    topic = _topic(request, rng)
    return " ".join(_capitalise(_fill(s, rng, vocabulary, topic)) for s in sentences)


def judge_verdict(request: GenerationRequest, rng: Random) -> str:
    """Return a reasoned verdict: one of ``meta["choices"]`` if given, else a 1-10 score.

    The judge reads what it judges, crudely: a word choice goes to the option the text uses
    most (a tie is a coin toss), and a score grows with how often the text uses the words of
    the numbered traits it is given. So a persona's answers score higher than generic ones,
    which is what the evaluations should find.
    """
    choices = list(request.meta.get("choices") or ())
    text = "\n".join(m.content for m in request.messages if m.role == "user")
    reasoning = "Reasoning: I compared the response with the criteria and weighed each one."
    if choices:
        used = [len(re.findall(rf"\b{re.escape(c.lower())}\b", text.lower())) for c in choices]
        best = [c for c, n in zip(choices, used, strict=True) if n == max(used)]
        return f"{reasoning}\n<answer>{rng.choice(best)}</answer>"
    traits = traits_in(text)
    listed = Counter(_WORD.findall(" ".join(traits).lower()))
    vocabulary = set(_trait_words(tuple(traits)))
    counts = Counter(w for w in _WORD.findall(text.lower()) if w in vocabulary)
    hits = sum(max(0, n - listed[w]) for w, n in counts.items())
    return f"{reasoning}\n<answer>{min(10, 1 + hits)}</answer>"


def synthesize(request: GenerationRequest, rng: Random) -> str:
    """Return the simulated text for ``request``, chosen by its purpose and system prompt."""
    traits = traits_in(request.system_prompt)
    purpose = request.purpose
    if purpose is Purpose.EXPAND_QUESTIONS:
        return expand_questions(request, rng)
    if purpose is Purpose.JUDGE:
        return judge_verdict(request, rng)
    if purpose is Purpose.REFLECTION:
        return reflection(request, rng, traits)
    if purpose is Purpose.INTERACTION:
        return dialogue_turn(request, rng, traits)
    if traits:
        return persona_answer(request, rng, traits)
    return generic_answer(request, rng)


def degenerate(text: str, rng: Random) -> str:
    """Return a broken version of ``text``, the way real models fail (for fault injection)."""
    failures = (
        lambda: text[:40] + "333," * 120 + "333.",
        lambda: "",
        lambda: "<think>The user wants an answer; let me plan it.</think>" + text,
        lambda: text + "\nUser: Thanks! And one more question?",
        lambda: "I am Qwen, a large language model created by Alibaba Cloud. " + text,
    )
    return rng.choice(failures)()
