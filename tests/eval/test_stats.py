"""Small statistics: mean and SEM, Spearman with ties, quantiles and percentile intervals."""

from __future__ import annotations

import math
import statistics

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from opencharacter.errors import ConfigError
from opencharacter.eval.stats import Interval, mean_sem, percentile_interval, quantile, spearman

SETTINGS = settings(max_examples=100, deadline=None)
finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)
scores = st.dictionaries(st.text(min_size=1, max_size=3), finite, max_size=12)


@SETTINGS
@given(st.lists(finite, min_size=2, max_size=30))
def test_mean_sem_matches_the_textbook_formula(values: list[float]) -> None:
    """The SEM is the sample standard deviation over sqrt(n)."""
    mean, sem = mean_sem(values)
    assert math.isclose(mean, statistics.fmean(values), rel_tol=1e-9, abs_tol=1e-6)
    expected = statistics.stdev(values) / math.sqrt(len(values))
    assert math.isclose(sem, expected, rel_tol=1e-6, abs_tol=1e-6)


def test_mean_sem_of_tiny_inputs() -> None:
    """One value has no spread (SEM 0.0); no values give nan for both, not an error."""
    assert mean_sem([4.0]) == (4.0, 0.0)
    assert all(math.isnan(x) for x in mean_sem([]))


@SETTINGS
@given(scores)
def test_spearman_of_a_ranking_with_itself_is_one(a: dict[str, float]) -> None:
    """Identical scorings correlate exactly 1, unless undefined (under 2 keys, or constant)."""
    r = spearman(a, a)
    assert r == 1.0 or (math.isnan(r) and (len(a) < 2 or len(set(a.values())) == 1))


@SETTINGS
@given(st.lists(finite, min_size=2, max_size=12, unique=True))
def test_spearman_of_reversed_rankings_is_minus_one(values: list[float]) -> None:
    """Negating every score reverses the ranking and gives exactly -1."""
    a = {f"k{i}": v for i, v in enumerate(values)}
    assert spearman(a, {k: -v for k, v in a.items()}) == -1.0


@SETTINGS
@given(scores, scores)
def test_spearman_is_symmetric_and_bounded(a: dict[str, float], b: dict[str, float]) -> None:
    """spearman(a, b) == spearman(b, a), and it lies in [-1, 1] or is nan."""
    r = spearman(a, b)
    s = spearman(b, a)
    assert (math.isnan(r) and math.isnan(s)) or r == s
    assert math.isnan(r) or -1.0 <= r <= 1.0


@SETTINGS
@given(scores, scores)
def test_spearman_ignores_monotone_transforms(a: dict[str, float], b: dict[str, float]) -> None:
    """Only ranks matter: a strictly increasing transform of one side changes nothing."""
    r = spearman(a, b)
    t = spearman({k: v * 8 if v > 0 else v * 2 for k, v in a.items()}, b)  # exact in floats
    assert (math.isnan(r) and math.isnan(t)) or math.isclose(r, t, abs_tol=1e-12)


def test_spearman_averages_tied_ranks() -> None:
    """Ties share average ranks: ranks (1, 2.5, 2.5, 4) against (1, 2, 3, 4) give 0.9487."""
    a = {"w": 1.0, "x": 2.0, "y": 2.0, "z": 3.0}
    b = {"w": 1.0, "x": 2.0, "y": 3.0, "z": 4.0, "unshared": 9.0}
    assert math.isclose(spearman(a, b), 4.5 / math.sqrt(4.5 * 5.0))


def test_spearman_is_undefined_without_two_shared_keys_or_variation() -> None:
    """Fewer than two shared keys, or one constant side, give nan."""
    assert math.isnan(spearman({"a": 1.0, "b": 2.0}, {"a": 1.0, "c": 2.0}))
    assert math.isnan(spearman({"a": 1.0, "b": 1.0}, {"a": 1.0, "b": 2.0}))


@SETTINGS
@given(st.lists(finite, min_size=1, max_size=40), st.floats(0.0, 1.0), st.floats(0.0, 1.0))
def test_quantile_is_monotone_and_within_range(values: list[float], p: float, q: float) -> None:
    """Quantiles stay between min and max and never decrease with the fraction."""
    ordered = sorted(values)
    lo, hi = sorted((p, q))
    assert ordered[0] <= quantile(ordered, lo) <= quantile(ordered, hi) <= ordered[-1]
    assert quantile(ordered, 0.5) == pytest.approx(statistics.median(values), abs=1e-6)


@SETTINGS
@given(st.lists(finite, min_size=1, max_size=40), st.floats(0.05, 0.99))
def test_percentile_interval_holds_the_median(values: list[float], confidence: float) -> None:
    """The median of the samples always lies inside their percentile interval."""
    median = quantile(sorted(values), 0.5)
    interval = percentile_interval(values, median, confidence)
    assert interval.low <= interval.point <= interval.high


def test_percentile_interval_ends_and_refusals() -> None:
    """The 95% interval of 0..1000 is 25..975; confidences outside (0, 1) are refused."""
    interval = percentile_interval([float(x) for x in range(1001)], 500.0)
    assert interval.to_dict() == {"point": 500.0, "low": 25.0, "high": 975.0}
    empty = percentile_interval([], 1.0)
    assert empty.point == 1.0
    assert math.isnan(empty.low)
    assert math.isnan(empty.high)
    for bad in (0.0, 1.0, 1.5, math.nan):
        with pytest.raises(ConfigError, match="confidence"):
            percentile_interval([1.0], 1.0, bad)
    assert Interval(1.0, 0.0, 2.0).to_dict()["point"] == 1.0
