"""Checkpoints: the trained model states a backend makes, samples from and trains further.

A :class:`Checkpoint` records which backend made it, the base model, where its weights are and
the stage that produced it; run manifests store it as a dictionary.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal, TypeAlias

import attrs
from attrs import validators as v

from opencharacter._records import frozen_meta as _frozen_meta
from opencharacter._records import nonempty_text as _nonempty_text
from opencharacter.errors import ConfigError, DataError

#: The stage that produced a checkpoint; ``"external"``: a model trained elsewhere, recorded by
#: :func:`opencharacter.eval.evaluate_model` to be evaluated.
CheckpointKind: TypeAlias = Literal["dpo", "sft", "merged", "external"]


def _utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@attrs.frozen(kw_only=True)
class Checkpoint:
    """A trained model state a backend can sample from or train further.

    Only the backend that made a checkpoint can load it (:meth:`require_backend`); to move a
    model between backends, export it (a Tinker checkpoint downloads as a PEFT adapter folder
    that the local backend loads).

    Attributes:
        backend: the name of the backend that made it.
        base_model: the model the adapter applies to.
        uri: what a sampler loads: a local adapter (or full-weights) folder, or a remote
            sampler path (``tinker://<run>/sampler_weights/<name>``).
        kind: the stage that produced it (``"external"``: trained elsewhere).
        state_uri: the resumable training state (weights and optimiser), where the backend
            keeps it apart from ``uri`` (``tinker://<run>/weights/<name>``); training further
            starts from it. ``None`` when ``uri`` serves both.
        expires: ISO-8601 UTC time after which the service deletes the weights, if it does.
        parent: the ``uri`` of the checkpoint it was trained from, if any.
        created: ISO-8601 UTC time of creation.
        meta: backend details (step count, final metrics, whether weights exist).
    """

    backend: str = attrs.field(validator=_nonempty_text)
    base_model: str = attrs.field(validator=_nonempty_text)
    uri: str = attrs.field(validator=_nonempty_text)
    kind: CheckpointKind = attrs.field(validator=v.in_(("dpo", "sft", "merged", "external")))
    state_uri: str | None = attrs.field(default=None, validator=v.optional(_nonempty_text))
    expires: str | None = attrs.field(default=None, validator=v.optional(_nonempty_text))
    parent: str | None = attrs.field(default=None, validator=v.optional(_nonempty_text))
    created: str = attrs.field(factory=_utc_now, validator=_nonempty_text)
    meta: Mapping[str, Any] = attrs.field(factory=dict, converter=_frozen_meta)

    def require_backend(self, backend: str) -> None:
        """Fail at once, and clearly, when another backend than the maker tries to load this.

        Raises:
            ConfigError: ``backend`` is not the one that made the checkpoint.
        """
        if backend != self.backend:
            msg = (
                f"checkpoint {self.uri} was made by the {self.backend!r} backend and the "
                f"{backend!r} backend cannot load it; use the {self.backend!r} backend, or "
                "export it first (opencharacter export RUN_DIR OUT makes a PEFT adapter folder)"
            )
            raise ConfigError(msg)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dictionary, the form stored in run manifests."""
        return {**attrs.asdict(self, recurse=False), "meta": dict(self.meta)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Checkpoint:
        """Build a checkpoint from :meth:`to_dict` output."""
        try:
            return cls(**data)
        except (TypeError, ValueError) as exc:
            msg = f"not a checkpoint record: {exc}"
            raise DataError(msg) from exc
