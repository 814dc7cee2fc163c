"""Training data records: DPO preference pairs and SFT conversations, and their TRL rows.

Each record becomes one row of a JSONL file in the format TRL and
``datasets.load_dataset("json")`` read unchanged: :meth:`to_row` writes it, the named
constructor ``from_row`` reads it back, and metadata travels in extra keys that must not
collide with the row's own.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs
from attrs import validators as v

from opencharacter._messages import Conversation, conversation, to_dicts
from opencharacter._messages import to_conversation as _to_conversation
from opencharacter._records import frozen_meta as _frozen_meta
from opencharacter._records import nonempty_text as _nonempty_text
from opencharacter._records import text as _text
from opencharacter.errors import DataError

_RESERVED_ROW_KEYS = frozenset({"id", "prompt", "chosen", "rejected", "messages"})


def _split_meta(row: Mapping[str, Any], path: str, listed: str) -> tuple[str, dict[str, Any]]:
    """Return the row's id and metadata, once the id and the ``listed`` messages are checked."""
    row_id = row.get("id")
    if not isinstance(row_id, str) or not row_id:
        msg = f"{path}: every row needs a non-empty string 'id'"
        raise DataError(msg)
    if not isinstance(row.get(listed), list):
        msg = f"{path}: row {row_id!r} needs {listed!r} as a list of messages"
        raise DataError(msg)
    return row_id, {k: val for k, val in row.items() if k not in _RESERVED_ROW_KEYS}


def _check_meta(meta: Mapping[str, Any]) -> None:
    clash = _RESERVED_ROW_KEYS & set(meta)
    if clash:
        msg = f"metadata keys {sorted(clash)} collide with the row's own keys"
        raise DataError(msg)


def _one_assistant_turn(value: Any, side: str, path: str) -> str:
    turns = conversation(value) if isinstance(value, list) else ()
    if len(turns) != 1 or turns[0].role != "assistant":
        msg = f"{path}: '{side}' must be a list holding one assistant message, got {value!r}"
        raise DataError(msg)
    return turns[0].content


@attrs.frozen(kw_only=True)
class PreferencePair:
    """A DPO example: one prompt, a preferred and a dispreferred assistant answer.

    On disk it is TRL's conversational preference row with an explicit prompt::

        {"id": ..., "prompt": [messages], "chosen": [assistant], "rejected": [assistant], ...meta}
    """

    id: str = attrs.field(validator=_nonempty_text)
    prompt: Conversation = attrs.field(converter=_to_conversation, validator=v.min_len(1))
    chosen: str = attrs.field(validator=_text)
    rejected: str = attrs.field(validator=_text)
    meta: Mapping[str, Any] = attrs.field(
        factory=dict, converter=_frozen_meta, validator=lambda _s, _a, m: _check_meta(m)
    )

    def to_row(self) -> dict[str, Any]:
        """Return the TRL preference row, metadata in extra keys."""
        return {
            "id": self.id,
            "prompt": to_dicts(self.prompt),
            "chosen": [{"role": "assistant", "content": self.chosen}],
            "rejected": [{"role": "assistant", "content": self.rejected}],
            **self.meta,
        }

    @classmethod
    def from_row(cls, row: Mapping[str, Any], *, path: str = "<row>") -> PreferencePair:
        """Build a pair from a TRL preference row; ``path`` names the source in errors."""
        row_id, meta = _split_meta(row, path, "prompt")
        return cls(
            id=row_id,
            prompt=conversation(row["prompt"]),
            chosen=_one_assistant_turn(row.get("chosen"), "chosen", path),
            rejected=_one_assistant_turn(row.get("rejected"), "rejected", path),
            meta=meta,
        )


@attrs.frozen(kw_only=True)
class ChatExample:
    """An SFT example: a whole conversation, trained on its assistant turns.

    On disk it is TRL's conversational row ``{"id": ..., "messages": [...], ...meta}``.
    """

    id: str = attrs.field(validator=_nonempty_text)
    messages: Conversation = attrs.field(converter=_to_conversation, validator=v.min_len(2))
    meta: Mapping[str, Any] = attrs.field(
        factory=dict, converter=_frozen_meta, validator=lambda _s, _a, m: _check_meta(m)
    )

    @messages.validator
    def _has_assistant_turn(self, _attribute: object, value: Conversation) -> None:
        if not any(m.role == "assistant" for m in value):
            msg = f"example {self.id!r} has no assistant turn to train on"
            raise DataError(msg)

    def to_row(self) -> dict[str, Any]:
        """Return the TRL messages row, metadata in extra keys."""
        return {"id": self.id, "messages": to_dicts(self.messages), **self.meta}

    @classmethod
    def from_row(cls, row: Mapping[str, Any], *, path: str = "<row>") -> ChatExample:
        """Build an example from a TRL messages row; ``path`` names the source in errors."""
        row_id, meta = _split_meta(row, path, "messages")
        return cls(id=row_id, messages=conversation(row["messages"]), meta=meta)
