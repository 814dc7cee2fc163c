"""Keep secrets out of run files and logs.

A secret is the value of any environment variable whose name says it is one (``*_API_KEY``,
``*_TOKEN``, ``*SECRET*``...), or any string shaped like a well-known key format. Run files and
log lines pass through :func:`redact_text` before they are written, and configuration mappings
through :func:`redact_mapping`, which also blanks values stored under secret-looking keys.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from typing import Any

MASK = "***"
_SECRET_NAME = re.compile(
    r"(?:^|[_.\-])(?:API_?KEY|KEY|SECRET|TOKEN|PASSWORD|PASSWD|CREDENTIALS?|AUTH)(?:$|[_.\-])",
    re.IGNORECASE,
)
_KEY_SHAPES = re.compile(
    r"\btml-[A-Za-z0-9_\-]{8,}"  # Tinker
    r"|\bsk-(?:proj-|ant-)?[A-Za-z0-9_\-]{16,}"  # OpenAI, Anthropic
    r"|\bhf_[A-Za-z0-9]{16,}"  # Hugging Face
    r"|\bgh[pousr]_[A-Za-z0-9]{20,}"  # GitHub
    r"|\bAKIA[0-9A-Z]{16}\b"  # AWS access key id
)
# Literal starts of the shapes above: a cheap ``in`` test skips the regex for almost every line.
_KEY_PREFIXES = ("tml-", "sk-", "hf_", "ghp_", "gho_", "ghu_", "ghs_", "ghr_", "AKIA")
_MIN_SECRET_LENGTH = 6


def is_secret_name(name: str) -> bool:
    """Return True for names that hold secrets by convention.

    >>> [is_secret_name(n) for n in ("TINKER_API_KEY", "HF_TOKEN", "prompt_tokens", "keyword")]
    [True, True, False, False]
    """
    return bool(_SECRET_NAME.search(name))


def secret_values(environ: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """Return the values of secret-named environment variables, longest first."""
    env = os.environ if environ is None else environ
    values = {v for k, v in env.items() if is_secret_name(k) and len(v) >= _MIN_SECRET_LENGTH}
    return tuple(sorted(values, key=len, reverse=True))


def redact_text(text: str, secrets: tuple[str, ...] | None = None, *, shapes: bool = True) -> str:
    """Return ``text`` with every secret value (and, if ``shapes``, key-shaped string) masked.

    Matching key shapes costs about 30 us per 6 kB line, so bulk data rows, which only an echo
    of the environment could taint, are checked for secret values alone (``shapes=False``).

    >>> redact_text("key=tml-abcdefghijkl in use", secrets=())
    'key=*** in use'
    """
    for value in secret_values() if secrets is None else secrets:
        if value in text:
            text = text.replace(value, MASK)
    if shapes and any(prefix in text for prefix in _KEY_PREFIXES):
        text = _KEY_SHAPES.sub(MASK, text)
    return text


def redact_mapping(data: Any, secrets: tuple[str, ...] | None = None) -> Any:
    """Return a copy of ``data`` (nested dicts and lists) with secrets masked.

    Values under secret-looking keys are masked whatever they hold; other strings go through
    :func:`redact_text`.

    >>> redact_mapping({"api_key": "x", "model": "qwen"}, secrets=())
    {'api_key': '***', 'model': 'qwen'}
    """
    secrets = secret_values() if secrets is None else secrets
    if isinstance(data, Mapping):
        return {
            k: MASK if is_secret_name(str(k)) and v else redact_mapping(v, secrets)
            for k, v in data.items()
        }
    if isinstance(data, list | tuple):
        return [redact_mapping(v, secrets) for v in data]
    if isinstance(data, str):
        return redact_text(data, secrets)
    return data


class RedactingFilter(logging.Filter):
    """A logging filter that masks secrets in every record's final message."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Replace the record's message with its redacted rendering; never drops a record."""
        message = record.getMessage()
        redacted = redact_text(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True
