"""The ``openai`` backend: teachers and judges on an OpenAI-compatible chat-completions server.

Options (``--teacher-option key=value``, or ``-o`` when the backend is the run's) are the
fields of :class:`OpenAIBackend`. The API key is read from an environment variable the
options name, never from an option, so it never reaches a run's manifest.

What the server can honour is asked at start (``GET /v1/models``): vLLM and SGLang say who
they are there and take ``top_k`` and ``repetition_penalty`` in the request body; another
server is taken to speak the OpenAI API alone, and the run's settings are fitted to that by
the core's rule (an explicit setting refused, a default downgraded with a warning). The
``server`` option overrides what the server says.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import attrs
import openai
from attrs import validators as v
from openai import AsyncOpenAI

from opencharacter.errors import ConfigError, OpenCharacterError, PermanentBackendError
from opencharacter.protocols import Capabilities, Trainer
from opencharacter.types import Checkpoint
from opencharacter_openai.errors import backend_error
from opencharacter_openai.sampler import Endpoint, OpenAISampler

Server = Literal["auto", "vllm", "sglang", "openai"]
#: Servers that take top-k and a repetition penalty as extra request fields.
_EXTENDED = frozenset({"vllm", "sglang"})
_positive = v.gt(0.0)
_price = v.optional(v.ge(0.0))


@attrs.define(kw_only=True)
class OpenAIBackend:
    """Options of the ``openai`` backend.

    Attributes:
        base_url: the server's address, ending in ``/v1``; default ``OPENAI_BASE_URL``, else
            OpenAI's own.
        api_key_env: the environment variable holding the API key (servers without keys,
            such as a plain ``vllm serve``, accept any).
        model: the model's name on the server, when it differs from the run's name for it
            (``vllm serve --served-model-name``); default: the run's name.
        extra_body: fields added to every request (JSON on the command line), e.g. vLLM's
            ``{"min_p": 0.05, "chat_template_kwargs": {"enable_thinking": false}}``.
        server: ``"auto"`` asks ``/v1/models``; ``"vllm"``, ``"sglang"`` or ``"openai"`` say.
        n_samples: K samples go as one request's ``n`` (vLLM, SGLang, OpenAI); ``false``
            sends K requests with seeds ``seed + k`` for servers without ``n``.
        max_concurrency: requests in flight at once.
        request_timeout: seconds one request may take, each retry afresh.
        connect_timeout: seconds the start-up check may take.
        max_retries: the client's retries of 429 (honouring ``Retry-After``), 5xx, timeouts
            and dropped connections, before a failure reaches the run's own retries.
        price_prompt: US dollars per million prompt tokens, for the manifest's cost.
        price_completion: US dollars per million generated tokens.
        price_cached_prompt: US dollars per million prompt tokens served from the prefix
            cache; default: ``price_prompt``.
    """

    base_url: str | None = None
    api_key_env: str = attrs.field(default="OPENAI_API_KEY", validator=v.min_len(1))
    model: str | None = None
    extra_body: Mapping[str, Any] = attrs.field(factory=dict)
    server: Server = attrs.field(default="auto",
                                 validator=v.in_(("auto", "vllm", "sglang", "openai")))  # fmt: skip
    n_samples: bool = True
    max_concurrency: int = attrs.field(default=64, validator=v.ge(1))
    request_timeout: float = attrs.field(default=600.0, converter=float, validator=_positive)
    connect_timeout: float = attrs.field(default=15.0, converter=float, validator=_positive)
    max_retries: int = attrs.field(default=2, validator=v.ge(0))
    price_prompt: float | None = attrs.field(default=None, validator=_price)
    price_completion: float | None = attrs.field(default=None, validator=_price)
    price_cached_prompt: float | None = attrs.field(default=None, validator=_price)
    _found: str | None = attrs.field(default=None, init=False)

    name = "openai"

    @property
    def address(self) -> str:
        """The server's address as requests use it."""
        return (self.base_url or os.environ.get("OPENAI_BASE_URL")
                or "https://api.openai.com/v1")  # fmt: skip

    @property
    def kind(self) -> str:
        """The server's kind: the option's, else what ``/v1/models`` said, else ``openai``."""
        return self.server if self.server != "auto" else self._found or "openai"

    @property
    def capabilities(self) -> Capabilities:
        """Sampling only; top-k and the repetition penalty where the server takes them."""
        extended = self.kind in _EXTENDED
        return Capabilities(
            training=False,
            remote=True,
            top_k=extended,
            repetition_penalty=extended,
            retries=self.max_retries > 0,
            max_concurrency=self.max_concurrency,
        )

    def check_models(self, *, sample: Sequence[str] = (), train: Sequence[str] = ()) -> None:
        """Ask the server, within ``connect_timeout``, for its models and who it is.

        Raises:
            ConfigError: a model to train (this backend only samples), or one not served
                (the message lists those that are).
            PermanentBackendError: the server cannot be reached or refuses the key.
        """
        if train:
            msg = "the openai backend only samples; train with another backend (--backend)"
            raise ConfigError(msg)
        client = openai.OpenAI(base_url=self.address, api_key=self._api_key(),
                               timeout=self.connect_timeout, max_retries=0)  # fmt: skip
        try:
            listed = list(client.models.list())
        except openai.OpenAIError as exc:
            failure = backend_error(exc, server=self.address, request_id=None,
                                    key_env=self.api_key_env)  # fmt: skip
            msg = f"start-up check: {failure}"
            raise PermanentBackendError(msg) from exc
        finally:
            client.close()
        owners = {str(getattr(m, "owned_by", "")).lower() for m in listed}
        self._found = next((kind for kind in sorted(_EXTENDED) if kind in owners), None)
        served = {m.id for m in listed}
        for model in sample:
            name = self._served(model)
            if name not in served:
                msg = (
                    f"the server at {self.address} does not serve {name!r}; it serves: "
                    f"{', '.join(sorted(served)) or 'nothing'} (name the served model with "
                    "--teacher, or map it with the model option)"
                )
                raise ConfigError(msg)

    def teacher(self, model: str) -> OpenAISampler:
        """Return a teacher (or judge) sampling ``model`` on the server."""
        endpoint = Endpoint(
            make_client=self._client,
            server=self.address,
            served=self._served(model),
            extra_body=dict(self.extra_body),
            n_samples=self.n_samples,
            max_concurrency=self.max_concurrency,
        )
        return OpenAISampler(model, endpoint, errors=self._error)

    def student(self, model: str, checkpoint: Checkpoint | None = None) -> OpenAISampler:
        """Return ``model`` as served, to sample (at its base weights only)."""
        return self.teacher(model).at(checkpoint)

    def trainer(self) -> Trainer:
        """Refuse: a server of this kind only samples.

        Raises:
            ConfigError: always.
        """
        msg = "the openai backend only samples; train with --backend local or --backend tinker"
        raise ConfigError(msg)

    def _served(self, model: str) -> str:
        return self.model or model

    def _api_key(self) -> str:
        # A server without keys (a plain `vllm serve`) takes any; the client needs one.
        return os.environ.get(self.api_key_env) or "EMPTY"

    def _client(self) -> AsyncOpenAI:
        return AsyncOpenAI(base_url=self.address, api_key=self._api_key(),
                           timeout=self.request_timeout, max_retries=self.max_retries)  # fmt: skip

    def _error(self, exc: openai.OpenAIError, *, request_id: str | None) -> OpenCharacterError:
        return backend_error(exc, server=self.address, request_id=request_id,
                             key_env=self.api_key_env)  # fmt: skip


__all__ = ["OpenAIBackend"]
