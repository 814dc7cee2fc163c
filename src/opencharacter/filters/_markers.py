"""Persona markers: which n-grams mark the persona, and where in an answer they sit.

:func:`learn_markers` finds the markers in the data itself, as the n-grams most
over-represented in chosen (persona) answers against rejected (plain) ones;
:func:`marker_balance` then measures whether they are spread through long answers or crowd
into the first sentence. :mod:`opencharacter.filters.drift` reports both with its other
metrics.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

import attrs

from opencharacter.errors import ConfigError
from opencharacter.filters._words import ngrams as _ngrams
from opencharacter.filters._words import words


@attrs.frozen
class MarkerBalance:
    """Where persona markers sit in long answers: the start against the end.

    Attributes:
        answers: answers long enough to be measured.
        first_density: markers per 1,000 characters in the first window of each answer.
        last_density: markers per 1,000 characters in the last window.
        first_share: share of answers with a marker in the first window.
        last_share: share of answers with a marker in the last window.
    """

    answers: int
    first_density: float
    last_density: float
    first_share: float
    last_share: float

    @property
    def end_to_start(self) -> float | None:
        """Return last_density / first_density, or ``None`` when the start has no marker."""
        return self.last_density / self.first_density if self.first_density else None

    def to_dict(self) -> dict[str, Any]:
        """Return JSON-ready data."""
        ratio = self.end_to_start
        return {
            "answers": self.answers,
            "first_density": round(self.first_density, 4),
            "last_density": round(self.last_density, 4),
            "first_share": round(self.first_share, 4),
            "last_share": round(self.last_share, 4),
            "end_to_start": None if ratio is None else round(ratio, 4),
        }


def _marker_set(markers: Iterable[str]) -> tuple[frozenset[str], range]:
    normalised = {" ".join(words(m)) for m in markers}
    normalised.discard("")
    if not normalised:
        msg = "need at least one marker with a word in it"
        raise ConfigError(msg)
    sizes = {m.count(" ") + 1 for m in normalised}
    return frozenset(normalised), range(min(sizes), max(sizes) + 1)


def marker_balance(
    answers: Iterable[str], markers: Iterable[str], *, window: int = 200, min_chars: int = 400
) -> MarkerBalance:
    """Return marker density in the first and last ``window`` characters of long answers.

    Markers are words or phrases (e.g. from :func:`learn_markers`), matched on the lowercased
    words of each window, so ``"Oh, great"`` matches the marker ``"oh great"``.

    Args:
        answers: the answer texts.
        markers: the persona markers.
        window: characters at each end. Default 200, as report 004 measured.
        min_chars: only answers longer than this count, so the windows do not overlap.
            Default 400.

    >>> b = marker_balance(["Arr, matey! " + "x " * 300 + "The end."], ["arr", "matey"])
    >>> b.first_density, b.last_density
    (10.0, 0.0)
    """
    if window < 1 or min_chars < 2 * window:
        msg = f"need window >= 1 and min_chars >= 2 * window, got {window} and {min_chars}"
        raise ConfigError(msg)
    wanted, sizes = _marker_set(markers)
    count = first_total = last_total = first_hit = last_hit = 0
    for answer in answers:
        if len(answer) <= min_chars:
            continue
        count += 1
        first = sum(1 for g in _ngrams(words(answer[:window]), sizes) if g in wanted)
        last = sum(1 for g in _ngrams(words(answer[-window:]), sizes) if g in wanted)
        first_total += first
        last_total += last
        first_hit += first > 0
        last_hit += last > 0
    if not count:
        return MarkerBalance(0, 0.0, 0.0, 0.0, 0.0)
    scale = 1000 / (count * window)
    return MarkerBalance(
        answers=count,
        first_density=first_total * scale,
        last_density=last_total * scale,
        first_share=first_hit / count,
        last_share=last_hit / count,
    )


def learn_markers(
    chosen: Sequence[str],
    rejected: Sequence[str],
    top_k: int = 50,
    ngram: tuple[int, int] = (1, 2),
    *,
    prior_scale: float = 1.0,
    min_count: int = 2,
) -> list[tuple[str, float]]:
    """Return the n-grams most over-represented in ``chosen`` against ``rejected``, with z-scores.

    The log-odds ratio with an informative Dirichlet prior (Monroe, Colaresi & Quinn 2008,
    "Fightin' words", eq. 16-22): for n-gram ``w`` with counts ``y_a`` in chosen and ``y_b``
    in rejected, totals ``n_a`` and ``n_b``, and prior ``alpha_w = prior_scale * (y_a + y_b)``
    (the pooled counts; ``alpha_0`` is their sum),

        delta_w = log((y_a + alpha_w) / (n_a + alpha_0 - y_a - alpha_w))
                - log((y_b + alpha_w) / (n_b + alpha_0 - y_b - alpha_w))
        z_w = delta_w / sqrt(1 / (y_a + alpha_w) + 1 / (y_b + alpha_w))

    The prior shrinks rare n-grams toward no difference, so a word seen twice does not outrank
    a persona word seen two hundred times.

    Args:
        chosen: persona answers (a stage's chosen side).
        rejected: plain answers (the rejected side).
        top_k: how many markers to return. Default 50: the seed's hand-written marker lists
            held 16-17 patterns per persona (seed-lessons §5.4); 50 leaves room for the
            variants a persona actually uses.
        ngram: smallest and largest n-gram size, in words. Default ``(1, 2)``: single words
            ("matey") and two-word catch-phrases ("oh great").
        prior_scale: prior strength relative to the pooled counts. Default 1.0: the prior
            weighs as much as the data, Monroe et al.'s informative prior from the combined
            corpus.
        min_count: fewest pooled occurrences for an n-gram to be scored. Default 2: an
            n-gram seen once cannot mark a persona, and skipping them halves the work.

    Returns:
        Up to ``top_k`` ``(ngram, z)`` pairs with ``z > 0``, highest ``z`` first, ties by n-gram.

    >>> chosen = ["Arr, the sea be calm, matey."] * 5
    >>> rejected = ["The sea is calm today."] * 5
    >>> [m for m, _ in learn_markers(chosen, rejected, top_k=3, ngram=(1, 1))]
    ['arr', 'be', 'matey']
    """
    low, high = ngram
    if not 1 <= low <= high or top_k < 0 or prior_scale <= 0 or min_count < 1:
        msg = (
            f"need 1 <= ngram[0] <= ngram[1], top_k >= 0, prior_scale > 0 and min_count >= 1; "
            f"got ngram={ngram}, top_k={top_k}, prior_scale={prior_scale}, min_count={min_count}"
        )
        raise ConfigError(msg)
    sizes = range(low, high + 1)
    counts_a: Counter[str] = Counter()
    counts_b: Counter[str] = Counter()
    for text in chosen:
        counts_a.update(_ngrams(words(text), sizes))
    for text in rejected:
        counts_b.update(_ngrams(words(text), sizes))
    n_a, n_b = counts_a.total(), counts_b.total()
    alpha_0 = prior_scale * (n_a + n_b)
    scored: list[tuple[str, float]] = []
    for gram, y_a in counts_a.items():
        y_b = counts_b[gram]
        if y_a + y_b < min_count or y_a == 0:
            continue
        alpha = prior_scale * (y_a + y_b)
        rest_a = n_a + alpha_0 - y_a - alpha
        rest_b = n_b + alpha_0 - y_b - alpha
        if rest_a <= 0 or rest_b <= 0:
            continue  # the only n-gram there is: no odds to compare
        delta = math.log((y_a + alpha) / rest_a) - math.log((y_b + alpha) / rest_b)
        z = delta / math.sqrt(1 / (y_a + alpha) + 1 / (y_b + alpha))
        if z > 0:
            scored.append((gram, z))
    scored.sort(key=lambda item: (-item[1], item[0]))
    return scored[:top_k]
