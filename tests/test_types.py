"""The domain records validate their input and round-trip through TRL-shaped rows."""

from __future__ import annotations

import json

import attrs
import pytest

from opencharacter.errors import ConfigError, DataError
from opencharacter.types import (
    ChatExample,
    Checkpoint,
    Completion,
    GenerationRequest,
    Message,
    PreferencePair,
    Price,
    Purpose,
    SamplingParams,
    TokenUsage,
    stable_id,
)

PROMPT = [{"role": "user", "content": "How do I boil an egg?"}]


def test_message_rejects_unknown_role():
    """A message with a role outside system/user/assistant is refused."""
    with pytest.raises(ValueError, match="role"):
        Message(role="tool", content="x")


def test_records_are_frozen():
    """Records cannot be changed in place; attrs.evolve makes a changed copy."""
    params = SamplingParams()
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        params.temperature = 1.0  # type: ignore[misc]
    assert attrs.evolve(params, temperature=1.0).temperature == 1.0


def test_sampling_params_validate_ranges():
    """Out-of-range sampling settings fail at construction, not inside a backend."""
    for bad in ({"max_tokens": 0}, {"top_p": 0.0}, {"top_p": 1.5}, {"temperature": -1}):
        with pytest.raises(ValueError):  # noqa: PT011 - attrs raises plain ValueError
            SamplingParams(**bad)
    assert SamplingParams(stop=["\nUser:"]).stop == ("\nUser:",)


def test_request_converts_dict_messages_and_purpose():
    """A request accepts message dicts and purpose strings and exposes its system prompt."""
    request = GenerationRequest(
        id="r1",
        messages=[{"role": "system", "content": "S"}, *PROMPT],
        purpose="chosen",
    )
    assert request.purpose is Purpose.CHOSEN
    assert request.system_prompt == "S"
    assert GenerationRequest(id="r2", messages=PROMPT).system_prompt is None


def test_preference_pair_row_is_trl_conversational_format():
    """A pair's row has prompt/chosen/rejected message lists, an id and metadata keys."""
    pair = PreferencePair(
        id="p1", prompt=PROMPT, chosen="Gently.", rejected="Boil it.", meta={"trait": 3}
    )
    row = pair.to_row()
    assert row == {
        "id": "p1",
        "prompt": PROMPT,
        "chosen": [{"role": "assistant", "content": "Gently."}],
        "rejected": [{"role": "assistant", "content": "Boil it."}],
        "trait": 3,
    }
    assert PreferencePair.from_row(json.loads(json.dumps(row))) == pair


def test_chat_example_row_round_trips():
    """An SFT example becomes {"id", "messages", ...meta} and comes back equal."""
    example = ChatExample(
        id="c1",
        messages=[*PROMPT, {"role": "assistant", "content": "Softly."}],
        meta={"source": "reflection"},
    )
    assert ChatExample.from_row(example.to_row()) == example


@pytest.mark.parametrize(
    ("row", "fragment"),
    [
        ({"prompt": PROMPT, "chosen": [], "rejected": []}, "'id'"),
        ({"id": "x", "prompt": "text", "chosen": [], "rejected": []}, "'prompt'"),
        ({"id": "x", "prompt": PROMPT, "chosen": "a", "rejected": []}, "'chosen'"),
        (
            {
                "id": "x",
                "prompt": PROMPT,
                "chosen": [{"role": "user", "content": "a"}],
                "rejected": [{"role": "assistant", "content": "b"}],
            },
            "'chosen'",
        ),
    ],
)
def test_bad_preference_rows_name_the_problem(row, fragment):
    """A malformed preference row raises DataError naming the source and the broken key."""
    with pytest.raises(DataError, match=fragment) as info:
        PreferencePair.from_row(row, path="pairs.jsonl:7")
    assert "pairs.jsonl:7" in str(info.value) or "id" in fragment


def test_chat_example_needs_an_assistant_turn():
    """An SFT example without an assistant turn is refused: there would be nothing to learn."""
    with pytest.raises(DataError, match="assistant"):
        ChatExample(id="c", messages=[*PROMPT, {"role": "user", "content": "again"}])


def test_metadata_cannot_shadow_row_keys():
    """Metadata named like a row key is refused instead of silently overwriting it."""
    with pytest.raises(DataError, match="collide"):
        PreferencePair(id="p", prompt=PROMPT, chosen="a", rejected="b", meta={"prompt": 1})


def test_stable_id_depends_only_on_inputs():
    """stable_id is deterministic and distinguishes different inputs."""
    assert stable_id("distill", "p1", 0) == stable_id("distill", "p1", 0)
    assert stable_id("distill", "p1", 0) != stable_id("distill", "p1", 1)
    assert stable_id("a", "bc") != stable_id("ab", "c")


def test_completion_usage_and_token_usage_sum():
    """Completions report usage; usages add field by field."""
    done = Completion(
        request_id="r", text="hi", finish_reason="stop", prompt_tokens=5, completion_tokens=2
    )
    total = done.usage + done.usage
    assert (total.prompt_tokens, total.completion_tokens, total.requests) == (10, 4, 2)
    assert total.total == 14
    assert TokenUsage(**total.to_dict()) == total


def test_checkpoint_round_trips_through_dict():
    """A checkpoint survives to_dict/from_dict, the form kept in manifests."""
    checkpoint = Checkpoint(
        backend="local",
        base_model="Qwen/Qwen3-4B-Instruct-2507",
        uri="runs/x/dpo",
        kind="dpo",
        meta={"steps": 3},
    )
    assert Checkpoint.from_dict(json.loads(json.dumps(checkpoint.to_dict()))) == checkpoint
    with pytest.raises(DataError):
        Checkpoint.from_dict({"backend": "x"})


def test_price_discounts_cache_hits_and_refuses_to_price_untrained_models():
    """Cache hits cost the cached price; training tokens need a training price."""
    price = Price(prefill=1.0, sample=2.0, train=4.0, cached_prefill=0.2)
    usage = TokenUsage(prompt_tokens=10**6, cached_prompt_tokens=5 * 10**5,
                       completion_tokens=10**6, train_tokens=10**6)  # fmt: skip
    assert price.cost(usage) == pytest.approx(0.5 + 0.1 + 2.0 + 4.0)
    assert Price(prefill=1.0, sample=2.0).cost(TokenUsage(prompt_tokens=10**6)) == 1.0
    with pytest.raises(ConfigError, match="no training price"):
        Price(prefill=1.0, sample=2.0).cost(TokenUsage(train_tokens=1))


def test_a_checkpoint_names_its_maker_and_refuses_other_backends():
    """Only the backend that made a checkpoint may load it; the message says how to export."""
    checkpoint = Checkpoint(backend="tinker", base_model="m", kind="dpo",
                            uri="tinker://run/sampler_weights/dpo",
                            state_uri="tinker://run/weights/dpo")  # fmt: skip
    checkpoint.require_backend("tinker")
    with pytest.raises(ConfigError, match=r"made by the 'tinker' backend.*export"):
        checkpoint.require_backend("local")
    assert Checkpoint.from_dict(checkpoint.to_dict()) == checkpoint


def test_samples_of_a_request_count_the_prompt_once():
    """Usage adds up to what was processed: prompt and request on sample 0 only."""
    first = Completion(request_id="q", text="a", finish_reason="stop", prompt_tokens=9,
                       completion_tokens=2, cached_prompt_tokens=4)  # fmt: skip
    second = Completion(request_id="q", text="b", finish_reason="stop", completion_tokens=3,
                        sample=1)  # fmt: skip
    total = first.usage + second.usage
    assert (total.prompt_tokens, total.completion_tokens, total.cached_prompt_tokens) == (9, 5, 4)
    assert total.requests == 1
