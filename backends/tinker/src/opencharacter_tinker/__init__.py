"""The ``tinker`` backend plugin: sampling and LoRA training on the Tinker service.

This module is the cheap registration the entry point points at; it imports no SDK. The
implementation module named by :data:`SPEC`'s factory arrives with the Tinker backend issue.
"""

from __future__ import annotations

import os
from pathlib import Path

from opencharacter.registry import BackendSpec

CREDENTIALS_FILE = Path.home() / ".tinker" / "credentials.json"


def credentials_problems() -> tuple[str, ...]:
    """Return why Tinker cannot authenticate, if it cannot (the SDK's resolution order)."""
    if os.environ.get("TINKER_API_KEY") or os.environ.get("TINKER_CREDENTIAL_CMD"):
        return ()
    if CREDENTIALS_FILE.exists():
        return ()
    return (
        "No Tinker credentials: set TINKER_API_KEY (or TINKER_CREDENTIAL_CMD), "
        "or run `tinker auth login`.",
    )


SPEC = BackendSpec(
    name="tinker",
    description="Tinker service: remote sampling and LoRA DPO/SFT training.",
    factory="opencharacter_tinker.backend:TinkerBackend",
    requires=("tinker",),
    install='pip install "opencharacter[tinker]"',
    readiness=credentials_problems,
)

__all__ = ["SPEC", "credentials_problems"]
