"""What every record is built from: stable ids and the field checks the records share.

The records live in topic modules (messages, generation, usage, training data, checkpoints),
and all of them validate their fields the same way: text is a string, an id is a non-empty
string, a count is a non-negative integer, metadata is copied into a plain dictionary. Those
checks sit here once, with :func:`stable_id`, which names rows and requests by the inputs that
made them. Import the records themselves from :mod:`opencharacter.types`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from attrs import validators as v

text = v.instance_of(str)
nonempty_text = v.and_(text, v.min_len(1))
count = v.and_(v.instance_of(int), v.ge(0))


def stable_id(*parts: object) -> str:
    """Return a short id derived only from ``parts``, identical across runs and machines.

    Row ids come from the inputs that produced the row (prompt id, sample index, stage), so a
    resumed stage recognises exactly the rows it has already written.

    >>> stable_id("distill", "p-1", 0) == stable_id("distill", "p-1", 0)
    True
    >>> len(stable_id("anything"))
    16
    """
    payload = json.dumps([str(p) for p in parts], ensure_ascii=False)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def frozen_meta(value: Mapping[str, Any] | None) -> Mapping[str, Any]:
    """Return free-form metadata as a dictionary of its own, so the record holds a copy."""
    return dict(value or {})
