"""The ``tinker`` backend plugin: sampling and LoRA training on the Tinker service.

This module is the cheap registration the entry point points at; it imports no SDK (the
backend itself is :mod:`opencharacter_tinker.backend`). It says what the core needs to know
before the SDK is loaded: whether credentials exist, the default models, and the prices.
"""

from __future__ import annotations

import os
from pathlib import Path

from opencharacter.registry import BackendSpec
from opencharacter_tinker.prices import PRICES
from opencharacter_tinker.timing import TIMING

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
    requires=("tinker", "torch", "transformers"),
    install='pip install "opencharacter[tinker]" (from a clone: pip install ./backends/tinker)',
    readiness=credentials_problems,
    # The seed's Qwen3 Instruct-2507 models were retired from Tinker in 2026. A hybrid Qwen3
    # student (sampled with thinking off) and the largest Qwen3.5 as the teacher, both served.
    default_models={"teacher": "Qwen/Qwen3.5-397B-A17B", "student": "Qwen/Qwen3-8B"},
    prices=PRICES,
    timing=TIMING,
    default_concurrency=256,  # the backend's max_concurrency; the SDK queues above ~400
    distributions=("opencharacter-tinker", "tinker", "torch", "transformers"),
)

__all__ = ["SPEC", "credentials_problems"]
