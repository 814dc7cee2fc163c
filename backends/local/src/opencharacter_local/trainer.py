"""The local backend's trainer: TRL's DPO and SFT trainers on a peft LoRA.

Each stage call maps our :class:`~opencharacter.training.DPOConfig` or
:class:`~opencharacter.training.SFTConfig` (the paper's hyperparameters) onto TRL's config
(:mod:`opencharacter_local.trl_args`), trains a LoRA and writes a PEFT adapter folder. A
stage owns ``output_dir``::

    output_dir/
        inputs.json        what the stage trains on (a key), so a different run is never resumed
        base/              merged starting weights, when the student was already at a checkpoint
        trainer/           TRL's checkpoint-* folders while training: resumed after an interruption
        adapter/           the finished adapter (adapter_config.json, adapter_model.safetensors,
                           tokenizer)
        checkpoint.json    completion marker: the returned Checkpoint, written last

Calling a stage again with the same ``output_dir`` returns the finished checkpoint without
training, or resumes from the newest ``trainer/checkpoint-*``. The trainer folder (adapter,
optimiser and scheduler state) is deleted once the adapter is final.

Under a multi-process launch (one process per GPU, see :mod:`opencharacter_local.launch`) rank 0
makes every decision and writes every file above; each stage call becomes a
:class:`TrainingJob` that rank 0 sends to the other ranks, which train their share of each
batch in :meth:`LocalTrainer.follow`.

Importing this module loads torch, transformers, peft and TRL (a few seconds); the plugin's
registration in ``opencharacter_local`` stays free of them.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, cast

import attrs
import torch
from datasets import Dataset
from peft import PeftModel
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    BatchEncoding,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    PrinterCallback,
    Trainer,
)
from transformers.trainer_utils import get_last_checkpoint
from trl.trainer.sft_trainer import SFTTrainer  # trl exports lazily: mypy needs the module

from opencharacter import stage_dir
from opencharacter.errors import ConfigError, PermanentBackendError
from opencharacter.protocols import StepCallback, Student
from opencharacter.training import DPOConfig, SFTConfig
from opencharacter.types import (
    ChatExample,
    Checkpoint,
    CheckpointKind,
    PreferencePair,
    stable_id,
    to_dicts,
)
from opencharacter_local import distributed
from opencharacter_local.dpo import SquaredKLDPOTrainer
from opencharacter_local.merging import merge_adapter
from opencharacter_local.reporting import StepReporter
from opencharacter_local.tiny import resolve_model
from opencharacter_local.trl_args import dpo_arguments, lora_config, sft_arguments


@attrs.frozen
class TrainingJob:
    """One stage's training as plain data, the same on every rank of a multi-process launch.

    Rank 0 decides everything that touches the run directory (which rows fit, the merged
    starting weights, the trainer checkpoint to resume) and sends the job; every rank then trains
    from it alike.

    Attributes:
        kind: ``"dpo"`` (``rows`` are TRL preference rows) or ``"sft"`` (``messages`` rows).
        rows: the training rows.
        config: the stage's settings.
        weights: the full weights training starts from (a folder or Hub name).
        adapter: an adapter to keep training ("continue"), or ``None`` for a new LoRA.
        tokenizer: where the tokenizer loads from.
        output_dir: the stage's folder; the adapter goes to ``adapter/`` in it.
        resume: the trainer checkpoint to resume from, if any.
    """

    kind: CheckpointKind
    rows: list[dict[str, Any]]
    config: DPOConfig | SFTConfig
    weights: str
    adapter: str | None
    tokenizer: str
    output_dir: str
    resume: str | None


class LocalTrainer:
    """Trains students on this machine with TRL on a peft LoRA (the Trainer protocol).

    Where training starts:

    * **DPO** trains a new LoRA (``config.lora``) on the student's weights. A student at a
      checkpoint is first merged into full weights (saved once to ``output_dir/base``), so the
      DPO reference model is exactly the student being trained; the result's
      ``meta["base_weights"]`` names that folder.
    * **SFT, start "stack"** (the paper's evaluated model) does the same from the DPO
      checkpoint: the DPO adapter is merged into its base and a *new* LoRA is trained on the
      merged weights, so the result applies to ``meta["base_weights"]``, not to the base model.
    * **SFT, start "continue"** loads the DPO adapter as trainable and keeps training it: one
      adapter on the original base to ship, but the adapter's own rank and targets are kept
      and ``config.lora`` is ignored.

    DPO drops pairs whose prompt plus chosen or rejected answer exceed ``max_length`` tokens
    (the count is in ``meta["dropped"]``); SFT truncates long conversations instead.

    In a multi-process launch, rank 0 calls :meth:`dpo` and :meth:`sft` as usual and every other
    rank calls :meth:`follow`; the batch is shared out, so ``batch_size`` stays the effective
    batch.

    Args:
        device: ``"auto"`` (CUDA when available, else CPU), ``"cuda"`` or ``"cpu"``. CPU trains
            and merges in fp32; CUDA loads weights and trains in bf16, as the paper did.
        micro_batch_size: sequences per forward pass when the stage config does not set one;
            the config's ``batch_size`` is reached by gradient accumulation.
        save_steps: optimiser steps between resumable trainer checkpoints (only the newest is
            kept).
    """

    def __init__(
        self,
        device: str = "auto",
        micro_batch_size: int | None = None,
        save_steps: int = 50,
        before: Callable[[], None] | None = None,
    ) -> None:
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        if device not in {"cpu", "cuda"}:
            msg = f"device must be 'auto', 'cpu' or 'cuda', got {device!r}"
            raise ConfigError(msg)
        self._device = device
        self._dtype = torch.float32 if device == "cpu" else torch.bfloat16
        self._micro = micro_batch_size
        self._save_steps = save_steps
        self._before = before  # frees sampling engines so training has the device to itself

    def dpo(
        self,
        student: Student,
        pairs: Sequence[PreferencePair],
        config: DPOConfig,
        *,
        output_dir: Path,
        on_step: StepCallback | None = None,
    ) -> Checkpoint:
        """Train a LoRA with sigmoid DPO, ``nll_coef`` x NLL and ``kl_coef`` x squared log-ratio.

        Args:
            student: supplies ``base_model`` and the ``checkpoint`` to start from.
            pairs: the preference pairs (teacher answer chosen, student answer rejected).
            config: the DPO settings.
            output_dir: the stage's folder (see the module docstring).
            on_step: called with each optimiser step's loss, lr, accuracy and margin, and
                ``kl`` (the unweighted squared log-ratio term) when ``kl_coef > 0``.

        Returns:
            The ``kind="dpo"`` checkpoint whose ``uri`` is the adapter folder.

        Raises:
            ConfigError: no pair fits ``max_length``, ``output_dir`` holds another run, or this
                is not rank 0 of a multi-process launch.
        """
        _refuse_followers()
        output_dir = Path(output_dir)
        key = _inputs_key("dpo", student, [p.id for p in pairs], config)
        done = stage_dir.claim(output_dir, key)
        if done is not None:
            return done
        tokenizer = resolve_model(student.base_model)
        counter = AutoTokenizer.from_pretrained(tokenizer)
        rows = [_preference_row(p) for p in pairs if _fits(counter, p, config.max_length)]
        if not rows:
            msg = f"dpo: none of {len(pairs)} pairs fits max_length={config.max_length} tokens"
            raise ConfigError(msg)
        weights, adapter, base_weights = self._start(student, output_dir, keep_adapter=False)
        job = TrainingJob(kind="dpo", rows=rows, config=config, weights=weights, adapter=adapter,
                          tokenizer=tokenizer, output_dir=str(output_dir),
                          resume=_last_checkpoint(output_dir))  # fmt: skip
        trainer = self._lead(job, on_step)
        dropped = len(pairs) - len(rows)
        return self._finish(job, trainer, student, key, base_weights, dropped=dropped)

    def sft(
        self,
        student: Student,
        examples: Sequence[ChatExample],
        config: SFTConfig,
        *,
        output_dir: Path,
        on_step: StepCallback | None = None,
    ) -> Checkpoint:
        """Fine-tune on every assistant turn, stacked on or continuing the DPO adapter.

        Args:
            student: supplies ``base_model`` and the DPO ``checkpoint`` to start from.
            examples: the introspective conversations.
            config: the SFT settings; ``config.start`` picks "stack" or "continue" (see the
                class docstring).
            output_dir: the stage's folder (see the module docstring).
            on_step: called with each optimiser step's loss and lr.

        Returns:
            The ``kind="sft"`` checkpoint whose ``uri`` is the adapter folder.

        Raises:
            ConfigError: ``examples`` is empty, ``output_dir`` holds another run, or this is
                not rank 0 of a multi-process launch.
        """
        _refuse_followers()
        output_dir = Path(output_dir)
        if not examples:
            msg = "sft: no training examples"
            raise ConfigError(msg)
        key = _inputs_key("sft", student, [e.id for e in examples], config)
        done = stage_dir.claim(output_dir, key)
        if done is not None:
            return done
        weights, adapter, base_weights = self._start(
            student, output_dir, keep_adapter=config.start == "continue"
        )
        rows = [{"messages": to_dicts(e.messages)} for e in examples]
        job = TrainingJob(kind="sft", rows=rows, config=config, weights=weights, adapter=adapter,
                          tokenizer=resolve_model(student.base_model), output_dir=str(output_dir),
                          resume=_last_checkpoint(output_dir))  # fmt: skip
        return self._finish(job, self._lead(job, on_step), student, key, base_weights)

    def follow(self) -> int:
        """Train each job rank 0 sends until it sends the end; return how many were trained.

        The other ranks of a multi-process launch call this instead of :meth:`dpo` or
        :meth:`sft`. They write no file of the run: TRL saves only from rank 0.
        """
        trained = 0
        while (job := distributed.receive(cpu=self._device == "cpu")) is not None:
            self._fit(job, on_step=None)
            trained += 1
        return trained

    def release_followers(self) -> None:
        """From rank 0, once its stages are done: end the other ranks' :meth:`follow`."""
        if distributed.world_size() > 1:
            distributed.send(None, cpu=self._device == "cpu")

    def _start(
        self, student: Student, output_dir: Path, *, keep_adapter: bool
    ) -> tuple[str, str | None, str | None]:
        """Return the weights a stage trains from, the adapter to keep, and ``base_weights``.

        ``keep_adapter`` trains the student's adapter itself on its own weights; otherwise the
        adapter is merged in first (once, into ``output_dir/base``) and a new LoRA is trained.
        """
        if self._before is not None:
            self._before()
        checkpoint = student.checkpoint
        if checkpoint is None:
            return resolve_model(student.base_model), None, None
        if keep_adapter:
            weights = checkpoint.meta.get("base_weights")
            return weights or resolve_model(student.base_model), checkpoint.uri, weights
        merged = output_dir / "base"
        if not merged.is_dir():  # merged once; a partial folder from a crash is redone
            partial = output_dir / "base.partial"
            shutil.rmtree(partial, ignore_errors=True)
            merge_adapter(checkpoint, partial, dtype=self._dtype)
            partial.rename(merged)
        return str(merged), None, str(merged)

    def _lead(self, job: TrainingJob, on_step: StepCallback | None) -> Any:
        """Send ``job`` to the other ranks when there are any, then train it here too."""
        if distributed.world_size() > 1:
            distributed.send(job, cpu=self._device == "cpu")
        return self._fit(job, on_step)

    def _fit(self, job: TrainingJob, on_step: StepCallback | None) -> Any:
        """Train ``job`` (resuming its trainer checkpoint) and save the adapter; every rank."""
        model: PreTrainedModel | PeftModel = AutoModelForCausalLM.from_pretrained(
            job.weights, dtype=self._dtype
        )
        if job.adapter is not None:
            model = PeftModel.from_pretrained(model, job.adapter, is_trainable=True)
        batching: dict[str, Any] = {
            "examples": len(job.rows),
            "micro_batch_size": self._micro,
            "device": self._device,
            "save_steps": self._save_steps,
            "processes": distributed.world_size(),
        }
        trainer_dir = Path(job.output_dir) / "trainer"
        shared = {
            "model": model,
            "train_dataset": Dataset.from_list(job.rows),
            "processing_class": AutoTokenizer.from_pretrained(job.tokenizer),
            "peft_config": None if job.adapter else lora_config(job.config.lora),
            "callbacks": [StepReporter(job.kind, on_step)] if on_step else None,
        }
        trainer: Trainer
        if isinstance(job.config, DPOConfig):
            trainer = SquaredKLDPOTrainer(args=dpo_arguments(job.config, trainer_dir, **batching),
                                          kl_coef=job.config.kl_coef, **shared)  # fmt: skip
        else:
            trainer = SFTTrainer(args=sft_arguments(job.config, trainer_dir, **batching),
                                     **shared)  # fmt: skip
        trainer.remove_callback(PrinterCallback)  # the library never prints; on_step reports
        try:
            trainer.train(resume_from_checkpoint=job.resume)
        except torch.cuda.OutOfMemoryError as exc:
            raise PermanentBackendError(_out_of_memory(job, trainer.args)) from exc
        trainer.save_model(str(Path(job.output_dir) / "adapter"))
        trainer.accelerator.wait_for_everyone()  # rank 0 removes trainer/ once all are done
        return trainer

    def _finish(
        self,
        job: TrainingJob,
        trainer: Any,
        student: Student,
        key: str,
        base_weights: str | None,
        **counts: int,
    ) -> Checkpoint:
        """Write the completion marker, remove the trainer state, and return the checkpoint."""
        args = trainer.args
        output_dir = Path(job.output_dir)
        losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
        meta: dict[str, Any] = {
            "steps": trainer.state.global_step,
            "examples": len(job.rows),
            **counts,
            "loss": losses[-1] if losses else None,
            "effective_batch": args.per_device_train_batch_size
            * args.gradient_accumulation_steps
            * args.world_size,
            "processes": args.world_size,
            "dtype": str(self._dtype).removeprefix("torch."),
            "device": self._device,
            "inputs": key,
        }
        if base_weights is not None:
            meta["base_weights"] = base_weights
        checkpoint = Checkpoint(
            backend="local",
            base_model=student.base_model,
            uri=str(output_dir / "adapter"),
            kind=job.kind,
            parent=student.checkpoint.uri if student.checkpoint else None,
            meta=meta,
        )
        stage_dir.finish(output_dir, checkpoint)
        shutil.rmtree(args.output_dir, ignore_errors=True)
        return checkpoint


def _out_of_memory(job: TrainingJob, args: Any) -> str:
    """Say what ran out of GPU memory in training, and which settings make it fit."""
    unit = "pairs" if job.kind == "dpo" else "conversations"
    return (
        f"{job.kind}: out of GPU memory at {args.per_device_train_batch_size} {unit} per forward "
        f"pass of up to {job.config.max_length} tokens each. Lower the local backend's "
        f"micro_batch_size (-o micro_batch_size=1; the batch of {job.config.batch_size} is kept "
        f"by gradient accumulation) or {job.kind}.max_length, free the GPU of other processes, or "
        "train on a larger GPU"
    )


def _refuse_followers() -> None:
    """Stop a rank other than 0 from training on its own and writing the stage's files."""
    if distributed.rank() != 0:
        msg = (
            f"rank {distributed.rank()} of a multi-process launch: only rank 0 calls dpo() and "
            "sft(); the other ranks call follow() (or launch with -m opencharacter_local.launch)"
        )
        raise ConfigError(msg)


def _last_checkpoint(output_dir: Path) -> str | None:
    """Return the newest resumable trainer checkpoint in a stage folder, if any."""
    trainer_dir = output_dir / "trainer"
    if not trainer_dir.is_dir():
        return None
    last: str | None = get_last_checkpoint(str(trainer_dir))  # type: ignore[no-untyped-call]  # unannotated
    return last


def _inputs_key(kind: str, student: Student, ids: list[str], config: DPOConfig | SFTConfig) -> str:
    parent = student.checkpoint.uri if student.checkpoint else None
    return stable_id(kind, student.base_model, parent, sorted(ids), config.to_dict())


def _preference_row(pair: PreferencePair) -> dict[str, Any]:
    """Return the TRL row without id and metadata, which the trainer has no use for."""
    row = pair.to_row()
    return {"prompt": row["prompt"], "chosen": row["chosen"], "rejected": row["rejected"]}


def _fits(tokenizer: PreTrainedTokenizerBase, pair: PreferencePair, max_length: int) -> bool:
    """Say whether prompt plus each answer is at most ``max_length`` tokens, counted as TRL does."""
    row = _preference_row(pair)
    conversations = (row["prompt"] + row[side] for side in ("chosen", "rejected"))
    return all(
        len(cast("BatchEncoding", tokenizer.apply_chat_template(c, return_dict=True))["input_ids"])
        <= max_length
        for c in conversations
    )


__all__ = ["LocalTrainer", "TrainingJob"]
