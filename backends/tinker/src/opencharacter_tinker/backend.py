"""The Tinker backend: teachers, students and training on Thinking Machines' service.

Options (``-o key=value``; ``--teacher-option`` for a teacher of its own) are the fields of
:class:`TinkerBackend`. Credentials come from the environment (``TINKER_API_KEY`` or the
SDK's other sources) and never from options, so they never reach a run's manifest.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import attrs
from attrs import validators as v
from transformers import AutoTokenizer, PreTrainedTokenizerBase

from opencharacter.errors import ConfigError
from opencharacter.protocols import Capabilities
from opencharacter.types import Checkpoint
from opencharacter_tinker.connection import Connection
from opencharacter_tinker.renderers import Renderer, get_renderer
from opencharacter_tinker.sampling import TinkerSampler
from opencharacter_tinker.trainer import TinkerTrainer

_positive = v.gt(0.0)


@attrs.define(kw_only=True)
class TinkerBackend:
    """Options of the ``tinker`` backend.

    Attributes:
        base_url: the service's address; default ``TINKER_BASE_URL`` or the SDK's.
        renderer: the chat format, overriding the one chosen from the model name (see
            :func:`opencharacter_tinker.renderers.renderer_names`).
        tokenizer: a local folder or Hub name to load the tokenizer from, instead of the
            model's own name (for models whose tokenizer lives elsewhere, or offline).
        max_concurrency: requests in flight at once; the SDK dispatches about 400 per
            process before queueing its own.
        connect_timeout: seconds for the first contact and each client's creation; an
            unreachable service is reported after this, not after the SDK's 5 minutes.
        request_timeout: seconds one sampling request may take, the SDK's retries included.
        step_timeout: seconds any one training request may take (model creation included,
            which can wait in the service's queue).
        save_every: optimiser steps between saved training states (resume points).
        ttl_days: days the final checkpoints are kept on the service; ``None`` keeps them.
    """

    base_url: str | None = None
    renderer: str | None = None
    tokenizer: str | None = None
    max_concurrency: int = attrs.field(default=256, validator=v.ge(1))
    connect_timeout: float = attrs.field(default=30.0, converter=float, validator=_positive)
    request_timeout: float = attrs.field(default=900.0, converter=float, validator=_positive)
    step_timeout: float = attrs.field(default=1800.0, converter=float, validator=_positive)
    save_every: int = attrs.field(default=20, validator=v.ge(1))
    ttl_days: float | None = attrs.field(default=None, validator=v.optional(_positive))
    _connection: Connection = attrs.field(init=False)

    name = "tinker"

    def __attrs_post_init__(self) -> None:
        self._connection = Connection(base_url=self.base_url,
                                      connect_timeout=self.connect_timeout)  # fmt: skip

    @property
    def capabilities(self) -> Capabilities:
        """Remote and priced; no repetition penalty, fixed LoRA scaling, no stacked SFT."""
        return Capabilities(
            remote=True,
            repetition_penalty=False,
            lora_alpha=False,
            stack_sft=False,
            retries=True,
            max_concurrency=self.max_concurrency,
        )

    def check_models(self, *, sample: Sequence[str] = (), train: Sequence[str] = ()) -> None:
        """Ask the service, within ``connect_timeout``, that every model is served for its part.

        Raises:
            ConfigError: no credentials, or a model not served (the message lists the offer).
            PermanentBackendError: the service is unreachable or refuses the key.
        """
        from opencharacter_tinker import credentials_problems  # noqa: PLC0415 - no cycle

        problems = credentials_problems()
        if problems:
            raise ConfigError(problems[0])
        self._connection.check(sample=list(sample), train=list(train))
        for model in {*sample, *train}:
            self.chat_format(model)  # a missing tokenizer or format fails now, not mid-run

    def teacher(self, model: str) -> TinkerSampler:
        """Return a teacher sampling ``model``."""
        return self._sampler(model)

    def student(self, model: str, checkpoint: Checkpoint | None = None) -> TinkerSampler:
        """Return a student of ``model``, at ``checkpoint`` (a Tinker sampler path) if given."""
        return self._sampler(model).at(checkpoint)

    def trainer(self) -> TinkerTrainer:
        """Return the trainer; it shares this backend's session and renderers."""
        return TinkerTrainer(
            self._connection,
            self.chat_format,
            save_every=self.save_every,
            ttl_seconds=None if self.ttl_days is None else round(self.ttl_days * 86400),
            step_timeout=self.step_timeout,
            window=self.max_concurrency,
        )

    def chat_format(self, model: str) -> Renderer:
        """Return the renderer of ``model`` (its tokenizer loaded once per backend)."""
        return _renderer(model, self.tokenizer, self.renderer)

    def _sampler(self, model: str) -> TinkerSampler:
        return TinkerSampler(
            self._connection,
            model,
            self.chat_format(model),
            request_timeout=self.request_timeout,
        )


@functools.cache
def _renderer(model: str, tokenizer: str | None, name: str | None) -> Renderer:
    return get_renderer(model, _tokenizer(tokenizer or model), name)


def _tokenizer(source: str) -> PreTrainedTokenizerBase:
    try:
        return AutoTokenizer.from_pretrained(source)
    except (OSError, ValueError) as exc:
        msg = (
            f"cannot load the tokenizer of {source!r} ({exc}); pass -o tokenizer=FOLDER with a "
            "local copy, or log in to the Hugging Face Hub"
        )
        raise ConfigError(msg) from exc
