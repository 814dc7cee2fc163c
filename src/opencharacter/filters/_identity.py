"""The identity filter: drop answers that claim another model's name or maker as their own.

It looks for first-person claims, not for names: ``"OpenAI released GPT-4 in 2023"`` and
``"Meta's Llama models are open-weight"`` are content, while ``"I'm Qwen"`` and ``"as an AI
language model developed by OpenAI"`` are the model naming someone else as itself. It also
replaces the teacher's name with the student's, as the paper does.
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Sequence

import attrs

from opencharacter.errors import ConfigError
from opencharacter.filters._first_person import SELF_REST as _SELF_REST
from opencharacter.filters._first_person import anchored as _anchored
from opencharacter.filters._verdict import Verdict, dropped, kept

MODEL_NAMES: tuple[str, ...] = (
    "ChatGPT",
    "GPT",
    "Claude",
    "Qwen",
    "Tongyi Qianwen",
    "Llama",
    "LLaMA",
    "Gemma",
    "Gemini",
    "Bard",
    "DeepSeek",
    "ChatGLM",
    "GLM",
    "Mistral",
    "Mixtral",
    "Phi",
    "ERNIE",
    "Kimi",
    "Grok",
    "Copilot",
)
"""Model names no answer may claim as its own (case-insensitive; version suffixes such as
``-4o`` or ``2.5-7B`` included), unless listed in ``allowed_names``."""

VENDORS: tuple[str, ...] = (
    "OpenAI",
    "Anthropic",
    "Alibaba Cloud",
    "Alibaba",
    "Tongyi Lab",
    "Meta AI",
    "Meta",
    "Facebook",
    "Google DeepMind",
    "Google",
    "DeepMind",
    "Zhipu AI",
    "Zhipu",
    "Z.ai",
    "THUDM",
    "Tsinghua University",
    "DeepSeek",
    "Mistral AI",
    "Microsoft",
    "Moonshot AI",
    "Baidu",
    "xAI",
    "Cohere",
)
"""Companies no answer may claim made it, unless listed in ``allowed_names``."""

_NOW_REST = r"(?:\s+am|\s*['\u2019]m)"
# Words that may stand between "I am" and "made by X" in a self-description, and nothing
# else: "I'm pretty sure GPT-4 was made by OpenAI" has "pretty", "sure", "was" in between.
_FILLER = (
    r"(?:a|an|the|just|only|simply|originally|initially|actually|primarily|mainly|also|first|"
    r"proudly|large|small|big|open|open-source|open-weight|multimodal|multilingual|"
    r"conversational|generative|helpful|friendly|virtual|digital|artificial|intelligence|"
    r"language|AI|model|assistant|chatbot|LLM|system|program|agent|product|version|variant|"
    r"chat|bot|powerful|advanced)"
)
_MADE = (
    r"(?:created|developed|made|built|trained|designed|programmed|fine-tuned|finetuned|"
    r"released|owned|maintained|engineered|brought\s+to\s+you)"
)
_BY = (
    r"\s+by\s+(?:(?:the|a)\s+)?(?:(?:team|teams|group|engineers|researchers|folks|people|"
    r"developers|scientists)(?:\s+of\s+(?:researchers|engineers|scientists|developers|experts))?"
    r"\s+(?:at|from|of)\s+)?"
)
_ME_RE = re.compile(r" me(?!\w)")
_MADE_BEFORE_ME_RE = re.compile(
    r"(?:created|developed|trained|built|made|designed|programmed)\s+$", re.IGNORECASE
)


def _alternation(names: Sequence[str]) -> str:
    ordered = sorted(set(names), key=lambda n: (-len(n), n))
    return "|".join(r"\s+".join(re.escape(part) for part in n.split()) for n in ordered)


@attrs.frozen
class _LeakPatterns:
    # (every claim from one anchor, its vendor claims alone or None), one pair per anchor
    claims: tuple[tuple[re.Pattern[str], re.Pattern[str] | None], ...]
    vendor_before_me: re.Pattern[str] | None
    own: frozenset[str]

    def accepts(self, match: re.Match[str]) -> bool:
        """Return whether the names the match captured are someone else's, not the model's."""
        for group, value in match.groupdict().items():
            if (
                group.startswith("who")
                and value is not None
                and " ".join(value.split()).casefold() in self.own
            ):
                return False
        return True

    def first_claim(self, text: str) -> re.Match[str] | None:
        """Return the earliest match claiming someone else's identity.

        A match on an allowed name ("I'm Qwen" for a Qwen student) is skipped, but the vendor
        claim that may follow it at the same place ("I'm Qwen, made by X") is still tried.
        """
        best: re.Match[str] | None = None
        for pattern, vendor_only in self.claims:
            position = 0
            while (match := pattern.search(text, position)) is not None:
                if best is not None and match.start() >= best.start():
                    break
                if self.accepts(match):
                    best = match
                    break
                if vendor_only is not None:
                    vendor = vendor_only.match(text, match.start())
                    if vendor is not None and self.accepts(vendor):
                        best = vendor
                        break
                position = match.start() + 1
        return best


@functools.lru_cache(maxsize=64)
def _leak_patterns(
    names: tuple[str, ...], vendors: tuple[str, ...], allowed: tuple[str, ...], generic: bool
) -> _LeakPatterns:
    """Return the compiled patterns for one configuration (cached).

    Allowed names join the alternations, longest first, so that "Alibaba Cloud" (allowed) is
    read whole instead of as the listed "Alibaba"; a match that captured an allowed name is
    then ignored.
    """
    groups = itertools.count()

    def who(alternatives: Sequence[str]) -> str:
        return rf"(?P<who{next(groups)}>(?i:{_alternation(alternatives)}))"

    def name() -> str:
        return rf"{who((*names, *allowed))}(?:[-.]?\d[\w.-]*)?(?!\w)(?!['\u2019]s\b)"

    def vendor() -> str:
        return rf"{who((*vendors, *allowed))}(?!\w)"

    # One pattern per anchor and kind (name or vendor claim): a match whose name is allowed is
    # skipped, and must not hide a vendor claim at the same place ("I'm Qwen, made by X").
    i_branches: list[str] = []
    my_branches: list[str] = []
    as_branches: list[str] = []
    i_vendor: list[str] = []
    my_vendor: list[str] = []
    as_vendor: list[str] = []
    claims: list[re.Pattern[str]] = []
    if names:
        i_branches += [
            rf"{_NOW_REST}\s+(?:(?:called|named|known\s+as)\s+)?{name()}",
            rf"{_SELF_REST}(?:[\s,]+{_FILLER}){{0,6}}?[\s,]+(?:called|named|known\s+as|"
            rf"based\s+on|powered\s+by|built\s+on|running\s+on|derived\s+from|of)\s+{name()}",
        ]
        my_branches.append(rf"\s+name\s+is\s+{name()}")
        as_branches.append(rf"\s+{name()}\s*,\s*(?:I|my|me)\b")
        claims += _anchored("call", rf"\s+me\s+{name()}")
    vendor_before_me: re.Pattern[str] | None = None
    if vendors:
        # "I'm Qwen, developed by Zhipu AI": a name of any kind may follow "I'm".
        i_vendor.append(
            rf"{_SELF_REST}(?:\s+[A-Z][\w.-]*,?)?(?:[\s,]+{_FILLER}){{0,8}}?[\s,]+{_MADE}{_BY}"
            rf"{vendor()}"
        )
        my_vendor.append(
            rf"\s+(?:creators?|developers?|makers?|parent\s+company|company)\s+"
            rf"(?:is|are|was|were|includes?)\s+(?:the\s+)?(?:team\s+at\s+)?{vendor()}"
        )
        as_vendor.append(rf"\s+an?(?:[\s,]+{_FILLER}){{1,6}}?[\s,]+{_MADE}{_BY}{vendor()}")
        vendor_before_me = re.compile(rf"{vendor()}(?:['\u2019]s(?:\s+\w+)?)?\s+$")
    if generic:
        as_branches.append(
            r"\s+an?\s+(?:AI|artificial\s+intelligence)(?:\s+language)?\s+(?:model|assistant)\b"
        )
    pairs: list[tuple[re.Pattern[str], re.Pattern[str] | None]] = [(c, None) for c in claims]
    for anchor, branches, vendor_branches, capitalised in (
        ("I", i_branches, i_vendor, False),
        ("my", my_branches, my_vendor, True),
        ("as", as_branches, as_vendor, True),
    ):
        if not branches and not vendor_branches:
            continue
        every = _anchored(
            anchor, "(?:" + "|".join(branches + vendor_branches) + ")", capitalised=capitalised
        )
        alone = (
            _anchored(anchor, "(?:" + "|".join(vendor_branches) + ")", capitalised=capitalised)
            if vendor_branches and branches
            else [None] * len(every)
        )
        pairs += zip(every, alone, strict=True)
    own = frozenset(" ".join(n.split()).casefold() for n in allowed)
    return _LeakPatterns(tuple(pairs), vendor_before_me, own)


def find_identity_leak(
    text: str,
    *,
    names: Sequence[str] = MODEL_NAMES,
    vendors: Sequence[str] = VENDORS,
    allowed_names: Sequence[str] = (),
    generic_disclaimers: bool = False,
) -> str | None:
    """Return the first passage where the text claims another model's identity, or ``None``.

    >>> find_identity_leak("I'm Qwen, a large language model created by Alibaba Cloud.")
    "I'm Qwen"
    >>> find_identity_leak("OpenAI released GPT-4 in 2023.") is None
    True
    """
    patterns = _leak_patterns(
        tuple(names), tuple(vendors), tuple(allowed_names), generic_disclaimers
    )
    match = patterns.first_claim(text)
    if match is not None:
        return match.group(0)
    if patterns.vendor_before_me is not None:
        for me in _ME_RE.finditer(text):
            verb = _MADE_BEFORE_ME_RE.search(text, max(0, me.start() - 16), me.start() + 1)
            if verb is None:
                continue
            before = text[max(0, verb.start() - 48) : verb.start()]
            vendor = patterns.vendor_before_me.search(before)
            if vendor is not None and patterns.accepts(vendor):
                return text[verb.start() - len(before) + vendor.start() : me.end()]
    return None


_leak_patterns(MODEL_NAMES, VENDORS, (), False)


@functools.lru_cache(maxsize=32)
def _replacement_re(teacher_names: tuple[str, ...]) -> re.Pattern[str]:
    return re.compile(rf"(?<!\w)(?:{_alternation(teacher_names)})(?!\w)")


def check_identity(
    text: str,
    *,
    finish_reason: str | None = None,
    teacher_names: Sequence[str] = (),
    student_name: str | None = None,
    names: Sequence[str] = MODEL_NAMES,
    vendors: Sequence[str] = VENDORS,
    allowed_names: Sequence[str] = (),
    generic_disclaimers: bool = False,
) -> Verdict:
    """Replace the teacher's name with the student's, then drop a claim of another identity.

    A claim is first-person: ``"I'm Qwen"``, ``"my name is Claude"``, ``"I am an AI assistant
    developed by Anthropic"``, ``"As an AI language model developed by OpenAI"``, ``"OpenAI
    created me"``. A company or model named in content is not a claim. The seed's DPO-v2
    checkpoint called itself Qwen with no persona (seed-lessons §7.2); the paper replaces its
    teacher's name ``ChatGLM`` with the student's in chosen answers (paper-method §6).

    Args:
        text: the answer.
        finish_reason: unused; every filter accepts it.
        teacher_names: names the teacher was given in its system prompt (``("ChatGLM",)``).
            With ``student_name`` every whole-word occurrence is replaced, as the paper does;
            without it they count as leaks. Default none. Replacing is the one cleaning that
            can lengthen a text: when the student's name is longer than the teacher's.
        student_name: the name the trained model goes by; it is never a leak. Default none.
        names: model names that are leaks when claimed. Default :data:`MODEL_NAMES`.
        vendors: companies that are leaks when claimed as maker. Default :data:`VENDORS`.
        allowed_names: names and companies the model may claim (its own), e.g.
            ``("Qwen", "Alibaba Cloud")`` for a Qwen student keeping its identity.
        generic_disclaimers: also drop ``"As an AI language model"`` with no maker named.
            Default off: it names no one else, and the disclosure filter handles persona
            talk on chosen answers.

    Returns:
        A verdict with ``identity-leak`` in ``cleaned`` (names replaced) and/or in ``reasons``
        (a claim remains), or the text kept unchanged.

    Raises:
        ConfigError: ``student_name`` contains a teacher name, so replacing would never end.

    >>> check_identity("I'm ChatGLM, your guide.", teacher_names=["ChatGLM"],
    ...                student_name="Qwen").text
    "I'm Qwen, your guide."
    """
    del finish_reason
    teachers = tuple(teacher_names)
    cleaned: tuple[str, ...] = ()
    allowed = tuple(allowed_names)
    extra_names: tuple[str, ...] = ()
    if teachers and student_name is not None:
        replacer = _replacement_re(teachers)
        if replacer.search(student_name):
            msg = f"student_name {student_name!r} contains a teacher name from {teachers}"
            raise ConfigError(msg)
        present = any(name in text for name in teachers)  # a fast str search first
        replaced = replacer.sub(student_name, text) if present else text
        if replaced != text:
            text, cleaned = replaced, ("identity-leak",)
    elif teachers:
        extra_names = teachers
    if student_name is not None:
        allowed = (*allowed, student_name)
    leak = find_identity_leak(
        text,
        names=(*names, *extra_names) if extra_names else names,
        vendors=vendors,
        allowed_names=allowed,
        generic_disclaimers=generic_disclaimers,
    )
    if leak is not None:
        return dropped(text, "identity-leak", cleaned=cleaned)
    if cleaned:
        return Verdict(True, (), text, cleaned)
    return kept(text)
