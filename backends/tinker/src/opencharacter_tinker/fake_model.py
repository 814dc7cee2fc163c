"""The torch half of the fake Tinker service: a frozen base model, LoRA adapters, sampling, losses.

:mod:`opencharacter_tinker.fake_server` speaks the wire protocol; this module does the maths it
answers with, so the two can be read (and tested) apart.

LoRA here is PEFT's LoRA, computed by forward hooks instead of PEFT's module surgery: one frozen
base model serves every adapter at once (the training runs' live weights and any number of
immutable sampler snapshots), and which adapter a forward pass uses is an argument rather than
global PEFT state. The numbers are PEFT's (``y = W x + (alpha / r) * B A x``, ``A`` Kaiming-uniform
and ``B`` zero at init, no dropout) and :meth:`LoraWeights.peft_files` writes a standard PEFT
adapter folder, so a downloaded adapter loads with ``peft.PeftModel.from_pretrained`` and gives
the same logits.
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import io
import json
import math
import os
import tarfile
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import save as safetensors_save
from torch import nn
from transformers import AutoModelForCausalLM, AutoTokenizer

# Linear layers whose dotted path contains one of these segments belong to attention or the MLP;
# everything else (embeddings, lm_head, norms) is never adapted.
_ATTENTION_SEGMENTS = ("self_attn", "attn", "attention")
_MLP_SEGMENTS = ("mlp", "feed_forward", "ffn")


@dataclass(frozen=True)
class LoraSpec:
    """The shape of a LoRA, as ``LoraConfig`` gives it plus the server's fixed alpha.

    ``train_unembed`` is recorded (it is reported back) but never applied: the fake adapts only
    attention and MLP projections. Real Tinker also adapts the unembedding; for the tiny models
    this fake serves, leaving it out changes nothing a test can rely on.
    """

    rank: int
    alpha: float
    train_attn: bool = True
    train_mlp: bool = True
    train_unembed: bool = True

    @property
    def scale(self) -> float:
        """PEFT's scaling factor: ``alpha / r`` (no rsLoRA)."""
        return self.alpha / self.rank


@dataclass
class LoraWeights:
    """One adapter: ``(A, B)`` per adapted module path, in PEFT's layout (``A`` is r x in)."""

    spec: LoraSpec
    tensors: dict[str, tuple[torch.Tensor, torch.Tensor]]

    def parameters(self) -> list[torch.Tensor]:
        """The tensors in a fixed order (sorted paths, ``A`` before ``B``): the optimizer's."""
        return [t for path in sorted(self.tensors) for t in self.tensors[path]]

    def snapshot(self) -> LoraWeights:
        """An immutable copy, detached from autograd: what a checkpoint or sampler holds."""
        frozen = {p: (a.detach().clone(), b.detach().clone()) for p, (a, b) in self.tensors.items()}
        return LoraWeights(self.spec, frozen)

    def load_(self, other: LoraWeights) -> None:
        """Copy ``other``'s values into these tensors in place (the optimizer keeps its refs)."""
        with torch.no_grad():
            for path, (a, b) in self.tensors.items():
                a.copy_(other.tensors[path][0])
                b.copy_(other.tensors[path][1])

    def nbytes(self) -> int:
        """The adapter's size, for checkpoint listings."""
        return sum(t.numel() * t.element_size() for t in self.parameters())

    def peft_files(self, base_model: str) -> dict[str, bytes]:
        """The adapter as a PEFT folder: ``adapter_config.json`` and ``adapter_model.safetensors``.

        Keys follow PEFT's saved format (``base_model.model.<module>.lora_A.weight``), which is
        also what the real service's archives hold for dense Qwen3 attention and MLP layers.
        """
        tensors: dict[str, torch.Tensor] = {}
        for path, (a, b) in sorted(self.tensors.items()):
            tensors[f"base_model.model.{path}.lora_A.weight"] = a.detach().contiguous().cpu()
            tensors[f"base_model.model.{path}.lora_B.weight"] = b.detach().contiguous().cpu()
        config = {
            "peft_type": "LORA",
            "task_type": "CAUSAL_LM",
            "base_model_name_or_path": base_model,
            "r": self.spec.rank,
            "lora_alpha": self.spec.alpha,
            "lora_dropout": 0.0,
            "bias": "none",
            "target_modules": sorted({path.rsplit(".", 1)[-1] for path in self.tensors}),
            "fan_in_fan_out": False,
            "inference_mode": True,
            "init_lora_weights": True,
            "use_rslora": False,
            "use_dora": False,
            "modules_to_save": None,
        }
        return {
            "adapter_config.json": json.dumps(config, indent=2).encode(),
            "adapter_model.safetensors": safetensors_save(tensors, metadata={"format": "pt"}),
        }


def tar_archive(files: Mapping[str, bytes]) -> bytes:
    """Pack files at the archive root, as the real service's checkpoint archives are laid out."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


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
        self.model.eval()
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

    # -- scoring and training -----------------------------------------------------------------

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
            prompt_topk = _topk_rows(prompt_lp[:-1], settings.topk_prompt, pad_first=True)
            if decoding and num_samples > 1:
                cache.batch_repeat_interleave(num_samples)
            step_lp = prompt_lp[-1].expand(num_samples, -1)
            running = [_Running() for _ in range(num_samples)]
            for step in range(settings.max_tokens):
                chosen = _choose(step_lp, settings, generator)
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
        self, run: _Running, token: int, logprobs: torch.Tensor, settings: SamplingSettings
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


@dataclass
class _Running:
    tokens: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    topk_ids: list[list[int]] = field(default_factory=list)
    topk_lps: list[list[float]] = field(default_factory=list)
    stop_reason: str | None = None

    def result(self, k: int) -> SequenceResult:
        topk = None
        if k > 0:
            topk = (_pad_rows(self.topk_ids, k, 0), _pad_rows(self.topk_lps, k, -99999.0))
        return SequenceResult(self.tokens, self.logprobs, self.stop_reason or "length", topk)


def _pad_rows(rows: list[list[Any]], k: int, fill: float) -> np.ndarray:
    out = np.full((len(rows), k), fill)
    for i, row in enumerate(rows):
        out[i, : len(row)] = row
    return out


def _topk_rows(
    logprobs: torch.Tensor, k: int, *, pad_first: bool
) -> tuple[np.ndarray, np.ndarray] | None:
    """Top-k (ids, logprobs) per row; with ``pad_first`` an empty row 0 (no context there)."""
    if k <= 0:
        return None
    k_eff = min(k, logprobs.shape[-1])
    values, ids = torch.topk(logprobs, k_eff, dim=-1)
    id_rows = [[0] * k] if pad_first else []
    lp_rows = [[-99999.0] * k] if pad_first else []
    id_rows += ids.tolist()
    lp_rows += values.tolist()
    return _pad_rows(id_rows, k, 0), _pad_rows(lp_rows, k, -99999.0)


def _choose(
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


# -- training ---------------------------------------------------------------------------------


@dataclass
class Datum:
    """One training example as the wire carries it: input tokens and named loss inputs."""

    tokens: list[int]
    inputs: dict[str, np.ndarray]


@dataclass
class TrainingCheckpoint:
    """A training run's state at one point: what ``save_state`` keeps."""

    weights: LoraWeights
    optimizer: dict[str, Any] | None
    step: int


class Trainer:
    """One LoRA training run: its live weights, an AdamW over them, and the losses Tinker offers.

    Gradients accumulate across ``forward_backward`` calls until ``optim_step`` applies and clears
    them, exactly as the service's own contract says.
    """

    def __init__(self, model: ServedModel, spec: LoraSpec, seed: int) -> None:
        self.model = model
        self.weights = model.new_lora(spec, seed)
        self.params = self.weights.parameters()
        # The hyperparameters arrive with every optim_step; these are placeholders.
        self.optimizer = torch.optim.AdamW(self.params, lr=0.0, weight_decay=0.0, foreach=False)
        self.step = 0

    def forward_backward(
        self,
        data: Sequence[Datum],
        loss_fn: str,
        config: Mapping[str, float | str],
        *,
        backward: bool,
    ) -> tuple[list[np.ndarray], dict[str, float]]:
        """Per-datum target logprobs and ``loss:sum``; accumulates gradients if ``backward``."""
        del config  # neither implemented loss takes options
        outputs: list[np.ndarray] = []
        with self.model.lock, torch.set_grad_enabled(backward):
            rows = self.model.batch_logprobs([d.tokens for d in data], self.weights)
            losses = []
            for index, (datum, logprobs) in enumerate(zip(data, rows, strict=True)):
                target_lp, loss = _loss(loss_fn, logprobs, datum, index)
                losses.append(loss)
                outputs.append(target_lp.detach().numpy().astype(np.float32))
            total = torch.stack(losses).sum() if losses else torch.zeros(())
            if backward and losses:
                total.backward()
        return outputs, {"loss:sum": float(total.detach())}

    def optim_step(
        self,
        *,
        learning_rate: float,
        beta1: float,
        beta2: float,
        eps: float,
        weight_decay: float,
        grad_clip_norm: float,
    ) -> dict[str, float]:
        """One AdamW step (decoupled weight decay, optional norm clipping), then zero grads."""
        with self.model.lock:
            grads = [p.grad for p in self.params if p.grad is not None]
            norm = (
                float(torch.linalg.vector_norm(torch.stack([g.norm() for g in grads])))
                if grads
                else 0.0
            )
            if grad_clip_norm > 0 and grads:
                torch.nn.utils.clip_grad_norm_(self.params, grad_clip_norm)
            for group in self.optimizer.param_groups:
                group.update(lr=learning_rate, betas=(beta1, beta2), eps=eps)
                group["weight_decay"] = weight_decay
            self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)
            self.step += 1
        return {"grad_norm:mean": norm}

    def checkpoint(self) -> TrainingCheckpoint:
        """Weights, Adam moments and step count, copied so later training cannot change them."""
        with self.model.lock:
            state = copy.deepcopy(self.optimizer.state_dict())
            return TrainingCheckpoint(self.weights.snapshot(), state, self.step)

    def restore(self, checkpoint: TrainingCheckpoint, *, optimizer: bool) -> None:
        """Load weights (and, if asked, the optimizer state and step) from a checkpoint."""
        with self.model.lock:
            self.weights.load_(checkpoint.weights)
            if optimizer and checkpoint.optimizer is not None:
                self.optimizer.load_state_dict(copy.deepcopy(checkpoint.optimizer))
                self.step = checkpoint.step


def _loss(
    loss_fn: str, logprobs: torch.Tensor, datum: Datum, index: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """(target logprobs, scalar loss) for one datum under one of Tinker's built-in losses."""
    targets = datum.inputs.get("target_tokens")
    if targets is None:
        msg = f"datum {index}: loss_fn_inputs has no 'target_tokens'"
        raise ValueError(msg)
    target = torch.as_tensor(targets, dtype=torch.long)
    if target.shape[0] != logprobs.shape[0]:
        msg = (
            f"datum {index}: target_tokens has {target.shape[0]} rows but model_input has "
            f"{logprobs.shape[0]} tokens"
        )
        raise ValueError(msg)
    if bool(((target < 0) | (target >= logprobs.shape[1])).any()):
        msg = f"datum {index}: target_tokens out of the vocabulary range"
        raise ValueError(msg)
    flat = target.reshape(target.shape[0], -1)
    target_lp = logprobs.gather(1, flat).reshape(target.shape)
    if loss_fn == "cross_entropy":
        weights = _float_input(datum, "weights", target.shape, index, default=1.0)
        return target_lp, -(target_lp * weights).sum()
    if loss_fn == "importance_sampling":
        sampled = _float_input(datum, "logprobs", target.shape, index)
        advantages = _float_input(datum, "advantages", target.shape, index)
        ratio = torch.exp(target_lp - sampled)
        return target_lp, -(ratio * advantages).sum()
    msg = f"loss_fn {loss_fn!r} is not implemented by the fake Tinker server"
    raise ValueError(msg)


def _float_input(
    datum: Datum,
    name: str,
    shape: torch.Size,
    index: int,
    default: float | None = None,
) -> torch.Tensor:
    value = datum.inputs.get(name)
    if value is None:
        if default is None:
            msg = f"datum {index}: loss_fn_inputs has no {name!r}"
            raise ValueError(msg)
        return torch.full(shape, default)
    tensor = torch.as_tensor(np.asarray(value, dtype=np.float32))
    if tensor.shape != shape:
        msg = f"datum {index}: {name} has shape {tuple(tensor.shape)}, expected {tuple(shape)}"
        raise ValueError(msg)
    return tensor
