"""Training metrics: TRL's logged steps reported to the pipeline as backend-neutral metrics.

The pipeline draws progress and writes ``metrics.jsonl`` from
:class:`~opencharacter.protocols.StepMetrics`; TRL logs its own key names through a
transformers callback. :class:`StepReporter` translates one into the other.
"""

from __future__ import annotations

from typing import Any

from transformers import TrainerCallback

from opencharacter.protocols import StepCallback, StepMetrics
from opencharacter_local.dpo import METRIC as KL_METRIC

# TRL's log keys and the backend-neutral names StepMetrics uses (as the simulated backend).
_METRICS = {
    "loss": "loss",
    "learning_rate": "lr",
    "grad_norm": "grad_norm",
    "rewards/accuracies": "accuracy",
    "rewards/margins": "margin",
    KL_METRIC: "kl",
}


class StepReporter(TrainerCallback):
    """Forwards each logged optimiser step to ``on_step``."""

    def __init__(self, stage: str, on_step: StepCallback) -> None:
        self._stage = stage
        self._on_step = on_step

    def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kwargs: Any) -> None:
        """Report a step's metrics; the end-of-training summary (no ``loss``) is skipped."""
        if not logs or "loss" not in logs:
            return
        metrics = {ours: float(logs[theirs]) for theirs, ours in _METRICS.items() if theirs in logs}
        self._on_step(
            StepMetrics(
                stage=self._stage,
                step=state.global_step,
                total_steps=state.max_steps,
                metrics=metrics,
            )
        )
