"""One LoRA training run on a served model: Tinker's built-in losses, AdamW, and saved state.

The wire conversion (:mod:`opencharacter_tinker.fake.wire`) turns a ``ForwardBackwardRequest``
into :class:`Datum` records; :class:`Trainer` computes their losses against the run's live
adapter on the frozen :class:`~opencharacter_tinker.fake.served.ServedModel`.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from opencharacter_tinker.fake.lora import LoraSpec, LoraWeights
from opencharacter_tinker.fake.served import ServedModel


@dataclass
class Datum:
    """One training example as the wire carries it: input tokens and named loss inputs."""

    tokens: list[int]
    inputs: dict[str, np.ndarray]


@dataclass
class TrainingCheckpoint:
    """A training run's state at one point: what ``save_state`` keeps."""

    weights: LoraWeights
    optimizer: dict[str, Any] | None
    step: int


class Trainer:
    """One LoRA training run: its live weights, an AdamW over them, and the losses Tinker offers.

    Gradients accumulate across ``forward_backward`` calls until ``optim_step`` applies and clears
    them, exactly as the service's own contract says.
    """

    def __init__(self, model: ServedModel, spec: LoraSpec, seed: int) -> None:
        self.model = model
        self.weights = model.new_lora(spec, seed)
        self.params = self.weights.parameters()
        # The hyperparameters arrive with every optim_step; these are placeholders.
        self.optimizer = torch.optim.AdamW(self.params, lr=0.0, weight_decay=0.0, foreach=False)
        self.step = 0

    def forward_backward(
        self,
        data: Sequence[Datum],
        loss_fn: str,
        config: Mapping[str, float | str],
        *,
        backward: bool,
    ) -> tuple[list[np.ndarray], dict[str, float]]:
        """Per-datum target logprobs and ``loss:sum``; accumulates gradients if ``backward``."""
        del config  # neither implemented loss takes options
        outputs: list[np.ndarray] = []
        with self.model.lock, torch.set_grad_enabled(backward):
            rows = self.model.batch_logprobs([d.tokens for d in data], self.weights)
            losses = []
            for index, (datum, logprobs) in enumerate(zip(data, rows, strict=True)):
                target_lp, loss = _loss(loss_fn, logprobs, datum, index)
                losses.append(loss)
                outputs.append(target_lp.detach().numpy().astype(np.float32))
            total = torch.stack(losses).sum() if losses else torch.zeros(())
            if backward and losses:
                torch.autograd.backward(total)  # Tensor.backward() is unannotated in torch
        return outputs, {"loss:sum": float(total.detach())}

    def optim_step(
        self,
        *,
        learning_rate: float,
        beta1: float,
        beta2: float,
        eps: float,
        weight_decay: float,
        grad_clip_norm: float,
    ) -> dict[str, float]:
        """One AdamW step (decoupled weight decay, optional norm clipping), then zero grads."""
        with self.model.lock:
            grads = [p.grad for p in self.params if p.grad is not None]
            norm = (
                float(torch.linalg.vector_norm(torch.stack([g.norm() for g in grads])))
                if grads
                else 0.0
            )
            if grad_clip_norm > 0 and grads:
                torch.nn.utils.clip_grad_norm_(self.params, grad_clip_norm)
            for group in self.optimizer.param_groups:
                group.update(lr=learning_rate, betas=(beta1, beta2), eps=eps)
                group["weight_decay"] = weight_decay
            self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)
            self.step += 1
        return {"grad_norm:mean": norm}

    def checkpoint(self) -> TrainingCheckpoint:
        """Weights, Adam moments and step count, copied so later training cannot change them."""
        with self.model.lock:
            state = copy.deepcopy(self.optimizer.state_dict())
            return TrainingCheckpoint(self.weights.snapshot(), state, self.step)

    def restore(self, checkpoint: TrainingCheckpoint, *, optimizer: bool) -> None:
        """Load weights (and, if asked, the optimizer state and step) from a checkpoint."""
        with self.model.lock:
            self.weights.load_(checkpoint.weights)
            if optimizer and checkpoint.optimizer is not None:
                self.optimizer.load_state_dict(copy.deepcopy(checkpoint.optimizer))
                self.step = checkpoint.step


def _loss(
    loss_fn: str, logprobs: torch.Tensor, datum: Datum, index: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """(target logprobs, scalar loss) for one datum under one of Tinker's built-in losses."""
    targets = datum.inputs.get("target_tokens")
    if targets is None:
        msg = f"datum {index}: loss_fn_inputs has no 'target_tokens'"
        raise ValueError(msg)
    target = torch.as_tensor(targets, dtype=torch.long)
    if target.shape[0] != logprobs.shape[0]:
        msg = (
            f"datum {index}: target_tokens has {target.shape[0]} rows but model_input has "
            f"{logprobs.shape[0]} tokens"
        )
        raise ValueError(msg)
    if bool(((target < 0) | (target >= logprobs.shape[1])).any()):
        msg = f"datum {index}: target_tokens out of the vocabulary range"
        raise ValueError(msg)
    flat = target.reshape(target.shape[0], -1)
    target_lp = logprobs.gather(1, flat).reshape(target.shape)
    if loss_fn == "cross_entropy":
        weights = _float_input(datum, "weights", target.shape, index, default=1.0)
        return target_lp, -(target_lp * weights).sum()
    if loss_fn == "importance_sampling":
        sampled = _float_input(datum, "logprobs", target.shape, index)
        advantages = _float_input(datum, "advantages", target.shape, index)
        ratio = torch.exp(target_lp - sampled)
        return target_lp, -(ratio * advantages).sum()
    msg = f"loss_fn {loss_fn!r} is not implemented by the fake Tinker server"
    raise ValueError(msg)


def _float_input(
    datum: Datum,
    name: str,
    shape: torch.Size,
    index: int,
    default: float | None = None,
) -> torch.Tensor:
    value = datum.inputs.get(name)
    if value is None:
        if default is None:
            msg = f"datum {index}: loss_fn_inputs has no {name!r}"
            raise ValueError(msg)
        return torch.full(shape, default)
    tensor = torch.as_tensor(np.asarray(value, dtype=np.float32))
    if tensor.shape != shape:
        msg = f"datum {index}: {name} has shape {tuple(tensor.shape)}, expected {tuple(shape)}"
        raise ValueError(msg)
    return tensor
