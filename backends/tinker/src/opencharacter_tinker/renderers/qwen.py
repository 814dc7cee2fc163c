r"""The Qwen3 family's chat formats: ChatML, with or without empty think blocks.

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
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from opencharacter.errors import DataError
from opencharacter_tinker.renderers._chat import ChatRenderer, Draft

_EMPTY_THINK = "<think>\n\n</think>\n\n"


class Qwen3InstructRenderer(ChatRenderer):
    """Plain ChatML (Qwen3 Instruct-2507); the Qwen subclasses change the hooks below."""

    NAME = "qwen3_instruct"
    END_OF_TURN = "<|im_end|>"
    OTHER_STOPS = ("<|endoftext|>",)
    CONTROL_TOKENS = ("<|im_start|>",)
    GENERATION_THINK = ""  # written after the generation header
    SPLITS_THINK = False  # the template moves text before "</think>" into a reasoning block

    def _write(self, messages: Sequence[Mapping[str, str]], *, generation: bool) -> Draft:
        draft = Draft()
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


__all__ = ["Qwen3InstructRenderer", "Qwen3Renderer", "Qwen3_5Renderer", "Qwen3_8Renderer"]
