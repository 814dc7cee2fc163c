"""The tiny model builds offline, reproducibly and once, with a training-ready chat template."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("torch")

from opencharacter_local.tiny import TINY_MODEL, build_tiny_model, resolve_model
from transformers import AutoModelForCausalLM, AutoTokenizer

CHAT = [
    {"role": "system", "content": "Be kind."},
    {"role": "user", "content": "Hello! How are you?"},
    {"role": "assistant", "content": "I am fine."},
    {"role": "user", "content": "Good."},
    {"role": "assistant", "content": "Thank you!"},
]


@pytest.fixture
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")


def test_loads_offline_as_a_small_qwen3(tiny_model_dir, offline):
    """The saved folder loads offline as a Qwen3 with the advertised shape and special tokens."""
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    config = model.config
    assert config.model_type == "qwen3"
    assert (config.hidden_size, config.num_hidden_layers, config.head_dim) == (64, 2, 32)
    assert config.max_position_embeddings == 8192
    assert config.tie_word_embeddings
    assert config.vocab_size == len(tokenizer) <= 512
    assert tokenizer.padding_side == "left"
    assert tokenizer.eos_token == "<|im_end|>"
    assert tokenizer.pad_token == "<|pad|>"
    ids = tokenizer.convert_tokens_to_ids(["<|im_end|>", "<|endoftext|>"])
    assert model.generation_config.eos_token_id == ids
    assert model.generation_config.pad_token_id == tokenizer.pad_token_id


def test_a_finished_build_is_reused_and_a_half_written_one_rebuilt(tmp_path):
    """A second build returns at once; a folder whose marker is missing is built again."""
    folder = build_tiny_model(tmp_path / "m")
    weights = folder / "model.safetensors"
    stamp = weights.stat().st_mtime_ns
    assert build_tiny_model(tmp_path / "m") == folder
    assert weights.stat().st_mtime_ns == stamp
    (folder / "opencharacter-tiny.json").unlink()
    weights.write_bytes(b"truncated")
    build_tiny_model(folder)
    assert AutoModelForCausalLM.from_pretrained(folder).config.model_type == "qwen3"


def test_equal_seeds_give_identical_weights(tmp_path):
    """Two builds with one seed are byte-identical; another seed gives other weights."""
    first = build_tiny_model(tmp_path / "a", seed=3)
    second = build_tiny_model(tmp_path / "b", seed=3)
    other = build_tiny_model(tmp_path / "c", seed=4)
    for name in ("model.safetensors", "tokenizer.json"):
        assert (first / name).read_bytes() == (second / name).read_bytes()
    assert (first / "model.safetensors").read_bytes() != (other / "model.safetensors").read_bytes()


def test_template_renders_chatml_with_generation_markers(tiny_model_dir):
    """The template writes Qwen's ChatML and marks assistant turns for TRL's loss mask."""
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    assert "{%- generation %}" in tokenizer.chat_template
    text = tokenizer.apply_chat_template(CHAT[:2], tokenize=False, add_generation_prompt=True)
    assert text == (
        "<|im_start|>system\nBe kind.<|im_end|>\n"
        "<|im_start|>user\nHello! How are you?<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert tokenizer.decode(ids) == text


def test_assistant_mask_covers_exactly_the_answers_and_their_end_token(tiny_model_dir):
    """The assistant mask selects each answer with its ``<|im_end|>``, and nothing else."""
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    encoded = tokenizer.apply_chat_template(
        CHAT, tokenize=True, return_dict=True, return_assistant_tokens_mask=True
    )
    masked = [t for t, m in zip(encoded["input_ids"], encoded["assistant_masks"], strict=True) if m]
    assert tokenizer.decode(masked) == "I am fine.<|im_end|>Thank you!<|im_end|>"


def test_the_reserved_name_resolves_to_a_cached_build(tmp_path, monkeypatch):
    """``TINY_MODEL`` becomes a folder in the cache; other names pass through unchanged."""
    monkeypatch.setenv("OPENCHARACTER_CACHE", str(tmp_path))
    path = resolve_model(TINY_MODEL)
    assert path.startswith(str(tmp_path / "tiny-qwen3-"))
    assert (Path(path) / "opencharacter-tiny.json").is_file()
    assert resolve_model(TINY_MODEL) == path
    assert build_tiny_model(seed=1) != build_tiny_model(seed=0)
    assert resolve_model("Qwen/Qwen3-4B-Instruct-2507") == "Qwen/Qwen3-4B-Instruct-2507"
