"""Small statistics for evaluation numbers: mean and SEM, Spearman, percentile intervals.

Pure Python on purpose: the sizes are small (a few hundred traits, a few hundred bootstrap
samples), and the core must not depend on numpy or scipy.

Data-dependent emptiness is not an error here: a statistic with no data is ``nan`` (a trait no
judge answered about still gets a row in the report, reading "n/a"). Only invalid *settings*
(a confidence outside (0, 1)) raise :class:`~opencharacter.errors.ConfigError`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

import attrs

from opencharacter.errors import ConfigError


@attrs.frozen
class Interval:
    """A point estimate with the low and high ends of its uncertainty interval.

    Attributes:
        point: the estimate (for a bootstrap, the median of the resampled values).
        low: the interval's lower end.
        high: the interval's upper end.
    """

    point: float
    low: float
    high: float

    def to_dict(self) -> dict[str, float]:
        """Return JSON-ready data: ``{"point": ..., "low": ..., "high": ...}``."""
        return {"point": self.point, "low": self.low, "high": self.high}


def mean_sem(values: Sequence[float]) -> tuple[float, float]:
    """Return the mean and its standard error (sample standard deviation over sqrt(n)).

    The SEM of a single value is 0.0 (there is no spread to measure); an empty input gives
    ``(nan, nan)`` rather than an error, so a report can show "n/a" for a cell without data.

    >>> mean_sem([1.0, 3.0])
    (2.0, 1.0)
    """
    n = len(values)
    if n == 0:
        return math.nan, math.nan
    mean = math.fsum(values) / n
    if n < 2:
        return mean, 0.0
    variance = math.fsum((v - mean) ** 2 for v in values) / (n - 1)
    return mean, math.sqrt(variance / n)


def _average_ranks(values: Sequence[float]) -> list[float]:
    """Return 1-based ranks, tied values sharing the average of the ranks they span."""
    order = sorted(range(len(values)), key=values.__getitem__)
    ranks = [0.0] * len(values)
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and values[order[end + 1]] == values[order[start]]:
            end += 1
        shared = (start + end) / 2 + 1
        for i in order[start : end + 1]:
            ranks[i] = shared
        start = end + 1
    return ranks


def spearman(a: Mapping[str, float], b: Mapping[str, float]) -> float:
    """Return Spearman's rank correlation of two scorings over the keys they share.

    Ties get average ranks, and the result is Pearson's correlation of the ranks: 1.0 for the
    same ordering, -1.0 for the reversed one. It is ``nan`` when fewer than two keys are shared
    or when one side is constant over them (a correlation with no variation is undefined).

    >>> spearman({"a": 1, "b": 2, "c": 3}, {"a": 10, "b": 20, "c": 30, "d": 0})
    1.0
    >>> spearman({"a": 1, "b": 2, "c": 3}, {"a": 3, "b": 2, "c": 1})
    -1.0
    """
    keys = sorted(a.keys() & b.keys())
    if len(keys) < 2:
        return math.nan
    ra = _average_ranks([a[k] for k in keys])
    rb = _average_ranks([b[k] for k in keys])
    centre = (len(keys) + 1) / 2  # the mean of any average-ranked vector
    da = [r - centre for r in ra]
    db = [r - centre for r in rb]
    saa = math.fsum(x * x for x in da)
    sbb = math.fsum(y * y for y in db)
    if saa == 0 or sbb == 0:
        return math.nan
    r = math.fsum(x * y for x, y in zip(da, db, strict=True)) / math.sqrt(saa * sbb)
    return max(-1.0, min(1.0, r))


def quantile(ordered: Sequence[float], fraction: float) -> float:
    """Return the ``fraction`` quantile of sorted values, interpolating linearly between them.

    ``ordered`` must already be sorted ascending; an empty sequence gives ``nan``. This is the
    usual "linear" (type 7) definition, so ``quantile(xs, 0.5)`` is the median.

    >>> quantile([1.0, 2.0, 3.0, 4.0], 0.5)
    2.5
    """
    if not ordered:
        return math.nan
    # Rounded so that float noise in the fraction (1 - 0.95) / 2 cannot shift an exact rank.
    position = round(min(max(fraction, 0.0), 1.0) * (len(ordered) - 1), 9)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def percentile_interval(
    samples: Iterable[float], point: float, confidence: float = 0.95
) -> Interval:
    """Return ``point`` with the central ``confidence`` percentile interval of ``samples``.

    With 0.95 the ends are the 2.5th and 97.5th percentiles (linear interpolation). No samples
    give ``nan`` ends. Choosing the samples' median as ``point`` guarantees it lies inside.

    Raises:
        ConfigError: ``confidence`` is not strictly between 0 and 1.

    >>> percentile_interval([float(x) for x in range(101)], 50.0, confidence=0.9)
    Interval(point=50.0, low=5.0, high=95.0)
    """
    if not 0.0 < confidence < 1.0:
        msg = f"confidence must be strictly between 0 and 1 (0.95 for 95%), got {confidence!r}"
        raise ConfigError(msg)
    ordered = sorted(samples)
    tail = (1.0 - confidence) / 2
    return Interval(point, quantile(ordered, tail), quantile(ordered, 1.0 - tail))


__all__ = ["Interval", "mean_sem", "percentile_interval", "quantile", "spearman"]
