"""The ``openai`` client's exceptions as ours: permanent failures fail fast, the rest retry.

The client retries 429s (honouring ``Retry-After``), 5xx answers, timeouts and dropped
connections itself (``max_retries``); what reaches here has used those retries up. A rejected
key, a model the server does not serve and a malformed request are permanent: no retry will
fix them. A request longer than the model's context names itself, so the row can be found.
"""

from __future__ import annotations

import os
import re

import openai

from opencharacter.errors import BackendError, PermanentBackendError, TransientBackendError

_CONTEXT = re.compile(r"context.length|maximum context|too many tokens|max_model_len", re.I)


def backend_error(
    exc: openai.OpenAIError,
    *,
    server: str,
    request_id: str | None,
    key_env: str = "OPENAI_API_KEY",
) -> BackendError:
    """Return ``exc`` as a :class:`TransientBackendError` or :class:`PermanentBackendError`.

    ``key_env`` is the variable the key was read from, named when the key is refused.
    """
    where = f"the OpenAI-compatible server at {server}"
    kind, message = _classify(exc, where, request_id, key_env)
    return kind(message, request_id=request_id)


def _classify(  # noqa: PLR0911 - one return per kind of failure reads best
    exc: openai.OpenAIError, where: str, request_id: str | None, key_env: str
) -> tuple[type[BackendError], str]:
    if isinstance(exc, openai.APITimeoutError):
        return TransientBackendError, f"{where} did not answer in time ({exc})"
    if isinstance(exc, openai.APIConnectionError):
        return TransientBackendError, f"{where} cannot be reached ({exc})"
    if not isinstance(exc, openai.APIStatusError):
        return PermanentBackendError, f"{where} failed: {exc}"
    status, detail = exc.status_code, _detail(exc)
    if isinstance(exc, openai.AuthenticationError | openai.PermissionDeniedError):
        problem = "is not set" if not os.environ.get(key_env) else "holds a key it refuses"
        return PermanentBackendError, (
            f"{where} refuses the API key ({status}: {detail}); {key_env} {problem}: set it to "
            "the server's key, or name the variable that holds it with the api_key_env option"
        )
    if isinstance(exc, openai.NotFoundError):
        return PermanentBackendError, (
            f"{where} answers 404 ({detail}): check base_url (it ends in /v1) and the model name"
        )
    if status in {408, 429} or status >= 500:
        return TransientBackendError, f"{where} answered {status} ({detail})"
    if _CONTEXT.search(detail):
        return PermanentBackendError, (
            f"request {request_id} is longer than the model's context at {where} ({detail}); "
            "shorten its prompt or lower its max_tokens"
        )
    return PermanentBackendError, f"{where} refuses the request ({status}: {detail})"


def _detail(exc: openai.APIStatusError) -> str:
    """Return the server's own message: ``{"error": {"message": ...}}`` or the raw body."""
    body = exc.body
    if isinstance(body, dict):
        error = body.get("error", body)
        message = error.get("message") if isinstance(error, dict) else error
        if message:
            return str(message)
    return exc.message


__all__ = ["backend_error"]
