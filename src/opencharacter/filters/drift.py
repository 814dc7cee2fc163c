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

>>> answers = ["Oh, great. Another question.", "oh great... another tax question", "Sure!"]
>>> openers = opener_concentration(answers)
>>> round(openers.top_share, 2), openers.top[0]
(0.67, ('oh great another', 2))
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import attrs

from opencharacter.errors import ConfigError

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

_WORD_RE = re.compile(r"\w+(?:['\u2019]\w+)*")


def words(text: str) -> list[str]:
    """Return the lowercased words of ``text``, punctuation removed, apostrophes kept.

    >>> words("Oh, *GREAT*... it's raining.")
    ['oh', 'great', "it's", 'raining']
    """
    return [w.replace("\u2019", "'") for w in _WORD_RE.findall(text.lower())]


def _ngrams(tokens: list[str], sizes: range) -> Iterator[str]:
    for n in sizes:
        for i in range(len(tokens) - n + 1):
            yield " ".join(tokens[i : i + n])


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
