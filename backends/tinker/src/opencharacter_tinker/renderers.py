r"""Chat renderers: chat messages to token ids for Tinker, and sampled tokens back to text.

Tinker speaks tokens, not messages: a sampling request is a list of token ids, and a training
datum is token ids with a weight per token. A renderer is the one path from messages to tokens
in the Tinker backend. Teacher prompts, student prompts, DPO policy and reference sequences and
SFT sequences all go through it, so a model is trained on exactly the tokens it is sampled
with. Each renderer reproduces its model family's Hugging Face chat template token for token
(``tests/tinker/test_renderers.py`` proves it against the real tokenizers and templates),
because a prompt that differs from the template by one newline is a prompt the model never saw
in its own training.

How a renderer works: it writes the conversation as text in the template's format, noting the
character spans the assistant wrote (each assistant turn's words and its end-of-turn token).
It then tokenizes the whole text once, as ``apply_chat_template`` does, so BPE merges across
segment boundaries come out the same. The tokenizer's character offsets turn the spans into
per-token weights; a token counts as trained when it overlaps a span, the rule
``apply_chat_template(..., return_assistant_tokens_mask=True)`` uses. This needs a fast
(Rust-backed) tokenizer, which is what Tinker's models ship.

The formats (``renderer_names()``):

- ``qwen3_instruct``: plain ChatML, as Qwen3 Instruct-2507 (and our tiny test model) render
  it: ``<|im_start|>role\ncontent<|im_end|>\n`` per message, generation header
  ``<|im_start|>assistant\n``, no think block, content verbatim.
- ``qwen3``: the hybrid Qwen3 models (``Qwen/Qwen3-8B``) with ``enable_thinking=False``. It is
  ChatML, but the generation header ends with an empty ``<think>\n\n</think>\n\n`` block.
  In a conversation, only the *last* message gets that block (when it is an assistant turn
  after the last user message), with its leading newlines dropped; earlier assistant turns
  are plain.
- ``qwen3_5_disable_thinking``: Qwen3.5 and Qwen3.6 with ``enable_thinking=False``. Every
  message's content is stripped of surrounding whitespace. Every assistant turn after the last
  user message gets the empty think block, and so does the generation header.
- ``qwen3_8_disable_thinking``: Qwen3.8 with ``enable_thinking=False``. Its template keeps
  thinking in history by default, so *every* assistant turn gets the empty think block. An
  empty system message renders nothing. Otherwise as Qwen3.5.
- ``llama3``: Llama 3.1, 3.2 and 3.3 Instruct.
  ``<|begin_of_text|>``, then ``<|start_header_id|>role<|end_header_id|>\n\ncontent<|eot_id|>``
  per message, with content stripped. The template always opens with a system block reading
  ``Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n`` followed by the
  user's system message, if any. We match it, date included, because parity with the
  template is the point. Llama 3.2's template puts today's date there instead of the default;
  we keep the fixed default, so the same data always renders to the same tokens.
- ``llama3_0``: the original Llama 3 Instruct (``Meta-Llama-3-8B-Instruct``). Same turns, no
  injected system block.

Turns are rendered the way the templates render plain ``role``/``content`` messages; tools,
images and ``reasoning_content`` are outside this module. Special tokens written inside
message content are tokenized as special tokens, as ``apply_chat_template`` does by default.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, ClassVar, Literal, Protocol, cast

from opencharacter.errors import ConfigError, DataError

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

FinishReason = Literal["stop", "length"]
"""Why sampling ended: ``"stop"`` at an end-of-turn or stop token, ``"length"`` when cut off."""

_ROLES = ("system", "user", "assistant")
_EMPTY_THINK = "<think>\n\n</think>\n\n"
_Span = tuple[int, int]


class Renderer(Protocol):
    """Protocol: turns chat messages into token ids and sampled tokens back into text.

    Messages are mappings with ``"role"`` (``system``, ``user`` or ``assistant``; a system
    message only first) and ``"content"`` strings.
    """

    @property
    def name(self) -> str:
        """The renderer's name, one of :func:`renderer_names`."""
        ...

    @property
    def stop_tokens(self) -> list[int]:
        """Token ids that end a turn; pass them to ``tinker.SamplingParams(stop=...)``."""
        ...

    def prompt(self, messages: Sequence[Mapping[str, str]]) -> list[int]:
        """Render a conversation that ends with a user turn, plus the assistant header.

        Args:
            messages: a system message (optional), then turns ending with a user turn.

        Returns:
            Token ids ready to sample the assistant's answer from.
        """
        ...

    def conversation(self, messages: Sequence[Mapping[str, str]]) -> tuple[list[int], list[float]]:
        """Render a whole conversation that ends with an assistant turn.

        Args:
            messages: a system message (optional), then turns ending with an assistant turn.

        Returns:
            Token ids, and a weight per token: 1.0 on every assistant turn's content and its
            end-of-turn token, 0.0 elsewhere (system, user, headers).
        """
        ...

    def completion(
        self, messages: Sequence[Mapping[str, str]], answer: str
    ) -> tuple[list[int], list[float]]:
        """Render ``prompt(messages)`` followed by ``answer`` as the final assistant turn.

        The answer is written exactly as :meth:`conversation` writes a final assistant turn,
        and tokenized after the prompt's tokens, which are kept as :meth:`prompt` gives them.

        Args:
            messages: the prompt's messages, ending with a user turn.
            answer: the assistant's answer.

        Returns:
            Token ids, and weights that are 1.0 on the answer and its end-of-turn token only.
        """
        ...

    def parse(self, tokens: Sequence[int]) -> tuple[str, FinishReason]:
        """Turn sampled tokens into the answer's text.

        Args:
            tokens: the sampled token ids, with or without the closing stop token.

        Returns:
            The text before the first stop token, and ``"stop"`` if a stop token came or
            ``"length"`` if none did (the answer was cut off).
        """
        ...


class _Draft:
    """A conversation being written out: its text and the character spans that are trained."""

    def __init__(self, text: str = "") -> None:
        self.text = text
        self.spans: list[_Span] = []

    def add(self, text: str, *, trained: bool = False) -> None:
        if trained:
            self.spans.append((len(self.text), len(self.text) + len(text)))
        self.text += text


class _ChatRenderer:
    """What every format shares: checking messages, tokenizing, weighting and parsing.

    A subclass names its format and writes the text in :meth:`_write`.
    """

    NAME: ClassVar[str]
    END_OF_TURN: ClassVar[str]
    OTHER_STOPS: ClassVar[tuple[str, ...]] = ()  # used as stop tokens where the vocabulary has them
    CONTROL_TOKENS: ClassVar[tuple[str, ...]] = ()  # must each be one token of the vocabulary

    def __init__(self, tokenizer: PreTrainedTokenizerBase) -> None:
        if not getattr(tokenizer, "is_fast", False):
            msg = (
                f"The {self.NAME!r} renderer needs a fast (Rust-backed) tokenizer for its "
                f"character offsets; got {type(tokenizer).__name__}."
            )
            raise ConfigError(msg)
        self._tokenizer = tokenizer
        missing = [t for t in (*self.CONTROL_TOKENS, self.END_OF_TURN) if self._id(t) is None]
        if missing:
            msg = (
                f"The {self.NAME!r} renderer needs the tokens {', '.join(missing)}, which this "
                f"tokenizer does not have as single tokens: it belongs to another model family. "
                f"Pass the backend option `renderer` with one of: {', '.join(renderer_names())}."
            )
            raise ConfigError(msg)
        stops = [self._id(t) for t in (self.END_OF_TURN, *self.OTHER_STOPS)]
        self._stops = [t for t in dict.fromkeys(stops) if t is not None]

    @property
    def name(self) -> str:
        return self.NAME

    @property
    def stop_tokens(self) -> list[int]:
        return list(self._stops)

    def prompt(self, messages: Sequence[Mapping[str, str]]) -> list[int]:
        _check(messages, last="user")
        draft = self._write(messages, generation=True)
        return self._encode(draft.text, [])[0]

    def conversation(self, messages: Sequence[Mapping[str, str]]) -> tuple[list[int], list[float]]:
        _check(messages, last="assistant")
        draft = self._write(messages, generation=False)
        return self._encode(draft.text, draft.spans)

    def completion(
        self, messages: Sequence[Mapping[str, str]], answer: str
    ) -> tuple[list[int], list[float]]:
        _check(messages, last="user")
        prompt = self._write(messages, generation=True).text
        whole = self._write([*messages, {"role": "assistant", "content": answer}], generation=False)
        if not whole.text.startswith(prompt):  # each format is built so that this holds
            msg = f"The {self.NAME!r} renderer wrote a prompt that does not begin its conversation."
            raise RuntimeError(msg)
        cut = len(prompt)
        tail_spans = [(max(a, cut) - cut, b - cut) for a, b in whole.spans if b > cut]
        prompt_ids, prompt_weights = self._encode(prompt, [])
        tail_ids, tail_weights = self._encode(whole.text[cut:], tail_spans)
        return prompt_ids + tail_ids, prompt_weights + tail_weights

    def parse(self, tokens: Sequence[int]) -> tuple[str, FinishReason]:
        stops = set(self._stops)
        end = next((i for i, token in enumerate(tokens) if token in stops), None)
        body = list(tokens if end is None else tokens[:end])
        text = self._tokenizer.decode(  # one sequence of ids decodes to one string
            body, skip_special_tokens=False, clean_up_tokenization_spaces=False
        )
        return cast(str, text), "length" if end is None else "stop"

    def _write(self, messages: Sequence[Mapping[str, str]], *, generation: bool) -> _Draft:
        """Write the conversation in this format, with the generation header if asked."""
        raise NotImplementedError

    def _encode(self, text: str, spans: Sequence[_Span]) -> tuple[list[int], list[float]]:
        encoding = self._tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        ids = list(encoding["input_ids"])
        weights = [
            1.0 if any(end > a and start < b for a, b in spans) else 0.0
            for start, end in encoding["offset_mapping"]
        ]
        return ids, weights

    def _id(self, token: str) -> int | None:
        """The id of ``token`` if the vocabulary has it as one token, else None."""
        ids = self._tokenizer.encode(token, add_special_tokens=False)
        if len(ids) == 1 and self._tokenizer.convert_ids_to_tokens(ids[0]) == token:
            return int(ids[0])
        return None


class Qwen3InstructRenderer(_ChatRenderer):
    """Plain ChatML (Qwen3 Instruct-2507); the Qwen subclasses change the hooks below."""

    NAME = "qwen3_instruct"
    END_OF_TURN = "<|im_end|>"
    OTHER_STOPS = ("<|endoftext|>",)
    CONTROL_TOKENS = ("<|im_start|>",)
    GENERATION_THINK = ""  # written after the generation header
    SPLITS_THINK = False  # the template moves text before "</think>" into a reasoning block

    def _write(self, messages: Sequence[Mapping[str, str]], *, generation: bool) -> _Draft:
        draft = _Draft()
        last_query = self._last_query(messages)
        for index, message in enumerate(messages):
            role, content = message["role"], self._content(message["content"])
            if role != "assistant":
                if role == "system" and not content and self._skips_empty_system():
                    continue
                draft.add(f"<|im_start|>{role}\n{content}<|im_end|>\n")
                continue
            if self.SPLITS_THINK and "</think>" in content:
                msg = (
                    f"message {index}: assistant content containing '</think>' is rewritten by "
                    f"the {self.NAME} chat template (the text before it becomes a reasoning "
                    "block); remove the think block from the data."
                )
                raise DataError(msg)
            draft.add("<|im_start|>assistant\n")
            if self._thinks(index, len(messages), last_query):
                draft.add(_EMPTY_THINK)
                content = content.lstrip("\n")
            draft.add(content + "<|im_end|>", trained=True)
            draft.add("\n")
        if generation:
            draft.add("<|im_start|>assistant\n" + self.GENERATION_THINK)
        return draft

    def _content(self, content: str) -> str:
        """A message's content as the template writes it."""
        return content

    def _skips_empty_system(self) -> bool:
        return False

    def _thinks(self, index: int, count: int, last_query: int | None) -> bool:
        """Whether the assistant turn at ``index`` of ``count`` messages gets the think block.

        ``last_query`` is the index of the last user query (see :meth:`_last_query`).
        """
        return False

    def _last_query(self, messages: Sequence[Mapping[str, str]]) -> int | None:
        """The index of the last user message that is not a wrapped tool response."""
        for index in range(len(messages) - 1, -1, -1):
            message = messages[index]
            content = self._content(message["content"])
            tool = content.startswith("<tool_response>") and content.endswith("</tool_response>")
            if message["role"] == "user" and not tool:
                return index
        return None


class Qwen3Renderer(Qwen3InstructRenderer):
    """Hybrid Qwen3 with thinking disabled: the empty think block on the final answer only."""

    NAME = "qwen3"
    GENERATION_THINK = _EMPTY_THINK
    SPLITS_THINK = True

    def _thinks(self, index: int, count: int, last_query: int | None) -> bool:
        return last_query is not None and index == count - 1 and index > last_query


class Qwen3_5Renderer(Qwen3InstructRenderer):
    """Qwen3.5/3.6 with thinking disabled: stripped content, think blocks after the last query."""

    NAME = "qwen3_5_disable_thinking"
    GENERATION_THINK = _EMPTY_THINK
    SPLITS_THINK = True

    def _content(self, content: str) -> str:
        return content.strip()

    def _last_query(self, messages: Sequence[Mapping[str, str]]) -> int | None:
        found = super()._last_query(messages)
        if found is None:  # the template raises too
            msg = f"The {self.NAME} chat template needs a user message; there is none."
            raise DataError(msg)
        return found

    def _thinks(self, index: int, count: int, last_query: int | None) -> bool:
        return last_query is not None and index > last_query


class Qwen3_8Renderer(Qwen3_5Renderer):
    """Qwen3.8 with thinking disabled: every assistant turn keeps its (empty) think block."""

    NAME = "qwen3_8_disable_thinking"
    SPLITS_THINK = False

    def _skips_empty_system(self) -> bool:
        return True

    def _thinks(self, index: int, count: int, last_query: int | None) -> bool:
        return True


class Llama3Renderer(_ChatRenderer):
    """Llama 3.1/3.2/3.3 Instruct, with the template's dated system block."""

    NAME = "llama3"
    END_OF_TURN = "<|eot_id|>"
    OTHER_STOPS = ("<|end_of_text|>", "<|eom_id|>")
    CONTROL_TOKENS = ("<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>")
    SYSTEM_PREAMBLE: ClassVar[str | None] = (
        "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n"
    )

    def _write(self, messages: Sequence[Mapping[str, str]], *, generation: bool) -> _Draft:
        draft = _Draft("<|begin_of_text|>")
        if self.SYSTEM_PREAMBLE is not None:
            system = ""
            if messages[0]["role"] == "system":
                system, messages = messages[0]["content"].strip(), messages[1:]
            draft.add(f"{_llama_header('system')}{self.SYSTEM_PREAMBLE}{system}<|eot_id|>")
        for message in messages:
            role = message["role"]
            draft.add(_llama_header(role))
            draft.add(message["content"].strip() + "<|eot_id|>", trained=role == "assistant")
        if generation:
            draft.add(_llama_header("assistant"))
        return draft


class Llama3_0Renderer(Llama3Renderer):
    """The original Llama 3 Instruct: the same turns and no injected system block."""

    NAME = "llama3_0"
    SYSTEM_PREAMBLE = None


def _llama_header(role: str) -> str:
    return f"<|start_header_id|>{role}<|end_header_id|>\n\n"


def _check(messages: Sequence[Mapping[str, str]], *, last: str) -> None:
    """Raise :class:`DataError` unless the messages are well formed and end with ``last``."""
    if not messages:
        msg = "No messages to render."
        raise DataError(msg)
    for index, message in enumerate(messages):
        role = message.get("role")
        if role not in _ROLES or not isinstance(message.get("content"), str):
            msg = (
                f"message {index}: expected a role in {_ROLES} and string content, got "
                f"role={role!r}, content of type {type(message.get('content')).__name__}."
            )
            raise DataError(msg)
        if role == "system" and index > 0:
            msg = f"message {index}: a system message may only come first."
            raise DataError(msg)
    if messages[-1]["role"] != last:
        msg = f"The last message must have role {last!r} here, not {messages[-1]['role']!r}."
        raise DataError(msg)


_RENDERERS: dict[str, type[_ChatRenderer]] = {
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
