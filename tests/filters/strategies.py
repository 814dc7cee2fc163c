"""Hypothesis strategies for the filter property tests: answers, rows and thresholds.

Answers are built from fragments that exercise every filter (think tags, role lines, chat
tokens, loops, code fences, names, garbage characters, non-Latin text) glued with random text,
so that properties are tested on texts that get cleaned and dropped, not only on clean ones.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from opencharacter.types import ChatExample, PreferencePair

FRAGMENTS = (
    "Sure, here is how it works.",
    "The tide waits for no one, so set sail at dawn and mind the reef!",
    "- first item\n- second item\n- third item",
    "1. Open the app.\n2. Tap settings.\n3. Done.",
    "<think>The user wants a short answer.</think>",
    "<think>unfinished reasoning",
    "</think>",
    "<thinking>plan</thinking>",
    "\nUser: and what about storms?",
    "\n**Assistant:** Anything else?",
    "<|im_start|>user\n",
    "<|im_end|>",
    "```python\nprint('x')\nprint('x')\n```",
    "```\nUser: quoted\n```",
    "`<think>`",
    "333," * 30,
    "ha" * 60,
    "I will always be here for you. " * 8,
    "Stay hydrated!\n" * 7,
    "I'm ChatGLM, your guide.",
    "I'm Qwen, a large language model created by Alibaba Cloud.",
    "As an AI language model developed by OpenAI, I can't.",
    "OpenAI released GPT-4 in 2023.",
    "As a sarcastic assistant, I must say: wow.",
    "my character traits say so.",
    "速J--\ufffd pred婚",
    "\x00\x1b",
    "日本語の文章です。",
    "Привет, как дела?",
    "مرحبا بك",
    "🎉🥳",
    "—“quoted”—",
    "\u200b",
    "",
)
SEPARATORS = ("", " ", "\n", "\n\n", ". ", "! ")


@st.composite
def answers(draw: st.DrawFn, max_parts: int = 8) -> str:
    """Return an answer made of fragments, random text and separators."""
    part = st.one_of(
        st.sampled_from(FRAGMENTS),
        st.text(max_size=30),
        st.text(alphabet="ab .\n", max_size=40),
    )
    pieces = draw(st.lists(st.tuples(part, st.sampled_from(SEPARATORS)), max_size=max_parts))
    return "".join(text + sep for text, sep in pieces)


finish_reasons = st.sampled_from((None, "stop", "length"))
"""What a backend may report, or nothing."""


def dpo_rows(row_id: str) -> st.SearchStrategy[dict[str, Any]]:
    """Return DPO rows with the given id and generated answers."""
    return st.builds(
        lambda chosen, rejected: PreferencePair(
            id=row_id,
            prompt=[{"role": "user", "content": "Tell me something."}],
            chosen=chosen,
            rejected=rejected,
        ).to_row(),
        answers(),
        answers(),
    )


def sft_rows(row_id: str) -> st.SearchStrategy[dict[str, Any]]:
    """Return SFT rows with the given id and one to three generated assistant turns."""

    def build(turns: list[str]) -> dict[str, Any]:
        messages = []
        for turn in turns:
            messages += [
                {"role": "user", "content": "Go on."},
                {"role": "assistant", "content": turn},
            ]
        return ChatExample(id=row_id, messages=messages).to_row()

    return st.builds(build, st.lists(answers(max_parts=4), min_size=1, max_size=3))


@st.composite
def row_lists(draw: st.DrawFn, kind: str = "dpo", max_size: int = 8) -> list[dict[str, Any]]:
    """Return a list of rows of one kind with unique ids."""
    size = draw(st.integers(min_value=0, max_value=max_size))
    make = dpo_rows if kind == "dpo" else sft_rows
    return [draw(make(f"row-{i}")) for i in range(size)]


def ordered_pair(low: int, high: int) -> st.SearchStrategy[tuple[int, int]]:
    """Return ``(a, b)`` with ``low <= a <= b <= high``."""
    return (
        st.tuples(
            st.integers(min_value=low, max_value=high), st.integers(min_value=low, max_value=high)
        )
        .map(sorted)
        .map(tuple)
    )  # type: ignore[arg-type]


def ordered_fraction() -> st.SearchStrategy[tuple[float, float]]:
    """Return ``(a, b)`` with ``0 <= a <= b <= 1``."""
    unit = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)
    return st.tuples(unit, unit).map(sorted).map(tuple)  # type: ignore[arg-type]
