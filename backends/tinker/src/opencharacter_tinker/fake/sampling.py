"""Sampling routes: sampling sessions, ``/asample``, and the decoding knobs a request resolves to.

A sampler serves the base model, a saved sampler checkpoint, or the weights a training client
just handed over. Samples are computed on a small thread pool and answered through a future;
a resent request (same sampler, same ``seq_id``) gets the future it already has.
"""

from __future__ import annotations

import collections
import functools
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import torch

from opencharacter_tinker.fake import wire
from opencharacter_tinker.fake.decoding import SamplingSettings
from opencharacter_tinker.fake.futures import Futures, OperationError
from opencharacter_tinker.fake.served import ServedModel
from opencharacter_tinker.fake.state import Sampler, ServiceState
from opencharacter_tinker.fake.transport import HTTPError, Request, Response, Route

_CACHE_PROMPTS = 32  # prompts remembered per sampler for prompt_cache_hit_tokens
_DEFAULT_MAX_TOKENS = 16  # vLLM's default when a request gives no max_tokens


class SamplingRoutes:
    """Routes that create samplers and sample from them, with the pool the samples run on.

    Call :meth:`start` before serving and :meth:`stop` after.
    """

    def __init__(self, state: ServiceState, futures: Futures) -> None:
        self._state = state
        self._futures = futures
        self._pool: ThreadPoolExecutor | None = None
        # (sampler, seq_id) -> (request id, sequence ids): requests accepted, for resends.
        self._accepted: dict[tuple[str, int], tuple[str, list[str]]] = {}
        self._prompt_cache: dict[str, collections.OrderedDict[tuple[int, ...], None]] = {}

    def routes(self) -> list[Route]:
        """(method, path pattern, endpoint) for each route this group serves."""
        return [
            ("POST", "/api/v1/create_sampling_session", self._create_sampling_session),
            ("GET", r"/api/v1/samplers/(?P<sampler>[^/]+)", self._get_sampler),
            ("POST", "/api/v1/asample", self._asample),
        ]

    def start(self) -> None:
        """Open the pool that samples run on."""
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="fake-tinker-sample")

    def stop(self) -> None:
        """Wait for the samples in flight and close the pool."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        self._pool = None

    def _create_sampling_session(self, request: Request) -> Response:
        body = request.json()
        session_id = self._state.session(body.get("session_id", "")).session_id
        sampler_id = f"{session_id}:sample:{body.get('sampling_session_seq_id', 0)}"
        model_path = body.get("model_path")
        if model_path:
            sampler = self._sampler_for_path(sampler_id, model_path)
        else:
            self._state.model(body.get("base_model"))
            sampler = Sampler(sampler_id, body["base_model"], None, None)
        with self._state.lock:
            self._state.samplers.setdefault(sampler_id, sampler)
        self._state.count("create_sampling_session")
        return Response.json({"type": "create_sampling_session", "sampling_session_id": sampler_id})

    def _sampler_for_path(self, sampler_id: str, model_path: str) -> Sampler:
        if not model_path.startswith("tinker://") or len(model_path[9:].split("/")) != 3:
            raise HTTPError(400, f"Invalid tinker path: {model_path}")
        checkpoint = self._state.checkpoint(model_path)
        if checkpoint.kind == "sampler":
            return Sampler(sampler_id, checkpoint.base_model, model_path, checkpoint.weights)
        # The service accepts the path but cannot serve it: sampling fails in the future.
        error = (
            f"{model_path} is a {checkpoint.kind} checkpoint, not a sampler checkpoint; save "
            "weights with save_weights_for_sampler() to sample from them"
        )
        return Sampler(sampler_id, checkpoint.base_model, model_path, None, error)

    def _get_sampler(self, request: Request) -> Response:
        sampler = self._state.samplers.get(request.match["sampler"])
        if sampler is None:
            raise HTTPError(404, f"Sampler not found: {request.match['sampler']}")
        return Response.json(
            {
                "sampler_id": sampler.sampler_id,
                "base_model": sampler.base_model,
                "model_path": sampler.model_path,
            }
        )

    def _asample(self, request: Request) -> Response:
        body = request.json()
        sampler = self._request_sampler(body)
        model = self._state.model(sampler.base_model)
        prompt = wire.prompt_tokens(body.get("prompt") or {})
        num_samples = int(body.get("num_samples", 1))
        if num_samples < 1:
            raise HTTPError(400, f"num_samples must be at least 1, got {num_samples}")
        settings, seed = self._sampling_settings(model, prompt, body)
        last_n = body.get("prompt_logprobs_last_n")
        if last_n is not None and not 1 <= last_n <= len(prompt) - 1:
            raise HTTPError(400, f"prompt_logprobs_last_n must be in [1, {len(prompt) - 1}]")
        if body.get("target_prompt_logprobs") or body.get("prompt_alt_tokens_k"):
            msg = "target_prompt_logprobs and prompt_alt_tokens_k are not implemented by the fake"
            raise HTTPError(400, msg)
        seq_key = None if body.get("seq_id") is None else (sampler.sampler_id, body["seq_id"])
        with self._state.lock:
            known = self._accepted.get(seq_key) if seq_key else None
            if known is not None:  # the SDK resent a request we already accepted
                return Response.json({"request_id": known[0], "sample_sequence_ids": known[1]})
            promise = self._futures.new()
            sequence_ids = [f"{promise.request_id}:{i}" for i in range(num_samples)]
            if seq_key:
                promise.on_forget = functools.partial(self._accepted.pop, seq_key, None)
                self._accepted[seq_key] = (promise.request_id, sequence_ids)
        with_prompt_logprobs = bool(body.get("prompt_logprobs"))
        scoring = with_prompt_logprobs and settings.max_tokens == 1
        self._state.count("compute_logprobs" if scoring else "asample")
        hits = self._prompt_cache_hits(sampler, prompt)  # in arrival order, as a cache sees it

        def work() -> bytes:
            if sampler.error is not None:
                raise OperationError(sampler.error)
            generator = torch.Generator().manual_seed(seed)
            result = model.sample(prompt, num_samples, settings, sampler.weights, generator)
            return wire.sample_response(result, with_prompt_logprobs, last_n, hits)

        assert self._pool is not None
        self._pool.submit(self._futures.settle, promise, work)
        return Response.json(
            {"request_id": promise.request_id, "sample_sequence_ids": sequence_ids}
        )

    def _request_sampler(self, body: dict[str, Any]) -> Sampler:
        sampler_id = body.get("sampling_session_id")
        if sampler_id:
            sampler = self._state.samplers.get(sampler_id)
            if sampler is None:
                raise HTTPError(404, f"Sampling session not found: {sampler_id}")
            return sampler
        if body.get("model_path"):  # older clients name the weights on every request
            return self._sampler_for_path("adhoc", body["model_path"])
        self._state.model(body.get("base_model"))
        return Sampler("adhoc", body["base_model"], None, None)

    def _sampling_settings(
        self, model: ServedModel, prompt: list[int], body: dict[str, Any]
    ) -> tuple[SamplingSettings, int]:
        params = body.get("sampling_params") or {}
        max_tokens = params.get("max_tokens")
        limit = model.max_context_length
        if max_tokens is None:  # the SDK leaves it optional; assume vLLM's default
            max_tokens = _DEFAULT_MAX_TOKENS
        if max_tokens < 0:
            raise HTTPError(400, f"max_tokens must be non-negative, got {max_tokens}")
        if len(prompt) + max_tokens > limit:
            msg = (
                "Prompt length plus max_tokens exceeds the model's context window: "
                f"{len(prompt)} + {max_tokens} > {limit}"
            )
            raise HTTPError(400, msg)
        # None stops at EOS; an explicit list (even empty) replaces EOS, as the SDK documents.
        stop = params.get("stop")
        stop_tokens: frozenset[int] = model.eos_tokens
        stop_strings: tuple[str, ...] = ()
        if isinstance(stop, str):
            stop_tokens, stop_strings = frozenset(), (stop,)
        elif stop is not None:
            stop_tokens = frozenset(s for s in stop if isinstance(s, int))
            stop_strings = tuple(s for s in stop if isinstance(s, str))
        seed = params.get("seed")
        if seed is None:
            seed = self._state.draw_seed()
        settings = SamplingSettings(
            max_tokens=int(max_tokens),
            temperature=float(params.get("temperature", 1.0)),
            top_k=int(params.get("top_k", -1)),
            top_p=float(params.get("top_p", 1.0)),
            stop_tokens=stop_tokens,
            stop_strings=stop_strings,
            topk_prompt=int(body.get("topk_prompt_logprobs") or 0),
            topk_sample=int(body.get("topk_sample_logprobs") or 0),
        )
        return settings, int(seed)

    def _prompt_cache_hits(self, sampler: Sampler, prompt: list[int]) -> int:
        """Longest prefix shared with a recently seen prompt on the same weights."""
        key = sampler.model_path or (sampler.sampler_id if sampler.weights else sampler.base_model)
        tokens = tuple(prompt)
        with self._state.lock:
            seen = self._prompt_cache.setdefault(key, collections.OrderedDict())
            best = max((_common_prefix(tokens, old) for old in seen), default=0)
            seen.pop(tokens, None)
            seen[tokens] = None
            while len(seen) > _CACHE_PROMPTS:
                seen.popitem(last=False)
        return best


def _common_prefix(a: tuple[int, ...], b: tuple[int, ...]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n
