"""The domain records every stage, backend and file shares.

All records are frozen attrs classes: validated when built, changed only with
:func:`attrs.evolve`. Rows on disk are plain dictionaries in the formats TRL and
``datasets.load_dataset("json")`` read unchanged; each record that becomes a row has a
``to_row`` method and a ``from_row`` named constructor, and keeps its metadata in extra keys.

This module is their public import path; each idea lives in a module of its own:

- chat messages and conversations (``opencharacter._messages``),
- generation requests, sampling settings and completions (``opencharacter._generation``),
- token usage and prices (``opencharacter._usage``),
- DPO pairs and SFT examples, the training data rows (``opencharacter._training_data``),
- checkpoints, the trained model states (``opencharacter._checkpoint``),
- stable ids and the field checks they all share (``opencharacter._records``).
"""

from __future__ import annotations

from opencharacter._checkpoint import Checkpoint, CheckpointKind
from opencharacter._generation import (
    Completion,
    FinishReason,
    GenerationRequest,
    Purpose,
    SamplingParams,
    SamplingSettings,
)
from opencharacter._messages import ROLES, Conversation, Message, Role, conversation, to_dicts
from opencharacter._records import stable_id
from opencharacter._training_data import ChatExample, PreferencePair
from opencharacter._usage import Price, TokenUsage

__all__ = [
    "ROLES",
    "ChatExample",
    "Checkpoint",
    "CheckpointKind",
    "Completion",
    "Conversation",
    "FinishReason",
    "GenerationRequest",
    "Message",
    "PreferencePair",
    "Price",
    "Purpose",
    "Role",
    "SamplingParams",
    "SamplingSettings",
    "TokenUsage",
    "conversation",
    "stable_id",
    "to_dicts",
]
