"""The ``openai`` backend plugin: a teacher or judge on any OpenAI-compatible server.

A ``vllm serve`` or SGLang deployment, a hosted API, or Tinker's OpenAI-compatible endpoint:
anything that answers ``/v1/chat/completions``. It samples only; training stays with the
student's backend (``--teacher-backend openai --backend tinker|local``).

This module is the cheap registration the entry point points at; it imports no SDK (the
backend itself is :mod:`opencharacter_openai.backend`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opencharacter.registry import BackendSpec
from opencharacter.types import Price


def deployment_price(options: Mapping[str, Any]) -> Price | None:
    """Return the price the options set (US dollars per million tokens), if they set one.

    A server is priced per deployment, whatever the model is called: ``price_prompt`` and
    ``price_completion`` (both, or neither), and ``price_cached_prompt`` for prefix-cache hits.
    """
    prompt, completion = options.get("price_prompt"), options.get("price_completion")
    if prompt is None and completion is None:
        return None
    return Price(
        prefill=prompt if prompt is not None else 0.0,
        sample=completion if completion is not None else 0.0,
        cached_prefill=options.get("price_cached_prompt"),
    )


SPEC = BackendSpec(
    name="openai",
    description="Any OpenAI-compatible server (vLLM, SGLang, hosted APIs): teacher and judge.",
    factory="opencharacter_openai.backend:OpenAIBackend",
    requires=("openai",),
    install='pip install "opencharacter[openai]" (from a clone: pip install ./backends/openai)',
    deployment_price=deployment_price,
    default_concurrency=64,  # the backend's default max_concurrency
    distributions=("opencharacter-openai", "openai"),
)

__all__ = ["SPEC", "deployment_price"]
