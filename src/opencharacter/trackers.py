"""Experiment trackers: a run's numbers, as they happen, in Weights & Biases, MLflow or Trackio.

``--report-to wandb,mlflow,trackio`` (the ``report_to`` setting) sends every training step's
metrics (loss, accuracy, margin, tokens: what goes to ``metrics.jsonl``) and every stage's
summary (time, tokens, cost, the evaluation's headline numbers) to each named tracker, on any
backend, since the numbers come from the stages rather than from a trainer. The run's settings
go as the tracker run's configuration. Each tracker is configured as its own documentation says
(``WANDB_API_KEY`` or ``WANDB_MODE=offline``, ``WANDB_DIR``; ``MLFLOW_TRACKING_URI``;
``TRACKIO_DIR``), and writes its files where that says, never into the run directory; the
tracker runs are named after the run directory. Each session of a run (a resume, a later
``opencharacter eval``) is a tracker run of its own.

Trackers are optional packages, imported only when named; a run naming one that is not
installed fails before anything is made.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from opencharacter.errors import ConfigError, MissingDependencyError

#: The trackers ``report_to`` may name, each with the module it needs.
TRACKERS: Mapping[str, str] = {"wandb": "wandb", "mlflow": "mlflow", "trackio": "trackio"}
#: The project (W&B project, MLflow experiment, Trackio project) runs are filed under.
PROJECT = "opencharacter"


class Tracker(Protocol):
    """Protocol: one experiment tracker's run."""

    def log(self, values: Mapping[str, float], step: int) -> None:
        """Record numbers at a step."""
        ...

    def summary(self, values: Mapping[str, float]) -> None:
        """Record numbers that describe the whole run."""
        ...

    def finish(self) -> None:
        """Close the tracker's run."""
        ...


def require(names: Iterable[str]) -> None:
    """Fail, naming the install, when a named tracker's package is missing.

    Raises:
        MissingDependencyError: a tracker is not installed.
    """
    for name in names:
        if importlib.util.find_spec(TRACKERS[name]) is None:
            msg = f"--report-to {name} needs the {name} package: pip install {TRACKERS[name]}"
            raise MissingDependencyError(msg)


class Trackers:
    """The trackers of one session of a run; steps number on across its stages."""

    def __init__(self, trackers: Sequence[Tracker] = ()) -> None:
        self._trackers = list(trackers)
        self._step = 0

    @classmethod
    def open(cls, names: Sequence[str], run_dir: Path, config: Mapping[str, Any]) -> Trackers:
        """Start a run in each named tracker, named after ``run_dir``, holding ``config``.

        Raises:
            MissingDependencyError: a tracker is not installed.
            ConfigError: a tracker refused to start (its message says why).
        """
        require(names)
        opened = cls()
        for name in names:
            try:
                opened._trackers.append(_OPENERS[name](Path(run_dir), dict(config)))
            except Exception as exc:
                opened.finish()
                msg = f"--report-to {name}: the tracker did not start ({exc})"
                raise ConfigError(msg) from exc
        return opened

    def step(self, stage: str, values: Mapping[str, Any]) -> None:
        """Record one training step's numbers under ``stage/``."""
        if self._trackers:
            self._step += 1
            for tracker in self._trackers:
                tracker.log(_numbers(values, f"{stage}/"), self._step)

    def stage_done(self, stage: str, values: Mapping[str, Any]) -> None:
        """Record a finished stage's numbers as ``stage/...`` summary values."""
        for tracker in self._trackers:
            tracker.summary(_numbers(values, f"{stage}/"))

    def finish(self) -> None:
        """Close every tracker's run."""
        for tracker in self._trackers:
            tracker.finish()
        self._trackers.clear()


def _numbers(values: Mapping[str, Any], prefix: str) -> dict[str, float]:
    """Return the numeric values, nested tables flattened (``usage.prompt_tokens``)."""
    out: dict[str, float] = {}
    for key, value in values.items():
        if isinstance(value, Mapping):
            out.update(_numbers(value, f"{prefix}{key}."))
        elif isinstance(value, int | float) and not isinstance(value, bool):
            out[f"{prefix}{key}"] = float(value)
    return out


def _flat(config: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Return nested settings as ``dpo.lora.rank``-style strings (MLflow takes flat params)."""
    out: dict[str, str] = {}
    for key, value in config.items():
        if isinstance(value, Mapping):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = str(value)[:500]
    return out


class _Wandb:
    def __init__(self, run_dir: Path, config: dict[str, Any]) -> None:
        import wandb  # noqa: PLC0415 - optional

        # Its files go where WANDB_DIR says, never into the run directory.
        self._run = wandb.init(project=PROJECT, name=run_dir.name, config=config)

    def log(self, values: Mapping[str, float], step: int) -> None:
        self._run.log(dict(values), step=step)

    def summary(self, values: Mapping[str, float]) -> None:
        self._run.summary.update(dict(values))

    def finish(self) -> None:
        self._run.finish()


class _Mlflow:
    def __init__(self, run_dir: Path, config: dict[str, Any]) -> None:
        import mlflow  # noqa: PLC0415 - optional

        self._mlflow = mlflow
        mlflow.set_experiment(PROJECT)
        mlflow.start_run(run_name=run_dir.name, tags={"opencharacter.run_dir": str(run_dir)})
        mlflow.log_params(_flat(config))

    def log(self, values: Mapping[str, float], step: int) -> None:
        self._mlflow.log_metrics(dict(values), step=step)

    def summary(self, values: Mapping[str, float]) -> None:
        self._mlflow.log_metrics(dict(values))

    def finish(self) -> None:
        self._mlflow.end_run()


class _Trackio:
    def __init__(self, run_dir: Path, config: dict[str, Any]) -> None:
        import trackio  # noqa: PLC0415 - optional

        self._trackio = trackio
        self._run = trackio.init(project=PROJECT, name=run_dir.name, config=config)

    def log(self, values: Mapping[str, float], step: int) -> None:
        self._trackio.log(dict(values), step=step)

    def summary(self, values: Mapping[str, float]) -> None:
        self._trackio.log(dict(values))

    def finish(self) -> None:
        self._trackio.finish()  # type: ignore[no-untyped-call]  # trackio leaves it unannotated


_OPENERS: Mapping[str, Callable[[Path, dict[str, Any]], Tracker]] = {
    "wandb": _Wandb, "mlflow": _Mlflow, "trackio": _Trackio}  # fmt: skip

__all__ = ["PROJECT", "TRACKERS", "Tracker", "Trackers", "require"]
