"""The fake service's shared tables: sessions, served models, samplers, runs and checkpoints.

Every route group reads and writes these tables, so they live in one :class:`ServiceState`
behind one lock, with the lookups that turn a missing entry into the service's error answer.
The server's tunable knobs reach the routes through :class:`Settings`, read per request so a
test may change them on a running server.
"""

from __future__ import annotations

import collections
import dataclasses
import itertools
import re
import threading
import time
import uuid
from datetime import UTC, datetime
from typing import Any, Protocol

import numpy as np

from opencharacter_tinker.fake.lora import LoraSpec, LoraWeights
from opencharacter_tinker.fake.sequencer import Sequencer
from opencharacter_tinker.fake.served import ServedModel
from opencharacter_tinker.fake.trainer import Trainer, TrainingCheckpoint
from opencharacter_tinker.fake.transport import HTTPError

# The REST paths of a training run and of one of its checkpoints.
RUN_PATH = r"/api/v1/training_runs/(?P<run>[^/]+)"
CHECKPOINT_PATH = (
    RUN_PATH + r"/checkpoints/(?P<kind>weights|sampler_weights|external_weights)/(?P<name>[^/]+)"
)


class Settings(Protocol):
    """Protocol: the server's knobs that routes read while they serve."""

    @property
    def latency(self) -> float:
        """Seconds added to every operation before its future resolves."""

    @property
    def cycle(self) -> float:
        """Period of the training clock; 0 runs training operations at once."""

    @property
    def lora_alpha(self) -> float:
        """The fixed LoRA alpha of new runs."""

    @property
    def base_url(self) -> str:
        """Where the server listens, for the URLs it hands out."""


@dataclasses.dataclass
class Session:
    """A client session: created by the SDK, kept alive by heartbeats."""

    session_id: str
    finished: bool = False


@dataclasses.dataclass
class Checkpoint:
    """A saved checkpoint of a training run, addressed by its ``tinker://`` path."""

    path: str
    run_id: str
    kind: str  # "training" | "sampler" | "external"
    checkpoint_id: str  # e.g. "weights/step-3"
    base_model: str
    weights: LoraWeights
    optimizer: dict[str, Any] | None
    step: int
    created: datetime
    expires_at: float | None  # time.time() seconds; None never expires
    user_metadata: dict[str, str] | None
    files: dict[str, bytes] | None = None  # external weights: the PEFT folder

    @property
    def expired(self) -> bool:
        """Whether its TTL has run out (an expired checkpoint is not found)."""
        return self.expires_at is not None and self.expires_at < time.time()

    def state(self) -> TrainingCheckpoint:
        """What a training run restores from this checkpoint."""
        return TrainingCheckpoint(self.weights, self.optimizer, self.step)

    def listing(self) -> dict[str, Any]:
        """The checkpoint as ``list_checkpoints`` and ``get_training_run`` show it."""
        return {
            "checkpoint_id": self.checkpoint_id,
            "checkpoint_type": self.kind,
            "time": self.created.isoformat(),
            "tinker_path": self.path,
            "size_bytes": self.weights.nbytes(),
            "public": False,
            "user_metadata": self.user_metadata,
            "expires_at": iso(self.expires_at),
        }


@dataclasses.dataclass
class Sampler:
    """A sampling session: the base model, and the adapter it samples with if any."""

    sampler_id: str
    base_model: str
    model_path: str | None
    weights: LoraWeights | None
    error: str | None = None  # set when the path can be named but not sampled (training state)


@dataclasses.dataclass
class Run:
    """A training run: its trainer, its sequencer, and the requests it has accepted."""

    model_id: str
    session_id: str
    base_model: str
    spec: LoraSpec
    trainer: Trainer
    sequencer: Sequencer
    user_metadata: dict[str, Any] | None
    requests: dict[int, str] = dataclasses.field(default_factory=dict)  # seq_id -> request id
    last_request: float = dataclasses.field(default_factory=time.time)


class ServiceState:
    """The tables, their lock, the call counts, and the seeded draws the routes share.

    One re-entrant lock guards every table: a route that reads one table and writes another
    never has to order two locks.
    """

    def __init__(self, settings: Settings, seed: int) -> None:
        self.settings = settings
        self.lock = threading.RLock()
        self.stopping = threading.Event()
        self.epoch = time.monotonic()
        self.calls: collections.Counter[str] = collections.Counter()
        self.models: dict[str, ServedModel] = {}
        self.sessions: dict[str, Session] = {}
        self.samplers: dict[str, Sampler] = {}
        self.runs: dict[str, Run] = {}
        self.checkpoints: dict[str, Checkpoint] = {}
        self._ids = itertools.count(1)
        self._rng = np.random.default_rng(seed)

    def new_id(self, prefix: str) -> str:
        """A fresh id, unique within this server, e.g. ``req-7``."""
        return f"{prefix}-{next(self._ids)}"

    def count(self, kind: str) -> None:
        """Count one served operation of ``kind`` (see ``FakeTinkerServer.calls``)."""
        with self.lock:
            self.calls[kind] += 1

    def draw_seed(self) -> int:
        """A seed for a request that gives none, from the server's seeded generator."""
        with self.lock:
            return int(self._rng.integers(2**62))

    def new_session(self) -> Session:
        """Create and register a session with a seeded random id."""
        with self.lock:  # seeded, so that seeded failure injection hits the same requests
            session = Session(str(uuid.UUID(bytes=self._rng.bytes(16), version=4)))
            self.sessions[session.session_id] = session
        return session

    def session(self, session_id: str) -> Session:
        """The session with this id; 404 if there is none."""
        session = self.sessions.get(session_id)
        if session is None:
            raise HTTPError(404, f"Session not found: {session_id}")
        return session

    def model(self, name: str | None) -> ServedModel:
        """The served model of this name; 400 listing the served ones otherwise."""
        if name is not None and name in self.models:
            return self.models[name]
        available = ", ".join(sorted(self.models))
        raise HTTPError(
            400, f"Model {name!r} is not supported by this server (available: {available})"
        )

    def run(self, model_id: str | None) -> Run:
        """The training run with this id; 404 if there is none."""
        with self.lock:
            run = self.runs.get(model_id or "")
        if run is None:
            raise HTTPError(404, f"Training run not found: {model_id}")
        return run

    def checkpoint(self, path: str) -> Checkpoint:
        """The unexpired checkpoint at this ``tinker://`` path; 404 otherwise."""
        with self.lock:
            checkpoint = self.checkpoints.get(path)
        if checkpoint is None or checkpoint.expired:
            raise HTTPError(404, f"Checkpoint not found: {path}")
        return checkpoint

    def checkpoint_at(self, match: re.Match[str]) -> Checkpoint:
        """The checkpoint a :data:`CHECKPOINT_PATH` route names."""
        groups = match.groupdict()
        return self.checkpoint(f"tinker://{groups['run']}/{groups['kind']}/{groups['name']}")

    def run_checkpoints(self, run_id: str) -> list[Checkpoint]:
        """A run's unexpired checkpoints, oldest first."""
        with self.lock:
            found = [c for c in self.checkpoints.values() if c.run_id == run_id]
        return sorted((c for c in found if not c.expired), key=lambda c: c.created)


def iso(timestamp: float | None) -> str | None:
    """ISO 8601 in UTC of a ``time.time()`` timestamp; None stays None."""
    return None if timestamp is None else datetime.fromtimestamp(timestamp, UTC).isoformat()
