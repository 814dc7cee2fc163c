"""The built-in ``simulated`` backend: deterministic synthetic output, no model, no weights.

Registered through the ``opencharacter.backends`` entry point like any plugin. Use it for dry
runs, tests, throughput benchmarks and fault injection; never as training. Options (CLI
``-o key=value``): ``seed``, ``latency_ms``, ``jitter``, ``max_concurrency``,
``failure_rate``, ``fail_permanently``, ``degenerate_rate``, ``chars_per_token``.
"""

from collections.abc import Mapping
from typing import Any

from opencharacter.registry import BackendSpec, ServiceTiming


def _timing(options: Mapping[str, Any]) -> ServiceTiming:
    """Its time is what its options say: ``latency_ms`` a request, training instantly."""
    latency = float(options.get("latency_ms", 0.0)) / 1000
    return ServiceTiming(request_seconds=latency, source=f"simulated: {latency:g} s a request")


SPEC = BackendSpec(
    name="simulated",
    description="Deterministic synthetic text and weightless training, for dry runs and tests.",
    factory="opencharacter.simulated._backend:SimulatedBackend",
    # It stands in for the default (Tinker) run, so it answers to the same model names.
    default_models={"teacher": "Qwen/Qwen3.5-397B-A17B", "student": "Qwen/Qwen3-8B"},
    timing=_timing,
)

__all__ = ["SPEC"]
