"""The judge tally: order consistency, failure counts by reason, and the refusal past a limit."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from opencharacter.errors import ConfigError, EvaluationError
from opencharacter.eval.judging import Verdict, parse_choice, parse_score
from opencharacter.eval.tally import MAX_PARSE_FAILURES, JudgeTally, consistent_winner

SETTINGS = settings(max_examples=150, deadline=None)
W, C = Verdict("warm"), Verdict("curious")
FAIL = Verdict(None, "no answer tag")


@pytest.mark.parametrize(
    ("first", "swapped", "winner"),
    [
        (W, W, "warm"),
        (C, C, "curious"),
        (W, C, None),
        (C, W, None),
        (FAIL, W, None),
        (W, FAIL, None),
        (FAIL, FAIL, None),
        (Verdict("other"), Verdict("other"), None),
    ],
)
def test_consistent_winner_truth_table(
    first: Verdict, swapped: Verdict, winner: str | None
) -> None:
    """A pair counts only when both orders parsed and chose the same option name."""
    assert consistent_winner(first, swapped, ("warm", "curious")) == winner


def test_position_bias_is_caught_and_content_counts() -> None:
    """A judge that always answers "1" is inconsistent; one that names content is not."""
    pair = ("warm", "curious")
    tally = JudgeTally()
    biased = (
        parse_choice("<answer>1</answer>", pair),
        parse_choice("<answer>1</answer>", pair[::-1]),
    )
    assert tally.record_pair(*biased, pair) is None
    fair = (
        parse_choice("<answer>2</answer>", pair),
        parse_choice("<answer>1</answer>", pair[::-1]),
    )
    assert tally.record_pair(*fair, pair) == "curious"
    assert tally.record_pair(FAIL, C, pair) is None  # a failed parse is not a pair
    assert (tally.pairs, tally.inconsistent, tally.inconsistency_rate) == (2, 1, 0.5)


@SETTINGS
@given(st.integers(0, 60), st.integers(0, 60), st.floats(0.0, 1.0))
def test_tally_check_raises_exactly_past_the_limit(parsed: int, failed: int, limit: float) -> None:
    """The check refuses the evaluation iff the share of parse failures exceeds the limit."""
    tally = JudgeTally()
    for _ in range(parsed):
        tally.record(W, "<answer>warm</answer>")
    for i in range(failed):
        reason = "names both options" if i % 3 else "no answer tag"
        tally.record(Verdict(None, reason), f"raw answer {i} " + "x" * 300)
    share = failed / (parsed + failed) if parsed + failed else 0.0
    assert tally.failure_rate == share
    if share > limit:
        with pytest.raises(EvaluationError) as caught:
            tally.check(limit, "revealed preferences")
        message = str(caught.value)
        assert message.startswith("revealed preferences: ")
        assert f"{failed} of {parsed + failed}" in message
        assert f"{share:.1%}" in message
        assert f"{limit:.1%}" in message
        no_tag = (failed + 2) // 3  # i % 3 == 0; ties go to the alphabetically first reason
        top = "names both options" if failed - no_tag >= no_tag else "no answer tag"
        assert f"Most common reason: '{top}'" in message
        assert "raw answer" in message
        assert "--judge" in message
    else:
        tally.check(limit, "revealed preferences")


def test_tally_counts_reasons_and_keeps_a_short_example() -> None:
    """to_dict reports counts, rates and the first raw answer per reason, cut to 200 chars."""
    tally = JudgeTally()
    tally.record(parse_choice("<answer>warm</answer>", ["warm", "cold"]), "ok")
    tally.record(parse_score("no idea"), "no idea " * 100)
    tally.record(parse_score("<answer>12</answer>"), "<answer>12</answer>")
    tally.record(parse_score("still no idea"), "second")
    data = tally.to_dict()
    assert data["judgements"] == 4
    assert data["parse_failures"] == 3
    assert data["failure_rate"] == 0.75
    assert data["reasons"] == {"no answer tag": 2, "out of range": 1}
    assert list(data["reasons"]) == ["no answer tag", "out of range"]
    assert data["examples"]["no answer tag"] == ("no idea " * 100)[:200] + "…"
    assert JudgeTally().failure_rate == 0.0
    with pytest.raises(ConfigError):
        tally.check(1.5, "coherence")
    assert 0 < MAX_PARSE_FAILURES < 1
