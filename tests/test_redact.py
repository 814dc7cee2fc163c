"""Secrets are recognised by name and by shape, and masked in text, mappings and log records."""

from __future__ import annotations

import logging

from hypothesis import given
from hypothesis import strategies as st

from opencharacter.redact import (
    MASK,
    RedactingFilter,
    is_secret_name,
    redact_mapping,
    redact_text,
    secret_values,
)


def test_secret_names_are_recognised_without_catching_token_counts():
    """Key, token and secret names match; counters such as prompt_tokens do not."""
    for name in ("TINKER_API_KEY", "HF_TOKEN", "api_key", "DB_PASSWORD", "aws.secret"):
        assert is_secret_name(name), name
    for name in ("prompt_tokens", "max_tokens", "keyword", "monkey", "author"):
        assert not is_secret_name(name), name


def test_environment_secrets_are_collected_longest_first():
    """Only values of secret-named variables, long enough to be secrets, are collected."""
    env = {"A_TOKEN": "short", "B_API_KEY": "abcdefgh", "C_KEY": "abcdefghijkl", "PATH": "/bin"}
    assert secret_values(env) == ("abcdefghijkl", "abcdefgh")


def test_known_key_shapes_are_masked_even_when_not_in_the_environment():
    """Tinker, OpenAI, Hugging Face and GitHub key shapes are masked."""
    text = "tml-abc123DEF456 sk-proj-0123456789abcdefXYZ hf_0123456789abcdefABCD"
    assert redact_text(text, secrets=()) == f"{MASK} {MASK} {MASK}"
    assert redact_text("plain words", secrets=()) == "plain words"


@given(st.text(min_size=0, max_size=200), st.text(min_size=6, max_size=30).filter(str.strip))
def test_a_secret_never_survives_redaction(prefix, secret):
    """Whatever surrounds it, a known secret value is gone after redaction."""
    assert secret not in redact_text(prefix + secret + prefix, secrets=(secret,)) or (
        secret in MASK
    )


def test_mappings_mask_secret_keys_and_values_recursively():
    """Values under secret keys are masked, and secret values anywhere are masked too."""
    data = {"options": {"api_key": "typed", "model": "qwen"}, "log": ["uses s3cr3t-value"]}
    assert redact_mapping(data, secrets=("s3cr3t-value",)) == {
        "options": {"api_key": MASK, "model": "qwen"},
        "log": [f"uses {MASK}"],
    }


def test_log_records_are_masked(monkeypatch):
    """The CLI's logging filter masks secrets in formatted log messages."""
    monkeypatch.setenv("TINKER_API_KEY", "tml-zzzzzzzzzzzz")
    record = logging.LogRecord(
        "x", logging.INFO, __file__, 1, "key %s", ("tml-zzzzzzzzzzzz",), None
    )
    assert RedactingFilter().filter(record)
    assert record.getMessage() == f"key {MASK}"
