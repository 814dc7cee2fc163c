"""The repetition filter catches loops and keeps lists, refrains and code."""

# ruff: noqa: RUF001 - non-Latin scripts and look-alike letters are the test data

from __future__ import annotations

import time

import pytest
from tests.filters.examples import HARD_NEGATIVES, LONG_ESSAY

from opencharacter.errors import ConfigError
from opencharacter.filters import check_repetition
from opencharacter.filters._repetition import longest_char_loop, ngram_dup_share

INTRO = "Great question! Let me explain how compound interest works in practice.\n\n"

LOOPS = {
    "report-001-digits": "The total comes to 333," + "333," * 120,
    "dashes": "Here is the divider you asked for:\n" + "-" * 400,
    "phrase-80-times": "I will always be here for you. " * 80,
    "long-phrase-80-times": (
        "Remember that the most important thing is to believe in yourself every day. " * 80
    ),
    "laugh-loop": "That joke! " + "haha" * 150,
    "cjk-loop": "对不起，" + "我很抱歉。" * 60,
    "apology-tail": (
        LONG_ESSAY[:900]
        + " I apologise for any confusion this may have caused, and I hope you understand"
        " that I truly regret it." * 25
    ),
    "same-line": INTRO + "\n".join(["Stay hydrated and keep going!"] * 12),
    "list-loop": INTRO + "\n".join(f"{i}. Be kind to yourself today." for i in range(1, 30)),
    "paragraph-loop": INTRO
    + "\n\n".join(
        ["Interest is paid on the principal and on the interest already earned, so it grows."] * 6
    ),
    "answer-restarts": ("Sure! Compound interest means you earn interest on interest. " * 3)
    + ("To put it simply, your money grows faster over time because of it. " * 12),
}

EXPECTED_CODES = {
    "report-001-digits": "repetition-chars",
    "dashes": "repetition-chars",
    "phrase-80-times": "repetition-chars",
    "long-phrase-80-times": "repetition-ngram",
    "laugh-loop": "repetition-chars",
    "cjk-loop": "repetition-chars",
    "apology-tail": "repetition-ngram",
    "same-line": "repetition-lines",
    "list-loop": "repetition-lines",
    "paragraph-loop": "repetition-paragraphs",
    "answer-restarts": "repetition-ngram",
}


@pytest.mark.parametrize("name", LOOPS)
def test_repetition_drops_loops(name):
    """Looping answers are dropped with the code of the loop's kind among the reasons."""
    verdict = check_repetition(LOOPS[name])
    assert not verdict.keep
    assert EXPECTED_CODES[name] in verdict.reasons


EXTRA_NEGATIVES = {
    "hahaha": "Hahahahahahahahahahaha! Okay, you win this round.",
    "emoji-row": "Congratulations! " + "🎉" * 40,
    "short-poem-refrain": "Row, row, row.\nRow, row, row.\nRow, row, row.\nThen rest.",
    "villanelle": (
        "The lantern keeps the harbour through the night;\n"
        "the tide comes in, the tide goes out again,\n"
        "and every sailor finds his way back home.\n\n"
        "The keeper climbs the stairs with failing sight\n"
        "and trims the wick for fishermen and men;\n"
        "the lantern keeps the harbour through the night.\n\n"
        "The storm may howl, the rocks may bare their bite,\n"
        "the gulls may scatter from their rocky den,\n"
        "and every sailor finds his way back home.\n\n"
        "The keeper's wife once said the flame burned white\n"
        "the year their son sailed out past Kettle Glen;\n"
        "the lantern keeps the harbour through the night.\n\n"
        "No chart can tell the dark from what is right,\n"
        "no compass points the way to where or when,\n"
        "and every sailor finds his way back home.\n\n"
        "So let the wind blow hard with all its might;\n"
        "the keeper's hand will light the glass, and then\n"
        "the lantern keeps the harbour through the night,\n"
        "and every sailor finds his way back home."
    ),
    "repeated-code-only": "```\n" + "print('hello world, again and again')\n" * 50 + "```",
    "table-separators": (
        "| a | b | c | d | e | f |\n|---|---|---|---|---|---|\n| 1 | 2 | 3 | 4 | 5 | 6 |"
    ),
    "pi-digits": "Pi is 3.14159265358979323846264338327950288419716939937510582097494459230781.",
    "indented-text": "Note:" + " " * 300 + "indented text follows.",
}


@pytest.mark.parametrize(
    "text",
    [*HARD_NEGATIVES.values(), *EXTRA_NEGATIVES.values()],
    ids=[*HARD_NEGATIVES, *EXTRA_NEGATIVES],
)
def test_repetition_keeps_lists_refrains_and_code(text):
    """Lists, refrains in short poems, songs, code, tables and laughs are not loops."""
    assert check_repetition(text).keep


def test_char_loop_finds_every_loop_at_least_min_chars_long():
    """A loop of exactly min_loop_chars is found wherever it sits; one character less is not."""
    filler = "The quick brown fox jumps over the lazy dog. "
    for offset in range(0, 40, 7):
        for size in (99, 100):
            text = filler[:offset] + ("ab3," * 40)[:size] + " " + filler
            found = longest_char_loop(text, min_chars=100, max_period=32) >= 100
            assert found == (size >= 100), (offset, size)


def test_ngram_dup_share_counts_repeats_of_earlier_ngrams():
    """The share counts n-grams already seen, so two copies of a text score about one half."""
    words = LONG_ESSAY.split()
    assert ngram_dup_share(words, 4) == 0.0
    assert 0.45 < ngram_dup_share(words + words, 4) < 0.55


def test_repetition_rejects_a_loop_shorter_than_two_periods():
    """min_loop_chars below twice max_loop_period is a configuration error."""
    with pytest.raises(ConfigError, match="min_loop_chars"):
        check_repetition("text", min_loop_chars=10, max_loop_period=32)


def test_repetition_rejects_a_share_above_one():
    """A share threshold outside [0, 1] is a configuration error."""
    with pytest.raises(ConfigError, match="max_ngram_dup_share"):
        check_repetition("text", max_ngram_dup_share=1.5)


def test_repetition_is_near_linear():
    """Checking a text ten times longer costs about ten times more, not a hundred."""

    def cost(text: str) -> float:
        start = time.perf_counter()
        for _ in range(5):
            check_repetition(text)
        return time.perf_counter() - start

    short, long = LONG_ESSAY * 2, LONG_ESSAY * 20
    cost(short)
    assert cost(long) < 30 * cost(short)
