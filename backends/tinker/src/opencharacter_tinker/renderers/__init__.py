r"""Chat renderers: chat messages to token ids for Tinker, and sampled tokens back to text.

Tinker speaks tokens, not messages: a sampling request is a list of token ids, and a training
datum is token ids with a weight per token. A renderer is the one path from messages to tokens
in the Tinker backend. Teacher prompts, student prompts, DPO policy and reference sequences and
SFT sequences all go through it, so a model is trained on exactly the tokens it is sampled
with. Each renderer reproduces its model family's Hugging Face chat template token for token
(``tests/tinker/test_renderers.py`` proves it against the real tokenizers and templates),
because a prompt that differs from the template by one newline is a prompt the model never saw
in its own training.

This package is the public import path: :class:`Renderer`, :func:`renderer_names` and
:func:`get_renderer`, which chooses a format by model name. How every renderer tokenizes and
weights is in :mod:`._chat`; the formats (``renderer_names()``) are described where they are
written, in :mod:`.qwen` (``qwen3_instruct``, ``qwen3``, ``qwen3_5_disable_thinking``,
``qwen3_8_disable_thinking``) and :mod:`.llama` (``llama3``, ``llama3_0``).

Turns are rendered the way the templates render plain ``role``/``content`` messages; tools,
images and ``reasoning_content`` are outside this package. Special tokens written inside
message content are tokenized as special tokens, as ``apply_chat_template`` does by default.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from opencharacter.errors import ConfigError
from opencharacter_tinker.renderers._chat import ChatRenderer, FinishReason, Renderer
from opencharacter_tinker.renderers.llama import Llama3_0Renderer, Llama3Renderer
from opencharacter_tinker.renderers.qwen import (
    Qwen3_5Renderer,
    Qwen3_8Renderer,
    Qwen3InstructRenderer,
    Qwen3Renderer,
)

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

_RENDERERS: dict[str, type[ChatRenderer]] = {
    cls.NAME: cls
    for cls in (
        Llama3Renderer,
        Llama3_0Renderer,
        Qwen3Renderer,
        Qwen3_5Renderer,
        Qwen3_8Renderer,
        Qwen3InstructRenderer,
    )
}

# Matched in order against the lower-cased model name; base models have no chat format.
_DEFAULTS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^opencharacter/tiny-qwen3$"), "qwen3_instruct"),
    (re.compile(r"qwen3-[^/]*-instruct-2507"), "qwen3_instruct"),
    (re.compile(r"qwen3\.8-"), "qwen3_8_disable_thinking"),
    (re.compile(r"qwen3\.[56]-"), "qwen3_5_disable_thinking"),
    (re.compile(r"(^|/)qwen3-[\d.]+b(-a[\d.]+b)?(-fp8)?$"), "qwen3"),
    (re.compile(r"llama-3\.\d"), "llama3"),
    (re.compile(r"llama-3(?![.\d])"), "llama3_0"),
)


def renderer_names() -> tuple[str, ...]:
    """Return the names :func:`get_renderer` accepts, sorted."""
    return tuple(sorted(_RENDERERS))


def get_renderer(
    model: str, tokenizer: PreTrainedTokenizerBase, name: str | None = None
) -> Renderer:
    """Return the renderer for ``model``'s chat format, working with its ``tokenizer``.

    Args:
        model: the model's name, e.g. ``Qwen/Qwen3-4B-Instruct-2507``; chooses the renderer
            unless ``name`` is given.
        tokenizer: the model's fast Hugging Face tokenizer.
        name: a renderer name from :func:`renderer_names`, overriding the choice by model.

    Returns:
        The renderer.

    Raises:
        ConfigError: ``name`` is unknown, no renderer is known for ``model`` and no ``name``
            was given, or the tokenizer lacks the format's special tokens.
    """
    if name is None:
        lowered = model.lower()
        found = (
            None
            if re.search(r"-base\b", lowered)
            else next((n for pattern, n in _DEFAULTS if pattern.search(lowered)), None)
        )
        if found is None:
            msg = (
                f"No chat renderer is known for model {model!r}. Pass the backend option "
                f"`renderer` with one of: {', '.join(renderer_names())}."
            )
            raise ConfigError(msg)
        name = found
    if name not in _RENDERERS:
        msg = f"Unknown renderer {name!r}; choose one of: {', '.join(renderer_names())}."
        raise ConfigError(msg)
    return _RENDERERS[name](tokenizer)


__all__ = ["FinishReason", "Renderer", "get_renderer", "renderer_names"]
