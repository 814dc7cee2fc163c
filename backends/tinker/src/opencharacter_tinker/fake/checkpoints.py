"""Checkpoint routes: saving and loading weights, listing and expiring checkpoints.

A training run saves three kinds of checkpoint, each under its own directory of its
``tinker://`` path: training state (``weights/``: LoRA weights, Adam state and step, what
``save_state`` and ``load_state`` move), sampler weights (``sampler_weights/``) and external
weights (``external_weights/``: a PEFT folder to download). Saves and in-run loads are operations
in the run's ``seq_id`` order, queued through :class:`~opencharacter_tinker.fake.training.
TrainingRoutes`; downloads are :mod:`opencharacter_tinker.fake.downloads`'.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from opencharacter_tinker.fake.futures import Futures, OperationError
from opencharacter_tinker.fake.lora import LoraSpec
from opencharacter_tinker.fake.state import (
    CHECKPOINT_PATH,
    RUN_PATH,
    Checkpoint,
    Run,
    Sampler,
    ServiceState,
)
from opencharacter_tinker.fake.trainer import TrainingCheckpoint
from opencharacter_tinker.fake.training import TrainingRoutes
from opencharacter_tinker.fake.transport import HTTPError, Request, Response, Route

_MIN_TTL, _MAX_TTL = 3600, 10 * 365 * 24 * 3600
# Checkpoint directory in a tinker:// path -> checkpoint kind.
_CHECKPOINT_DIRS = {
    "weights": "training",
    "sampler_weights": "sampler",
    "external_weights": "external",
}


class CheckpointRoutes:
    """Routes that save, load, list, describe, expire and delete checkpoints."""

    def __init__(self, state: ServiceState, futures: Futures, training: TrainingRoutes) -> None:
        self._state = state
        self._futures = futures
        self._training = training

    def routes(self) -> list[Route]:
        """(method, path pattern, endpoint) for each route this group serves."""
        return [
            ("POST", "/api/v1/save_weights", self._save_weights),
            ("POST", "/api/v1/save_weights_for_sampler", self._save_weights_for_sampler),
            ("POST", "/api/v1/save_weights_external", self._save_weights_external),
            ("POST", "/api/v1/load_weights", self._load_weights),
            ("POST", "/api/v1/weights_info", self._weights_info),
            ("GET", RUN_PATH, self._get_training_run),
            ("GET", f"{RUN_PATH}/checkpoints", self._list_checkpoints),
            ("DELETE", CHECKPOINT_PATH, self._delete_checkpoint),
            ("PUT", f"{CHECKPOINT_PATH}/ttl", self._set_ttl),
        ]

    # -- saving -------------------------------------------------------------------------------

    def _store(
        self,
        run: Run,
        kind: str,
        name: str,
        state: TrainingCheckpoint,
        *,
        expires_at: float | None,
        overwrite: bool,
        user_metadata: dict[str, str] | None,
        files: dict[str, bytes] | None = None,
    ) -> Checkpoint:
        directory = {v: k for k, v in _CHECKPOINT_DIRS.items()}[kind]
        path = f"tinker://{run.model_id}/{directory}/{name}"
        checkpoint = Checkpoint(
            path=path,
            run_id=run.model_id,
            kind=kind,
            checkpoint_id=f"{directory}/{name}",
            base_model=run.base_model,
            weights=state.weights,
            optimizer=state.optimizer if kind == "training" else None,
            step=state.step,
            created=datetime.now(UTC),
            expires_at=expires_at,
            user_metadata=user_metadata,
            files=files,
        )
        with self._state.lock:
            existing = self._state.checkpoints.get(path)
            if existing is not None and not existing.expired and not overwrite:
                msg = f"Checkpoint {path} already exists; pass overwrite=True to replace it"
                raise OperationError(msg)
            self._state.checkpoints[path] = checkpoint
        return checkpoint

    def _save_weights(self, request: Request) -> Response:
        body = request.json()
        run = self._state.run(body.get("model_id"))
        name = _checkpoint_name(body.get("path"))
        expires_at = _expiry(body)

        def work() -> dict[str, Any]:
            checkpoint = self._store(
                run,
                "training",
                name,
                run.trainer.checkpoint(),
                expires_at=expires_at,
                overwrite=bool(body.get("overwrite")),
                user_metadata=body.get("user_metadata"),
            )
            return {"path": checkpoint.path, "type": "save_weights"}

        return self._training.enqueue(run, body.get("seq_id"), "save_weights", work)

    def _save_weights_for_sampler(self, request: Request) -> Response:
        body = request.json()
        run = self._state.run(body.get("model_id"))
        expires_at = _expiry(body)
        name = body.get("path")
        if name is None and body.get("sampling_session_seq_id") is None:
            raise HTTPError(400, "save_weights_for_sampler needs a path or sampling_session_seq_id")

        def work() -> dict[str, Any]:
            state = run.trainer.checkpoint()
            if name is None:  # save_weights_and_get_sampling_client: ephemeral, no path
                sampler_id = f"{run.session_id}:sample:{body['sampling_session_seq_id']}"
                sampler = Sampler(sampler_id, run.base_model, None, state.weights)
                with self._state.lock:
                    self._state.samplers[sampler_id] = sampler
                return {
                    "path": None,
                    "sampling_session_id": sampler_id,
                    "type": "save_weights_for_sampler",
                }
            checkpoint = self._store(
                run,
                "sampler",
                _checkpoint_name(name),
                state,
                expires_at=expires_at,
                overwrite=True,
                user_metadata=body.get("user_metadata"),
            )
            return {"path": checkpoint.path, "type": "save_weights_for_sampler"}

        return self._training.enqueue(run, body.get("seq_id"), "save_weights_for_sampler", work)

    def _save_weights_external(self, request: Request) -> Response:
        body = request.json()
        run = self._state.run(body.get("model_id"))
        name = _checkpoint_name(body.get("path"))
        expires_at = _expiry(body)
        if body.get("age_encryption_recipients"):
            raise HTTPError(400, "age encryption is not implemented by the fake Tinker server")
        folder = self._state.models[run.base_model].folder

        def work() -> dict[str, Any]:
            state = run.trainer.checkpoint()
            files = state.weights.peft_files(folder)
            checkpoint = self._store(
                run,
                "external",
                name,
                state,
                expires_at=expires_at,
                overwrite=True,
                user_metadata=None,
                files=files,
            )
            size = sum(len(data) for data in files.values())
            return {"path": checkpoint.path, "size_bytes": size, "type": "save_weights_external"}

        return self._training.enqueue(run, body.get("seq_id"), "save_weights_external", work)

    # -- loading ------------------------------------------------------------------------------

    def _load_weights(self, request: Request) -> Response:
        body = request.json()
        path = body.get("path", "")
        optimizer = bool(body.get("optimizer"))
        if body.get("model_id"):  # legacy TrainingClient.load_state*: an operation in sequence
            run = self._state.run(body["model_id"])
            checkpoint = self._training_checkpoint(path, run.spec)

            def load() -> dict[str, Any]:
                run.trainer.restore(checkpoint.state(), optimizer=optimizer)
                return {"path": path, "model_id": run.model_id, "type": "load_weights"}

            return self._training.enqueue(run, body.get("seq_id"), "load_weights", load)
        session_id = self._state.session(body.get("session_id", "")).session_id
        checkpoint = self._training_checkpoint(path, None)
        model = self._state.model(checkpoint.base_model)
        model_id = self._training.new_model_id(session_id, body)
        promise = self._futures.new()
        self._state.count("load_weights")

        def create() -> dict[str, Any]:
            run = self._training.new_run(
                model_id=model_id,
                session_id=session_id,
                model=model,
                spec=checkpoint.weights.spec,
                seed=0,
                body=body,
            )
            run.trainer.restore(checkpoint.state(), optimizer=optimizer)
            return {"path": path, "model_id": model_id, "type": "load_weights"}

        self._futures.settle(promise, create)
        return Response.json({"request_id": promise.request_id, "model_id": model_id})

    def _training_checkpoint(self, path: str, spec: LoraSpec | None) -> Checkpoint:
        checkpoint = self._state.checkpoint(path)
        if checkpoint.kind != "training":
            kind = checkpoint.kind
            msg = f"{path} is a {kind} checkpoint; training state is saved with save_state()"
            raise HTTPError(400, msg)
        if spec is not None and checkpoint.weights.spec != spec:
            raise HTTPError(400, f"{path} has a different LoRA configuration than this model")
        return checkpoint

    # -- describing and expiring --------------------------------------------------------------

    def _weights_info(self, request: Request) -> Response:
        checkpoint = self._state.checkpoint(request.json().get("tinker_path", ""))
        spec = checkpoint.weights.spec
        return Response.json(
            {
                "base_model": checkpoint.base_model,
                "is_lora": True,
                "lora_rank": spec.rank,
                "train_unembed": spec.train_unembed,
                "train_mlp": spec.train_mlp,
                "train_attn": spec.train_attn,
            }
        )

    def _get_training_run(self, request: Request) -> Response:
        run = self._state.run(request.match["run"])
        checkpoints = self._state.run_checkpoints(run.model_id)
        last: dict[str, Any] = dict.fromkeys(("training", "sampler"))
        for checkpoint in checkpoints:
            if checkpoint.kind in last:
                last[checkpoint.kind] = checkpoint.listing()
        return Response.json(
            {
                "training_run_id": run.model_id,
                "base_model": run.base_model,
                "model_owner": "fake-user",
                "is_lora": True,
                "corrupted": False,
                "lora_rank": run.spec.rank,
                "last_request_time": datetime.fromtimestamp(run.last_request, UTC).isoformat(),
                "last_checkpoint": last["training"],
                "last_sampler_checkpoint": last["sampler"],
                "user_metadata": run.user_metadata,
            }
        )

    def _list_checkpoints(self, request: Request) -> Response:
        self._state.run(request.match["run"])
        listing = [c.listing() for c in self._state.run_checkpoints(request.match["run"])]
        return Response.json({"checkpoints": listing, "cursor": None})

    def _delete_checkpoint(self, request: Request) -> Response:
        checkpoint = self._state.checkpoint_at(request.match)
        with self._state.lock:
            self._state.checkpoints.pop(checkpoint.path, None)
        return Response.json({})

    def _set_ttl(self, request: Request) -> Response:
        checkpoint = self._state.checkpoint_at(request.match)
        checkpoint.expires_at = _expiry(request.json())
        return Response.json({})


def _expiry(body: Mapping[str, Any]) -> float | None:
    """When a checkpoint saved or updated with this body's ``ttl_seconds`` expires."""
    ttl = body.get("ttl_seconds")
    if ttl is None:
        return None
    if not _MIN_TTL <= ttl <= _MAX_TTL:
        raise HTTPError(400, f"ttl_seconds must be between {_MIN_TTL} and {_MAX_TTL}, got {ttl}")
    return time.time() + float(ttl)


def _checkpoint_name(name: str | None) -> str:
    if not name or "/" in name or name in {".", ".."}:
        raise HTTPError(400, f"Invalid checkpoint name: {name!r}")
    return name
