"""Row filtering checks every answer of DPO and SFT rows and writes cleaned text back."""

from __future__ import annotations

import copy
import json

import pytest

from opencharacter.errors import ConfigError, DataError
from opencharacter.filters import FilterChain, dpo_chains, filter_row, filter_rows
from opencharacter.types import ChatExample, PreferencePair

ANSWER = "Arr, the tide waits for no one, matey. Set sail at dawn and mind the reef."
PLAIN = "The tide turns roughly every six hours, so plan to leave at high water."
PROMPT = [{"role": "user", "content": "When should I set sail?"}]


def dpo(row_id: str, chosen: str, rejected: str, **meta: object) -> dict[str, object]:
    return PreferencePair(
        id=row_id, prompt=PROMPT, chosen=chosen, rejected=rejected, meta=meta
    ).to_row()


def sft(row_id: str, *turns: str, **meta: object) -> dict[str, object]:
    messages: list[dict[str, str]] = [{"role": "system", "content": "You are Qwen."}]
    for i, turn in enumerate(turns):
        messages.append({"role": "user" if i % 2 == 0 else "assistant", "content": turn})
    return ChatExample(id=row_id, messages=messages, meta=meta).to_row()


CHAINS = dpo_chains(teacher_names=("ChatGLM",), student_name="Qwen")


def test_dpo_row_with_good_answers_is_kept_unchanged():
    """A pair whose sides both pass is kept, and the row is returned as it was."""
    row = dpo("r1", ANSWER, PLAIN, trait=3)
    result = filter_row(row, CHAINS)
    assert result.keep
    assert result.row is row
    assert result.reasons == ()
    assert [where for where, _ in result.checks] == ["chosen", "rejected"]


def test_dpo_row_cleaned_text_is_written_back_without_touching_the_input():
    """Cleaned chosen text goes into a new row; the input row is not modified."""
    row = dpo("r2", f"<think>voice</think>I'm ChatGLM. {ANSWER}", PLAIN)
    before = copy.deepcopy(row)
    result = filter_row(row, CHAINS)
    assert result.keep
    assert row == before
    assert result.row["chosen"] == [{"role": "assistant", "content": f"I'm Qwen. {ANSWER}"}]
    assert result.row["rejected"] == row["rejected"]
    assert result.row["prompt"] == row["prompt"]
    assert result.cleaned == (("chosen", "reasoning-leak"), ("chosen", "identity-leak"))
    assert PreferencePair.from_row(result.row).chosen == f"I'm Qwen. {ANSWER}"


@pytest.mark.parametrize(
    ("chosen", "rejected", "expected"),
    [
        ("", PLAIN, (("chosen", "empty"),)),
        (ANSWER, "The tide turns roughly every", (("rejected", "no-final-punctuation"),)),
        (
            "As a sarcastic assistant, I say: sail whenever. " + ANSWER,
            "",
            (("chosen", "disclosure"), ("rejected", "empty")),
        ),
    ],
)
def test_dpo_row_is_dropped_if_either_side_is(chosen, rejected, expected):
    """A pair is dropped when either side is, and its reasons name the side and the code."""
    result = filter_row(dpo("r3", chosen, rejected), CHAINS)
    assert not result.keep
    assert result.id == "r3"
    assert result.reasons == expected


def test_rejected_side_keeps_the_students_own_identity():
    """The rejected chain has no identity filter: the student's own voice is the contrast."""
    result = filter_row(dpo("r4", ANSWER, "I'm Qwen, created by Alibaba Cloud. " + PLAIN), CHAINS)
    assert result.keep


def test_finish_reasons_come_from_the_row_or_the_caller():
    """A recorded 'length' finish drops that side; a caller's value overrides the row's."""
    row = dpo("r5", ANSWER, PLAIN, rejected_finish_reason="length")
    assert filter_row(row, CHAINS).reasons == (("rejected", "truncated-length"),)
    assert filter_row(row, CHAINS, finish_reasons={"rejected": "stop"}).keep


def test_sft_row_checks_every_assistant_turn():
    """Every assistant turn of an SFT row is checked, with its index in the reasons."""
    row = sft("s1", "Hi there.", "Hello, friend!", "How are you?", "Doing well!\nUser: and you?")
    result = filter_row(row, FilterChain.for_stage("interaction"))
    assert [where for where, _ in result.checks] == ["messages[2]", "messages[4]"]
    assert result.keep
    assert result.row["messages"][4]["content"] == "Doing well!"
    assert row["messages"][4]["content"] == "Doing well!\nUser: and you?"


def test_sft_row_is_dropped_when_any_turn_is():
    """One looping turn drops the whole transcript."""
    row = sft("s2", "Hi.", "Hello there, friend!", "Go on.", "ha" * 200 + ".")
    result = filter_row(row, {"messages": FilterChain.for_stage("interaction")})
    assert not result.keep
    assert result.reasons == (("messages[4]", "repetition-chars"),)
    assert result.to_dict() == {
        "id": "s2",
        "keep": False,
        "reasons": {"messages[4]": ["repetition-chars"]},
        "cleaned": {},
    }


def test_sft_finish_reason_applies_to_the_last_assistant_turn():
    """An SFT row's finish_reason key applies to its last assistant turn only."""
    row = sft("s3", "Tell me about yourself.", ANSWER, finish_reason="length")
    result = filter_row(row, FilterChain.for_stage("reflection"))
    assert result.reasons == (("messages[2]", "truncated-length"),)


def test_filter_rows_streams_results_in_input_order():
    """filter_rows yields one result per row, lazily, in input order."""
    rows = (dpo(f"r{i}", ANSWER if i % 2 else "", PLAIN) for i in range(6))
    results = filter_rows(rows, CHAINS)
    first = next(results)
    assert first.id == "r0"
    assert [r.id for r in results] == ["r1", "r2", "r3", "r4", "r5"]


def test_result_summary_is_json_ready():
    """A result's summary serialises to JSON."""
    result = filter_row(dpo("r6", "<think>x</think>" + ANSWER, ""), CHAINS)
    data = json.loads(json.dumps(result.to_dict()))
    assert data == {
        "id": "r6",
        "keep": False,
        "reasons": {"rejected": ["empty"]},
        "cleaned": {"chosen": ["reasoning-leak"]},
    }


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"chosen": [], "rejected": []}, "non-empty string 'id'"),
        ({"id": "x", "prompt": PROMPT}, "neither a DPO row"),
        ({"id": "x", "chosen": "text", "rejected": []}, "'chosen' must be a list"),
        ({"id": "x", "messages": "hello"}, "'messages' must be a list"),
        ({"id": "x", "messages": [{"role": "user", "content": "hi"}]}, "no assistant turn"),
        (["not", "a", "row"], "JSON object"),
    ],
)
def test_malformed_rows_raise_data_errors(row, message):
    """A malformed row is a DataError naming the row and the problem."""
    with pytest.raises(DataError, match=message):
        filter_row(row, FilterChain.for_stage("reflection"))


def test_missing_side_chain_is_a_configuration_error():
    """A chains mapping without a chain for a row's side is a ConfigError."""
    with pytest.raises(ConfigError, match="'rejected'"):
        filter_row(dpo("r7", ANSWER, PLAIN), {"chosen": FilterChain.for_stage("distill-chosen")})
