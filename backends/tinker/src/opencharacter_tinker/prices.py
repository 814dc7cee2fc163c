"""Tinker's prices, US dollars per million tokens, with the date and source of each.

Tinker bills three classes of tokens: prefill (prompts, including reference log-probs), sample
(generated) and train (through ``forward_backward``); prompt tokens served from its prefix
cache cost 80% less. Prices change: a run's ``prices`` setting overrides any entry here, and
the manifest records what was used. Models without an entry are reported as "cost unknown".
"""

from __future__ import annotations

from collections.abc import Mapping

from opencharacter.types import Price

#: Share of the prefill price a prefix-cache hit costs (an 80% discount; pricing page, 2026-10).
CACHE_HIT_SHARE = 0.2


def _price(prefill: float, sample: float, train: float | None = None) -> Price:
    return Price(
        prefill=prefill, sample=sample, train=train, cached_prefill=prefill * CACHE_HIT_SHARE
    )


PRICES: Mapping[str, Price] = {
    # Seen 2026-10 on Tinker's pricing page (a transcription); the default student.
    "Qwen/Qwen3-8B": _price(0.195, 0.60, 0.44),
    # Seen 2026 in a provider's published comparison with Tinker's rates; the default teacher.
    # It is only sampled here, so no training price is listed.
    "Qwen/Qwen3.5-397B-A17B": _price(4.0, 10.0),
    # Seen 2026 in the same comparison.
    "openai/gpt-oss-120b": _price(0.63, 1.54),
    # Seen 2025-12-13 (an earlier implementation's cost report); retired from Tinker in 2026.
    "Qwen/Qwen3-235B-A22B-Instruct-2507": _price(0.68, 1.70, 2.04),
    # Seen 2026-01-05 on Tinker's pricing page; retired from Tinker in 2026.
    "Qwen/Qwen3-4B-Instruct-2507": _price(0.07, 0.22, 0.22),
}
