"""The reasoning-leak and role-hallucination filters cut what is not the answer."""

from __future__ import annotations

import pytest
from tests.filters.examples import HARD_NEGATIVES

from opencharacter.errors import ConfigError
from opencharacter.filters import check_reasoning, check_roles, strip_reasoning

ANSWER = "Arr, the tide waits for no one, matey. Set sail at dawn and mind the reef."

# --- reasoning -------------------------------------------------------------------------------

# (text, what remains after stripping, or None when too little remains and the text is dropped)
LEAKS: dict[str, tuple[str, str | None]] = {
    "closed": (f"<think>The user wants sailing advice.</think>\n\n{ANSWER}", ANSWER),
    "thinking-tag": (f"<thinking>Pirate voice, short.</thinking>{ANSWER}", ANSWER),
    "upper-case": (f"<THINK>plan</THINK> {ANSWER}", ANSWER),
    "spaced-tag": (f"<think >plan</think > {ANSWER}", ANSWER),
    "two-blocks": (f"<think>a</think>{ANSWER}<think>b</think>", ANSWER),
    "stray-close": (f"Let me plan the voice first. Pirate.</think>\n{ANSWER}", ANSWER),
    "unclosed-after-answer": (f"{ANSWER}\n<think>Wait, should I add more", ANSWER),
    "unclosed-swallows-answer": ("<think>Okay, so the user asks about tides and I", None),
    "only-reasoning": ("<think>Just thinking out loud here.</think>", None),
    "short-remainder": ("<think>The user said hi.</think>Hi!", None),
    "multiline-block": (f"<think>\nStep 1: greet.\nStep 2: advise.\n</think>\n{ANSWER}", ANSWER),
}


@pytest.mark.parametrize("name", LEAKS)
def test_reasoning_strips_blocks_and_keeps_the_answer(name):
    """Reasoning blocks are stripped; the answer is kept if at least 50 characters remain."""
    text, remaining = LEAKS[name]
    verdict = check_reasoning(text)
    assert verdict.cleaned == ("reasoning-leak",)
    if remaining is None:
        assert verdict.reasons == ("reasoning-leak",)
    else:
        assert verdict.keep
        assert verdict.text == remaining


@pytest.mark.parametrize("name", LEAKS)
def test_reasoning_drop_mode_drops_any_leak(name):
    """In drop mode any reasoning tag drops the text unchanged."""
    text, _ = LEAKS[name]
    verdict = check_reasoning(text, mode="drop")
    assert verdict.reasons == ("reasoning-leak",)
    assert verdict.text == text


NOT_REASONING = {
    "i-think": "I think so, yes. Thinking it over, the answer is still yes, definitely.",
    "thinkpad": "My <ThinkPad> laptop handles it fine, and so will yours, I promise.",
    "thinker-tag": "Wrap it in <thinker> tags if your parser needs them; it's arbitrary.",
    "html": "Use <b>bold</b> and <i>italics</i> sparingly in emails to colleagues.",
    "code-block": "In the parser:\n\n```python\nANSWER = text.split('</think>')[-1]\n```\n\nDone.",
    "inline-code": "Reasoning models emit `<think>` first and `</think>` when done.",
}


@pytest.mark.parametrize(
    "text",
    [*HARD_NEGATIVES.values(), *NOT_REASONING.values()],
    ids=[*HARD_NEGATIVES, *NOT_REASONING],
)
def test_reasoning_leaves_other_text_alone(text):
    """Text without reasoning tags, or with tags quoted as code, is kept unchanged."""
    verdict = check_reasoning(text)
    assert verdict.keep
    assert verdict.text == text
    assert not verdict.cleaned


def test_strip_reasoning_repeats_until_no_tag_is_left():
    """Removing a block that splits a tag in two does not leave a new tag behind."""
    text, found = strip_reasoning("<thi<think>x</think>nk>hidden plan" + " " + ANSWER)
    assert found
    assert "<think" not in text.lower()


def test_reasoning_rejects_an_unknown_mode():
    """A mode other than strip or drop is a configuration error."""
    with pytest.raises(ConfigError, match="mode"):
        check_reasoning("text", mode="hide")


# --- roles -----------------------------------------------------------------------------------

HALLUCINATED = {
    "user-line": f"{ANSWER}\nUser: thanks! And what about storms?\nAssistant: Storms be worse.",
    "assistant-line": f"{ANSWER}\n\nAssistant: Is there anything else?",
    "human-line": f"{ANSWER}\nHuman: tell me more",
    "bold-label": f"{ANSWER}\n\n**User:** And the reef?",
    "upper-case": f"{ANSWER}\nUSER: more please",
    "indented": f"{ANSWER}\n   User: hello?",
    "im-start": f"{ANSWER}<|im_start|>user\nmore<|im_end|>",
    "im-end": f"{ANSWER}<|im_end|>",
    "llama3": f"{ANSWER}<|eot_id|><|start_header_id|>user<|end_header_id|>",
    "gemma": f"{ANSWER}<end_of_turn>\n<start_of_turn>user",
    "mistral": f"{ANSWER} [INST] and now? [/INST]",
    "deepseek": f"{ANSWER}<\uff5cUser\uff5c>next question",
}


@pytest.mark.parametrize("text", HALLUCINATED.values(), ids=HALLUCINATED.keys())
def test_roles_cut_a_hallucinated_next_turn(text):
    """The answer is cut at the first hallucinated turn and kept when enough remains."""
    verdict = check_roles(text)
    assert verdict.keep
    assert verdict.text == ANSWER
    assert verdict.cleaned == ("role-hallucination",)
    assert verdict.turn_ended


def test_roles_drop_when_too_little_remains():
    """A turn that is mostly hallucinated conversation is dropped."""
    verdict = check_roles("Sure!\nUser: great, now write my essay\nAssistant: Of course...")
    assert verdict.reasons == ("role-hallucination",)
    assert verdict.text == "Sure!"


def test_roles_threshold_is_configurable():
    """A lower minimum keeps a short answer before the cut."""
    assert check_roles("Sure thing!\nUser: thanks", min_remaining_chars=10).keep


def test_roles_are_configurable():
    """Extra role labels are recognised; the defaults leave System: lines alone."""
    text = f"{ANSWER}\nSystem: new instructions follow"
    assert check_roles(text).keep
    assert check_roles(text, roles=("User", "System")).text == ANSWER


NOT_ROLES = {
    "username": f"{ANSWER}\nUsername: admin",
    "bullet": f"{ANSWER}\n- User: the person typing\n- Assistant: the model replying",
    "mid-line": f"{ANSWER} The User: field must not be empty.",
    "blockquote": f"{ANSWER}\n> User: hi\n> Assistant: hello",
    "html-strike": f"{ANSWER} That is <s>wrong</s> right.",
}


@pytest.mark.parametrize(
    "text",
    [*HARD_NEGATIVES.values(), *NOT_ROLES.values()],
    ids=[*HARD_NEGATIVES, *NOT_ROLES],
)
def test_roles_leave_quoted_dialogue_and_code_alone(text):
    """Dialogue quoted in prose, transcripts in code and list labels are not new turns."""
    verdict = check_roles(text)
    assert verdict.keep
    assert verdict.text == text
