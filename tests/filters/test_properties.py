"""Properties every filter and chain holds, checked on generated answers and rows."""

from __future__ import annotations

import os
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.filters.strategies import (
    answers,
    finish_reasons,
    ordered_fraction,
    ordered_pair,
    row_lists,
)

from opencharacter.filters import (
    FILTERS,
    MODEL_NAMES,
    REASONS,
    FilterChain,
    Verdict,
    check_garbage,
    check_identity,
    check_length,
    check_reasoning,
    check_repetition,
    check_roles,
    check_truncation,
    dpo_chains,
    filter_row,
    filter_rows,
)

# Moderate by default so the suite stays fast; FILTER_EXAMPLES=2000 for a deeper search.
SETTINGS = settings(max_examples=int(os.environ.get("FILTER_EXAMPLES", "60")), deadline=None)

# Every filter with its defaults, plus the cleaning variants worth checking on their own.
CONFIGS: dict[str, tuple[str, dict[str, Any]]] = {
    **{name: (name, {}) for name in FILTERS},
    "identity-replacing": ("identity", {"teacher_names": ("ChatGLM",), "student_name": "Qwen"}),
    "reasoning-drop": ("reasoning", {"mode": "drop"}),
}


def _run(config: str, text: str, finish_reason: str | None = None) -> Verdict:
    name, params = CONFIGS[config]
    return FILTERS[name](text, finish_reason=finish_reason, **params)


@pytest.mark.parametrize("config", CONFIGS)
@SETTINGS
@given(text=answers(), finish_reason=finish_reasons)
def test_filters_are_deterministic_and_consistent(config, text, finish_reason):
    """A filter gives the same verdict twice, keeps exactly without reasons, uses known codes."""
    verdict = _run(config, text, finish_reason)
    assert _run(config, text, finish_reason) == verdict
    assert verdict.keep == (not verdict.reasons)
    assert set(verdict.reasons) <= set(REASONS)
    assert set(verdict.cleaned) <= set(REASONS)
    assert verdict.cleaned or verdict.text == text


@pytest.mark.parametrize("config", CONFIGS)
@SETTINGS
@given(text=answers())
def test_cleaning_is_idempotent_and_never_lengthens(config, text):
    """Cleaning a cleaned text changes nothing, and cleaning never makes a text longer."""
    verdict = _run(config, text)
    assert len(verdict.text) <= len(text)
    again = _run(config, verdict.text)
    assert again.text == verdict.text
    assert again.cleaned == ()


def _never_keeps_more(strict: Verdict, lenient: Verdict) -> None:
    assert lenient.keep or not strict.keep


@SETTINGS
@given(text=answers(), low_high=ordered_pair(0, 60), caps=ordered_pair(0, 400))
def test_length_stricter_limits_never_keep_more(text, low_high, caps):
    """A higher minimum or a lower maximum never keeps a text a looser limit drops."""
    low, high = low_high
    _never_keeps_more(check_length(text, min_chars=high), check_length(text, min_chars=low))
    small, large = caps
    _never_keeps_more(check_length(text, max_chars=small), check_length(text, max_chars=large))
    count = len
    _never_keeps_more(
        check_length(text, max_tokens=small, count_tokens=count),
        check_length(text, max_tokens=large, count_tokens=count),
    )


@SETTINGS
@given(text=answers(), finish_reason=finish_reasons)
def test_truncation_stricter_rules_never_keep_more(text, finish_reason):
    """Requiring final punctuation, or only punctuation, never keeps more."""
    _never_keeps_more(
        check_truncation(text, finish_reason=finish_reason),
        check_truncation(text, finish_reason=finish_reason, require_final_punctuation=False),
    )
    _never_keeps_more(
        check_truncation(text, finish_reason=finish_reason, allow_final_symbols=False),
        check_truncation(text, finish_reason=finish_reason),
    )


REPETITION_LIMITS = {
    # name: (low, high, True when a higher value is stricter)
    "min_loop_chars": (64, 300, False),
    "max_line_repeats": (0, 10, False),
    "min_line_chars": (0, 40, False),
    "max_paragraph_repeats": (0, 6, False),
    "min_paragraph_chars": (0, 80, False),
    "min_ngrams": (1, 120, False),
}


@pytest.mark.parametrize("param", REPETITION_LIMITS)
@SETTINGS
@given(text=answers(), values=st.data())
def test_repetition_stricter_thresholds_never_keep_more(param, text, values):
    """A stricter repetition threshold never keeps a text a looser one drops."""
    low, high, _ = REPETITION_LIMITS[param]
    a, b = values.draw(ordered_pair(low, high))
    strict = check_repetition(text, **{param: a})
    lenient = check_repetition(text, **{param: b})
    _never_keeps_more(strict, lenient)


@SETTINGS
@given(text=answers(), shares=ordered_fraction())
def test_repetition_lower_share_never_keeps_more(text, shares):
    """A lower n-gram share threshold never keeps a text a higher one drops."""
    low, high = shares
    _never_keeps_more(
        check_repetition(text, max_ngram_dup_share=low),
        check_repetition(text, max_ngram_dup_share=high),
    )


@pytest.mark.parametrize(
    "param", ["max_replacement_chars", "max_control_chars", "max_script_switches"]
)
@SETTINGS
@given(text=answers(), values=st.data())
def test_garbage_stricter_thresholds_never_keep_more(param, text, values):
    """Allowing fewer broken characters or script switches never keeps more."""
    a, b = values.draw(ordered_pair(0, 5))
    _never_keeps_more(check_garbage(text, **{param: a}), check_garbage(text, **{param: b}))


@pytest.mark.parametrize("check", [check_reasoning, check_roles])
@SETTINGS
@given(text=answers(), values=ordered_pair(0, 120))
def test_cleaning_filters_with_higher_minimum_never_keep_more(check, text, values):
    """Requiring more text to remain after cleaning never keeps more."""
    low, high = values
    _never_keeps_more(check(text, min_remaining_chars=high), check(text, min_remaining_chars=low))


@SETTINGS
@given(text=answers(), extra=st.lists(st.sampled_from(["Maestro", "Captain", "Pip"]), max_size=3))
def test_identity_more_names_never_keep_more(text, extra):
    """Adding names, or generic disclaimers, to the leak list never keeps more."""
    _never_keeps_more(check_identity(text, names=(*MODEL_NAMES, *extra)), check_identity(text))
    _never_keeps_more(check_identity(text, generic_disclaimers=True), check_identity(text))


CHAIN = FilterChain.for_stage("distill-chosen", teacher_names=("ChatGLM",), student_name="Qwen")


@pytest.mark.parametrize(
    "stage", ["distill-chosen", "distill-rejected", "reflection", "interaction"]
)
@SETTINGS
@given(text=answers(), finish_reason=finish_reasons)
def test_chain_cleaning_is_idempotent(stage, text, finish_reason):
    """Running a chain on its own cleaned output keeps it unchanged, with nothing to clean."""
    chain = FilterChain.for_stage(stage, teacher_names=("ChatGLM",), student_name="Qwen")
    verdict = chain.apply(text, finish_reason=finish_reason)
    assert len(verdict.text) <= len(text)
    assert chain.apply(text, finish_reason=finish_reason) == verdict
    if verdict.keep:
        again = chain.apply(verdict.text, finish_reason="stop")
        assert again.keep
        assert again.text == verdict.text
        assert again.cleaned == ()


@pytest.mark.parametrize("kind", ["dpo", "sft"])
@SETTINGS
@given(data=st.data())
def test_filter_rows_keeps_a_subset_in_input_order(kind, data):
    """Filtering yields one result per row in order; kept rows are a subsequence of the input."""
    rows = data.draw(row_lists(kind))
    chains = dpo_chains() if kind == "dpo" else FilterChain.for_stage("interaction")
    results = list(filter_rows(rows, chains))
    assert [r.id for r in results] == [row["id"] for row in rows]
    kept = [r.id for r in results if r.keep]
    ids = iter(row["id"] for row in rows)
    assert all(any(k == i for i in ids) for k in kept)


@pytest.mark.parametrize("kind", ["dpo", "sft"])
@SETTINGS
@given(data=st.data())
def test_verdicts_do_not_depend_on_row_order(kind, data):
    """Shuffling the rows changes no row's verdict or cleaned row."""
    rows = data.draw(row_lists(kind))
    shuffled = data.draw(st.permutations(rows))
    chains = dpo_chains() if kind == "dpo" else FilterChain.for_stage("interaction")
    first = {r.id: (r.keep, r.reasons, r.cleaned, r.row) for r in filter_rows(rows, chains)}
    second = {r.id: (r.keep, r.reasons, r.cleaned, r.row) for r in filter_rows(shuffled, chains)}
    assert first == second


@SETTINGS
@given(rows=row_lists("dpo"))
def test_filter_row_matches_the_chain_on_each_side(rows):
    """A DPO row is kept exactly when both sides' chains keep their text."""
    chains = dpo_chains()
    for row in rows:
        result = filter_row(row, chains)
        chosen = chains["chosen"].apply(row["chosen"][0]["content"])
        rejected = chains["rejected"].apply(row["rejected"][0]["content"])
        assert result.keep == (chosen.keep and rejected.keep)
        assert result.row["chosen"][0]["content"] == chosen.text
