"""Drift metrics: is the persona spread through the data, or stuck in a template?

Filters judge one answer at a time; these metrics judge a whole set of answers (a stage's
chosen answers, a model's evaluation replies) and warn about failures no single answer shows:

- **Opener concentration.** A sarcastic half-scale run opened 92.7% of its chosen answers and
  89.9% of its introspection answers with one of two catch-phrases quoted in the constitution,
  and the trained model opened every reply with one (seed-lessons §7.4-7.5).
- **Marker position balance.** The same run averaged 3.47 persona markers in the first 200
  characters of an answer and 0.21 in the last 200: a persona that lived in the first sentence.
- **Length distribution**, to compare stages and spot runaway or stub answers.
- **Learned markers.** Persona markers come from the data, not from hand-written regexes: the
  n-grams most over-represented in chosen (persona) answers against rejected (plain) ones,
  by the log-odds ratio with an informative Dirichlet prior (Monroe, Colaresi & Quinn 2008).

Everything is deterministic: ties are broken by the n-gram or opener text.

This module holds the opener and length metrics and the report that combines them; the two
marker metrics live in ``opencharacter.filters._markers`` and the word splitting every metric
shares in ``opencharacter.filters._words``. Import all of them from here.

>>> answers = ["Oh, great. Another question.", "oh great... another tax question", "Sure!"]
>>> openers = opener_concentration(answers)
>>> round(openers.top_share, 2), openers.top[0]
(0.67, ('oh great another', 2))
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

import attrs

from opencharacter.errors import ConfigError
from opencharacter.filters._markers import MarkerBalance, learn_markers, marker_balance
from opencharacter.filters._words import words

__all__ = [
    "DriftReport",
    "LengthStats",
    "MarkerBalance",
    "OpenerStats",
    "drift_report",
    "learn_markers",
    "length_stats",
    "marker_balance",
    "opener_concentration",
    "words",
]


def _ranked(counts: Counter[str], top: int) -> tuple[tuple[str, int], ...]:
    return tuple(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:top])


@attrs.frozen
class OpenerStats:
    """How concentrated the answers' openings are.

    Attributes:
        answers: answers with at least one word (the denominator).
        top_share: share of them starting with the single most common opener.
        top: the most common openers with their counts, most common first.
    """

    answers: int
    top_share: float
    top: tuple[tuple[str, int], ...]

    def to_dict(self) -> dict[str, Any]:
        """Return JSON-ready data."""
        return {
            "answers": self.answers,
            "top_share": round(self.top_share, 4),
            "top": [[opener, count] for opener, count in self.top],
        }


def opener_concentration(
    answers: Iterable[str], *, opener_words: int = 3, top: int = 10
) -> OpenerStats:
    """Return the share of answers opening with the most common opener, and the top openers.

    An opener is an answer's first ``opener_words`` words, lowercased, punctuation removed
    (``"Oh, *great*."`` and ``"oh great"`` are the same opener); shorter answers use all their
    words.

    Args:
        answers: the answer texts.
        opener_words: words per opener. Default 3.
        top: how many openers to list. Default 10.
    """
    if opener_words < 1 or top < 0:
        msg = f"need opener_words >= 1 and top >= 0, got {opener_words} and {top}"
        raise ConfigError(msg)
    counts: Counter[str] = Counter()
    for answer in answers:
        head = words(answer[: 40 * opener_words])
        if len(head) <= opener_words:  # the cut may have split the last word: use it all
            head = words(answer)
        head = head[:opener_words]
        if head:
            counts[" ".join(head)] += 1
    total = sum(counts.values())
    ranked = _ranked(counts, max(top, 1))
    share = ranked[0][1] / total if total else 0.0
    return OpenerStats(answers=total, top_share=share, top=ranked[:top])


@attrs.frozen
class LengthStats:
    """The distribution of answer lengths in characters (all zero for no answers).

    Percentiles interpolate linearly between the nearest ranks.
    """

    count: int
    min: int
    p10: float
    median: float
    p90: float
    max: int
    mean: float

    def to_dict(self) -> dict[str, Any]:
        """Return JSON-ready data."""
        return {
            k: round(v, 2) if isinstance(v, float) else v for k, v in attrs.asdict(self).items()
        }


def _percentile(ordered: Sequence[int], fraction: float) -> float:
    position = fraction * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def length_stats(answers: Iterable[str]) -> LengthStats:
    """Return min, 10th percentile, median, 90th percentile, max and mean length in characters.

    >>> length_stats(["a" * n for n in (10, 20, 30, 40, 50)]).median
    30.0
    """
    ordered = sorted(len(a) for a in answers)
    if not ordered:
        return LengthStats(0, 0, 0.0, 0.0, 0.0, 0, 0.0)
    return LengthStats(
        count=len(ordered),
        min=ordered[0],
        p10=_percentile(ordered, 0.1),
        median=_percentile(ordered, 0.5),
        p90=_percentile(ordered, 0.9),
        max=ordered[-1],
        mean=sum(ordered) / len(ordered),
    )


@attrs.frozen
class DriftReport:
    """Drift metrics for one set of answers, with warnings worth a look.

    Attributes:
        openers: opener concentration.
        lengths: the length distribution.
        balance: marker position balance, when markers were given.
        warnings: human-readable warnings, empty when nothing looks wrong.
    """

    openers: OpenerStats
    lengths: LengthStats
    balance: MarkerBalance | None
    warnings: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """Return JSON-ready data."""
        return {
            "openers": self.openers.to_dict(),
            "lengths": self.lengths.to_dict(),
            "balance": None if self.balance is None else self.balance.to_dict(),
            "warnings": list(self.warnings),
        }


def drift_report(
    answers: Sequence[str],
    *,
    markers: Iterable[str] | None = None,
    max_opener_share: float = 0.5,
    min_end_to_start: float = 0.25,
) -> DriftReport:
    """Return the drift metrics of ``answers`` and warn where they look degenerate.

    Args:
        answers: the answer texts.
        markers: persona markers for the position balance (e.g. the n-grams of
            :func:`learn_markers`); without them the balance is not measured.
        max_opener_share: warn when more answers than this share open with one opener.
            Default 0.5: an earlier sarcastic run had about 0.9 of its data opening with two
            catch-phrases (seed-lessons §7.4), and a healthy set has no opener anywhere near
            half.
        min_end_to_start: warn when the marker density in the last window is below this
            fraction of the first window's. Default 0.25, the seed's own threshold (it warned
            when last / (first + last) fell below 0.2, seed-lessons §5.4); the sarcastic run
            scored 0.06 (0.21 against 3.47 markers per answer).

    >>> report = drift_report(["Oh great, rain again."] * 9 + ["Fine weather today."])
    >>> report.warnings[0].startswith("opener concentration 0.90")
    True
    """
    openers = opener_concentration(answers)
    lengths = length_stats(answers)
    balance = None if markers is None else marker_balance(answers, markers)
    warnings: list[str] = []
    if openers.answers and openers.top_share > max_opener_share:
        opener, count = openers.top[0]
        warnings.append(
            f"opener concentration {openers.top_share:.2f} > {max_opener_share:.2f}: "
            f"{count} of {openers.answers} answers open with {opener!r}"
        )
    ratio = None if balance is None else balance.end_to_start
    if balance is not None and ratio is not None and ratio < min_end_to_start:
        warnings.append(
            f"persona markers fade: {balance.last_density:.2f} per 1,000 characters at the end "
            f"of answers against {balance.first_density:.2f} at the start "
            f"({ratio:.2f} < {min_end_to_start:.2f})"
        )
    return DriftReport(openers, lengths, balance, tuple(warnings))
