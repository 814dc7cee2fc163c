"""A running tally of what filtering kept, dropped and cleaned, by reason."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from typing import Any

import attrs

from opencharacter.filters._rows import RowResult

_TURN_RE = re.compile(r"\[\d+\]$")


def _side(where: str) -> str:
    """Return the side a place belongs to: ``messages[3]`` counts under ``messages``."""
    return _TURN_RE.sub("", where)


def _sorted(counter: Counter[str]) -> dict[str, int]:
    return dict(sorted(counter.items(), key=lambda kv: (-kv[1], kv[0])))


@attrs.define
class QualityReport:
    """Counts of kept, dropped and cleaned rows by reason, filled one result at a time.

    The seed project only logged these numbers (seed-lessons §3.4); :meth:`to_dict` gives the
    record a run directory keeps. Pure: writing it anywhere is the caller's job. Mutable on
    purpose, like :class:`collections.Counter`: it is an accumulator, not a record.

    A row dropped for one reason on several texts (both sides too long) counts once under that
    reason in ``dropped_by_reason`` and once per side in ``dropped_by_side``.

    >>> from opencharacter.filters import FilterChain, filter_rows
    >>> rows = [{"id": "a", "messages": [{"role": "user", "content": "Hi"},
    ...                                  {"role": "assistant", "content": "Hello, friend!"}]},
    ...         {"id": "b", "messages": [{"role": "user", "content": "Hi"},
    ...                                  {"role": "assistant", "content": ""}]}]
    >>> report = QualityReport()
    >>> for result in filter_rows(rows, FilterChain.for_stage("interaction")):
    ...     report.add(result)
    >>> report.summary()
    'kept 1 of 2 rows (50.0%); dropped 1: empty 1'
    """

    total: int = 0
    kept: int = 0
    dropped: int = 0
    cleaned: int = 0
    dropped_by_reason: Counter[str] = attrs.field(factory=Counter)
    dropped_by_side: dict[str, Counter[str]] = attrs.field(factory=dict)
    cleaned_by_reason: Counter[str] = attrs.field(factory=Counter)

    def add(self, result: RowResult) -> None:
        """Count one row's result."""
        self.count(keep=result.keep, reasons=result.reasons, cleaned=result.cleaned)

    def count(
        self,
        *,
        keep: bool,
        reasons: Iterable[tuple[str, str]] = (),
        cleaned: Iterable[tuple[str, str]] = (),
    ) -> None:
        """Count one row from its ``(where, code)`` pairs, as stored in run files on resume."""
        self.total += 1
        if keep:
            self.kept += 1
            fixes = {code for _, code in cleaned}
            if fixes:
                self.cleaned += 1
                self.cleaned_by_reason.update(fixes)
            return
        self.dropped += 1
        reasons = list(reasons)
        self.dropped_by_reason.update({code for _, code in reasons})
        for where, code in reasons:
            self.dropped_by_side.setdefault(_side(where), Counter())[code] += 1

    def merge(self, other: QualityReport) -> QualityReport:
        """Return a new report counting this report's rows and ``other``'s."""
        sides = {s: Counter(c) for s, c in self.dropped_by_side.items()}
        for side, counts in other.dropped_by_side.items():
            sides.setdefault(side, Counter()).update(counts)
        return QualityReport(
            total=self.total + other.total,
            kept=self.kept + other.kept,
            dropped=self.dropped + other.dropped,
            cleaned=self.cleaned + other.cleaned,
            dropped_by_reason=self.dropped_by_reason + other.dropped_by_reason,
            dropped_by_side=sides,
            cleaned_by_reason=self.cleaned_by_reason + other.cleaned_by_reason,
        )

    @property
    def kept_share(self) -> float:
        """Return the share of rows kept (0.0 before any row)."""
        return self.kept / self.total if self.total else 0.0

    def to_dict(self) -> dict[str, Any]:
        """Return the counts as JSON-ready data, reasons most frequent first."""
        return {
            "rows": self.total,
            "kept": self.kept,
            "dropped": self.dropped,
            "cleaned": self.cleaned,
            "kept_share": round(self.kept_share, 4),
            "dropped_by_reason": _sorted(self.dropped_by_reason),
            "dropped_by_side": {
                side: _sorted(counts) for side, counts in sorted(self.dropped_by_side.items())
            },
            "cleaned_by_reason": _sorted(self.cleaned_by_reason),
        }

    def summary(self) -> str:
        """Return one human-readable line: kept share, then drops and cleanings by reason."""
        text = f"kept {self.kept:,} of {self.total:,} rows ({100 * self.kept_share:.1f}%)"
        if self.dropped:
            reasons = ", ".join(f"{k} {v:,}" for k, v in _sorted(self.dropped_by_reason).items())
            text += f"; dropped {self.dropped:,}: {reasons}"
        if self.cleaned:
            fixes = ", ".join(f"{k} {v:,}" for k, v in _sorted(self.cleaned_by_reason).items())
            text += f"; cleaned {self.cleaned:,} kept rows: {fixes}"
        return text
