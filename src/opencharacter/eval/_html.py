"""Small HTML pieces for the report: escaped cells, readable numbers, tables, notes.

Everything that reaches the page as text goes through :func:`e` (``html.escape``) unless it
is an :class:`Html` the report built itself; numbers are formatted once, here, so the same
quantity reads the same in every section.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from opencharacter.eval import plots


class Html(str):
    """Text already rendered as HTML, inserted as is by :func:`cell`."""

    __slots__ = ()


class Num(str):
    """A formatted number: escaped like text, aligned right in a table."""

    __slots__ = ()


def e(value: object) -> str:
    """Return ``value`` as text safe to put in HTML."""
    return html.escape(str(value))


def num(value: object, digits: int = 2, unit: str = "") -> Num:
    """Format a number for reading: thousands separated, ``digits`` decimals, '—' if absent."""
    if value is None:
        return Num("—")
    if isinstance(value, bool) or not isinstance(value, int | float):
        return Num(value)
    text = f"{value:,}" if isinstance(value, int) else f"{value:,.{digits}f}"
    return Num(f"{unit}{text}" if unit == "$" else f"{text}{unit}")


def pct(share: float | None) -> Num:
    """Return a share as a percentage with one decimal."""
    return Num("—" if share is None else f"{100 * share:.1f}%")


def pm(mean: float | None, sem: float | None, digits: int = 2) -> Num:
    """Return a mean with its standard error: ``3.10 ± 0.30``."""
    return Num(f"{num(mean, digits)} ± {num(sem, digits)}")


def interval(iv: Mapping[str, float] | None, digits: int = 1, sign: str = "") -> Num:
    """Return an interval record as ``1012.3 [1004.5, 1020.1]`` (``sign="+"``: ``+12.3 [...]``)."""
    if not iv:
        return Num("—")
    p, lo, hi = (f"{iv[k]:{sign},.{digits}f}" for k in ("point", "low", "high"))
    return Num(f"{p} [{lo}, {hi}]")


def cell(value: object, tag: str = "td") -> str:
    """Return one table cell: numbers right-aligned, text escaped, :class:`Html` as is."""
    if isinstance(value, Html):
        return f"<{tag}>{value}</{tag}>"
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = num(value)
    css = ' class="num"' if isinstance(value, Num) else ""
    return f"<{tag}{css}>{e(value)}</{tag}>"


def table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """Return a table of ``rows`` under ``header``, each cell as :func:`cell` renders it."""
    head = "".join(cell(h, "th") for h in header)
    body = "".join(f"<tr>{''.join(cell(c) for c in row)}</tr>\n" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>\n{body}</tbody></table>\n"


def details(summary: str, inner: str) -> str:
    """Return ``inner`` folded under ``summary``, for long tables most readers skip."""
    return f"<details><summary>{e(summary)}</summary>\n{inner}</details>\n"


def not_run(text: str) -> str:
    """Return the note of a section without data, saying what would fill it."""
    return f'<p class="notrun">Not run: {e(text)}</p>\n'


def plot(png: str | None, alt: str) -> str:
    """Embed a figure, or say what to install when matplotlib is missing."""
    if png is not None:
        return f'<img src="data:image/png;base64,{png}" alt="{e(alt)}">\n'
    return "" if plots.available() else f'<p class="note">{e(plots.INSTALL_HINT)}</p>\n'


def judge(tally: Mapping[str, Any] | None) -> str:
    """Say how often the judge's answer could not be read; a rate above 5% is flagged."""
    if not tally:
        return ""
    rate = tally.get("failure_rate")
    reasons = ", ".join(f"{k} {v:,}" for k, v in (tally.get("reasons") or {}).items() if v)
    flag = ' class="warn"' if rate is not None and rate > 0.05 else ""
    why = f": {reasons}" if reasons else ""
    text = (
        f"Judge: {num(tally.get('judgements'))} judgements, "
        f"{num(tally.get('parse_failures'))} unreadable ({pct(rate)}{why})"
    )
    if tally.get("pairs"):  # pairwise verdicts asked in both orders
        text += (
            f"; {num(tally.get('inconsistent'))} of {num(tally['pairs'])} pairs changed verdict "
            f"with the order ({pct(tally.get('inconsistency_rate'))})"
        )
    return f"<p{flag}>{e(text)}.</p>\n"


def flatten(data: Mapping[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """Return nested settings as (dotted key, JSON value) pairs, in order."""
    out: list[tuple[str, str]] = []
    for key, value in data.items():
        if isinstance(value, Mapping) and value:
            out.extend(flatten(value, f"{prefix}{key}."))
        else:
            out.append((f"{prefix}{key}", json.dumps(value, ensure_ascii=False)))
    return out
