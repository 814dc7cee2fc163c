"""Chat with a run's trained model, or with its base and trained models side by side.

A :class:`ChatSession` reads a run directory without locking it, so a person can talk to the
DPO model while the same run is still training SFT, or long after it finished. It needs only
the protocols (a backend, a student, :meth:`~opencharacter.protocols.Student.at`), so it
works on every backend: simulated, local and Tinker alike.

The conversation carries no system prompt: the point of character training is that the
persona comes out unprompted. Each model keeps its own history (in a comparison, base and
trained each see their own earlier answers, not the other's), and every exchange is appended
to ``RUN_DIR/chat/<session>.jsonl`` the moment it happens, so a transcript survives a crash.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs

from opencharacter.config import EXTERNAL_CHECKPOINT, RunConfig, resolve_config
from opencharacter.errors import ConfigError
from opencharacter.jsonl import JsonlWriter
from opencharacter.protocols import Backend, Student
from opencharacter.redact import redact_text, secret_values
from opencharacter.registry import load_backend
from opencharacter.runstore import read_manifest
from opencharacter.stages._engine import Dispatcher, RetryPolicy
from opencharacter.types import (
    Checkpoint,
    Completion,
    GenerationRequest,
    Message,
    Purpose,
    SamplingParams,
    SamplingSettings,
    stable_id,
    to_dicts,
)

#: The stages one can chat with: the base weights, a trained checkpoint, or the model an
#: evaluation-only run evaluates (trained elsewhere).
CHAT_STAGES = ("base", "dpo", "sft", EXTERNAL_CHECKPOINT)
#: Trained models, latest first: the default is the first with a checkpoint.
_TRAINED = ("sft", "dpo", EXTERNAL_CHECKPOINT)
#: The folder of the transcripts, inside the run directory.
CHAT_DIR = "chat"
_SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def choose_stage(checkpoints: Mapping[str, Any], stage: str | None) -> str:
    """Return the stage to chat with: ``stage``, or by default the latest trained one.

    Args:
        checkpoints: the manifest's ``checkpoints`` section (stage name -> record).
        stage: ``"base"``, ``"dpo"``, ``"sft"``, ``"external"`` or ``None`` for the latest
            trained.

    Raises:
        ConfigError: ``stage`` is unknown or has no checkpoint, or (by default) nothing is
            trained yet; the message names the stages there are.

    Examples:
        >>> choose_stage({"dpo": {"uri": "x"}}, None)
        'dpo'
    """
    trained = [name for name in _TRAINED if checkpoints.get(name)]
    available = ", ".join(["base", *reversed(trained)])
    if stage is None:
        if not trained:
            msg = (
                "this run has no trained checkpoint yet (train it first: opencharacter train "
                "dpo RUN_DIR); chat with the untrained model with --stage base"
            )
            raise ConfigError(msg)
        return trained[0]
    if stage not in CHAT_STAGES:
        msg = f"unknown stage {stage!r}; choose one of {', '.join(CHAT_STAGES)}"
        raise ConfigError(msg)
    if stage != "base" and stage not in trained:
        msg = f"this run has no {stage} checkpoint; stages to chat with: {available}"
        raise ConfigError(msg)
    return stage


def new_session_id() -> str:
    """Return a session id from the time now (UTC), sortable and safe as a file name."""
    return datetime.now(UTC).strftime("%Y%m%d-%H%M%S-%f")


def _saved_config(manifest: Mapping[str, Any], run_dir: Path) -> RunConfig:
    saved = manifest.get("config")
    if not saved:
        msg = f"{run_dir}: the manifest has no configuration, so there is no model to chat with"
        raise ConfigError(msg)
    config, _ = resolve_config(flags=saved, environ={})  # the run's own settings, not today's
    return config


def _retry(config: RunConfig, backend: Backend) -> RetryPolicy:
    """The run's retry policy; a backend that retries itself gets one more try at most."""
    attempts = min(config.max_attempts, 2) if backend.capabilities.retries else config.max_attempts
    return RetryPolicy(
        max_attempts=attempts, base_delay=config.retry_base_delay, max_delay=config.retry_max_delay
    )


class ChatSession(contextlib.AbstractContextManager["ChatSession"]):
    """A conversation with one run's models, each keeping its own history.

    Build one with :meth:`open` and close it (or use it as a context manager)::

        with ChatSession.open("runs/sarcasm", compare=True) as chat:
            chat.say("Hello")  # {"base": "...", "sft": "..."}

    Attributes:
        run_dir: the run directory.
        session_id: names the transcript, ``RUN_DIR/chat/<session_id>.jsonl``.
        config: the run's configuration, as the manifest recorded it.
        backend: the student's backend.
        models: the students, by label (``"base"``, ``"dpo"``, ``"sft"``), base first.
        histories: each model's conversation so far (user and assistant turns).
        turn: exchanges so far in this session (a reset does not rewind it, so seeds and
            request ids stay unique within the session).
    """

    def __init__(
        self,
        *,
        run_dir: Path,
        session_id: str,
        config: RunConfig,
        backend: Backend,
        models: Mapping[str, Student],
    ) -> None:
        self.run_dir = run_dir
        self.session_id = session_id
        self.config = config
        self.backend = backend
        self.models = dict(models)
        self.histories: dict[str, list[Message]] = {label: [] for label in self.models}
        self.turn = 0
        retry = _retry(config, backend)
        self._dispatchers = {
            label: Dispatcher(model, concurrency=1, retry=retry,
                              seed=int(stable_id(config.seed, "chat", label)[:8], 16))
            for label, model in self.models.items()
        }  # fmt: skip
        self._runner = asyncio.Runner()  # one loop for the session: clients may be bound to it
        self._writer: JsonlWriter | None = None

    @classmethod
    def open(
        cls,
        run_dir: str | os.PathLike[str],
        *,
        stage: str | None = None,
        compare: bool = False,
        session_id: str | None = None,
    ) -> ChatSession:
        """Load a run's student at ``stage`` (and its base weights beside it, if ``compare``).

        Nothing is locked: the manifest is read as it stands (see
        :func:`~opencharacter.runstore.read_manifest`).

        Args:
            run_dir: the run directory.
            stage: see :func:`choose_stage`; default the latest trained stage.
            compare: answer each message with the base model too.
            session_id: names the transcript; default: the time now (:func:`new_session_id`).

        Raises:
            DataError: ``run_dir`` is not a run directory.
            ConfigError: the stage has no checkpoint, ``compare`` with ``stage="base"``, or the
                backend cannot load (a missing plugin, a checkpoint of another backend).
        """
        path = Path(run_dir).absolute()
        manifest = read_manifest(path)
        config = _saved_config(manifest, path)
        checkpoints = manifest.get("checkpoints") or {}
        chosen = choose_stage(checkpoints, stage)
        if compare and chosen == "base":
            msg = "--compare puts the base model beside a trained one; choose --stage dpo or sft"
            raise ConfigError(msg)
        session_id = session_id or new_session_id()
        if not _SAFE_ID.match(session_id):
            msg = f"session id {session_id!r} must be letters, digits, '.', '_' or '-'"
            raise ConfigError(msg)
        backend = load_backend(config.backend, config.backend_options)
        backend.check_models(sample=[config.student])
        student = backend.student(config.student)
        models: dict[str, Student] = {}
        if compare or chosen == "base":
            models["base"] = student.at(None)
        if chosen != "base":
            models[chosen] = student.at(Checkpoint.from_dict(checkpoints[chosen]))
        return cls(run_dir=path, session_id=session_id, config=config, backend=backend,
                   models=models)  # fmt: skip

    @property
    def transcript(self) -> Path:
        """The file this session's exchanges are appended to."""
        return self.run_dir / CHAT_DIR / f"{self.session_id}.jsonl"

    def params(self, turn: int) -> SamplingParams:
        """Return the run's sampling settings for turn ``turn``, seeded from the run and turn.

        Base and trained models share the seed of a turn, so a comparison differs by the
        weights, not by the dice. Answers are as long as the run's answers could be.
        """
        sampling = self.config.sampling
        shared = {f.name: getattr(sampling, f.name) for f in attrs.fields(SamplingSettings)}
        seed = int(stable_id(self.config.seed, "chat", self.session_id, turn)[:8], 16)
        return SamplingParams(max_tokens=sampling.answer_tokens, seed=seed, **shared)

    def say(self, text: str) -> dict[str, str]:
        """Send ``text`` after each model's history; return each model's answer by label.

        The exchange joins the histories and the transcript only once every model has
        answered, so a failed turn can simply be sent again.

        Raises:
            ConfigError: ``text`` is empty.
            BackendError: a model failed, after the run's retries for transient errors.
        """
        if not text.strip():
            msg = "say something: the message is empty"
            raise ConfigError(msg)
        turn = self.turn + 1
        params = self.params(turn)
        requests = {
            label: GenerationRequest(
                id=stable_id("chat", self.session_id, turn, label),
                messages=[*self.histories[label], Message("user", text)],
                params=params,
                purpose=Purpose.CHAT,
            )
            for label in self.models
        }
        completions = self._runner.run(self._complete(requests))
        self.turn = turn
        for label, completion in completions.items():
            self.histories[label] += [Message("user", text), Message("assistant", completion.text)]
        self._record(
            turn=turn,
            user=text,
            answers={label: c.text for label, c in completions.items()},
            finish_reasons={label: c.finish_reason for label, c in completions.items()},
            models={label: c.model for label, c in completions.items()},
            messages={label: to_dicts(r.messages) for label, r in requests.items()},
            usage={label: c.usage.to_dict() for label, c in completions.items()},
        )
        return {label: c.text for label, c in completions.items()}

    async def _complete(self, requests: Mapping[str, GenerationRequest]) -> dict[str, Completion]:
        labels = list(requests)
        done = await asyncio.gather(
            *(self._dispatchers[label].complete(requests[label]) for label in labels)
        )
        return dict(zip(labels, done, strict=True))

    def reset(self) -> None:
        """Forget every model's history; the transcript marks where it was cleared."""
        for history in self.histories.values():
            history.clear()
        self._record(turn=self.turn, event="reset")

    def _record(self, **fields: Any) -> None:
        if self._writer is None:
            secrets = secret_values()
            self._writer = JsonlWriter(
                self.transcript,
                fsync_interval=0.0,  # a person's words are few and worth keeping
                transform=lambda line: redact_text(line, secrets),
            )
        time = datetime.now(UTC).isoformat(timespec="milliseconds")
        self._writer.append({"session": self.session_id, "time": time, **fields})

    def close(self) -> None:
        """Close the transcript and the session's event loop."""
        if self._writer is not None:
            self._writer.close()
        self._runner.close()

    def __exit__(self, *exc_info: object) -> None:
        self.close()


__all__ = ["CHAT_DIR", "CHAT_STAGES", "ChatSession", "choose_stage", "new_session_id"]
