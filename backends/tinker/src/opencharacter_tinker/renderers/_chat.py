"""What every chat format shares: the :class:`Renderer` protocol and the base implementing it.

Each format (:mod:`.qwen`, :mod:`.llama`) only writes its conversation as text; this module
does the rest the same way for all of them. A renderer writes the conversation as text in the
template's format, noting the character spans the assistant wrote (each assistant turn's words
and its end-of-turn token). It then tokenizes the whole text once, as ``apply_chat_template``
does, so BPE merges across segment boundaries come out the same. The tokenizer's character
offsets turn the spans into per-token weights; a token counts as trained when it overlaps a
span, the rule ``apply_chat_template(..., return_assistant_tokens_mask=True)`` uses. This needs
a fast (Rust-backed) tokenizer, which is what Tinker's models ship.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, ClassVar, Literal, Protocol, cast

from opencharacter.errors import ConfigError, DataError

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

FinishReason = Literal["stop", "length"]
"""Why sampling ended: ``"stop"`` at an end-of-turn or stop token, ``"length"`` when cut off."""

_ROLES = ("system", "user", "assistant")
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


class Draft:
    """A conversation being written out: its text and the character spans that are trained."""

    def __init__(self, text: str = "") -> None:
        self.text = text
        self.spans: list[_Span] = []

    def add(self, text: str, *, trained: bool = False) -> None:
        if trained:
            self.spans.append((len(self.text), len(self.text) + len(text)))
        self.text += text


class ChatRenderer:
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
            # The package imports this module, so its list of names is looked up only here.
            from opencharacter_tinker.renderers import renderer_names  # noqa: PLC0415

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

    def _write(self, messages: Sequence[Mapping[str, str]], *, generation: bool) -> Draft:
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


__all__ = ["ChatRenderer", "Draft", "FinishReason", "Renderer"]
