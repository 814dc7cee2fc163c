"""Chat messages and conversations: the turns every prompt, answer and training row is made of.

A :class:`Message` is one turn; a :data:`Conversation` is a tuple of them. Rows on disk and
chat templates use the plain ``{"role", "content"}`` dictionaries that :func:`to_dicts` writes
and :func:`conversation` reads back.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Literal, TypeAlias

import attrs
from attrs import validators as v

from opencharacter._records import text as _text
from opencharacter.errors import DataError

Role: TypeAlias = Literal["system", "user", "assistant"]
ROLES: tuple[Role, ...] = ("system", "user", "assistant")


@attrs.frozen
class Message:
    """One turn of a chat: who speaks and what they say."""

    role: Role = attrs.field(validator=v.in_(ROLES))
    content: str = attrs.field(validator=_text)

    def to_dict(self) -> dict[str, str]:
        """Return the ``{"role", "content"}`` dictionary chat templates expect."""
        return {"role": self.role, "content": self.content}

    @classmethod
    def from_dict(cls, data: Any) -> Message:
        """Build a message from a ``{"role", "content"}`` dictionary, rejecting anything else."""
        if not isinstance(data, Mapping) or set(data) - {"role", "content"}:
            msg = f"a message must be an object with 'role' and 'content', got {data!r}"
            raise DataError(msg)
        try:
            return cls(role=data["role"], content=data["content"])
        except (KeyError, TypeError, ValueError) as exc:
            msg = f"a message needs role in {ROLES} and string content, got {data!r}"
            raise DataError(msg) from exc


Conversation: TypeAlias = tuple[Message, ...]


def conversation(messages: Iterable[Message | Mapping[str, Any]]) -> Conversation:
    """Return a conversation from messages or ``{"role", "content"}`` dictionaries.

    >>> conversation([{"role": "user", "content": "Hi"}])[0].role
    'user'
    """
    return tuple(m if isinstance(m, Message) else Message.from_dict(m) for m in messages)


def to_dicts(messages: Iterable[Message]) -> list[dict[str, str]]:
    """Return messages as the list of dictionaries chat templates and TRL rows use."""
    return [m.to_dict() for m in messages]


def to_conversation(value: Iterable[Message | Mapping[str, Any]]) -> Conversation:
    """Convert a record's ``messages`` field: :func:`conversation` as an attrs converter."""
    return conversation(value)
