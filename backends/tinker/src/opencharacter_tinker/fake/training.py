"""Training-run routes: creating a LoRA run, describing it, and its forward/backward and steps.

Every operation on a run goes through :meth:`TrainingRoutes.enqueue`, which answers with a
future at once and runs the work on the run's :class:`~opencharacter_tinker.fake.sequencer.
Sequencer`, in ``seq_id`` order; the checkpoint routes queue their saves and loads the same way.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from opencharacter_tinker.fake import wire
from opencharacter_tinker.fake.futures import Futures
from opencharacter_tinker.fake.lora import LoraSpec
from opencharacter_tinker.fake.sequencer import Sequencer
from opencharacter_tinker.fake.served import ServedModel
from opencharacter_tinker.fake.state import Run, ServiceState
from opencharacter_tinker.fake.trainer import Trainer
from opencharacter_tinker.fake.transport import HTTPError, Request, Response, Route


class TrainingRoutes:
    """Routes that create training runs and queue their operations."""

    def __init__(self, state: ServiceState, futures: Futures) -> None:
        self._state = state
        self._futures = futures

    def routes(self) -> list[Route]:
        """(method, path pattern, endpoint) for each route this group serves."""
        return [
            ("POST", "/api/v1/create_model", self._create_model),
            ("POST", "/api/v1/get_info", self._get_info),
            ("POST", "/api/v1/forward_backward", self._forward_backward),
            ("POST", "/api/v1/optim_step", self._optim_step),
        ]

    def new_model_id(self, session_id: str, body: Mapping[str, Any]) -> str:
        """The id of the run a creating request names; 400 if that run already exists."""
        model_id = f"{session_id}:train:{body.get('model_seq_id', 0)}"
        with self._state.lock:
            if model_id in self._state.runs:
                raise HTTPError(400, f"Model {model_id} already exists")
        return model_id

    def new_run(
        self,
        *,
        model_id: str,
        session_id: str,
        model: ServedModel,
        spec: LoraSpec,
        seed: int,
        body: Mapping[str, Any],
    ) -> Run:
        """Create a run with fresh LoRA weights and its own sequencer, and register it."""
        state = self._state
        trainer = Trainer(model, spec, seed)
        run = Run(
            model_id=model_id,
            session_id=session_id,
            base_model=model.name,
            spec=spec,
            trainer=trainer,
            sequencer=Sequencer(model_id, state.settings.cycle, state.epoch, state.stopping),
            user_metadata=body.get("user_metadata"),
        )
        with state.lock:
            state.runs[model_id] = run
        return run

    def enqueue(
        self,
        run: Run,
        seq_id: int | None,
        kind: str,
        work: Callable[[], bytes | dict[str, Any]],
    ) -> Response:
        """Queue an operation on a training run in ``seq_id`` order and answer with its future."""
        if seq_id is None or seq_id < 1:
            raise HTTPError(400, f"seq_id must be a positive integer, got {seq_id}")
        with self._state.lock:
            known = run.requests.get(seq_id)
            if known is not None:  # the SDK resent a request we already accepted
                return Response.json({"request_id": known, "model_id": run.model_id})
            promise = self._futures.new()
            run.requests[seq_id] = promise.request_id
            run.last_request = time.time()
        if not run.sequencer.submit(seq_id, lambda: self._futures.settle(promise, work)):
            raise HTTPError(400, f"seq_id {seq_id} of {run.model_id} has already run")
        self._state.count(kind)
        return Response.json({"request_id": promise.request_id, "model_id": run.model_id})

    def _create_model(self, request: Request) -> Response:
        body = request.json()
        session_id = self._state.session(body.get("session_id", "")).session_id
        model = self._state.model(body.get("base_model"))
        model_id = self.new_model_id(session_id, body)
        lora = body.get("lora_config") or {}
        spec = self._lora_spec(model, lora)
        optimizer = (body.get("optimizer_config") or {}).get("type", "adamw")
        if optimizer != "adamw":
            raise HTTPError(400, f"Optimizer {optimizer!r} is not supported (only 'adamw')")
        seed = lora.get("seed")
        if seed is None:
            seed = self._state.draw_seed()
        promise = self._futures.new()
        self._state.count("create_model")

        def work() -> dict[str, Any]:
            run = self.new_run(
                model_id=model_id,
                session_id=session_id,
                model=model,
                spec=spec,
                seed=int(seed),
                body=body,
            )
            return {"model_id": run.model_id, "type": "create_model"}

        self._futures.settle(promise, work)
        return Response.json({"request_id": promise.request_id, "model_id": model_id})

    def _lora_spec(self, model: ServedModel, lora: Mapping[str, Any]) -> LoraSpec:
        rank = int(lora.get("rank", 32))
        if rank < 1 or rank & (rank - 1):
            raise HTTPError(400, f"LoRA rank must be a positive power of 2, got {rank}")
        spec = LoraSpec(
            rank=rank,
            alpha=self._state.settings.lora_alpha,
            train_attn=bool(lora.get("train_attn", True)),
            train_mlp=bool(lora.get("train_mlp", True)),
            train_unembed=bool(lora.get("train_unembed", True)),
        )
        if not model.has_targets(spec):
            msg = "the fake Tinker server needs train_attn or train_mlp (no unembedding LoRA)"
            raise HTTPError(400, msg)
        return spec

    def _get_info(self, request: Request) -> Response:
        run = self._state.run(request.json().get("model_id"))
        model = self._state.models[run.base_model]
        return Response.json(
            {
                "type": "get_info",
                "model_id": run.model_id,
                "model_data": {
                    "arch": model.arch,
                    "model_name": run.base_model,
                    # A local folder, so TrainingClient.get_tokenizer() works offline.
                    "tokenizer_id": model.folder,
                },
                "optimizer_config": {"type": "adamw"},
                "is_lora": True,
                "lora_rank": run.spec.rank,
                "model_name": run.base_model,
            }
        )

    def _forward_backward(self, request: Request) -> Response:
        message = wire.forward_backward_request(request.body)
        run = self._state.run(message.model_id)
        data = [wire.datum(d, i) for i, d in enumerate(message.data)]
        if not data:
            raise HTTPError(400, "forward_backward needs at least one datum")
        config = wire.loss_config(message)
        loss_fn = message.loss_fn
        backward = not message.forward_only

        def work() -> bytes:
            outputs, metrics = run.trainer.forward_backward(
                data, loss_fn, config, backward=backward
            )
            return wire.forward_backward_output(outputs, metrics)

        kind = "forward_backward" if backward else "forward"
        return self.enqueue(run, message.seq_id, kind, work)

    def _optim_step(self, request: Request) -> Response:
        body = request.json()
        run = self._state.run(body.get("model_id"))
        params = body.get("adam_params")
        if params is None:
            raise HTTPError(400, "only adam_params are supported (the model uses AdamW)")

        def work() -> dict[str, Any]:
            metrics = run.trainer.optim_step(
                learning_rate=float(params.get("learning_rate", 1e-4)),
                beta1=float(params.get("beta1", 0.9)),
                beta2=float(params.get("beta2", 0.95)),
                eps=float(params.get("eps", 1e-12)),
                weight_decay=float(params.get("weight_decay", 0.0)),
                grad_clip_norm=float(params.get("grad_clip_norm", 0.0)),
            )
            return {"metrics": metrics, "type": "optim_step"}

        return self.enqueue(run, body.get("seq_id"), "optim_step", work)
