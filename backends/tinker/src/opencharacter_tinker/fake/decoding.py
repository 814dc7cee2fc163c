"""Decoding: the sampling knobs, how one token is chosen, and what a sampling request returns.

:class:`~opencharacter_tinker.fake.served.ServedModel` runs the forward passes; this module holds
what is independent of any model: tempered top-k/top-p choice, the per-sequence record kept while
decoding, and the results in the shape the wire conversion
(:mod:`opencharacter_tinker.fake.wire`) reads.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

_NO_LOGPROB = -99999.0  # the filler of top-k rows shorter than k


@dataclass
class SequenceResult:
    """One sampled continuation."""

    tokens: list[int]
    logprobs: list[float]
    stop_reason: str  # "stop" (stop token or string included at the end) or "length"
    topk: tuple[np.ndarray, np.ndarray] | None = None  # (ids, logprobs), each len(tokens) x k


@dataclass
class SampleResult:
    """What one sampling request computed."""

    sequences: list[SequenceResult]
    prompt_logprobs: np.ndarray  # float32, NaN at position 0
    prompt_topk: tuple[np.ndarray, np.ndarray] | None = None


@dataclass
class SamplingSettings:
    """The decoding knobs of ``SamplingParams``, resolved (stop conditions made explicit)."""

    max_tokens: int
    temperature: float = 1.0
    top_k: int = -1
    top_p: float = 1.0
    stop_tokens: frozenset[int] = frozenset()
    stop_strings: tuple[str, ...] = ()
    topk_prompt: int = 0
    topk_sample: int = 0


@dataclass
class Running:
    """A continuation being decoded: what it has so far, and why it stopped once it has."""

    tokens: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    topk_ids: list[list[int]] = field(default_factory=list)
    topk_lps: list[list[float]] = field(default_factory=list)
    stop_reason: str | None = None

    def result(self, k: int) -> SequenceResult:
        """The finished continuation, with top-k rows padded to ``k`` columns."""
        topk = None
        if k > 0:
            topk = (_pad_rows(self.topk_ids, k, 0), _pad_rows(self.topk_lps, k, _NO_LOGPROB))
        return SequenceResult(self.tokens, self.logprobs, self.stop_reason or "length", topk)


def _pad_rows(rows: list[list[Any]], k: int, fill: float) -> np.ndarray:
    out = np.full((len(rows), k), fill)
    for i, row in enumerate(rows):
        out[i, : len(row)] = row
    return out


def topk_rows(
    logprobs: torch.Tensor, k: int, *, pad_first: bool
) -> tuple[np.ndarray, np.ndarray] | None:
    """Top-k (ids, logprobs) per row; with ``pad_first`` an empty row 0 (no context there)."""
    if k <= 0:
        return None
    k_eff = min(k, logprobs.shape[-1])
    values, ids = torch.topk(logprobs, k_eff, dim=-1)
    id_rows = [[0] * k] if pad_first else []
    lp_rows = [[_NO_LOGPROB] * k] if pad_first else []
    id_rows += ids.tolist()
    lp_rows += values.tolist()
    return _pad_rows(id_rows, k, 0), _pad_rows(lp_rows, k, _NO_LOGPROB)


def choose(
    logprobs: torch.Tensor, settings: SamplingSettings, generator: torch.Generator
) -> torch.Tensor:
    """Pick one token per row: greedy at temperature 0, else tempered top-k/top-p sampling."""
    if settings.temperature <= 0:
        return logprobs.argmax(dim=-1)
    scores = logprobs / settings.temperature
    if 0 < settings.top_k < scores.shape[-1]:
        kth = torch.topk(scores, settings.top_k, dim=-1).values[:, -1:]
        scores = scores.masked_fill(scores < kth, -math.inf)
    if settings.top_p < 1.0:
        sorted_scores, order = torch.sort(scores, descending=True, dim=-1)
        probs = torch.softmax(sorted_scores, dim=-1)
        before = torch.cumsum(probs, dim=-1) - probs  # mass strictly before each token
        sorted_scores = sorted_scores.masked_fill(before > settings.top_p, -math.inf)
        scores = torch.full_like(scores, -math.inf).scatter(-1, order, sorted_scores)
    probs = torch.softmax(scores, dim=-1)
    return torch.multinomial(probs, 1, generator=generator)[:, 0]
