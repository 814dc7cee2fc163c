"""Filtering rows: DPO preference rows and SFT conversation rows, one at a time or streamed.

Rows are the on-disk formats of :mod:`opencharacter.types`: a DPO row
``{"id", "prompt": [...], "chosen": [assistant], "rejected": [assistant], ...meta}`` and an SFT
row ``{"id", "messages": [...], ...meta}``. Input rows are never changed; a result carries a
new row with the cleaned texts written back.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import attrs

from opencharacter.errors import ConfigError, DataError
from opencharacter.filters._chain import FilterChain
from opencharacter.filters._verdict import Verdict

Chains = FilterChain | Mapping[str, FilterChain]
"""One chain for every text of a row, or chains by side: ``"chosen"`` and ``"rejected"`` for
DPO rows, ``"messages"`` for SFT rows."""


@attrs.frozen(eq=False)
class RowResult:
    """What filtering decided about one row.

    Attributes:
        id: the row's id.
        keep: whether the row is kept: every checked text was kept.
        row: the row with cleaned texts written back (the input row itself when nothing was
            cleaned). For a dropped row, the cleaned texts are written back too.
        checks: ``(where, verdict)`` for each checked text, in row order. ``where`` is
            ``"chosen"``, ``"rejected"`` or ``"messages[i]"`` (the index of an assistant turn).
    """

    id: str
    keep: bool
    row: Mapping[str, Any]
    checks: tuple[tuple[str, Verdict], ...]

    @property
    def reasons(self) -> tuple[tuple[str, str], ...]:
        """Return ``(where, reason code)`` for every reason a text was dropped."""
        return tuple((where, code) for where, v in self.checks for code in v.reasons)

    @property
    def cleaned(self) -> tuple[tuple[str, str], ...]:
        """Return ``(where, reason code)`` for every cleaning applied."""
        return tuple((where, code) for where, v in self.checks for code in v.cleaned)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready summary: id, keep, and reason codes and cleanings by place."""
        reasons: dict[str, list[str]] = {}
        cleaned: dict[str, list[str]] = {}
        for where, verdict in self.checks:
            if verdict.reasons:
                reasons[where] = list(verdict.reasons)
            if verdict.cleaned:
                cleaned[where] = list(verdict.cleaned)
        return {"id": self.id, "keep": self.keep, "reasons": reasons, "cleaned": cleaned}


def _chain_for(chains: Chains, side: str) -> FilterChain:
    if isinstance(chains, FilterChain):
        return chains
    chain = chains.get(side)
    if not isinstance(chain, FilterChain):
        msg = (
            f"no filter chain for {side!r} rows; pass one FilterChain or a mapping with "
            f"{side!r} (got keys {sorted(chains)})"
        )
        raise ConfigError(msg)
    return chain


def _single_answer(row: Mapping[str, Any], side: str, row_id: str) -> str:
    value = row.get(side)
    if (
        isinstance(value, list)
        and len(value) == 1
        and isinstance(value[0], Mapping)
        and value[0].get("role") == "assistant"
        and isinstance(value[0].get("content"), str)
    ):
        content: str = value[0]["content"]
        return content
    msg = f"row {row_id!r}: {side!r} must be a list holding one assistant message, got {value!r}"
    raise DataError(msg)


def _row_id(row: object) -> str:
    if not isinstance(row, Mapping):
        msg = f"a row must be a JSON object, got {type(row).__name__}"
        raise DataError(msg)
    row_id = row.get("id")
    if not isinstance(row_id, str) or not row_id:
        msg = f"every row needs a non-empty string 'id', got {row_id!r}"
        raise DataError(msg)
    return row_id


def _filter_dpo(
    row: Mapping[str, Any], row_id: str, chains: Chains, finish: Mapping[str, str | None]
) -> RowResult:
    checks: list[tuple[str, Verdict]] = []
    updates: dict[str, Any] = {}
    for side in ("chosen", "rejected"):
        text = _single_answer(row, side, row_id)
        reason = finish.get(side, row.get(f"{side}_finish_reason"))
        verdict = _chain_for(chains, side).apply(text, finish_reason=reason)
        checks.append((side, verdict))
        if verdict.text != text:
            updates[side] = [{**row[side][0], "content": verdict.text}]
    new_row = {**row, **updates} if updates else row
    keep = all(v.keep for _, v in checks)
    return RowResult(row_id, keep, new_row, tuple(checks))


def _filter_sft(
    row: Mapping[str, Any], row_id: str, chains: Chains, finish: Mapping[str, str | None]
) -> RowResult:
    messages = row.get("messages")
    if not isinstance(messages, list) or not all(
        isinstance(m, Mapping) and isinstance(m.get("content"), str) for m in messages
    ):
        msg = f"row {row_id!r}: 'messages' must be a list of {{'role', 'content'}} messages"
        raise DataError(msg)
    turns = [i for i, m in enumerate(messages) if m.get("role") == "assistant"]
    if not turns:
        msg = f"row {row_id!r} has no assistant turn to check"
        raise DataError(msg)
    chain = _chain_for(chains, "messages")
    checks: list[tuple[str, Verdict]] = []
    new_messages: list[Any] | None = None
    for i in turns:
        where = f"messages[{i}]"
        default = row.get("finish_reason") if i == turns[-1] else None
        text = messages[i]["content"]
        verdict = chain.apply(text, finish_reason=finish.get(where, default))
        checks.append((where, verdict))
        if verdict.text != text:
            new_messages = new_messages or list(messages)
            new_messages[i] = {**messages[i], "content": verdict.text}
    new_row = {**row, "messages": new_messages} if new_messages is not None else row
    keep = all(v.keep for _, v in checks)
    return RowResult(row_id, keep, new_row, tuple(checks))


def filter_row(
    row: Mapping[str, Any],
    chains: Chains,
    *,
    finish_reasons: Mapping[str, str | None] | None = None,
) -> RowResult:
    """Check every answer of one row and return the result, with cleaned texts written back.

    A DPO row checks ``chosen`` with the ``"chosen"`` chain and ``rejected`` with the
    ``"rejected"`` chain, and is dropped if either side is. An SFT row checks every assistant
    turn of ``messages`` with the ``"messages"`` chain, and is dropped if any turn is (a
    transcript with a looping turn teaches the loop).

    Args:
        row: a DPO or SFT row.
        chains: one chain for all texts, or chains by side (see :data:`Chains`);
            :func:`~opencharacter.filters.dpo_chains` gives the DPO defaults.
        finish_reasons: backend stop reasons by place (``"chosen"``, ``"rejected"``,
            ``"messages[3]"``). Without one, a DPO side reads the row's
            ``chosen_finish_reason``/``rejected_finish_reason`` key and an SFT row's
            ``finish_reason`` key applies to its last assistant turn; otherwise unknown.

    Returns:
        The :class:`RowResult`.

    Raises:
        DataError: the row is neither a DPO nor an SFT row, or is malformed.
        ConfigError: ``chains`` has no chain for the row's sides.
    """
    row_id = _row_id(row)
    finish = finish_reasons or {}
    if "chosen" in row or "rejected" in row:
        return _filter_dpo(row, row_id, chains, finish)
    if "messages" in row:
        return _filter_sft(row, row_id, chains, finish)
    msg = f"row {row_id!r} is neither a DPO row (chosen/rejected) nor an SFT row (messages)"
    raise DataError(msg)


def filter_rows(rows: Iterable[Mapping[str, Any]], chains: Chains) -> Iterator[RowResult]:
    """Filter rows lazily, yielding one result per row in input order.

    Memory stays flat however many rows stream through; each row is judged on its own, so
    results do not depend on the order or company of rows. Keep ``r.row`` where ``r.keep``
    to write the filtered file, and feed every result to a
    :class:`~opencharacter.filters.QualityReport`.

    Args:
        rows: DPO or SFT rows, e.g. read line by line from a JSONL file.
        chains: as for :func:`filter_row`.

    Yields:
        A :class:`RowResult` per row.
    """
    for row in rows:
        yield filter_row(row, chains)
