"""One clear line for each way the Tinker SDK can fail, as the library's own errors.

The SDK raises its own exception tree, some of it only from inside futures, and retries on its
own for minutes. Every SDK call of the backend goes through :func:`translate`, so the stages
see just :class:`~opencharacter.errors.TransientBackendError` (worth one more try) or
:class:`~opencharacter.errors.PermanentBackendError` (stop now, and say what to fix).
"""

from __future__ import annotations

import asyncio
import concurrent.futures

import tinker

from opencharacter.errors import BackendError, PermanentBackendError, TransientBackendError

#: The SDK's message when a prompt and its answer do not fit the model's context window.
CONTEXT_OVERFLOW = "exceeds the model's context window"
_KEY_HELP = "set TINKER_API_KEY (a key starting with 'tml-') or run `tinker auth login`"


def translate(error: BaseException, *, request_id: str | None = None) -> BackendError:
    """Return the library error for an SDK failure, with what happened and what to do.

    Args:
        error: what the SDK (or a timeout around it) raised.
        request_id: the generation request it belongs to, if any.
    """
    text = str(error).strip() or type(error).__name__
    where = f"request {request_id}: " if request_id else ""
    permanent, message = _classify(error, text)
    cls = PermanentBackendError if permanent else TransientBackendError
    translated = cls(f"Tinker: {where}{message}", request_id=request_id)
    translated.__cause__ = error
    return translated


def _classify(error: BaseException, text: str) -> tuple[bool, str]:  # noqa: PLR0911 - a table
    """Return whether ``error`` is permanent, and the message to show."""
    if isinstance(error, tinker.AuthenticationError):
        return True, f"the API key was rejected (401); {_KEY_HELP}"
    if isinstance(error, tinker.PermissionDeniedError):
        return True, f"this key may not do that (403): {text}"
    if isinstance(error, tinker.BillingError):
        return True, f"billing stopped the request (402); check the account's balance: {text}"
    if CONTEXT_OVERFLOW in text:
        return True, f"{text}; shorten the prompt or lower max_tokens"
    if isinstance(error, tinker.NotFoundError | tinker.BadRequestError):
        return True, f"the service refused the request: {text}"
    if isinstance(error, tinker.UnprocessableEntityError):
        return True, f"the service could not process the request: {text}"
    if isinstance(error, tinker.RequestFailedError):
        user = str(getattr(error, "category", "")).lower().endswith("user")
        return user, f"the request failed on the service: {text}"
    if isinstance(error, tinker.APIConnectionError):
        return False, f"cannot reach the service ({text}); check the network and TINKER_BASE_URL"
    if isinstance(error, TimeoutError | asyncio.TimeoutError | concurrent.futures.TimeoutError):
        return False, "no answer within the backend's timeout (option request_timeout)"
    if isinstance(error, tinker.RateLimitError | tinker.InternalServerError):
        return False, f"the service is busy or failing: {text}"
    if isinstance(error, tinker.TinkerError) and "api_key" in text:
        return True, f"no usable API key ({text}); {_KEY_HELP}"
    if isinstance(error, ValueError) and text.startswith("Error retrieving result"):
        return True, text  # the SDK raises other 4xx answers to a result poll as ValueError
    return False, f"{type(error).__name__}: {text}"
