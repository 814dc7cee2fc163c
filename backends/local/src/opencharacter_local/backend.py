"""The local backend: sampling and training on this machine's GPUs, or CPU for tiny models.

Teachers and students share one :class:`~opencharacter_local.engine_cache.EngineCache`, so a
student at several checkpoints reuses loaded engines; engines are freed before training so
sampling and training never hold a GPU's memory at the same time.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any, Literal

import attrs
from attrs import validators as v

from opencharacter.protocols import Capabilities
from opencharacter.types import Checkpoint
from opencharacter_local.engine_cache import EngineCache, default_engine_factory
from opencharacter_local.engines import TransformersEngine
from opencharacter_local.sampler import LocalSampler
from opencharacter_local.trainer import LocalTrainer
from opencharacter_local.vllm_engine import VLLMEngine


@attrs.define(kw_only=True)
class LocalBackend:
    """Options of the ``local`` backend (``-o key=value`` on the command line).

    Attributes:
        engine: ``"auto"`` (vLLM when installed, else transformers), ``"vllm"`` or
            ``"transformers"``.
        device: ``"auto"`` (CUDA when available), ``"cuda"`` or ``"cpu"``; for transformers
            sampling and for training.
        max_batch_size: requests per engine call; the pipeline's concurrent requests are
            gathered into batches of this size.
        micro_batch_size: pairs or conversations per forward pass in training; ``None`` uses
            the config's, else 2 (the paper's 1-2). The effective batch is kept by gradient
            accumulation.
        engines_cached: models kept loaded at once (teacher and student: 2 when they differ
            and memory allows).
        tensor_parallel_size: GPUs one vLLM engine spreads a model over (a 70-235B teacher
            needs 4-8); give the teacher its own with ``--teacher-option``.
        gpu_memory_utilization: share of each GPU vLLM may take (its default 0.9); lower it
            when a trainer or a second engine shares the GPU.
        max_model_len: the context vLLM reserves KV cache for (default: the model's whole).
        dtype: vLLM's weight dtype; ``"auto"``: bfloat16 on GPU, float32 on CPU.
        quantization: vLLM's quantization method for pre-quantized weights (``"awq"``,
            ``"gptq"``, ``"fp8"``...).
    """

    engine: Literal["auto", "vllm", "transformers"] = attrs.field(
        default="auto", validator=v.in_(("auto", "vllm", "transformers"))
    )
    device: str = attrs.field(default="auto", validator=v.in_(("auto", "cuda", "cpu")))
    max_batch_size: int = attrs.field(default=32, validator=v.ge(1))
    micro_batch_size: int | None = attrs.field(default=None, validator=v.optional(v.ge(1)))
    engines_cached: int = attrs.field(default=2, validator=v.ge(1))
    tensor_parallel_size: int = attrs.field(default=1, validator=v.ge(1))
    gpu_memory_utilization: float | None = attrs.field(
        default=None, validator=v.optional(v.and_(v.gt(0.0), v.le(1.0)))
    )
    max_model_len: int | None = attrs.field(default=None, validator=v.optional(v.ge(1)))
    dtype: str = "auto"
    quantization: str | None = None
    _engines: EngineCache = attrs.field(init=False)

    name = "local"

    def __attrs_post_init__(self) -> None:
        vllm = partial(VLLMEngine, **self.vllm_options)
        transformers = partial(TransformersEngine, device=self.device)
        if self.engine == "auto":
            factory = vllm if default_engine_factory() is VLLMEngine else transformers
        else:
            factory = vllm if self.engine == "vllm" else transformers
        self._engines = EngineCache(factory, capacity=self.engines_cached)

    @property
    def vllm_options(self) -> dict[str, Any]:
        """The engine settings given, as ``vllm.LLM`` takes them (the rest: its defaults)."""
        options: dict[str, Any] = {"tensor_parallel_size": self.tensor_parallel_size}
        given = {
            "gpu_memory_utilization": self.gpu_memory_utilization,
            "max_model_len": self.max_model_len,
            "dtype": None if self.dtype == "auto" else self.dtype,
            "quantization": self.quantization,
        }
        options.update({key: value for key, value in given.items() if value is not None})
        return options

    @property
    def capabilities(self) -> Capabilities:
        """Local models honour every sampling setting and train real LoRA weights."""
        return Capabilities(remote=False, max_concurrency=4 * self.max_batch_size)

    def teacher(self, model: str) -> LocalSampler:
        """Return a sampler of ``model`` (a Hub name, a local folder or the tiny model)."""
        return LocalSampler(model, engines=self._engines, max_batch_size=self.max_batch_size)

    def student(self, model: str, checkpoint: Checkpoint | None = None) -> LocalSampler:
        """Return a student of ``model``, at ``checkpoint`` (an adapter folder) if given."""
        return LocalSampler(
            model, checkpoint, engines=self._engines, max_batch_size=self.max_batch_size
        )

    def check_models(self, *, sample: Sequence[str] = (), train: Sequence[str] = ()) -> None:
        """Nothing to ask in advance: a model loads (or says why not) when first used."""

    def trainer(self) -> LocalTrainer:
        """Return the TRL trainer; it frees the loaded sampling engines before each stage."""
        return LocalTrainer(
            device=self.device, micro_batch_size=self.micro_batch_size, before=self._engines.clear
        )
