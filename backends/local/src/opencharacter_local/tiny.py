"""A tiny random Qwen3 chat model, built offline in seconds, for tests and dry runs on CPU.

Real students are multi-gigabyte downloads from the Hugging Face Hub; tests and demos need a
model that exists without the network and runs in milliseconds. This one has a byte-level BPE
tokenizer trained on generated English, a Qwen-like ChatML template and random weights, so it
exercises exactly the code paths a real Qwen3 student does (chat template, left-padded
batches, LoRA, TRL's assistant-only loss) while writing gibberish.

The reserved name :data:`TINY_MODEL` stands for it wherever a model name is accepted; see
:func:`resolve_model`.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
from pathlib import Path
from typing import Any

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import (
    GenerationConfig,
    PreTrainedTokenizerFast,
    Qwen3Config,
    Qwen3ForCausalLM,
)

from opencharacter_local import TINY_MODEL

# The `{% generation %}` block covers the assistant's words *and* its <|im_end|>: TRL's
# assistant-only loss trains on exactly what it marks, and a model must learn to stop.
CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{%- if message['role'] == 'assistant' %}"
    "{{- '<|im_start|>assistant\\n' }}"
    "{%- generation %}{{- message['content'] + '<|im_end|>' }}{%- endgeneration %}"
    "{{- '\\n' }}"
    "{%- else %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)

SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|pad|>")

# Everything that shapes the build; its hash names the cache folder, so changing any of it
# (or the seed) gives a fresh folder instead of silently reusing a stale model.
_SETTINGS: dict[str, Any] = {
    "format": 1,
    "sentences": 3000,
    "vocab_size": 512,
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 32,  # vLLM's CPU attention rejects head sizes below 32
    "max_position_embeddings": 8192,  # room for the long expansion brief and reflections
    "chat_template": CHAT_TEMPLATE,
}

_MARKER = "opencharacter-tiny.json"

_SUBJECTS = ("I", "you", "we", "they", "the teacher", "my friend", "a curious cat", "the model")
_VERBS = ("like", "see", "help", "write", "answer", "remember", "explain", "enjoy", "question")
_OBJECTS = (
    "the question",
    "a long story",
    "kind words",
    "the small garden",
    "every honest answer",
    "the river",
    "new ideas",
    "the old book",
)
_ENDINGS = ("today", "with care", "in the morning", "because it matters", "again", "slowly")
_PHRASES = (
    "Hello! How are you?",
    "I am fine, thank you.",
    "Sure, I can help with that.",
    "What do you think about it?",
    "That is a good question.",
    "Thank you! I appreciate it.",
)


def build_tiny_model(directory: str | os.PathLike[str] | None = None, *, seed: int = 0) -> Path:
    """Build the tiny model and its tokenizer into one folder, or reuse a finished build.

    A marker file recording the build settings is written last, so a folder left half-written
    by a crash, or built with other settings, is rebuilt rather than trusted.

    Args:
        directory: where to save; ``None`` means a folder named after the settings and seed
            under ``$OPENCHARACTER_CACHE`` (default ``~/.cache/opencharacter``).
        seed: fixes the tokenizer's training text and the weights; equal seeds give
            identical models.

    Returns:
        The folder, loadable with ``AutoModelForCausalLM`` and ``AutoTokenizer``.
    """
    settings = {**_SETTINGS, "seed": seed}
    target = Path(directory) if directory is not None else _cache_dir(settings)
    marker = target / _MARKER
    if marker.is_file() and json.loads(marker.read_text(encoding="utf-8")) == settings:
        return target
    marker.unlink(missing_ok=True)
    target.mkdir(parents=True, exist_ok=True)
    tokenizer = _build_tokenizer(seed)
    model = _build_model(tokenizer, seed)
    model.save_pretrained(target)
    tokenizer.save_pretrained(target)
    marker.write_text(json.dumps(settings, indent=1), encoding="utf-8")
    return target


def resolve_model(name: str) -> str:
    """Return a loadable path or Hub name for ``name``, building the tiny model if it is named.

    Args:
        name: a model name; :data:`TINY_MODEL` maps to :func:`build_tiny_model`'s folder,
            anything else (Hub names, local folders) is returned unchanged.

    Returns:
        What ``from_pretrained`` should be given.
    """
    return str(build_tiny_model()) if name == TINY_MODEL else name


def _cache_dir(settings: dict[str, object]) -> Path:
    root = os.environ.get("OPENCHARACTER_CACHE") or Path.home() / ".cache" / "opencharacter"
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:12]
    return Path(root) / f"tiny-qwen3-{digest}"


def tiny_text(rng: random.Random, low: int, high: int) -> str:
    """Return between ``low`` and ``high`` sentences the tiny tokenizer was trained on.

    For synthetic prompts and answers that tokenize as densely as the tiny model's own data.
    """
    return " ".join(_sentence(rng) for _ in range(rng.randint(low, high)))


def _sentence(rng: random.Random) -> str:
    parts = (rng.choice(_SUBJECTS), rng.choice(_VERBS), rng.choice(_OBJECTS))
    sentence = " ".join(parts) + " " + rng.choice(_ENDINGS)
    return sentence[0].upper() + sentence[1:] + rng.choice((".", "!", "?"))


def _sentences(seed: int, count: int) -> list[str]:
    rng = random.Random(seed)
    lines = list(_PHRASES)
    while len(lines) < count:
        lines.append(_sentence(rng))
    return lines


def _build_tokenizer(seed: int) -> PreTrainedTokenizerFast:
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=_SETTINGS["vocab_size"],
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(_sentences(seed, _SETTINGS["sentences"]), trainer=trainer)
    return PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]  # unannotated __init__
        tokenizer_object=bpe,
        bos_token=None,
        eos_token="<|im_end|>",
        pad_token="<|pad|>",
        unk_token=None,
        additional_special_tokens=["<|im_start|>", "<|endoftext|>"],
        padding_side="left",
        chat_template=CHAT_TEMPLATE,
        model_max_length=_SETTINGS["max_position_embeddings"],
    )


def _build_model(tokenizer: PreTrainedTokenizerFast, seed: int) -> Qwen3ForCausalLM:
    end_of_turn = tokenizer.convert_tokens_to_ids("<|im_end|>")
    config = Qwen3Config(
        vocab_size=len(tokenizer),
        hidden_size=_SETTINGS["hidden_size"],
        intermediate_size=_SETTINGS["intermediate_size"],
        num_hidden_layers=_SETTINGS["num_hidden_layers"],
        num_attention_heads=_SETTINGS["num_attention_heads"],
        num_key_value_heads=_SETTINGS["num_key_value_heads"],
        head_dim=_SETTINGS["head_dim"],
        max_position_embeddings=_SETTINGS["max_position_embeddings"],
        tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=end_of_turn,
        bos_token_id=None,
    )
    with torch.random.fork_rng(devices=[]):  # seed the weights without touching the caller's RNG
        torch.manual_seed(seed)
        model = Qwen3ForCausalLM(config)
    model.generation_config = GenerationConfig(  # type: ignore[no-untyped-call]  # unannotated
        eos_token_id=[end_of_turn, tokenizer.convert_tokens_to_ids("<|endoftext|>")],
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=None,
    )
    return model
