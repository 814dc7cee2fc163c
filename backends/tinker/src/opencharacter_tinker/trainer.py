"""DPO and SFT on Tinker: what each stage trains on, and where it starts from.

DPO renders every pair's chosen and rejected answers after its prompt and trains with the
paper's loss against reference log-probabilities; SFT renders whole conversations and trains
with cross-entropy on the assistant turns. Every sequence comes from the model's renderer, the
same one that rendered its prompts. The stage folder, reference scoring, pipelined step loop
and resume that both share are in :mod:`opencharacter_tinker.stage`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import tinker
import torch

from opencharacter.errors import ConfigError
from opencharacter.protocols import StepCallback, Student
from opencharacter.training import DPOConfig, SFTConfig
from opencharacter.types import ChatExample, Checkpoint, PreferencePair, TokenUsage, to_dicts
from opencharacter_tinker.connection import Connection
from opencharacter_tinker.errors import translate
from opencharacter_tinker.losses import paper_dpo_loss
from opencharacter_tinker.renderers import Renderer
from opencharacter_tinker.stage import Rendered, Stage


class TinkerTrainer:
    """Trains students on Tinker's LoRA service (the Trainer protocol).

    Where training starts: DPO from the student's weights (a new LoRA on the base model, or the
    training state of its checkpoint); SFT keeps training the DPO checkpoint's state
    (``start="continue"``). Tinker cannot train a new adapter on merged weights, so
    ``start="stack"`` is refused; the pipeline downgrades a default "stack" before it starts.

    Args:
        connection: the backend's session.
        renderer_for: the renderer of a base model.
        save_every: optimiser steps between saved training states.
        ttl_seconds: lifetime of the final checkpoints on the service; ``None`` keeps them.
        step_timeout: seconds allowed for any one training request (model creation included).
        window: reference log-probability requests in flight at once.
    """

    def __init__(
        self,
        connection: Connection,
        renderer_for: Callable[[str], Renderer],
        *,
        save_every: int,
        ttl_seconds: int | None,
        step_timeout: float,
        window: int,
    ) -> None:
        self._connection = connection
        self._renderer_for = renderer_for
        self._save_every = save_every
        self._ttl = ttl_seconds
        self._timeout = step_timeout
        self._window = window

    def dpo(
        self,
        student: Student,
        pairs: Sequence[PreferencePair],
        config: DPOConfig,
        *,
        output_dir: Path,
        on_step: StepCallback | None = None,
    ) -> Checkpoint:
        """Train a LoRA with the paper's DPO loss (sigmoid DPO + NLL + squared log-ratio).

        Pairs whose prompt plus chosen or rejected answer exceed ``max_length`` tokens are
        dropped (counted in ``meta["dropped"]``).

        Raises:
            ConfigError: no pair fits, or ``output_dir`` holds another run.
        """
        stage = Stage(
            self, "dpo", student, config, output_dir=Path(output_dir), ids=[p.id for p in pairs]
        )
        if stage.done is not None:
            return stage.done
        renderer = self._renderer_for(student.base_model)
        rendered: dict[str, tuple[Rendered, Rendered]] = {}
        for pair in pairs:
            prompt = to_dicts(pair.prompt)
            sides = tuple(
                Rendered(*renderer.completion(prompt, a)) for a in (pair.chosen, pair.rejected)
            )
            if all(len(s.tokens) <= config.max_length for s in sides):
                rendered[pair.id] = sides  # type: ignore[assignment]
        if not rendered:
            msg = f"dpo: none of {len(pairs)} pairs fits max_length={config.max_length} tokens"
            raise ConfigError(msg)
        ids = list(rendered)
        opening = stage.open_client()  # the service loads the model while we score
        reference, scored = stage.reference(rendered)

        def submit(client: tinker.TrainingClient, batch: list[int]) -> tuple[Any, TokenUsage]:
            sequences = [s for i in batch for s in rendered[ids[i]]]
            refs = [torch.tensor(r) for i in batch for r in reference[ids[i]]]
            answers = [s.answer for s in sequences]

            def loss(_data: Any, logprobs: list[torch.Tensor]) -> tuple[torch.Tensor, Any]:
                policy = [lp[a] for lp, a in zip(logprobs, answers, strict=True)]
                return paper_dpo_loss(policy, refs, beta=config.beta, nll_coef=config.nll_coef,
                                      kl_coef=config.kl_coef)  # fmt: skip

            data = [s.datum() for s in sequences]
            tokens = sum(len(s.tokens) - 1 for s in sequences)
            # forward_backward_custom runs a forward pass, then a forward-backward pass.
            return client.forward_backward_custom(data, loss), TokenUsage(train_tokens=2 * tokens)

        return stage.train(opening, len(ids), submit, on_step, first_usage=scored,
                           dropped=len(pairs) - len(ids))  # fmt: skip

    def sft(
        self,
        student: Student,
        examples: Sequence[ChatExample],
        config: SFTConfig,
        *,
        output_dir: Path,
        on_step: StepCallback | None = None,
    ) -> Checkpoint:
        """Keep training the DPO checkpoint on every assistant turn (cross-entropy).

        Each step's loss is the mean NLL per assistant token of its batch; conversations
        longer than ``max_length`` tokens are cut at the end.

        Raises:
            ConfigError: ``start="stack"``, no examples, or ``output_dir`` holds another run.
        """
        if config.start == "stack":
            msg = (
                'sft: Tinker cannot train a new adapter on DPO-merged weights (start="stack"); '
                'use start="continue" to keep training the DPO adapter'
            )
            raise ConfigError(msg)
        if not examples:
            msg = "sft: no training examples"
            raise ConfigError(msg)
        stage = Stage(
            self, "sft", student, config, output_dir=Path(output_dir), ids=[e.id for e in examples]
        )
        if stage.done is not None:
            return stage.done
        renderer = self._renderer_for(student.base_model)
        rendered = []
        for example in examples:
            tokens, weights = renderer.conversation(to_dicts(example.messages))
            rendered.append(Rendered(tokens[: config.max_length], weights[: config.max_length]))

        def submit(client: tinker.TrainingClient, batch: list[int]) -> tuple[Any, TokenUsage]:
            sequences = [rendered[i] for i in batch]
            weighted = sum(sum(s.weights[1:]) for s in sequences) or 1.0
            data = [s.datum(1.0 / weighted) for s in sequences]  # loss: mean NLL per token
            tokens = sum(len(s.tokens) - 1 for s in sequences)
            return client.forward_backward(data, "cross_entropy"), TokenUsage(train_tokens=tokens)

        return stage.train(stage.open_client(), len(rendered), submit, on_step)

    def wait(self, future: Any, what: str) -> Any:
        """Return a future's result, or fail after ``step_timeout`` seconds."""
        try:
            return future.result(timeout=self._timeout)
        except Exception as exc:
            raise translate(exc) from exc
