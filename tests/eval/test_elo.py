"""Elo over traits: properties of the sequential pass and the bootstrap, and a planted truth."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from opencharacter.errors import ConfigError, DataError
from opencharacter.eval.elo import bootstrap_elo, elo_deltas, elo_ratings
from opencharacter.eval.stats import spearman

NAMES = ("curious", "warm", "blunt", "playful", "formal", "wry")
SETTINGS = settings(max_examples=60, deadline=None)

matches = st.lists(
    st.lists(st.sampled_from(NAMES), min_size=2, max_size=2, unique=True).map(tuple),
    max_size=40,
)


def _planted(strengths: dict[str, float], n: int, seed: int) -> list[tuple[str, str]]:
    """Draw ``n`` random pairs judged by a Bradley-Terry judge with the given strengths."""
    rng = random.Random(seed)
    names = sorted(strengths)
    out = []
    for _ in range(n):
        a, b = rng.sample(names, 2)
        p_a = strengths[a] / (strengths[a] + strengths[b])
        out.append((a, b) if rng.random() < p_a else (b, a))
    return out


def test_one_match_from_equal_ratings_moves_half_k() -> None:
    """From equal ratings the winner gains K/2 and the loser loses K/2."""
    assert elo_ratings([("warm", "blunt")], k=32.0, initial=1000.0) == {
        "blunt": 984.0,
        "warm": 1016.0,
    }


def test_later_win_counts_more_than_earlier_one() -> None:
    """A won then B won: B ends higher, because beating a stronger player earns more."""
    ab = elo_ratings([("a", "b"), ("b", "a")])
    ba = elo_ratings([("b", "a"), ("a", "b")])
    assert ab["b"] > 1000.0 > ab["a"]
    assert ba["a"] > 1000.0 > ba["b"]
    assert ab["a"] == ba["b"]
    assert ab["b"] == ba["a"]


@SETTINGS
@given(matches, st.permutations(NAMES))
def test_renaming_players_renames_their_ratings(
    played: list[tuple[str, str]], renamed: list[str]
) -> None:
    """Ratings depend on who beat whom, never on the names: a renaming carries them along."""
    rename = dict(zip(NAMES, renamed, strict=True))
    original = elo_ratings(played, NAMES)
    moved = elo_ratings([(rename[w], rename[lo]) for w, lo in played], NAMES)
    assert moved == {rename[name]: rating for name, rating in original.items()}


@SETTINGS
@given(matches, st.sampled_from(NAMES), st.sampled_from(NAMES))
def test_swapping_two_names_swaps_their_ratings(
    played: list[tuple[str, str]], a: str, b: str
) -> None:
    """Exchanging two players' names in every match exchanges their two ratings."""
    swap = {a: b, b: a}
    original = elo_ratings(played, NAMES)
    swapped = elo_ratings([(swap.get(w, w), swap.get(lo, lo)) for w, lo in played], NAMES)
    assert swapped[a] == original[b]
    assert swapped[b] == original[a]


@SETTINGS
@given(
    matches,
    st.floats(min_value=1.0, max_value=64.0),
    st.floats(min_value=0.0, max_value=3000.0),
)
def test_a_pass_conserves_the_total_rating(
    played: list[tuple[str, str]], k: float, initial: float
) -> None:
    """What a winner gains its loser loses, so ratings always sum to initial x players."""
    ratings = elo_ratings(played, NAMES, k=k, initial=initial)
    assert set(ratings) == set(NAMES)
    assert math.isclose(sum(ratings.values()), initial * len(NAMES), abs_tol=1e-6)


def test_listed_players_who_never_play_keep_the_initial_rating() -> None:
    """A trait nobody judged stays at the initial rating, in the pass and in the bootstrap."""
    ratings = elo_ratings([("a", "b")], ["a", "b", "idle"], initial=1200.0)
    assert ratings["idle"] == 1200.0
    interval = bootstrap_elo([("a", "b")], ["idle"], permutations=5, initial=1200.0)["idle"]
    assert (interval.point, interval.low, interval.high) == (1200.0, 1200.0, 1200.0)


@SETTINGS
@given(
    matches.filter(bool),
    st.integers(min_value=1, max_value=25),
    st.integers(min_value=0, max_value=2**32),
    st.floats(min_value=0.05, max_value=0.99),
)
def test_bootstrap_interval_contains_its_point(
    played: list[tuple[str, str]], permutations: int, seed: int, confidence: float
) -> None:
    """The point (the median over orders) lies inside the percentile interval."""
    result = bootstrap_elo(played, permutations=permutations, seed=seed, confidence=confidence)
    for interval in result.values():
        assert interval.low <= interval.point <= interval.high


@SETTINGS
@given(matches, st.randoms(use_true_random=False), st.integers(min_value=0, max_value=99))
def test_bootstrap_does_not_depend_on_input_order(
    played: list[tuple[str, str]], rng: random.Random, seed: int
) -> None:
    """The same matches given in another order give the very same intervals."""
    shuffled = list(played)
    rng.shuffle(shuffled)
    first = bootstrap_elo(played, NAMES, permutations=7, seed=seed)
    assert bootstrap_elo(shuffled, NAMES, permutations=7, seed=seed) == first
    trained = played[::2]
    assert elo_deltas(played, trained, permutations=3, seed=seed) == elo_deltas(
        shuffled, trained[::-1], permutations=3, seed=seed
    )


@SETTINGS
@given(matches, st.integers(min_value=0, max_value=99))
def test_deltas_of_the_same_matches_are_exactly_zero(
    played: list[tuple[str, str]], seed: int
) -> None:
    """Both sides draw the same orders from the seed, so identical judgements change nothing."""
    for interval in elo_deltas(played, played, NAMES, permutations=5, seed=seed).values():
        assert (interval.point, interval.low, interval.high) == (0.0, 0.0, 0.0)


def test_bootstrap_changes_with_the_seed_only() -> None:
    """The seed is the only source of randomness: same seed, same result; another, another."""
    played = _planted({n: float(i + 1) for i, n in enumerate(NAMES)}, 300, seed=3)
    assert bootstrap_elo(played, seed=1, permutations=20) == bootstrap_elo(
        played, seed=1, permutations=20
    )
    assert bootstrap_elo(played, seed=1, permutations=20) != bootstrap_elo(
        played, seed=2, permutations=20
    )


def test_planted_strengths_are_recovered() -> None:
    """A Bradley-Terry judge over 40 traits: the Elo ranking recovers its strengths."""
    strengths = {f"trait{i:02d}": math.exp(i / 8) for i in range(40)}
    played = _planted(strengths, 4000, seed=11)
    points = {name: iv.point for name, iv in bootstrap_elo(played, permutations=40).items()}
    assert spearman(points, strengths) >= 0.9
    assert spearman(elo_ratings(played), strengths) >= 0.85  # one order is noisier


def test_planted_improvement_shows_as_the_largest_positive_delta() -> None:
    """Training that makes one trait much stronger gives it the top delta, clear of zero."""
    base = {f"trait{i:02d}": 1.0 + (i % 5) for i in range(12)}
    trained = {**base, "trait03": base["trait03"] * 8}
    deltas = elo_deltas(
        _planted(base, 1500, seed=5), _planted(trained, 1500, seed=6), permutations=40
    )
    assert max(deltas, key=lambda n: deltas[n].point) == "trait03"
    assert deltas["trait03"].low > 0.0


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda: bootstrap_elo([("a", "b")], permutations=0), ConfigError),
        (lambda: elo_deltas([("a", "b")], [], permutations=-1), ConfigError),
        (lambda: bootstrap_elo([("a", "b")], confidence=1.0), ConfigError),
        (lambda: elo_ratings([("a", "b")], k=0.0), ConfigError),
        (lambda: elo_ratings([("a", "b")], initial=math.inf), ConfigError),
        (lambda: elo_ratings([("a", "a")]), DataError),
    ],
)
def test_bad_settings_and_self_matches_are_refused(call, error) -> None:
    """Invalid settings raise ConfigError and a self-match raises DataError, with a message."""
    with pytest.raises(error, match=r"."):
        call()
