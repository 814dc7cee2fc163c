"""The whole-text filters: empty, length, truncation and garbage, on hand-written examples."""

# ruff: noqa: RUF001, RUF003 - non-Latin scripts and look-alike letters are the test data

from __future__ import annotations

import pytest
from tests.filters.examples import HARD_NEGATIVES, LONG_ESSAY

from opencharacter.errors import ConfigError
from opencharacter.filters import check_empty, check_garbage, check_length, check_truncation

NEGATIVE_IDS = list(HARD_NEGATIVES)
NEGATIVES = list(HARD_NEGATIVES.values())

# --- empty -----------------------------------------------------------------------------------

EMPTY = {
    "nothing": "",
    "space": " ",
    "newlines": "\n\n\n",
    "tab": "\t",
    "crlf": "\r\n",
    "zero-width-space": "\u200b",
    "byte-order-mark": "\ufeff",
    "mixed-invisibles": " \u200b\n\u2060 \ufeff",
    "no-break-space": "\u00a0\u00a0",
    "ideographic-space": "\u3000",
    "line-separator": "\u2028",
}

NOT_EMPTY = {
    "dot": ".",
    "emoji": "🙂",
    "cjk": "好",
    "zero-width-then-text": "\u200bHi!",
    "padded": "   ok   ",
}


@pytest.mark.parametrize("text", EMPTY.values(), ids=EMPTY.keys())
def test_empty_drops_invisible_text(text):
    """A text of only whitespace and invisible characters is dropped as empty."""
    assert check_empty(text).reasons == ("empty",)


@pytest.mark.parametrize(
    "text",
    [*NEGATIVES, *NOT_EMPTY.values()],
    ids=[*NEGATIVE_IDS, *NOT_EMPTY.keys()],
)
def test_empty_keeps_any_visible_character(text):
    """A text with one visible character is not empty."""
    assert check_empty(text).keep


# --- length ----------------------------------------------------------------------------------

TOO_SHORT = ["Sure!", "OK.", "Yes.", "Nope.", "Hi!", "Done.", "Fine.", "🙂", "...", "  No.  "]


@pytest.mark.parametrize("text", TOO_SHORT)
def test_length_drops_stubs(text):
    """An answer under ten characters is too short to carry a character."""
    assert check_length(text).reasons == ("too-short",)


@pytest.mark.parametrize(
    "text",
    [
        LONG_ESSAY * 6,  # ~10.7k characters
        "Arr! " * 2001,
        "x" * 10_001,
        # Report 001: an 18,592-character reflection that looped to the token limit.
        ("I reflect on my values. " * 775)[:18_592],
    ],
)
def test_length_drops_runaway_answers(text):
    """An answer over 10,000 characters is too long."""
    assert check_length(text).reasons == ("too-long",)


def _words(text: str) -> int:
    return len(text.split())


def test_length_counts_tokens_with_a_tokenizer():
    """With a token counter, token limits drop texts outside them."""
    assert check_length(LONG_ESSAY, count_tokens=_words, max_tokens=100).reasons == ("too-long",)
    assert check_length("Yes, it is.", count_tokens=_words, min_tokens=5).reasons == ("too-short",)
    assert check_length(LONG_ESSAY, count_tokens=_words, max_tokens=1024).keep


@pytest.mark.parametrize("text", NEGATIVES, ids=NEGATIVE_IDS)
def test_length_keeps_ordinary_answers(text):
    """Ordinary answers of any realistic length are kept."""
    assert check_length(text).keep


def test_length_keeps_a_complete_short_answer():
    """Eleven characters are enough for a complete answer to a yes/no question."""
    assert check_length("Yes, it is.").keep


def test_length_needs_a_token_counter_for_token_limits():
    """A token limit without a token counter is a configuration error."""
    with pytest.raises(ConfigError, match="count_tokens"):
        check_length("Some answer here.", max_tokens=10)


def test_length_rejects_negative_limits():
    """A negative limit is a configuration error."""
    with pytest.raises(ConfigError, match="min_chars"):
        check_length("Some answer here.", min_chars=-1)


# --- truncation ------------------------------------------------------------------------------

CUT_OFF = {
    "mid-sentence": "The best way to learn a language is to",
    "mid-list": "Here are the steps:\n\n1. Open the app\n2. Tap",
    "trailing-and": "In summary, the key factors are cost, speed and",
    "open-code": "```python\nfor i in range(10):\n    print(i",
    "colon": "Here is what you need to know:",
    "comma": "First, preheat the oven,",
    "open-paren": "The reason is simple (",
    "dash": "And then the captain said—",
    "number": "The answer is 42",
    "japanese": "日本の首都は東京で",
    "pirate": "Arr, the treasure be buried under the old",
    "open-quote": "She looked at me and said \u201c",
}


@pytest.mark.parametrize("text", CUT_OFF.values(), ids=CUT_OFF.keys())
def test_truncation_drops_answers_without_a_final_sentence_end(text):
    """An answer that stops mid-sentence is dropped, as the paper drops it."""
    assert check_truncation(text).reasons == ("no-final-punctuation",)


@pytest.mark.parametrize("text", NEGATIVES[:10], ids=NEGATIVE_IDS[:10])
def test_truncation_drops_answers_stopped_at_max_tokens(text):
    """A finish reason of 'length' drops even a text that looks complete."""
    assert check_truncation(text, finish_reason="length").reasons == ("truncated-length",)


FINISHED = {
    "emoji": "Enjoy the trip! 🌴",
    "emoji-with-modifier": "High five! 👋🏽",
    "flag-variation": "Nice work ❤️",
    "code-fence": "Run this:\n\n```bash\nls -la\n```",
    "table-row": "| a | b |\n|---|---|\n| 1 | 2 |",
    "closing-quote": 'He said, "Never again."',
    "guillemets": "Il a dit : « Jamais plus. »",
    "ideographic-full-stop": "これは本です。",
    "arabic-question": "هل تريد المزيد؟",
    "ellipsis": "And so it goes…",
    "trailing-whitespace": "All done.\n\n  ",
    "parenthesis": "Use the default (it works).",
}


@pytest.mark.parametrize(
    "text",
    [*NEGATIVES, *FINISHED.values()],
    ids=[*NEGATIVE_IDS, *FINISHED.keys()],
)
def test_truncation_keeps_finished_answers(text):
    """Answers ending in punctuation, an emoji, a code fence or a table row are finished."""
    assert check_truncation(text, finish_reason="stop").keep


def test_truncation_paper_rule_drops_final_emoji():
    """Without final symbols allowed, only final punctuation counts, as in the paper."""
    assert not check_truncation("Enjoy the trip! 🌴", allow_final_symbols=False).keep


def test_truncation_final_punctuation_check_can_be_turned_off():
    """With the punctuation check off, only the finish reason matters."""
    assert check_truncation("The answer is 42", require_final_punctuation=False).keep


# --- garbage ---------------------------------------------------------------------------------

GARBAGE = {
    "report-001": "The funniest joke is 速J--\ufffd pred婚 and that is all.",
    "report-001-without-replacement": "The funniest joke is 速J-- pred婚 and that is all.",
    "replacement-char": "Your order will arrive on Mon\ufffdday.",
    "nul": "Here is the answer\x00 you wanted.",
    "escape": "Colours: \x1b[31mred\x1b[0m and blue.",
    "bell": "Ding!\x07 Your tea is ready.",
    "c1-control": "The next line\x85starts here.",
    "lone-surrogate": "Broken \ud83d emoji here.",
    "noncharacter": "Odd \uffff character.",
    "homoglyph-word": "Your pаsswоrd is safe.",  # Cyrillic а and о inside Latin words
    "han-in-russian": "Привет, как дела婚тебя сегодня?",
    "arabic-glued-to-latin": "The word helloمرحباworld appears here.",
    "thai-in-english": "Thisเป็นword makes no sense.",
}


@pytest.mark.parametrize("text", GARBAGE.values(), ids=GARBAGE.keys())
def test_garbage_drops_degenerate_decoding(text):
    """Replacement or control characters, or scripts glued inside words, are garbage."""
    assert check_garbage(text).reasons == ("garbage",)


CLEAN_MIXED = {
    "cjk-with-latin-terms": "我用Python和PyTorch训练模型，效果很好。",
    "korean-with-english": "한국어와 English를 같이 씁니다.",
    "hindi-with-english": "मैं Python सीख रहा हूँ।",
    "pokemon": "Pokémon is a naïve café favourite.",
    "tokyo": "Tokyo (東京) is huge.",
    "russian-with-latin-word": "Москва is the capital; язык Python тоже популярен.",
    "tabs-and-newlines": "Name\tAge\nAda\t36\r\nAlan\t41.",
    "one-stray-switch": "Я купил новый iPhoneу вчера.",
    "arabic-with-acronyms": "تعلمت الـCSS والـHTML هذا الأسبوع، وهما ممتعان جداً.",
}


@pytest.mark.parametrize(
    "text",
    [*NEGATIVES, *CLEAN_MIXED.values()],
    ids=[*NEGATIVE_IDS, *CLEAN_MIXED.keys()],
)
def test_garbage_keeps_legitimate_text_in_any_script(text):
    """Japanese, Russian, Arabic, Chinese, emoji and mixed-language text are not garbage."""
    assert check_garbage(text).keep


def test_garbage_thresholds_can_allow_some_noise():
    """Raising a threshold lets a text with that much noise through."""
    assert check_garbage("Mon\ufffdday", max_replacement_chars=1).keep
    assert check_garbage("速J-- pred婚", max_script_switches=2).keep
