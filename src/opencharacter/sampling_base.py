"""What every backend's sampler knows of its weights: a base model, at a checkpoint or not.

Teachers and students of every backend answer ``model``, ``base_model`` and ``checkpoint``
alike (the :class:`~opencharacter.protocols.Student` protocol); they inherit them from here.
"""

from __future__ import annotations

from opencharacter.types import Checkpoint


class SamplerWeights:
    """The weights a sampler samples: ``base_model``, at ``checkpoint`` when one is given."""

    def __init__(self, model: str, checkpoint: Checkpoint | None = None) -> None:
        self._base_model = model
        self._checkpoint = checkpoint

    @property
    def model(self) -> str:
        """The checkpoint's uri when sampling a checkpoint, else the model name."""
        return self._checkpoint.uri if self._checkpoint else self._base_model

    @property
    def base_model(self) -> str:
        """The model name the sampler was made for; checkpoints apply to it."""
        return self._base_model

    @property
    def checkpoint(self) -> Checkpoint | None:
        """The checkpoint sampled from, if any."""
        return self._checkpoint
