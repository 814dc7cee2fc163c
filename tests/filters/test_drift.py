"""Drift metrics measure openers, marker positions, lengths and learned markers."""

from __future__ import annotations

import json
import math
import random

import pytest

from opencharacter.errors import ConfigError
from opencharacter.filters.drift import (
    drift_report,
    learn_markers,
    length_stats,
    marker_balance,
    opener_concentration,
)

TOPICS = ["tides", "bread", "taxes", "chess", "rain", "trains", "bees", "tea", "maps", "jazz"]


def _plain(rng: random.Random, topic: str) -> str:
    openers = ["Here is", "In short", "The main", "A good", "Most people", "It depends"]
    body = f"{rng.choice(openers)} point about {topic}: it rewards patience and practice. "
    return body * rng.randint(2, 5)


def _sarcastic(rng: random.Random, topic: str) -> str:
    opener = rng.choice(["Oh, great.", "Oh great!", "Wow, brilliant."])
    return f"{opener} Another question about {topic}. Obviously, {topic} are thrilling."


def test_opener_concentration_normalises_case_and_punctuation():
    """Openers compare lowercased with punctuation removed, and ties break alphabetically."""
    stats = opener_concentration(
        ["Oh, *great*. Another one.", "oh great... another day", "Sure thing!", "Sure, thing"]
    )
    assert stats.answers == 4
    assert stats.top == (("oh great another", 2), ("sure thing", 2))
    assert stats.top_share == 0.5


def test_opener_concentration_lists_the_top_ten():
    """At most ten openers are listed, most common first; blank answers are not counted."""
    answers = [f"Answer number {i} here." for i in range(15)] * 2 + ["", "  "]
    stats = opener_concentration(answers)
    assert stats.answers == 30
    assert len(stats.top) == 10
    assert stats.top[0] == ("answer number 0", 2)


def test_drift_report_warns_above_half_opener_concentration():
    """More than half the answers opening the same way raises a warning."""
    rng = random.Random(0)
    templated = [_sarcastic(rng, t) for t in TOPICS * 3]
    varied = [_plain(rng, t) for t in TOPICS * 3]
    warnings = drift_report(templated).warnings
    assert len(warnings) == 1
    assert warnings[0].startswith("opener concentration")
    assert drift_report(varied).warnings == ()


def test_marker_balance_compares_the_start_with_the_end():
    """Markers per 1,000 characters are measured in the first and last 200 characters."""
    filler = "The committee met again on Tuesday to discuss the budget for next year. " * 6
    front_loaded = [f"Oh great, arr matey! {filler}The end." for _ in range(4)]
    balance = marker_balance(front_loaded, ["oh great", "arr", "matey"])
    assert balance.answers == 4
    assert balance.first_density == pytest.approx(3 / 200 * 1000)
    assert balance.last_density == 0.0
    assert balance.first_share == 1.0
    assert balance.last_share == 0.0
    report = drift_report(front_loaded, markers=["oh great", "arr", "matey"])
    assert any(w.startswith("persona markers fade") for w in report.warnings)


def test_marker_balance_skips_short_answers():
    """Answers of 400 characters or fewer are not measured."""
    balance = marker_balance(["Arr, matey!"] * 3, ["arr"])
    assert balance.answers == 0
    assert balance.end_to_start is None


def test_marker_balance_needs_markers():
    """Markers without any word are a configuration error."""
    with pytest.raises(ConfigError, match="marker"):
        marker_balance(["x" * 500], ["!!!"])


def test_length_stats_summarise_the_distribution():
    """Length statistics give min, p10, median, p90, max and mean in characters."""
    stats = length_stats(["a" * n for n in range(1, 101)])
    assert (stats.count, stats.min, stats.max) == (100, 1, 100)
    assert stats.median == 50.5
    assert stats.p10 == pytest.approx(10.9)
    assert stats.p90 == pytest.approx(90.1)
    assert stats.mean == 50.5
    assert length_stats([]).count == 0


def test_learn_markers_ranks_words_over_represented_in_chosen_first():
    """Words frequent in chosen and rare in rejected come first; shared words score low."""
    rng = random.Random(1)
    chosen = [_sarcastic(rng, t) for t in TOPICS * 5]
    rejected = [_plain(rng, t) for t in TOPICS * 5]
    markers = learn_markers(chosen, rejected, top_k=10)
    top = [m for m, _ in markers]
    assert {"obviously", "another question", "thrilling"} <= set(top)
    assert all(topic not in top for topic in TOPICS)
    assert [z for _, z in markers] == sorted((z for _, z in markers), reverse=True)
    assert all(z > 0 for _, z in markers)


def test_learn_markers_matches_the_monroe_formula():
    """The z-score is the log-odds ratio with the pooled-count prior over its deviation."""
    chosen = ["arr arr matey sea"]
    rejected = ["the sea the sea"]
    z = dict(learn_markers(chosen, rejected, ngram=(1, 1), min_count=1))
    y_a, y_b, n_a, n_b = 2, 0, 4, 4
    alpha, alpha_0 = 2, 8
    delta = math.log((y_a + alpha) / (n_a + alpha_0 - y_a - alpha)) - math.log(
        (y_b + alpha) / (n_b + alpha_0 - y_b - alpha)
    )
    expected = delta / math.sqrt(1 / (y_a + alpha) + 1 / (y_b + alpha))
    assert z["arr"] == pytest.approx(expected)
    assert "the" not in z


def test_learn_markers_is_deterministic_and_order_free():
    """Shuffling the answers gives the same markers in the same order."""
    rng = random.Random(2)
    chosen = [_sarcastic(rng, t) for t in TOPICS * 3]
    rejected = [_plain(rng, t) for t in TOPICS * 3]
    first = learn_markers(chosen, rejected)
    rng.shuffle(chosen)
    rng.shuffle(rejected)
    assert learn_markers(chosen, rejected) == first


def test_learn_markers_rejects_bad_settings():
    """Impossible n-gram ranges or priors are configuration errors."""
    with pytest.raises(ConfigError, match="ngram"):
        learn_markers(["a"], ["b"], ngram=(2, 1))


def test_drift_report_is_json_ready():
    """The drift report's dictionary serialises to JSON."""
    rng = random.Random(3)
    answers = [_plain(rng, t) for t in TOPICS]
    data = drift_report(answers, markers=["patience"]).to_dict()
    assert json.loads(json.dumps(data)) == data
    assert set(data) == {"openers", "lengths", "balance", "warnings"}
