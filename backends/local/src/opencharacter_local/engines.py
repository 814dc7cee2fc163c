"""Engines: a loaded model that completes a batch of requests in one blocking call.

An engine holds one model (base weights, optionally a LoRA adapter). This module holds the
:class:`Engine` shape every engine has, the prompt rendering and length check they share, and
:class:`TransformersEngine`, which runs anywhere torch runs. The faster
:class:`~opencharacter_local.vllm_engine.VLLMEngine` lives on its own because vLLM is optional.
"""

from __future__ import annotations

import gc
from collections.abc import Sequence
from typing import Any, Protocol, cast

import attrs
import torch
from peft import PeftModel
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    GenerationConfig,
    LogitsProcessor,
    LogitsProcessorList,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

from opencharacter.errors import PermanentBackendError
from opencharacter.types import (
    Completion,
    FinishReason,
    GenerationRequest,
    SamplingParams,
    to_dicts,
)
from opencharacter_local.tiny import resolve_model


class Engine(Protocol):
    """A loaded model that completes a batch of requests in one blocking call.

    Engines are not thread-safe: :class:`~opencharacter_local.engine_cache.EngineCache` runs
    one batch at a time on the machine.
    """

    def generate(self, requests: Sequence[GenerationRequest]) -> list[Completion]:
        """Return one completion per request, in the order of ``requests``."""
        ...

    def close(self) -> None:
        """Release the model's memory; the engine is not used afterwards."""
        ...


class EngineFactory(Protocol):
    """Loads an engine: ``model`` names the tokenizer and, without ``base_weights``, the weights."""

    def __call__(
        self, model: str, *, adapter: str | None = None, base_weights: str | None = None
    ) -> Engine:
        """Return the loaded engine."""
        ...


def render_prompt(tokenizer: PreTrainedTokenizerBase, request: GenerationRequest) -> list[int]:
    """Return the token ids of a request's conversation, ready for the assistant to answer.

    ``enable_thinking=False`` turns off Qwen3's reasoning block; templates without the switch
    ignore the extra variable.
    """
    text = tokenizer.apply_chat_template(
        to_dicts(request.messages),
        tokenize=False,
        add_generation_prompt=True,
        enable_thinking=False,
    )
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def check_prompt_length(request: GenerationRequest, length: int, max_model_len: int) -> None:
    """Refuse a prompt that leaves no room for an answer; no retry can make it fit.

    Raises:
        PermanentBackendError: the prompt fills the model's context window.
    """
    if length >= max_model_len:
        msg = (
            f"request {request.id}: the prompt is {length} tokens but the model reads at most "
            f"{max_model_len}; shorten the conversation or use a model with a longer context"
        )
        raise PermanentBackendError(msg, request_id=request.id)


def _cut_at_stop(text: str, stop: Sequence[str]) -> tuple[str, bool]:
    """Return ``text`` up to its first stop string, and whether one was found."""
    cut = min((i for s in stop if (i := text.find(s)) >= 0), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)


class TransformersEngine:
    """A causal LM (plus an optional PEFT adapter) sampled with ``transformers.generate``.

    Requests with equal sampling settings share one left-padded ``generate`` call. Seeds are
    honoured per request even inside a batch: each row samples from its own
    ``torch.Generator`` (see :class:`_RowSampler`), so a seeded request gives the same text
    whatever else is batched with it.

    Args:
        model: model name or folder; gives the tokenizer, and the weights unless
            ``base_weights`` is set. :data:`~opencharacter_local.tiny.TINY_MODEL` is built
            locally.
        adapter: a PEFT adapter folder applied on top of the weights.
        base_weights: a folder of full weights (e.g. merged DPO weights an SFT adapter was
            trained on) used instead of ``model``'s.
        device: ``"auto"`` picks CUDA when available; weights are bfloat16 on CUDA and
            float32 on CPU, where bfloat16 is slow or unsupported.
    """

    def __init__(
        self,
        model: str,
        *,
        adapter: str | None = None,
        base_weights: str | None = None,
        device: str = "auto",
    ) -> None:
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.name = adapter or base_weights or model
        self._device = torch.device(device)
        path = resolve_model(model)
        self._tokenizer = AutoTokenizer.from_pretrained(path)
        dtype = torch.bfloat16 if self._device.type == "cuda" else torch.float32
        weights: PreTrainedModel | PeftModel = AutoModelForCausalLM.from_pretrained(
            base_weights or path, dtype=dtype, device_map=self._device
        )
        if adapter is not None:
            weights = PeftModel.from_pretrained(weights, adapter)
        weights.eval()
        self._model: Any = weights
        generation = weights.generation_config
        eos = generation.eos_token_id if generation.eos_token_id is not None else []
        self._end_of_turn = {
            self._tokenizer.eos_token_id,
            *(eos if isinstance(eos, list) else [eos]),
        }
        self._end_of_turn.discard(None)
        pad = self._tokenizer.pad_token_id
        self._pad = pad if pad is not None else min(self._end_of_turn)
        self.max_model_len: int = weights.config.max_position_embeddings

    def generate(self, requests: Sequence[GenerationRequest]) -> list[Completion]:
        """Return one completion per request, in order.

        Raises:
            PermanentBackendError: a prompt does not fit the context window (``request_id``
                names it; nothing was generated), or a single request does not fit in GPU
                memory.
        """
        prompts = [render_prompt(self._tokenizer, r) for r in requests]
        for request, prompt in zip(requests, prompts, strict=True):
            check_prompt_length(request, len(prompt), self.max_model_len)
        groups: dict[SamplingParams, list[int]] = {}
        for index, request in enumerate(requests):
            # Seeds act per row (see _RowSampler): requests differing only in seed share a batch.
            groups.setdefault(attrs.evolve(request.params, seed=None), []).append(index)
        results: dict[int, Completion] = {}
        for members in groups.values():
            batch = [(requests[i], prompts[i]) for i in members]
            results.update(zip(members, self._generate_fitting(batch), strict=True))
        return [results[i] for i in range(len(requests))]

    def close(self) -> None:
        """Free the weights now, not at some later garbage collection, so the next model fits."""
        del self._model
        gc.collect()
        if self._device.type == "cuda":
            torch.cuda.empty_cache()

    def _generate_fitting(
        self, batch: list[tuple[GenerationRequest, list[int]]]
    ) -> list[Completion]:
        """Generate ``batch``, halving it whenever it runs out of GPU memory."""
        try:
            return self._generate_batch(batch)
        except torch.cuda.OutOfMemoryError as exc:
            torch.cuda.empty_cache()
            if len(batch) == 1:
                request, prompt = batch[0]
                msg = (
                    f"request {request.id} does not fit in GPU memory alone ({len(prompt)} prompt "
                    f"tokens, max_tokens={request.params.max_tokens}); lower the run's [sampling] "
                    "token limits (answer_tokens, reflection_tokens, turn_tokens), free the GPU "
                    "of other processes, or sample with a smaller model or on a larger GPU"
                )
                raise PermanentBackendError(msg, request_id=request.id) from exc
        half = len(batch) // 2
        return self._generate_fitting(batch[:half]) + self._generate_fitting(batch[half:])

    def _generate_batch(self, batch: list[tuple[GenerationRequest, list[int]]]) -> list[Completion]:
        params = batch[0][0].params
        width = max(len(prompt) for _, prompt in batch)
        input_ids = torch.full((len(batch), width), self._pad, dtype=torch.long)
        attention_mask = torch.zeros((len(batch), width), dtype=torch.long)
        for row, (_, prompt) in enumerate(batch):  # left padding: every prompt ends at the edge
            input_ids[row, width - len(prompt) :] = torch.tensor(prompt)
            attention_mask[row, width - len(prompt) :] = 1
        limit = min(params.max_tokens, self.max_model_len - width)
        processors = LogitsProcessorList()
        if params.temperature > 0:
            seeds = [r.params.seed for r, _ in batch]
            processors.append(_RowSampler(params, seeds, self._device))
        config = GenerationConfig(  # type: ignore[no-untyped-call]  # unannotated __init__
            max_new_tokens=limit,
            eos_token_id=sorted(self._end_of_turn),
            pad_token_id=self._pad,
            repetition_penalty=params.repetition_penalty,
            stop_strings=list(params.stop) or None,
            # _RowSampler does the warping; neutral values keep the model's defaults out.
            **(
                {"do_sample": True, "temperature": 1.0, "top_p": 1.0, "top_k": 0}
                if processors
                else {"do_sample": False}
            ),
        )
        with torch.inference_mode():
            output = self._model.generate(
                input_ids=input_ids.to(self._device),
                attention_mask=attention_mask.to(self._device),
                generation_config=config,
                logits_processor=processors,
                tokenizer=self._tokenizer,
            )
        new_tokens = output[:, width:].tolist()
        return [
            self._completion(request, len(prompt), tokens, limit)
            for (request, prompt), tokens in zip(batch, new_tokens, strict=True)
        ]

    def _completion(
        self, request: GenerationRequest, prompt_tokens: int, tokens: list[int], limit: int
    ) -> Completion:
        """Build a completion from one row of ``generate`` output (padded after it ends)."""
        end = next((i for i, t in enumerate(tokens) if t in self._end_of_turn), None)
        if end is not None:
            tokens = tokens[: end + 1]
        else:
            while tokens and tokens[-1] == self._pad:
                tokens = tokens[:-1]
        text = cast("str", self._tokenizer.decode(tokens, skip_special_tokens=True))  # one row
        text, stopped = _cut_at_stop(text, request.params.stop)
        finish: FinishReason = (
            "length" if end is None and not stopped and len(tokens) >= limit else "stop"
        )
        return Completion(
            request_id=request.id,
            text=text,
            finish_reason=finish,
            prompt_tokens=prompt_tokens,
            completion_tokens=len(tokens),
            model=self.name,
        )


class _RowSampler(LogitsProcessor):
    """Samples every row of a batch from its own random stream, honouring per-request seeds.

    ``generate`` samples a whole batch from one global generator, so a request's text would
    depend on its batch mates. Instead this processor warps the logits (temperature, top-k,
    top-p, with transformers' own warpers), draws each row's token by the exponential race
    (argmax of ``p / E`` with ``E ~ Exp(1)``, an exact sample from ``p``) using a generator
    seeded from the request, and returns a one-hot distribution that ``generate``'s own
    sampling step can only confirm. Unseeded rows get a seed from torch's global generator.
    """

    def __init__(
        self, params: SamplingParams, seeds: Sequence[int | None], device: torch.device
    ) -> None:
        self._warpers = LogitsProcessorList([TemperatureLogitsWarper(params.temperature)])
        if params.top_k is not None:
            self._warpers.append(TopKLogitsWarper(params.top_k))
        if params.top_p < 1.0:
            self._warpers.append(TopPLogitsWarper(params.top_p))
        self._generators = [
            torch.Generator(device).manual_seed(
                seed if seed is not None else int(torch.randint(2**62, ()).item())
            )
            for seed in seeds
        ]

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        """Return scores that are 0 at each row's sampled token and -inf elsewhere."""
        probs = self._warpers(input_ids, scores).softmax(dim=-1)
        race = torch.stack(
            [
                torch.empty_like(row).exponential_(generator=g)
                for row, g in zip(probs, self._generators, strict=True)
            ]
        )
        chosen = (probs / race).argmax(dim=-1, keepdim=True)
        one_hot = torch.full_like(scores, float("-inf"))
        return cast("torch.FloatTensor", one_hot.scatter_(-1, chosen, 0.0))
