r"""The Llama 3 chat formats: header-delimited turns, with or without a dated system block.

- ``llama3``: Llama 3.1, 3.2 and 3.3 Instruct.
  ``<|begin_of_text|>``, then ``<|start_header_id|>role<|end_header_id|>\n\ncontent<|eot_id|>``
  per message, with content stripped. The template always opens with a system block reading
  ``Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n`` followed by the
  user's system message, if any. We match it, date included, because parity with the
  template is the point. Llama 3.2's template puts today's date there instead of the default;
  we keep the fixed default, so the same data always renders to the same tokens.
- ``llama3_0``: the original Llama 3 Instruct (``Meta-Llama-3-8B-Instruct``). Same turns, no
  injected system block.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import ClassVar

from opencharacter_tinker.renderers._chat import ChatRenderer, Draft


class Llama3Renderer(ChatRenderer):
    """Llama 3.1/3.2/3.3 Instruct, with the template's dated system block."""

    NAME = "llama3"
    END_OF_TURN = "<|eot_id|>"
    OTHER_STOPS = ("<|end_of_text|>", "<|eom_id|>")
    CONTROL_TOKENS = ("<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>")
    SYSTEM_PREAMBLE: ClassVar[str | None] = (
        "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n"
    )

    def _write(self, messages: Sequence[Mapping[str, str]], *, generation: bool) -> Draft:
        draft = Draft("<|begin_of_text|>")
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


__all__ = ["Llama3Renderer", "Llama3_0Renderer"]
