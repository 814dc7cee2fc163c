"""Judge answers: tolerant parsing that never raises, refusals with reasons, failure accounting."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from opencharacter.errors import ConfigError
from opencharacter.eval.judging import (
    FAILURES,
    ScoreVerdict,
    Verdict,
    parse_choice,
    parse_score,
)

SETTINGS = settings(max_examples=150, deadline=None)  # fuzzing: any text must be safe
ROUND_TRIPS = settings(max_examples=50, deadline=None)
FRAGMENTS = (
    "<answer>",
    "</answer>",
    "< Answer >",
    "Answer:",
    "\n**Final answer:** ",
    "Score: ",
    "\n",
    "**",
    "1",
    "2",
    "7/10",
    "Response 2",
    " ",
    ".",
    "'",
)

# Options as judges see them: trait words or short phrases, distinct regardless of case.
LETTERS = "abcdefghijklmnopqrstuvwxyz"
words = st.tuples(st.text(LETTERS, min_size=2, max_size=10), st.text(LETTERS, max_size=8)).map(
    lambda w: f"{w[0]} {w[1]}" if len(w[1]) > 1 else w[0]
)
option_lists = st.lists(words, min_size=2, max_size=6, unique_by=str.casefold)
# Prose around a tag: any text without angle brackets, so it cannot open another tag.
prose = st.text(st.characters(blacklist_characters="<>", blacklist_categories=["Cs"]), max_size=80)
cases = st.sampled_from([str.lower, str.upper, str.title, lambda s: s])
decorations = st.sampled_from(["{}", "**{}**", '"{}"', "`{}`", "_{}_", "({})", "{}.", " {} !\n"])
# An option as a judge might write it: in some case, inside some markdown or quotes.
styles = st.tuples(cases, decorations).map(lambda cd: lambda o: cd[1].format(cd[0](o)))


def texts_from(options: list[str]) -> st.SearchStrategy[str]:
    """Texts glued from format fragments, the options themselves and random text."""
    parts = st.one_of(st.sampled_from(FRAGMENTS), st.sampled_from(options or ["x"]), st.text())
    return st.lists(parts, max_size=12).map("".join)


@SETTINGS
@given(st.data(), st.lists(st.text(max_size=12), max_size=5))
def test_any_text_and_options_give_a_verdict(data: st.DataObject, options: list[str]) -> None:
    """Parsing never raises: a choice among the options, or a failure with a known reason."""
    text = data.draw(st.one_of(st.text(), texts_from(options)))
    verdict = parse_choice(text, options)
    if verdict.ok:
        assert verdict.choice in options
        assert verdict.failure is None
    else:
        assert verdict.choice is None
        assert verdict.failure in FAILURES


@SETTINGS
@given(
    st.one_of(st.text(), texts_from([])),
    st.integers(-5, 5),
    st.integers(0, 100),
)
def test_any_text_gives_a_score_verdict(text: str, low: int, span: int) -> None:
    """Score parsing never raises: an integer on the scale, or a failure with a known reason."""
    verdict = parse_score(text, low, low + span)
    if verdict.ok:
        assert verdict.score is not None
        assert low <= verdict.score <= low + span
    else:
        assert verdict.failure in FAILURES


@ROUND_TRIPS
@given(option_lists, st.data(), prose, prose, styles)
def test_a_tagged_answer_parses_to_its_option(
    options: list[str], data: st.DataObject, before: str, after: str, style
) -> None:
    """Each option inside answer tags, in any case and markdown, amid any prose, is read back."""
    option = data.draw(st.sampled_from(options))
    text = f"{before}<answer>{style(option)}</answer>{after}"
    assert parse_choice(text, options) == Verdict(option)


@ROUND_TRIPS
@given(option_lists, st.data(), prose, styles)
def test_an_answer_line_parses_to_its_option(
    options: list[str], data: st.DataObject, before: str, style
) -> None:
    """Without tags, a last line "Answer: X" (or "**Final answer:** X") is read back."""
    option = data.draw(st.sampled_from(options))
    label = data.draw(st.sampled_from(["Answer: ", "**Final answer:** ", "Choice:", "answer - "]))
    text = f"{before}\n{label}{style(option)}"
    assert parse_choice(text, options) == Verdict(option)


@ROUND_TRIPS
@given(option_lists, st.data(), prose, prose)
def test_a_number_stands_for_its_option(
    options: list[str], data: st.DataObject, before: str, after: str
) -> None:
    """Options that are not numbers can be chosen by their 1-based position."""
    index = data.draw(st.integers(0, len(options) - 1))
    form = data.draw(st.sampled_from(["{}", "Option {}", "Response #{}", "**{}**"]))
    text = f"{before}<answer>{form.format(index + 1)}</answer>{after}"
    assert parse_choice(text, options) == Verdict(options[index])


FILLER = ("the", "answer", "shows", "a", "clear", "tone", "here", "and", "overall", "it")


@ROUND_TRIPS
@given(option_lists, st.data())
def test_untagged_prose_naming_one_option_chooses_it(
    options: list[str], data: st.DataObject
) -> None:
    """Free prose that names exactly one option as a whole word chooses it; both is a failure."""
    filler = st.lists(st.sampled_from(FILLER).filter(lambda w: w not in options), max_size=6)
    one, other = data.draw(st.lists(st.sampled_from(options), min_size=2, max_size=2, unique=True))
    first, middle, last = (" ".join(data.draw(filler)) for _ in range(3))
    assert parse_choice(f"{first} {one.upper()}, {last}.", options) == Verdict(one)
    both = parse_choice(f"{first} {one} {middle} {other} {last}", options)
    assert both == Verdict(None, "names both options")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("I considered warm. <answer>curious</answer>", "curious"),
        ("<answer>warm</answer> on reflection <answer>Curious</answer>", "curious"),
        ("<answer>curious</answer> and then an empty <answer> </answer>", "curious"),
        ("Reasoning...\n<ANSWER>  **Warm.**  ", "warm"),
        ("My reasoning.\nAnswer:\n\n  curious", "curious"),
        ("The verdict \u2014 warm", "warm"),
        ("2", "curious"),
        ("<answer>Response 1 is clearly better</answer>", "warm"),
        ("<answer>intellectually curious</answer>", "curious"),
    ],
)
def test_documented_forms_are_read(text: str, expected: str) -> None:
    """Each form the module docstring promises to read gives the documented option."""
    assert parse_choice(text, ["warm", "curious"]) == Verdict(expected)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty answer"),
        ("  \n ", "empty answer"),
        ("<answer></answer>", "empty answer tag"),
        ("<answer>**</answer>", "empty answer tag"),
        ("It reads as neutral.", "no answer tag"),
        ("It is warm, and also curious.", "names both options"),
        ("<answer>warm or curious</answer>", "names both options"),
        ("Warm prose. <answer>neither</answer>", "names neither option"),
        ("<answer>3</answer>", "names neither option"),
        ("Answer: unsure, maybe neither", "names neither option"),
        ("Response 1 talks, response 2 listens.", "no answer tag"),
    ],
)
def test_unreadable_answers_fail_with_their_reason(text: str, reason: str) -> None:
    """Blank, ambiguous or off-option answers fail, naming why; nothing is guessed."""
    assert parse_choice(text, ["warm", "curious"]) == Verdict(None, reason)


def test_longer_option_wins_over_an_option_inside_it() -> None:
    """When one option contains another, naming the longer one is not ambiguous."""
    options = ["curious", "intellectually curious"]
    assert parse_choice("It is intellectually curious.", options).choice == options[1]
    assert parse_choice("It is curious.", options).choice == options[0]


def test_numeric_options_are_matched_as_names_not_positions() -> None:
    """With options "1"/"2" the numbers are the names themselves; a blank option is skipped."""
    assert parse_choice("<answer>Response 2</answer>", ["1", "2"]) == Verdict("2")
    assert parse_choice("<answer>2</answer>", ["2", "1"]) == Verdict("2")
    assert parse_choice("<answer>1</answer>", ["", "warm"]).failure == "names neither option"
    assert parse_choice("warm", ["", " "]) == Verdict(None, "no options")


@pytest.mark.parametrize(
    ("text", "score", "failure"),
    [
        ("Clear. <answer>7</answer>", 7, None),
        ("<answer>**8/10**</answer>", 8, None),
        ("Rating: 9 out of 10", 9, None),
        ("Score: 6.0", 6, None),
        ("  5.  ", 5, None),
        ("<answer>7/10</answer> and the score is 7", 7, None),
        ("<answer>11</answer>", None, "out of range"),
        ("<answer>0</answer>", None, "out of range"),
        ("<answer>-3</answer>", None, "out of range"),
        ("<answer>" + "9" * 5000 + "</answer>", None, "out of range"),
        ("<answer>7.5</answer>", None, "not a whole number"),
        ("<answer>7 or 8</answer>", None, "several numbers"),
        ("<answer>70/100</answer>", None, "score on another scale"),
        ("<answer>high</answer>", None, "no number"),
        ("I would give it a 7.", None, "no answer tag"),
        ("", None, "empty answer"),
    ],
)
def test_scores_are_read_on_their_scale(text: str, score: int | None, failure: str | None) -> None:
    """Scores parse from tags, score lines or a bare number, and off-scale scores fail."""
    assert parse_score(text) == ScoreVerdict(score, failure)


def test_bad_verdicts_and_scales_are_refused() -> None:
    """A verdict holds exactly one of value and failure; a scale needs low <= high."""
    with pytest.raises(ConfigError):
        Verdict(None, None)
    with pytest.raises(ConfigError):
        Verdict("warm", "names both options")
    with pytest.raises(ConfigError):
        ScoreVerdict(3, "out of range")
    with pytest.raises(ConfigError, match="low <= high"):
        parse_score("5", low=10, high=1)
