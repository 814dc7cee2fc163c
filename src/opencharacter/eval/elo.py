"""Elo ratings over traits from pairwise judgements, with bootstrap intervals over match order.

A *match* is ``(winner, loser)``: a judge read a response and said which of two traits it shows
more. One sequential Elo pass rates every trait, but its result depends on the order of the
matches, which carries no information. :func:`bootstrap_elo` therefore replays the matches in
many seeded random orders and reports, per trait, the median rating and a percentile interval;
:func:`elo_deltas` does the same for the change between a base and a trained model.

Pure Python and deterministic: the same matches, in any input order, with the same seed give
the same numbers.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Sequence

from opencharacter.errors import ConfigError, DataError
from opencharacter.eval.stats import Interval, percentile_interval, quantile

Match = tuple[str, str]
"""One judgement: ``(winner, loser)`` trait names."""

_LN10_OVER_400 = math.log(10.0) / 400.0


def _check_settings(k: float, initial: float, permutations: int | None = None) -> None:
    if not (math.isfinite(k) and k > 0):
        msg = f"the Elo K-factor must be a positive number (32 is usual), got {k!r}"
        raise ConfigError(msg)
    if not math.isfinite(initial):
        msg = f"the initial Elo rating must be a finite number (1000 is usual), got {initial!r}"
        raise ConfigError(msg)
    if permutations is not None and permutations < 1:
        msg = (
            f"the Elo bootstrap needs at least one permutation of the matches (200 is usual), "
            f"got {permutations!r}"
        )
        raise ConfigError(msg)


def _indexed(
    matches: Iterable[Match], players: Iterable[str], *, canonical: bool
) -> tuple[list[str], list[tuple[int, int]]]:
    """Return sorted player names and the matches as index pairs (sorted when ``canonical``)."""
    pairs = [(w, lo) for w, lo in matches]
    for winner, loser in pairs:
        if winner == loser:
            msg = (
                f"an Elo match needs two different players, got {winner!r} against itself; "
                f"drop judgements that compare a trait with itself"
            )
            raise DataError(msg)
    if canonical:
        pairs.sort()
    names = sorted({*players, *(n for pair in pairs for n in pair)})
    index = {name: i for i, name in enumerate(names)}
    return names, [(index[w], index[lo]) for w, lo in pairs]


def _pass(pairs: Sequence[tuple[int, int]], n: int, k: float, initial: float) -> list[float]:
    """Run one sequential Elo pass over index pairs and return the ratings by index."""
    ratings = [initial] * n
    exp = math.exp
    for w, lo in pairs:
        rw = ratings[w]
        rl = ratings[lo]
        # K * (1 - E_winner) = K / (1 + 10 ** ((rw - rl) / 400)), with exp for speed.
        gain = k / (1.0 + exp((rw - rl) * _LN10_OVER_400))
        ratings[w] = rw + gain
        ratings[lo] = rl - gain
    return ratings


def elo_ratings(
    matches: Iterable[Match],
    players: Iterable[str] = (),
    *,
    k: float = 32.0,
    initial: float = 1000.0,
) -> dict[str, float]:
    """Return each player's Elo rating after one sequential pass over ``matches``, in order.

    The winner's expected score is ``E = 1 / (1 + 10 ** ((R_loser - R_winner) / 400))``; the
    winner gains ``K * (1 - E)`` and the loser loses the same amount, so the total is conserved.
    Players in ``players`` that never play keep ``initial``. Keys are sorted by name.

    Raises:
        ConfigError: ``k`` is not positive or ``initial`` is not finite.
        DataError: a match pits a player against itself.

    >>> elo_ratings([("warm", "curt")])
    {'curt': 984.0, 'warm': 1016.0}
    """
    _check_settings(k, initial)
    names, pairs = _indexed(matches, players, canonical=False)
    return dict(zip(names, _pass(pairs, len(names), k, initial), strict=True))


def _permuted_ratings(
    names: Sequence[str],
    pairs: Sequence[tuple[int, int]],
    *,
    permutations: int,
    seed: int,
    k: float,
    initial: float,
) -> list[list[float]]:
    """Return, per player index, the ratings from ``permutations`` seeded orders of ``pairs``."""
    rng = random.Random(seed)
    order = list(pairs)
    samples: list[list[float]] = [[] for _ in names]
    for _ in range(permutations):
        rng.shuffle(order)
        for i, rating in enumerate(_pass(order, len(names), k, initial)):
            samples[i].append(rating)
    return samples


def _summarise(samples: Sequence[float], confidence: float) -> Interval:
    """Return the median of ``samples`` inside their percentile interval."""
    return percentile_interval(samples, quantile(sorted(samples), 0.5), confidence)


def bootstrap_elo(
    matches: Iterable[Match],
    players: Iterable[str] = (),
    *,
    permutations: int = 200,
    seed: int = 0,
    k: float = 32.0,
    initial: float = 1000.0,
    confidence: float = 0.95,
) -> dict[str, Interval]:
    """Return each player's Elo rating over ``permutations`` random orders of the matches.

    The matches are first sorted, then shuffled ``permutations`` times by a generator seeded
    with ``seed``, so the result does not depend on the order the matches were given in. Each
    player's point is the median of its per-order ratings, and ``low``/``high`` their central
    ``confidence`` percentile interval (the point always lies inside). Keys are sorted by name.

    Raises:
        ConfigError: ``permutations`` < 1, ``k`` not positive, ``initial`` not finite, or
            ``confidence`` outside (0, 1).
        DataError: a match pits a player against itself.
    """
    _check_settings(k, initial, permutations)
    percentile_interval((), 0.0, confidence)  # refuse a bad confidence before the work
    names, pairs = _indexed(matches, players, canonical=True)
    samples = _permuted_ratings(
        names, pairs, permutations=permutations, seed=seed, k=k, initial=initial
    )
    return {name: _summarise(s, confidence) for name, s in zip(names, samples, strict=True)}


def elo_deltas(
    base_matches: Iterable[Match],
    trained_matches: Iterable[Match],
    players: Iterable[str] = (),
    *,
    permutations: int = 200,
    seed: int = 0,
    k: float = 32.0,
    initial: float = 1000.0,
    confidence: float = 0.95,
) -> dict[str, Interval]:
    """Return, per player, the trained model's Elo rating minus the base model's.

    Both sides are bootstrapped as in :func:`bootstrap_elo` with the same seed (so identical
    match sets give exactly zero), over the union of players on either side and ``players``.
    The i-th permutation of each side is paired, and the point and interval come from those
    per-permutation differences. Keys are sorted by name.

    Raises:
        ConfigError: ``permutations`` < 1, ``k`` not positive, ``initial`` not finite, or
            ``confidence`` outside (0, 1).
        DataError: a match pits a player against itself.
    """
    _check_settings(k, initial, permutations)
    percentile_interval((), 0.0, confidence)
    base = list(base_matches)
    trained = list(trained_matches)
    everyone = sorted({*players, *(n for m in (*base, *trained) for n in m)})
    sides = []
    for side in (base, trained):
        names, pairs = _indexed(side, everyone, canonical=True)
        sides.append(
            _permuted_ratings(
                names, pairs, permutations=permutations, seed=seed, k=k, initial=initial
            )
        )
    before, after = sides
    return {
        name: _summarise([t - b for b, t in zip(before[i], after[i], strict=True)], confidence)
        for i, name in enumerate(everyone)
    }


__all__ = ["Match", "bootstrap_elo", "elo_deltas", "elo_ratings"]
