"""The backend's one Tinker session: connected once, lazily, and never waited on without a limit.

The SDK connects synchronously inside its first ``create_*`` call (and inside the
``RestClient`` constructor), and an unreachable server costs five minutes of its retries. So
each first contact runs in a daemon thread that we wait on for ``connect_timeout`` seconds:
a wrong address or a dead network is reported in seconds, and a thread still stuck in the SDK
cannot keep the process alive.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import tinker

from opencharacter.errors import BackendError, ConfigError, PermanentBackendError
from opencharacter_tinker.errors import translate

T = TypeVar("T")


def in_background(function: Callable[[], T], what: str) -> Callable[[float], T]:
    """Start a blocking SDK call in a daemon thread; return a wait for its result.

    The wait gives up after the seconds it is given: a thread still stuck in the SDK cannot
    keep the process alive, and its caller hears in time.

    Raises (from the wait):
        BackendError: the call failed (translated) or did not return in time.
    """
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = function()
        except BaseException as exc:  # handed to the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=target, name=f"tinker: {what}", daemon=True)
    thread.start()

    def wait(timeout: float) -> T:
        thread.join(timeout)
        if thread.is_alive():
            msg = (
                f"Tinker: no answer to {what} within {timeout:g} s; check the network and "
                "TINKER_BASE_URL (options connect_timeout and step_timeout set the limits)"
            )
            raise PermanentBackendError(msg)
        if "error" in box:
            raise translate(box["error"]) from box["error"]
        return box["value"]  # type: ignore[no-any-return]

    return wait


def call_with_timeout(function: Callable[[], T], timeout: float, what: str) -> T:
    """Run a blocking SDK call in a daemon thread; give up after ``timeout`` seconds."""
    return in_background(function, what)(timeout)


class Connection:
    """The Tinker session of one backend: a ``ServiceClient``, its sampling clients and models.

    Args:
        base_url: the service; ``None`` reads ``TINKER_BASE_URL`` or the SDK's default.
        api_key: ``None`` reads ``TINKER_API_KEY`` (or the SDK's other credential sources).
        connect_timeout: seconds allowed for the first contact and each client creation.

    The environment is read here, once: the SDK shares one connection per process for each
    (address, key) it is *given*, so a key that changed since is only seen if passed.
    """

    def __init__(
        self, *, base_url: str | None = None, api_key: str | None = None, connect_timeout: float
    ) -> None:
        self._base_url = base_url or os.environ.get("TINKER_BASE_URL") or None
        self._api_key = api_key or os.environ.get("TINKER_API_KEY") or None
        self.connect_timeout = connect_timeout
        self._service: tinker.ServiceClient | None = None
        self._models: dict[str, Any] | None = None
        self._samplers: dict[tuple[str, str | None], tinker.SamplingClient] = {}
        self._creating: dict[tuple[str, str | None], asyncio.Future[tinker.SamplingClient]] = {}
        self._lock = threading.Lock()

    @property
    def base_url(self) -> str | None:
        """The service's address, when set (else the SDK's default)."""
        return self._base_url

    @property
    def api_key(self) -> str | None:
        """The key from the options or the environment (else the SDK's other sources)."""
        return self._api_key

    @property
    def service(self) -> tinker.ServiceClient:
        """The session's ``ServiceClient`` (made on first use; it connects on its first call)."""
        with self._lock:
            if self._service is None:
                self._service = tinker.ServiceClient(base_url=self._base_url, api_key=self._api_key)
            return self._service

    def served_models(self) -> Mapping[str, Any]:
        """Return the models the service offers, by name (asked once per session)."""
        if self._models is None:

            def ask() -> Any:
                rest = tinker.RestClient(base_url=self._base_url, api_key=self._api_key)
                return rest.get_server_capabilities().result(timeout=self.connect_timeout)

            answer = call_with_timeout(ask, self.connect_timeout, "the capabilities request")
            self._models = {m.model_name: m for m in answer.supported_models if m.model_name}
        return self._models

    def check(self, *, sample: list[str], train: list[str]) -> None:
        """Fail now, with the models on offer, unless each model can do its part.

        Raises:
            ConfigError: a model is not served, or not for sampling or training.
            BackendError: the service cannot be reached or refuses the key.
        """
        served = self.served_models()
        offer = ", ".join(sorted(served)) or "none"
        wanted = [*((m, "sampleable") for m in sample), *((m, "trainable") for m in train)]
        for model, ability in wanted:
            info = served.get(model)
            if info is None:
                msg = (
                    f"Tinker does not serve {model!r} (retired, or misspelt). Models on offer: "
                    f"{offer}. Choose one with --teacher/--student."
                )
                raise ConfigError(msg)
            if getattr(info, ability) is False:
                msg = f"Tinker serves {model!r} but it is not {ability}. Models on offer: {offer}."
                raise ConfigError(msg)

    def max_context(self, model: str) -> int | None:
        """Return the model's context window in tokens, when the service says."""
        info = (self._models or {}).get(model)
        return getattr(info, "max_context_length", None)

    async def sampling_client(self, base_model: str, path: str | None) -> tinker.SamplingClient:
        """Return the sampling client of a base model, or of a ``tinker://`` sampler path.

        Concurrent first requests share one creation: a stage's hundreds of requests start
        at once, and each creating its own client would open as many sessions.
        """
        key = (base_model, path)
        if (client := self._samplers.get(key)) is not None:
            return client
        creating = self._creating.get(key)
        if creating is None or creating.get_loop() is not asyncio.get_running_loop():
            creating = asyncio.ensure_future(self._create_sampler(base_model, path))
            self._creating[key] = creating
        return await asyncio.shield(creating)

    async def _create_sampler(self, base_model: str, path: str | None) -> tinker.SamplingClient:
        key = (base_model, path)
        try:
            future = await asyncio.to_thread(
                call_with_timeout,
                lambda: (
                    self.service.create_sampling_client(model_path=path)
                    if path
                    else self.service.create_sampling_client(base_model=base_model)
                ),
                self.connect_timeout,
                "the sampling client's creation",
            )
            try:
                created: tinker.SamplingClient = await asyncio.wait_for(
                    future, self.connect_timeout
                )
            except Exception as exc:
                raise translate(exc) from exc
            self._samplers[key] = created
            return created
        finally:
            self._creating.pop(key, None)

    def close(self) -> None:
        """End the session on the service (best effort), so it stops counting as live."""
        with self._lock:
            service, self._service = self._service, None
        if service is not None:
            with contextlib.suppress(BackendError, tinker.TinkerError, TimeoutError):
                service.close("success").result(timeout=self.connect_timeout)
