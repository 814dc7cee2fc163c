"""A frozen Hugging Face model that serves every LoRA adapter at once: scoring and sampling.

LoRA here is PEFT's LoRA (:mod:`opencharacter_tinker.fake.lora`), computed by forward hooks
instead of PEFT's module surgery: one frozen base model serves every adapter at once (the training
runs' live weights and any number of immutable sampler snapshots), and which adapter a forward
pass uses is an argument rather than global PEFT state.
"""

from __future__ import annotations

import contextlib
import inspect
import math
import os
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from transformers import AutoModelForCausalLM, AutoTokenizer

from opencharacter_tinker.fake.decoding import (
    Running,
    SampleResult,
    SamplingSettings,
    choose,
    topk_rows,
)
from opencharacter_tinker.fake.lora import LoraSpec, LoraWeights

# Linear layers whose dotted path contains one of these segments belong to attention or the MLP;
# everything else (embeddings, lm_head, norms) is never adapted.
_ATTENTION_SEGMENTS = ("self_attn", "attn", "attention")
_MLP_SEGMENTS = ("mlp", "feed_forward", "ffn")


class ServedModel:
    """A Hugging Face causal LM served frozen, with LoRA adapters applied per forward pass.

    Every forward pass holds :attr:`lock`, because which adapter the hooks apply is state on
    this object; compute is therefore serialised per base model, which for the tiny test models
    costs nothing and keeps results independent of thread interleaving.
    """

    def __init__(self, name: str, folder: str | os.PathLike[str]) -> None:
        self.name = name
        self.folder = str(Path(folder))
        self.lock = threading.RLock()
        self.model = AutoModelForCausalLM.from_pretrained(self.folder, dtype=torch.float32)
        self.model.train(False)  # what .eval() does; transformers leaves eval() unannotated
        self.model.requires_grad_(False)
        self.tokenizer = AutoTokenizer.from_pretrained(self.folder)
        config = self.model.config
        self.max_context_length = int(getattr(config, "max_position_embeddings", 0) or 32768)
        self.vocab_size = int(config.vocab_size)
        self.arch = (getattr(config, "architectures", None) or [config.model_type])[0]
        self.eos_tokens = frozenset(_eos_ids(self.model))
        # transformers 5 renamed `past_key_values` to `cache` (and warns on the old name).
        forward_params = inspect.signature(self.model.forward).parameters
        self._cache_arg = "cache" if "cache" in forward_params else "past_key_values"
        self._active: LoraWeights | None = None
        self._kinds: dict[str, str] = {}
        for path, module in self.model.named_modules():
            kind = _module_kind(path, module)
            if kind is not None:
                self._kinds[path] = kind
                module.register_forward_hook(self._make_hook(path))

    # -- adapters ---------------------------------------------------------------------------

    def new_lora(self, spec: LoraSpec, seed: int) -> LoraWeights:
        """Fresh trainable LoRA weights, initialised as PEFT does, deterministically from seed."""
        generator = torch.Generator().manual_seed(seed)
        tensors: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        modules = dict(self.model.named_modules())
        for path in sorted(self._kinds):
            kind = self._kinds[path]
            if (kind == "attn" and not spec.train_attn) or (kind == "mlp" and not spec.train_mlp):
                continue
            linear = modules[path]
            a = torch.empty(spec.rank, linear.in_features)
            nn.init.kaiming_uniform_(a, a=math.sqrt(5), generator=generator)
            b = torch.zeros(linear.out_features, spec.rank)
            tensors[path] = (a.requires_grad_(), b.requires_grad_())
        return LoraWeights(spec, tensors)

    def has_targets(self, spec: LoraSpec) -> bool:
        """Whether ``spec`` adapts at least one layer of this model."""
        wanted = {"attn"} if spec.train_attn else set()
        wanted |= {"mlp"} if spec.train_mlp else set()
        return any(kind in wanted for kind in self._kinds.values())

    @contextlib.contextmanager
    def _adapter(self, weights: LoraWeights | None) -> Iterator[None]:
        with self.lock:
            self._active = weights
            try:
                yield
            finally:
                self._active = None

    def _make_hook(self, path: str) -> Any:
        def hook(_module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> Any:
            weights = self._active
            if weights is None or path not in weights.tensors:
                return None
            a, b = weights.tensors[path]
            x = inputs[0].to(a.dtype)
            return output + (x @ a.T @ b.T) * weights.spec.scale

        return hook

    # -- scoring --------------------------------------------------------------------------------

    def logprobs(self, tokens: Sequence[int], weights: LoraWeights | None) -> torch.Tensor:
        """Log-softmax over the vocabulary at every position, shape (len(tokens), vocab).

        Gradients flow to ``weights`` when grad mode is on; the caller chooses.
        """
        return self.batch_logprobs([tokens], weights)[0]

    def batch_logprobs(
        self, sequences: Sequence[Sequence[int]], weights: LoraWeights | None
    ) -> list[torch.Tensor]:
        """:meth:`logprobs` of each sequence, computed in right-padded batches.

        Causal attention never looks right, so the padding cannot change a real position; one
        batched pass costs a fraction of one pass per sequence, as on the real service.
        """
        for tokens in sequences:
            self.check_tokens(tokens)
        out: list[torch.Tensor] = []
        with self._adapter(weights):
            for chunk in self._chunks(sequences):
                width = max(len(t) for t in chunk)
                ids = torch.tensor([[*t, *[0] * (width - len(t))] for t in chunk])
                logits = self.model(input_ids=ids).logits
                rows = torch.log_softmax(logits.float(), dim=-1)
                out.extend(row[: len(t)] for row, t in zip(rows, chunk, strict=True))
        return out

    def _chunks(self, sequences: Sequence[Sequence[int]]) -> Iterator[list[Sequence[int]]]:
        """Consecutive groups whose padded log-probabilities stay under ~2**26 floats."""
        chunk: list[Sequence[int]] = []
        for tokens in sequences:
            width = max(len(t) for t in (*chunk, tokens))
            if chunk and (len(chunk) + 1) * width * self.vocab_size > 2**26:
                yield chunk
                chunk = []
            chunk.append(tokens)
        if chunk:
            yield chunk

    def check_tokens(self, tokens: Sequence[int]) -> None:
        """Reject what the real service would: empty inputs and ids outside the vocabulary."""
        if not tokens:
            msg = "model_input has no tokens"
            raise ValueError(msg)
        bad = [t for t in tokens if not 0 <= t < self.vocab_size]
        if bad:
            msg = (
                f"token ids out of range for {self.name} (vocab size {self.vocab_size}): {bad[:5]}"
            )
            raise ValueError(msg)

    # -- sampling -------------------------------------------------------------------------------

    def sample(
        self,
        prompt: Sequence[int],
        num_samples: int,
        settings: SamplingSettings,
        weights: LoraWeights | None,
        generator: torch.Generator,
    ) -> SampleResult:
        """Generate ``num_samples`` continuations of ``prompt`` with one shared prefill.

        Reported logprobs are the model's raw log-softmax (temperature 1, before top-k/top-p),
        as vLLM's default ``raw_logprobs`` gives; temperature and filters only shape the choice.
        """
        self.check_tokens(prompt)
        prompt = list(prompt)
        decoding = settings.max_tokens > 1  # a single token needs no KV cache
        with self._adapter(weights), torch.no_grad():
            out = self.model(input_ids=torch.tensor([prompt]), use_cache=decoding)
            cache = _cache_of(out)
            prompt_lp = torch.log_softmax(out.logits[0].float(), dim=-1)
            prompt_logprobs = np.full(len(prompt), np.nan, dtype=np.float32)
            targets = torch.tensor(prompt[1:])
            prompt_logprobs[1:] = prompt_lp[:-1].gather(1, targets[:, None])[:, 0].numpy()
            prompt_topk = topk_rows(prompt_lp[:-1], settings.topk_prompt, pad_first=True)
            if decoding and num_samples > 1:
                cache.batch_repeat_interleave(num_samples)
            step_lp = prompt_lp[-1].expand(num_samples, -1)
            running = [Running() for _ in range(num_samples)]
            for step in range(settings.max_tokens):
                chosen = choose(step_lp, settings, generator)
                for i, run in enumerate(running):
                    if run.stop_reason is None:
                        self._extend(run, int(chosen[i]), step_lp[i], settings)
                last = step == settings.max_tokens - 1
                if last or all(run.stop_reason is not None for run in running):
                    break
                out = self.model(
                    input_ids=chosen[:, None], use_cache=True, **{self._cache_arg: cache}
                )
                cache = _cache_of(out)
                step_lp = torch.log_softmax(out.logits[:, -1].float(), dim=-1)
        sequences = [run.result(settings.topk_sample) for run in running]
        return SampleResult(sequences, prompt_logprobs, prompt_topk)

    def _extend(
        self, run: Running, token: int, logprobs: torch.Tensor, settings: SamplingSettings
    ) -> None:
        run.tokens.append(token)
        run.logprobs.append(float(logprobs[token]))
        if settings.topk_sample > 0:
            values, ids = torch.topk(logprobs, min(settings.topk_sample, logprobs.numel()))
            run.topk_ids.append(ids.tolist())
            run.topk_lps.append(values.tolist())
        if token in settings.stop_tokens:
            run.stop_reason = "stop"
        elif settings.stop_strings:
            text = self.tokenizer.decode(run.tokens, skip_special_tokens=False)
            if any(s in text for s in settings.stop_strings):
                run.stop_reason = "stop"


def _cache_of(output: Any) -> Any:
    # Read by key: the `past_key_values` attribute is a deprecated alias on transformers 5.
    cache = output.get("cache")
    return cache if cache is not None else output.get("past_key_values")


def _module_kind(path: str, module: nn.Module) -> str | None:
    if not isinstance(module, nn.Linear) or not path:
        return None
    segments = path.split(".")
    if any(s in _ATTENTION_SEGMENTS for s in segments):
        return "attn"
    if any(s in _MLP_SEGMENTS or s == "experts" for s in segments):
        return "mlp"
    return None


def _eos_ids(model: nn.Module) -> list[int]:
    ids: list[int] = []
    for source in (getattr(model, "generation_config", None), model.config):
        value = getattr(source, "eos_token_id", None) if source is not None else None
        if isinstance(value, int):
            ids.append(value)
        elif isinstance(value, list | tuple):
            ids.extend(int(v) for v in value)
    return sorted(set(ids))
