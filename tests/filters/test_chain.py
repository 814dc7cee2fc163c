"""Filter chains compose filters in order, per stage, and record themselves as data."""

from __future__ import annotations

import json

import attrs
import pytest
from tests.filters.examples import HARD_NEGATIVES

from opencharacter import filters
from opencharacter.errors import ConfigError
from opencharacter.filters import (
    FILTER_POINTS,
    FILTERS,
    REASONS,
    FilterChain,
    FilterStep,
    Verdict,
    check_length,
    dpo_chains,
)

ANSWER = "Arr, the tide waits for no one, matey. Set sail at dawn and mind the reef."


def _tokens(text: str) -> int:
    return len(text.split())


def _isort_key(name: str) -> tuple[int, str]:
    return (0 if name.isupper() else 1 if name[0].isupper() else 2, name)


def test_facade_exports_resolve_and_are_sorted():
    """Every name in the package's __all__ resolves; __all__ is sorted as ruff sorts it."""
    assert filters.__all__ == sorted(filters.__all__, key=_isort_key)
    for name in filters.__all__:
        assert getattr(filters, name) is not None


def test_every_filter_reports_only_known_reason_codes():
    """Every reason code in the table has a description; filters use no other code."""
    assert all(REASONS[code] for code in REASONS)
    for text in [*HARD_NEGATIVES.values(), "", "x", "333," * 100]:
        for fn in FILTERS.values():
            verdict = fn(text)
            assert set(verdict.reasons) | set(verdict.cleaned) <= set(REASONS)


def test_verdict_keeps_exactly_when_there_are_no_reasons():
    """A verdict cannot both keep a text and give reasons to drop it."""
    with pytest.raises(ConfigError):
        Verdict(keep=True, reasons=("empty",), text="")
    with pytest.raises(ConfigError):
        Verdict(keep=False, reasons=(), text="")


@pytest.mark.parametrize("stage", FILTER_POINTS)
def test_every_stage_has_a_default_chain_that_keeps_good_answers(stage):
    """Each stage's default chain keeps every hard negative unchanged."""
    chain = FilterChain.for_stage(stage)
    assert chain.stage == stage
    for text in HARD_NEGATIVES.values():
        verdict = chain.apply(text, finish_reason="stop")
        assert verdict.keep, verdict
        assert verdict.text == text


def test_stage_chains_differ_where_documented():
    """Only distill-chosen discloses; distill-rejected skips identity; cleaning comes first."""
    names = {stage: FilterChain.for_stage(stage).names for stage in FILTER_POINTS}
    assert [s for s in FILTER_POINTS if "disclosure" in names[s]] == ["distill-chosen"]
    assert [s for s in FILTER_POINTS if "identity" not in names[s]] == ["distill-rejected"]
    for stage_names in names.values():
        assert stage_names[:2] == ("reasoning", "roles")


def test_unknown_stage_is_a_configuration_error():
    """Asking for a stage without a default chain names the stages there are."""
    with pytest.raises(ConfigError, match="distill-chosen"):
        FilterChain.for_stage("pretraining")


def test_chain_cleans_before_it_judges():
    """Later filters see the text earlier filters cleaned, and the cleanings accumulate."""
    chain = FilterChain.for_stage("distill-chosen", teacher_names=("ChatGLM",), student_name="Qwen")
    verdict = chain.apply(f"<think>voice</think>I'm ChatGLM. {ANSWER}\nUser: more!")
    assert verdict.keep
    assert verdict.text == f"I'm Qwen. {ANSWER}"
    assert verdict.cleaned == ("reasoning-leak", "role-hallucination", "identity-leak")


def test_chain_stops_at_the_first_drop():
    """A dropped verdict names the first dropping filter's reason only."""
    verdict = FilterChain.for_stage("distill-chosen").apply("", finish_reason="length")
    assert verdict.reasons == ("empty",)


def test_a_cut_off_hallucinated_turn_ends_the_answer():
    """After a hallucinated turn is cut, a 'length' finish no longer marks the text truncated."""
    chain = FilterChain.for_stage("distill-chosen")
    looped = f"{ANSWER}\nUser: and?\nAssistant: well, as I was saying, the tide"
    verdict = chain.apply(looped, finish_reason="length")
    assert verdict.keep
    assert verdict.turn_ended
    assert chain.apply(ANSWER, finish_reason="length").reasons == ("truncated-length",)


def test_chain_accepts_functions_and_names():
    """A step may name a filter or pass the function itself, with or without parameters."""
    by_name = FilterChain([("length", {"min_chars": 5}), "empty"])
    by_function = FilterChain([(check_length, {"min_chars": 5}), filters.check_empty])
    assert by_name == by_function


def test_chain_round_trips_through_json():
    """A chain written with to_dict and read with from_dict is the same chain."""
    chain = FilterChain.for_stage("distill-chosen", teacher_names=("ChatGLM",), student_name="Qwen")
    data = json.loads(json.dumps(chain.to_dict()))
    assert data["steps"][0] == {"filter": "reasoning", "params": {}}
    assert FilterChain.from_dict(data) == chain


def test_chain_records_a_token_counter_by_name():
    """A token counter is recorded by name and must be passed again to rebuild the chain."""
    chain = FilterChain.for_stage("reflection", count_tokens=_tokens)
    data = json.loads(json.dumps(chain.to_dict()))
    length = next(s for s in data["steps"] if s["filter"] == "length")
    assert length["params"]["max_tokens"] == 2048
    assert length["params"]["count_tokens"].endswith("_tokens>")
    with pytest.raises(ConfigError, match="count_tokens"):
        FilterChain.from_dict(data)
    assert FilterChain.from_dict(data, count_tokens=_tokens) == chain


def test_chain_with_token_counter_drops_long_answers():
    """With a token counter the stage's token ceiling applies."""
    chain = FilterChain.for_stage("distill-chosen", count_tokens=_tokens, max_tokens=5)
    assert chain.apply(ANSWER).reasons == ("too-long",)


def test_with_params_and_without_return_new_chains():
    """Changing a step's parameters or removing steps leaves the original chain as it was."""
    chain = FilterChain.for_stage("reflection")
    relaxed = chain.with_params("length", max_chars=20_000)
    assert dict(relaxed.steps[relaxed.names.index("length")].params) == {"max_chars": 20_000}
    assert chain != relaxed
    assert "garbage" not in chain.without("garbage").names
    with pytest.raises(ConfigError, match="no 'disclosure' step"):
        chain.with_params("disclosure")
    with pytest.raises(ConfigError, match="disclosure"):
        chain.without("disclosure")


def test_chains_are_frozen():
    """A chain and its steps cannot be changed in place."""
    chain = FilterChain.for_stage("interaction")
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        chain.stage = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        chain.steps[0].params["mode"] = "drop"  # type: ignore[index]


@pytest.mark.parametrize(
    ("step", "message"),
    [
        (("censor", {}), "unknown filter"),
        (("length", {"max_words": 3}), "no parameter"),
        (("reasoning", {"mode": "hide"}), "mode"),
        (("repetition", {"min_loop_chars": 3}), "min_loop_chars"),
        (("length", {"max_tokens": 3}), "count_tokens"),
        ((print, {}), "not a registered filter"),
        ((42, {}), "filter name"),
    ],
)
def test_bad_steps_fail_when_the_chain_is_built(step, message):
    """An unknown filter, parameter or value fails when the chain is built, not mid-run."""
    with pytest.raises(ConfigError, match=message):
        FilterChain([step])


def test_filter_step_applies_its_filter():
    """A step runs its filter with its parameters."""
    assert FilterStep("length", {"min_chars": 100}).apply(ANSWER).reasons == ("too-short",)


def test_dpo_chains_pairs_the_distillation_defaults():
    """dpo_chains returns the distill-chosen and distill-rejected chains by side."""
    chains = dpo_chains(teacher_names=("ChatGLM",), student_name="Qwen")
    assert chains["chosen"] == FilterChain.for_stage(
        "distill-chosen", teacher_names=("ChatGLM",), student_name="Qwen"
    )
    assert chains["rejected"] == FilterChain.for_stage("distill-rejected")
