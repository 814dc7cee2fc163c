"""The exception tree of opencharacter.

Every error the library raises on purpose derives from :class:`OpenCharacterError` *and* from
the standard exception it stands in for, so ``except ValueError`` in a user's code keeps working.
Messages say what happened, where, and how to fix it; the CLI prints them without a traceback.

To add an exception: subclass the closest class here, keep ``__init__`` signature-compatible
with ``Exception`` (one message argument plus keyword extras) so it pickles across processes.
"""

from __future__ import annotations


class OpenCharacterError(Exception):
    """Root of every error opencharacter raises deliberately."""


class ConfigError(OpenCharacterError, ValueError):
    """A setting, option or command-line value is invalid."""


class ConstitutionError(OpenCharacterError, ValueError):
    """A constitution file cannot be read; the message names the file, the place and the fix."""


class DataError(OpenCharacterError, ValueError):
    """A data file (JSONL rows, a manifest) is malformed; the message names file and line."""


class MissingDependencyError(OpenCharacterError, ImportError):
    """An optional package a backend needs is not installed; the message gives the pip command."""


class PluginError(OpenCharacterError, ImportError):
    """An installed backend plugin is broken: its factory cannot be imported."""


class UnknownBackendError(OpenCharacterError, LookupError):
    """No installed backend has the requested name; the message lists the installed ones."""


class RunLockedError(OpenCharacterError, RuntimeError):
    """Another process is writing to the same run directory."""


class EvaluationError(OpenCharacterError, RuntimeError):
    """An evaluation cannot give numbers worth reading (its judge failed too often, say)."""


class BackendError(OpenCharacterError, RuntimeError):
    """A backend failed to serve a request.

    Attributes:
        request_id: the generation request that failed, when the failure is tied to one.
    """

    def __init__(self, message: str, *, request_id: str | None = None) -> None:
        super().__init__(message)
        self.request_id = request_id

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild_backend_error, (type(self), str(self), self.request_id))


class TransientBackendError(BackendError):
    """A failure worth retrying: rate limit, timeout, overload, a 5xx answer."""


class PermanentBackendError(BackendError):
    """A failure no retry will fix: bad credentials, unknown model, malformed request."""


def _rebuild_backend_error(
    cls: type[BackendError], message: str, request_id: str | None
) -> BackendError:
    return cls(message, request_id=request_id)
