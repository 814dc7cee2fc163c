"""Local backend throughput: our sampler and DPO trainer against the library calls they wrap.

Run: python benchmarks/bench_local.py [--model tiny|qwen3-4b-shape] [--requests N]
     [--new-tokens T] [--batch-size B] [--pairs P] [--device auto|cpu|cuda]
     [--repeats R] [--only sampling|dpo]

Sampling: the same N chat requests (fixed prompts, at most T new tokens, temperature 0.7,
top-p 0.95, a seed each) go through

* our ``LocalSampler`` on ``TransformersEngine``, driven as the pipeline drives it: N
  concurrent single-request ``generate`` calls on one event loop, which the sampler gathers
  into engine batches of B (the batch sizes it formed are printed);
* a plain ``model.generate`` loop over the same prompts in batches of B, same dtype and device
  (the library call the engine wraps);
* when vLLM is importable, our ``VLLMEngine`` behind the same sampler, plain ``vllm.LLM.chat``
  on the same batches of B, and plain ``LLM.chat`` with all N requests in one call (vLLM's own
  scheduling, the best a script could do).

Each side loads its model and runs one warm-up batch before any clock starts. The two
transformers sides stay loaded and take turns (the order alternating each round); the vLLM
sides run one after the other, as two engines do not share a GPU. Only generated tokens count,
up to and including the end-of-turn token. Each side's best of R runs is kept, since other work
on the machine only ever slows a run down. Printed: tokens/s, the ratios ours / plain (1.00: the
wrapper costs nothing) and vLLM / transformers.

DPO: P synthetic conversational preference pairs trained by ``LocalTrainer().dpo(...)`` (with
an ``on_step`` callback, as the pipeline calls it) against a plain script: ``trl.DPOTrainer``
plus a peft ``LoraConfig`` with the very TRL arguments ``dpo_arguments(...)`` builds, so the
difference is our wrapper (data conversion, length filtering, the step callback, writing the
adapter and completion marker). Each run is timed from loading the tokenizer and model to the
end of training (ours: the whole ``dpo`` call); an untimed one-step run of the plain script goes
first, and the two then alternate, best of R. Training tokens are prompt + chosen + rejected
tokens x epochs; both sides' final losses are printed as a check that they trained alike.

``--model qwen3-4b-shape`` builds (once, into ``$OPENCHARACTER_CACHE``, default
``~/.cache/opencharacter``) a random-weight ``Qwen3ForCausalLM`` with Qwen3-4B's shape, in
bfloat16 on CUDA, with the tiny model's tokenizer; it needs a GPU. Its defaults take several
minutes per part on one GPU (three vLLM start-ups among them): run ``--only sampling`` and
``--only dpo`` as separate commands where a command's time is limited.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import hashlib
import json
import os
import random
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import attrs
import torch
import trl
from datasets import Dataset
from opencharacter_local.engine_cache import EngineCache
from opencharacter_local.engines import TransformersEngine
from opencharacter_local.sampler import LocalSampler
from opencharacter_local.tiny import build_tiny_model, tiny_text
from opencharacter_local.trainer import LocalTrainer
from opencharacter_local.trl_args import dpo_arguments
from peft import LoraConfig
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    GenerationConfig,
    PrinterCallback,
    Qwen3Config,
    Qwen3ForCausalLM,
)

from opencharacter.training import DPOConfig, LoRAConfig
from opencharacter.types import GenerationRequest, PreferencePair, SamplingParams, to_dicts

# Raised inside PEFT and TRL (they read a deprecated alias); nothing to do with what is measured.
warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)

TEMPERATURE = 0.7
TOP_P = 0.95

# Qwen3-4B's config.json, less what only matters for quality; the weights are random.
QWEN3_4B_SHAPE: dict[str, Any] = {
    "vocab_size": 151936,
    "hidden_size": 2560,
    "intermediate_size": 9728,
    "num_hidden_layers": 36,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "head_dim": 128,
    "max_position_embeddings": 40960,
    "rope_parameters": {"rope_type": "default", "rope_theta": 1_000_000.0},
    "rms_norm_eps": 1e-6,
    "tie_word_embeddings": True,
}


@attrs.frozen
class Preset:
    """Defaults per model: workload sizes, DPO batching and LoRA, text lengths in sentences."""

    requests: int
    new_tokens: int
    batch_size: int
    pairs: int
    repeats: int
    dpo: DPOConfig
    prompt_sentences: tuple[int, int]
    answer_sentences: tuple[int, int]


PRESETS = {
    "tiny": Preset(
        requests=64,
        new_tokens=64,
        batch_size=32,
        pairs=64,
        repeats=3,
        dpo=attrs.evolve(
            DPOConfig(), batch_size=8, micro_batch_size=4, lora=LoRAConfig(rank=8, alpha=16)
        ),
        prompt_sentences=(2, 5),
        answer_sentences=(3, 10),
    ),
    "qwen3-4b-shape": Preset(  # the paper's batch 32 and LoRA rank 64 / alpha 128
        requests=128,
        new_tokens=256,
        batch_size=32,
        pairs=128,
        repeats=2,
        dpo=attrs.evolve(DPOConfig(), batch_size=32, micro_batch_size=4),
        prompt_sentences=(6, 14),
        answer_sentences=(20, 45),
    ),
}


def conversation(rng: random.Random, preset: Preset) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": "You are a kind and curious assistant."},
        {"role": "user", "content": tiny_text(rng, *preset.prompt_sentences)},
    ]


# ----------------------------------------------------------------------------------- models


def cache_root() -> Path:
    return Path(os.environ.get("OPENCHARACTER_CACHE") or Path.home() / ".cache" / "opencharacter")


def build_shape_model(shape: dict[str, Any], device: str, directory: Path | None = None) -> Path:
    """Save a random Qwen3 of ``shape`` in bfloat16 with the tiny tokenizer, or reuse the save.

    The model's vocabulary is at least the tokenizer's; ids the tokenizer lacks are never fed
    in and decode to nothing. A marker written last makes a half-written folder be rebuilt.
    """
    tiny = build_tiny_model()
    settings = {"shape": shape, "tokenizer": tiny.name, "seed": 0, "dtype": "bfloat16"}
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:12]
    target = directory or cache_root() / f"bench-qwen3-shape-{digest}"
    marker = target / "bench-shape.json"
    if marker.is_file() and json.loads(marker.read_text(encoding="utf-8")) == settings:
        return target
    shutil.rmtree(target, ignore_errors=True)
    tokenizer = AutoTokenizer.from_pretrained(tiny)
    end_of_turn = tokenizer.convert_tokens_to_ids("<|im_end|>")
    config = Qwen3Config(
        **{**shape, "vocab_size": max(shape["vocab_size"], len(tokenizer))},
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=end_of_turn,
        bos_token_id=None,
    )
    print(f"building a random {shape['num_hidden_layers']}-layer Qwen3 into {target} ...")
    torch.manual_seed(settings["seed"])
    with torch.device(device):  # initialised where it will run: minutes faster than on CPU
        model = Qwen3ForCausalLM._from_config(config, dtype=torch.bfloat16)
    model.generation_config = GenerationConfig(
        eos_token_id=[end_of_turn, tokenizer.convert_tokens_to_ids("<|endoftext|>")],
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=None,
    )
    model.save_pretrained(target)
    tokenizer.save_pretrained(target)
    del model
    free_memory()
    marker.write_text(json.dumps(settings, indent=1), encoding="utf-8")
    return target


def free_memory() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


# --------------------------------------------------------------------------------- sampling


def make_requests(count: int, new_tokens: int, preset: Preset) -> list[GenerationRequest]:
    rng = random.Random(1)
    return [
        GenerationRequest(
            id=f"r{i}",
            messages=conversation(rng, preset),
            params=SamplingParams(
                max_tokens=new_tokens, temperature=TEMPERATURE, top_p=TOP_P, seed=i
            ),
        )
        for i in range(count)
    ]


def warm_up_requests(requests: Sequence[GenerationRequest], batch: int) -> list[GenerationRequest]:
    """A first batch of the same prompts with a few new tokens: loads and warms, untimed."""
    return [
        attrs.evolve(r, id=f"warm-{r.id}", params=attrs.evolve(r.params, max_tokens=8))
        for r in requests[:batch]
    ]


class OurSampler:
    """Our side: N concurrent one-request ``generate`` calls on a ``LocalSampler``.

    One event loop serves every run, as one serves a whole pipeline stage. The engine is
    wrapped only to record the batch sizes the sampler formed.
    """

    def __init__(
        self, label: str, engine_class: Any, path: str, requests, batch: int, **options: Any
    ) -> None:
        self.label = label
        self.batches: list[int] = []
        self._requests = requests

        def factory(model: str, *, adapter: str | None = None, base_weights: str | None = None):
            engine = engine_class(model, adapter=adapter, base_weights=base_weights, **options)
            return _Counting(engine, self.batches)

        self._engines = EngineCache(factory)
        self._sampler = LocalSampler(path, engines=self._engines, max_batch_size=batch)
        self._loop = asyncio.new_event_loop()
        self._drive(warm_up_requests(requests, batch))  # loads the engine

    def _drive(self, requests: Sequence[GenerationRequest]) -> list[Any]:
        async def one(request: GenerationRequest) -> Any:
            (completion,) = [c async for c in self._sampler.generate([request])]
            return completion

        async def everyone() -> list[Any]:
            return await asyncio.gather(*(one(r) for r in requests))

        return self._loop.run_until_complete(everyone())

    def run(self) -> tuple[int, float]:
        self.batches.clear()
        started = time.perf_counter()
        completions = self._drive(self._requests)
        wall = time.perf_counter() - started
        return sum(c.completion_tokens for c in completions), wall

    def close(self) -> None:
        self._engines.clear()
        self._loop.run_until_complete(self._loop.shutdown_default_executor())
        self._loop.close()
        free_memory()


class _Counting:
    def __init__(self, engine: Any, batches: list[int]) -> None:
        self.engine = engine
        self.batches = batches

    def generate(self, requests: Sequence[GenerationRequest]) -> Any:
        self.batches.append(len(requests))
        return self.engine.generate(requests)

    def close(self) -> None:
        self.engine.close()


class PlainTransformers:
    """The baseline: ``model.generate`` over the same prompts, B at a time, one global seed."""

    label = "plain transformers generate"

    def __init__(self, path: str, requests, batch: int, device: str) -> None:
        dtype = torch.bfloat16 if device == "cuda" else torch.float32
        self._tokenizer = AutoTokenizer.from_pretrained(path)  # pads on the left, as ours
        self._model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype, device_map=device)
        self._model.eval()
        self._requests, self._batch, self._device = requests, batch, device
        eos = self._model.generation_config.eos_token_id
        self._end_of_turn = set(eos if isinstance(eos, list) else [eos])
        self._end_of_turn.add(self._tokenizer.eos_token_id)
        self._generate(warm_up_requests(requests, batch))

    def _generate(self, chunk: Sequence[GenerationRequest]) -> int:
        tokenizer = self._tokenizer
        texts = [
            tokenizer.apply_chat_template(
                to_dicts(r.messages), tokenize=False, add_generation_prompt=True,
                enable_thinking=False,
            )
            for r in chunk
        ]  # fmt: skip
        inputs = tokenizer(texts, padding=True, add_special_tokens=False, return_tensors="pt")
        with torch.inference_mode():
            output = self._model.generate(
                **inputs.to(self._device),
                do_sample=True,
                temperature=TEMPERATURE,
                top_p=TOP_P,
                top_k=0,
                max_new_tokens=chunk[0].params.max_tokens,
                pad_token_id=tokenizer.pad_token_id,
            )
        rows = output[:, inputs["input_ids"].shape[1] :].tolist()
        tokenizer.batch_decode(rows, skip_special_tokens=True)  # a script wants the text too
        # A row ends at its first end-of-turn token; after it, generate pads.
        return sum(
            next((i + 1 for i, t in enumerate(row) if t in self._end_of_turn), len(row))
            for row in rows
        )

    def run(self) -> tuple[int, float]:
        torch.manual_seed(0)
        started = time.perf_counter()
        step = self._batch
        tokens = sum(
            self._generate(self._requests[i : i + step])
            for i in range(0, len(self._requests), step)
        )
        return tokens, time.perf_counter() - started

    def close(self) -> None:
        del self._model
        free_memory()


# Given to both vLLM sides: without a cap, vLLM reserves KV cache for the whole context.
VLLM_SHARED: dict[str, Any] = {"max_model_len": 4096}


def vllm_options(device: str) -> dict[str, Any]:
    """What our VLLMEngine passes to ``vllm.LLM`` (see its ``__init__``), plus the shared cap."""
    on_gpu = device == "cuda"
    return {
        "dtype": "bfloat16" if on_gpu else "float32",
        "seed": 0,
        "enforce_eager": not on_gpu,
        **VLLM_SHARED,
    }


class PlainVLLM:
    """The vLLM baseline: ``LLM.chat`` with a seed per request, B at a time or all at once."""

    def __init__(self, path: str, requests, batch: int | None, device: str) -> None:
        from vllm import LLM  # noqa: PLC0415 - optional

        self.label = "plain vllm.LLM.chat" + (
            f", batches of {batch}" if batch else f", all {len(requests)} in one call"
        )
        self._llm = LLM(model=path, tokenizer=path, **vllm_options(device))
        self._requests = requests
        self._batch = batch or len(requests)
        self._chat(warm_up_requests(requests, self._batch))

    def _chat(self, chunk: Sequence[GenerationRequest]) -> int:
        from vllm import SamplingParams as VLLMSamplingParams  # noqa: PLC0415

        outputs = self._llm.chat(
            [to_dicts(r.messages) for r in chunk],
            [
                VLLMSamplingParams(
                    n=1,
                    temperature=TEMPERATURE,
                    top_p=TOP_P,
                    seed=r.params.seed,
                    max_tokens=r.params.max_tokens,
                )
                for r in chunk
            ],
            chat_template_kwargs={"enable_thinking": False},
            use_tqdm=False,
        )
        return sum(len(o.outputs[0].token_ids) for o in outputs)

    def run(self) -> tuple[int, float]:
        started = time.perf_counter()
        step = self._batch
        tokens = sum(
            self._chat(self._requests[i : i + step]) for i in range(0, len(self._requests), step)
        )
        return tokens, time.perf_counter() - started

    def close(self) -> None:
        self._llm.llm_engine.engine_core.shutdown()
        del self._llm
        free_memory()


def race(sides: Sequence[Any], repeats: int) -> list[float]:
    """Run the sides in turn, alternating the order each round; return each one's best rate."""
    runs: dict[str, list[tuple[int, float]]] = {side.label: [] for side in sides}
    for round_ in range(repeats):
        for side in sides if round_ % 2 == 0 else sides[::-1]:
            runs[side.label].append(side.run())
    return [report(side, runs[side.label]) for side in sides]


def one_at_a_time(make_side: Callable[[], Any], repeats: int) -> float:
    """Load a side, run it ``repeats`` times, close it; for sides that cannot share a device."""
    side = make_side()
    try:
        runs = [side.run() for _ in range(repeats)]
    finally:
        side.close()
    return report(side, runs)


def report(side: Any, runs: list[tuple[int, float]]) -> float:
    """Print a side's best rate (and every run's wall time); return the best rate."""
    tokens, wall = max(runs, key=lambda run: run[0] / run[1])
    walls = ", ".join(f"{w:.2f}" for _, w in runs)
    batches = getattr(side, "batches", None)
    shown = f"; engine batches {', '.join(map(str, batches))}" if batches else ""
    print(
        f"  {side.label}: {tokens:,} tokens, best {tokens / wall:,.1f} tokens/s "
        f"(runs: {walls} s{shown})"
    )
    return tokens / wall


def bench_sampling(path: str, preset: Preset, args: argparse.Namespace) -> None:
    requests = make_requests(args.requests, args.new_tokens, preset)
    batch = args.batch_size
    print(
        f"\nsampling: {len(requests)} requests x {args.new_tokens} new tokens at most, batches "
        f"of {batch}, temperature {TEMPERATURE}, top-p {TOP_P}, seeded; best of {args.repeats}"
    )
    ours = OurSampler(
        "LocalSampler + TransformersEngine", TransformersEngine, path, requests, batch,
        device=args.device,
    )  # fmt: skip
    try:
        plain = PlainTransformers(path, requests, batch, args.device)
        try:
            ours_rate, plain_rate = race([ours, plain], args.repeats)
        finally:
            plain.close()
    finally:
        ours.close()
    print(f"  ours / plain (transformers) = {ours_rate / plain_rate:.3f}")
    if find_spec("vllm") is None:
        print("  vLLM: not installed, skipped")
        return
    from opencharacter_local.vllm_engine import VLLMEngine  # noqa: PLC0415

    # Two vLLM engines do not share a GPU by default, so these run one after the other.
    label = "LocalSampler + VLLMEngine"
    vllm_ours = one_at_a_time(
        lambda: OurSampler(label, VLLMEngine, path, requests, batch, **VLLM_SHARED), args.repeats
    )
    vllm_plain = one_at_a_time(lambda: PlainVLLM(path, requests, batch, args.device), args.repeats)
    vllm_whole = one_at_a_time(lambda: PlainVLLM(path, requests, None, args.device), args.repeats)
    print(f"  ours / plain (vLLM, same batches) = {vllm_ours / vllm_plain:.3f}")
    print(f"  ours / plain (vLLM, all requests in one call) = {vllm_ours / vllm_whole:.3f}")
    print(
        f"  vLLM / transformers: ours {vllm_ours / ours_rate:.2f}, "
        f"plain (same batches) {vllm_plain / plain_rate:.2f}"
    )


# -------------------------------------------------------------------------------------- DPO


def make_pairs(count: int, preset: Preset) -> list[PreferencePair]:
    rng = random.Random(2)
    return [
        PreferencePair(
            id=f"p{i}",
            prompt=conversation(rng, preset),
            chosen=tiny_text(rng, *preset.answer_sentences),
            rejected=tiny_text(rng, *preset.answer_sentences),
        )
        for i in range(count)
    ]


def rows_of(pairs: Sequence[PreferencePair]) -> list[dict[str, Any]]:
    """TRL's conversational preference rows, as a plain script would write them."""
    return [
        {
            "prompt": to_dicts(p.prompt),
            "chosen": [{"role": "assistant", "content": p.chosen}],
            "rejected": [{"role": "assistant", "content": p.rejected}],
        }
        for p in pairs
    ]


def training_tokens(tokenizer: Any, rows: Sequence[dict[str, Any]]) -> tuple[int, int]:
    """Return prompt + chosen + rejected tokens, and the longest prompt + answer."""
    total, longest = 0, 0

    def length(messages: list[dict[str, str]], **kwargs: Any) -> int:
        return len(tokenizer.apply_chat_template(messages, return_dict=True, **kwargs)["input_ids"])

    for row in rows:
        prompt = length(row["prompt"], add_generation_prompt=True)
        chosen = length(row["prompt"] + row["chosen"])
        rejected = length(row["prompt"] + row["rejected"])
        total += chosen + rejected - prompt
        longest = max(longest, chosen, rejected)
    return total, longest


def train_ours(path: str, pairs, config: DPOConfig, device: str, out: Path):
    """Our side, as the pipeline calls it (a student, an ``on_step`` callback, a fresh folder)."""
    steps: list[Any] = []
    started = time.perf_counter()
    checkpoint = LocalTrainer(device=device).dpo(
        LocalSampler(path), pairs, config, output_dir=out, on_step=steps.append
    )
    wall = time.perf_counter() - started
    free_memory()
    meta = checkpoint.meta
    return wall, meta["loss"], meta["steps"], meta["dropped"]


def train_plain(path: str, rows, config: DPOConfig, device: str, out: Path):
    """The baseline script: load, ``trl.DPOTrainer`` with a peft LoRA, train."""
    started = time.perf_counter()
    tokenizer = AutoTokenizer.from_pretrained(path)
    dtype = torch.float32 if device == "cpu" else torch.bfloat16
    model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype)
    lora = config.lora
    trainer = trl.DPOTrainer(
        model=model,
        args=dpo_arguments(config, out, examples=len(rows), device=device),
        train_dataset=Dataset.from_list(rows),
        processing_class=tokenizer,
        peft_config=LoraConfig(
            r=lora.rank,
            lora_alpha=lora.alpha,
            lora_dropout=lora.dropout,
            target_modules=lora.target_modules,
            task_type="CAUSAL_LM",
        ),
    )
    trainer.remove_callback(PrinterCallback)  # it prints every step's logs; ours removes it too
    trainer.train()
    wall = time.perf_counter() - started
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    steps = trainer.state.global_step
    del trainer, model
    free_memory()
    return wall, losses[-1], steps, 0


def bench_dpo(path: str, preset: Preset, args: argparse.Namespace) -> None:
    config = preset.dpo
    pairs = make_pairs(args.pairs, preset)
    rows = rows_of(pairs)
    tokens, longest = training_tokens(AutoTokenizer.from_pretrained(path), rows)
    tokens *= config.epochs
    micro = config.micro_batch_size or config.batch_size
    print(
        f"\nDPO: {len(pairs)} pairs x {config.epochs} epoch(s), batch {config.batch_size} "
        f"(micro {micro} x accumulation {-(-config.batch_size // micro)}), LoRA rank "
        f"{config.lora.rank} alpha {config.lora.alpha:g}, {tokens:,} training tokens "
        f"(longest prompt + answer {longest} of max_length {config.max_length}); "
        f"best of {args.repeats}"
    )
    sides = {
        "LocalTrainer.dpo": lambda out: train_ours(path, pairs, config, args.device, out),
        "plain trl.DPOTrainer": lambda out: train_plain(path, rows, config, args.device, out),
    }
    results: dict[str, list[tuple[float, float, int, int]]] = {label: [] for label in sides}
    with tempfile.TemporaryDirectory() as tmp:
        # One untimed optimiser step: the first trainer in a process pays one-off set-up costs.
        train_plain(path, rows[: config.batch_size], config, args.device, Path(tmp) / "warm")
        for round_ in range(args.repeats):
            order = list(sides) if round_ % 2 == 0 else list(sides)[::-1]
            for label in order:
                results[label].append(sides[label](Path(tmp) / f"{label}-{round_}"))
    rates = []
    for label, runs in results.items():
        best = min(wall for wall, *_ in runs)
        _, loss, steps, dropped = runs[0]
        rates.append(tokens / best)
        walls = ", ".join(f"{wall:.2f}" for wall, *_ in runs)
        print(
            f"  {label}: best {tokens / best:,.1f} tokens/s (runs: {walls} s; {steps} steps, "
            f"{dropped} pairs dropped, final loss {loss:.4f})"
        )
    print(f"  ours / plain (DPO) = {rates[0] / rates[1]:.3f}")


# ------------------------------------------------------------------------------------- main


def main() -> None:
    """Prepare the model, then run the sampling and DPO comparisons and print their ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=sorted(PRESETS), default="tiny")
    parser.add_argument("--requests", type=int, help="sampling requests (tiny: 64, 4b: 128)")
    parser.add_argument("--new-tokens", type=int, help="new tokens at most (tiny: 64, 4b: 256)")
    parser.add_argument("--batch-size", type=int, help="requests per engine call (32)")
    parser.add_argument("--pairs", type=int, help="DPO preference pairs (tiny: 64, 4b: 128)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument(
        "--repeats", type=int, help="timed runs per side, best kept (tiny: 3, 4b: 2)"
    )
    parser.add_argument("--only", choices=("sampling", "dpo"), help="run one comparison")
    args = parser.parse_args()
    preset = PRESETS[args.model]
    for name in ("requests", "new_tokens", "batch_size", "pairs", "repeats"):
        if getattr(args, name) is None:
            setattr(args, name, getattr(preset, name))
    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: torch sees no CUDA device")
    if args.model == "qwen3-4b-shape":
        if args.device != "cuda":
            parser.error("--model qwen3-4b-shape runs in bfloat16 on CUDA; no GPU here")
        path = build_shape_model(QWEN3_4B_SHAPE, args.device)
    else:
        path = build_tiny_model()
    gpu = f" ({torch.cuda.get_device_name()})" if args.device == "cuda" else ""
    print(
        f"model: {args.model} at {path}; device {args.device}{gpu}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} CPU threads, load average {os.getloadavg()[0]:.2f}"
    )
    if args.only != "dpo":
        bench_sampling(str(path), preset, args)
    if args.only != "sampling":
        bench_dpo(str(path), preset, args)
    print(f"load average at the end: {os.getloadavg()[0]:.2f} (other work on the CPUs skews)")


if __name__ == "__main__":
    main()
