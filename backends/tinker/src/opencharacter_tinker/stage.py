"""One Tinker training stage: its folder, its reference log-probabilities, its step loop.

:class:`~opencharacter_tinker.trainer.TinkerTrainer` says what DPO and SFT train on; a
:class:`Stage` runs the training, the same way for both. A stage owns ``output_dir``::

    output_dir/
        inputs.json        what the stage trains on (a key): another run is never resumed
        reference.jsonl    DPO only: the reference log-probabilities, one row per pair
        progress.json      the last saved training state and its step, for resuming
        checkpoint.json    completion marker: the returned Checkpoint, written last

What makes it fast and safe, and where the seed project lost hours:

* **Reference log-probabilities once.** DPO scores every pair under the reference (the
  student's starting weights, never the trained ones) before the first step, all requests in
  flight at once, each appended to ``reference.jsonl`` as it lands; a resume reads them back.
* **Pipelined steps.** ``forward_backward`` (or DPO's ``forward_backward_custom``) and
  ``optim_step`` are submitted back to back, and step k+1 before waiting on step k, so they
  share the service's clock cycles. The service runs one client's requests in call order.
* **Resumable.** ``save_state`` every ``save_every`` steps (and at the end) keeps weights and
  optimiser; a killed stage resumes from the last one, at the step after it, on the same data
  order (seeded per epoch).
* **Bounded waits.** Every future is waited on with ``step_timeout``.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import numpy as np
import tinker
from tinker import types

from opencharacter import stage_dir
from opencharacter.errors import ConfigError
from opencharacter.jsonl import JsonlWriter, read_jsonl
from opencharacter.protocols import StepCallback, StepMetrics, Student
from opencharacter.training import DPOConfig, SFTConfig, learning_rate_at, total_steps
from opencharacter.types import Checkpoint, CheckpointKind, TokenUsage, stable_id
from opencharacter_tinker.connection import in_background
from opencharacter_tinker.errors import translate

if TYPE_CHECKING:
    from opencharacter_tinker.trainer import TinkerTrainer

BACKEND = "tinker"
#: How long intermediate training states live on the service: long enough to resume a run.
STATE_TTL_SECONDS = 7 * 24 * 3600
_ADAM_EPS = 1e-8  # the cookbook's; Tinker's default (1e-12) is tighter than torch's


@attrs.frozen
class Rendered:
    """One training sequence: its tokens and the loss weight of each token."""

    tokens: list[int]
    weights: list[float]

    @property
    def answer(self) -> list[int]:
        """Indices of the weighted targets (the targets are ``tokens[1:]``)."""
        return [i for i, w in enumerate(self.weights[1:]) if w > 0]

    def datum(self, scale: float = 1.0) -> types.Datum:
        """Return the datum: inputs ``tokens[:-1]``, targets ``tokens[1:]``, shifted weights."""
        return types.Datum(
            model_input=types.ModelInput.from_ints(self.tokens[:-1]),
            loss_fn_inputs={
                "target_tokens": types.TensorData.from_numpy(np.asarray(self.tokens[1:], np.int64)),
                "weights": types.TensorData.from_numpy(
                    np.asarray(self.weights[1:], np.float32) * np.float32(scale)
                ),
            },
        )


@attrs.frozen
class _Submitted:
    step: int
    forward: Any
    optim: Any
    save: Any
    usage: TokenUsage
    lr: float


class Stage:
    """One training stage's bookkeeping: its folder, its client, its data order, its loop."""

    def __init__(
        self,
        trainer: TinkerTrainer,
        kind: CheckpointKind,
        student: Student,
        config: DPOConfig | SFTConfig,
        *,
        output_dir: Path,
        ids: list[str],
    ) -> None:
        self.trainer = trainer
        self.kind = kind
        self.student = student
        self.config = config
        self.output_dir = output_dir
        if student.checkpoint is not None:
            student.checkpoint.require_backend(BACKEND)
        parent = student.checkpoint.uri if student.checkpoint else None
        self.key = stable_id(kind, student.base_model, parent, sorted(ids), config.to_dict())
        self.done = stage_dir.claim(output_dir, self.key)

    # The folder ---------------------------------------------------------------------------

    def _progress(self) -> dict[str, Any] | None:
        path = self.output_dir / "progress.json"
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None

    # The reference ------------------------------------------------------------------------

    def reference(
        self, rendered: dict[str, tuple[Rendered, Rendered]]
    ) -> tuple[dict[str, tuple[list[float], list[float]]], TokenUsage]:
        """Return every pair's reference log-probabilities of its answer tokens.

        Computed once, concurrently, under the student's starting weights, and streamed to
        ``reference.jsonl``; rows already there are read back, never asked again.
        """
        path = self.output_dir / "reference.jsonl"
        scores = {
            row["id"]: (row["chosen"], row["rejected"])
            for row in (read_jsonl(path) if path.exists() else ())
        }
        missing = [pid for pid in rendered if pid not in scores]
        usage = TokenUsage()
        if missing:
            usage = asyncio.run(self._score(rendered, missing, scores, path))
        return scores, usage

    async def _score(
        self,
        rendered: dict[str, tuple[Rendered, Rendered]],
        missing: list[str],
        scores: dict[str, tuple[list[float], list[float]]],
        path: Path,
    ) -> TokenUsage:
        checkpoint = self.student.checkpoint
        client = await self.trainer._connection.sampling_client(
            self.student.base_model, checkpoint.uri if checkpoint else None
        )
        window = asyncio.Semaphore(self.trainer._window)

        async def one(sequence: Rendered) -> list[float]:
            answer = sequence.answer
            last_n = len(sequence.tokens) - 1 - answer[0]  # score from the answer's first target
            async with window:
                try:
                    values = await asyncio.wait_for(
                        client.compute_logprobs(
                            types.ModelInput.from_ints(sequence.tokens),
                            prompt_logprobs_last_n=last_n,
                        ),
                        self.trainer._timeout,
                    )
                except Exception as exc:
                    raise translate(exc) from exc
            targets = values[1:]  # position 0 has no log-probability
            return [round(float(targets[i] or 0.0), 6) for i in answer]

        async def pair(pid: str, writer: JsonlWriter) -> None:
            chosen, rejected = await asyncio.gather(*(one(s) for s in rendered[pid]))
            scores[pid] = (chosen, rejected)
            writer.append({"id": pid, "chosen": chosen, "rejected": rejected})

        with JsonlWriter(path) as writer:
            await asyncio.gather(*(pair(pid, writer) for pid in missing))
        prompt_tokens = sum(len(s.tokens) for pid in missing for s in rendered[pid])
        return TokenUsage(prompt_tokens=prompt_tokens, requests=2 * len(missing))

    # The loop -----------------------------------------------------------------------------

    def open_client(self) -> Callable[[], tuple[tinker.TrainingClient, int, str | None]]:
        """Start creating the training client; return a wait for it, its step and saved state.

        The wait returns the client, the steps already done and the last saved state. The
        client starts from, in order: the stage's own last saved state (weights and optimiser:
        a resume), the student checkpoint's training state (weights only: SFT after DPO), or
        a new LoRA.
        """
        service = self.trainer._connection.service
        progress = self._progress()
        checkpoint = self.student.checkpoint
        start, state = 0, None
        if progress is not None:
            start, state = int(progress["step"]), str(progress["state"])
            create = partial(service.create_training_client_from_state_with_optimizer, state)
        elif checkpoint is not None:
            if checkpoint.state_uri is None:
                msg = f"checkpoint {checkpoint.uri} has no training state to continue from"
                raise ConfigError(msg)
            create = partial(service.create_training_client_from_state, checkpoint.state_uri)
        else:
            create = partial(
                service.create_lora_training_client,
                self.student.base_model,
                rank=self.config.lora.rank,
                seed=self.config.seed,
                train_mlp=True,
                train_attn=True,
                train_unembed=False,  # the paper's LoRA covers every linear layer, not the head
            )
        timeout = self.trainer._timeout
        wait = in_background(
            lambda: create().result(timeout=timeout), "the training client's creation"
        )
        return lambda: (wait(timeout), start, state)

    def batches(self, examples: int) -> list[list[int]]:
        """Return every step's example indices: a seeded shuffle per epoch, then batches."""
        size = self.config.batch_size
        steps: list[list[int]] = []
        for epoch in range(self.config.epochs):
            order = list(range(examples))
            random.Random(stable_id(self.config.seed, self.kind, epoch)).shuffle(order)
            steps.extend(order[i : i + size] for i in range(0, examples, size))
        return steps

    def train(
        self,
        opening: Callable[[], tuple[tinker.TrainingClient, int, str | None]],
        examples: int,
        submit: Callable[[tinker.TrainingClient, list[int]], tuple[Any, TokenUsage]],
        on_step: StepCallback | None,
        *,
        first_usage: TokenUsage | None = None,
        **counts: int,
    ) -> Checkpoint:
        """Run (or resume) the step loop, pipelined one step ahead; return the checkpoint."""
        trainer, config = self.trainer, self.config
        client, start, state = opening()
        steps = total_steps(examples, config)
        plan = self.batches(examples)
        carry = first_usage or TokenUsage()
        pending: deque[_Submitted] = deque()
        last_metrics: dict[str, float] = {}
        for step in range(start + 1, steps + 1):
            forward, usage = submit(client, plan[step - 1])
            lr = learning_rate_at(step, steps, config)
            beta1, beta2 = config.adam_betas
            optim = client.optim_step(
                types.AdamParams(
                    learning_rate=lr,
                    beta1=beta1,
                    beta2=beta2,
                    eps=_ADAM_EPS,
                    weight_decay=config.weight_decay,
                    grad_clip_norm=config.max_grad_norm,
                )
            )
            save = None
            if step % trainer._save_every == 0 or step == steps:
                save = client.save_state(f"{self.kind}-{step:06d}", ttl_seconds=STATE_TTL_SECONDS,
                                         overwrite=True)  # fmt: skip
            pending.append(_Submitted(step, forward, optim, save, usage + carry, lr))
            carry = TokenUsage()
            while len(pending) > 1:
                state, last_metrics = self._finish(pending.popleft(), steps, on_step, state)
        # Submitted before the last step is waited on: it runs right after it.
        sampler = client.save_weights_for_sampler(f"{self.kind}-final", ttl_seconds=trainer._ttl)
        while pending:
            state, last_metrics = self._finish(pending.popleft(), steps, on_step, state)
        saved = trainer.wait(sampler, "saving the sampler weights")
        return self._record(saved.path, state, steps, examples, last_metrics, **counts)

    def _finish(
        self, submitted: _Submitted, steps: int, on_step: StepCallback | None, state: str | None
    ) -> tuple[str | None, dict[str, float]]:
        trainer = self.trainer
        output = trainer.wait(submitted.forward, f"step {submitted.step}")
        trainer.wait(submitted.optim, f"the optimiser step {submitted.step}")
        if submitted.save is not None:
            state = trainer.wait(submitted.save, f"saving step {submitted.step}").path
            stage_dir.write_json(
                self.output_dir / "progress.json", {"step": submitted.step, "state": state}
            )
        metrics = {k: float(v) for k, v in output.metrics.items() if isinstance(v, int | float)}
        metrics["loss"] = metrics.get("loss:sum", 0.0)
        metrics["lr"] = submitted.lr
        if on_step is not None:
            on_step(StepMetrics(stage=self.kind, step=submitted.step, total_steps=steps,
                                metrics=metrics, usage=submitted.usage))  # fmt: skip
        return state, metrics

    def _record(
        self,
        sampler_path: str,
        state: str | None,
        steps: int,
        examples: int,
        metrics: dict[str, float],
        **counts: int,
    ) -> Checkpoint:
        ttl = self.trainer._ttl
        expires = None
        if ttl is not None:
            expires = (datetime.now(UTC) + timedelta(seconds=ttl)).isoformat(timespec="seconds")
        checkpoint = Checkpoint(
            backend=BACKEND,
            base_model=self.student.base_model,
            uri=sampler_path,
            kind=self.kind,
            state_uri=state,
            expires=expires,
            parent=self.student.checkpoint.uri if self.student.checkpoint else None,
            meta={
                "steps": steps,
                "examples": examples,
                **counts,
                "loss": metrics.get("loss"),
                "lora_rank": self.config.lora.rank,
                "inputs": self.key,
            },
        )
        return stage_dir.finish(self.output_dir, checkpoint)
