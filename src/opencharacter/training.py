"""Training settings for the two training stages, with the paper's values as defaults.

Every default comes from the reference implementation of Open Character Training
(``maiush/OpenCharacterTraining``, its OpenRLHF launch scripts for DPO and SFT); the field
docs say where each one comes from, and where a backend may have to depart from it.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import attrs
from attrs import validators as v

from opencharacter.errors import ConfigError

_positive_int = v.and_(v.instance_of(int), v.ge(1))
_ratio = [v.ge(0.0), v.le(1.0)]


@attrs.frozen(kw_only=True)
class LoRAConfig:
    """The low-rank adapter trained in both stages.

    Attributes:
        rank: adapter rank. Paper: 64 (``--lora_rank 64``).
        alpha: scaling numerator; the update is scaled by alpha / rank. Paper: 128. Tinker fixes
            its own scaling and ignores this value.
        dropout: adapter dropout. Paper: 0.
        target_modules: which linear layers get adapters. Paper: all linear layers for Llama
            and Qwen (``"all-linear"``).
    """

    rank: int = attrs.field(default=64, validator=_positive_int)
    alpha: float = attrs.field(default=128.0, converter=float, validator=v.gt(0.0))
    dropout: float = attrs.field(default=0.0, converter=float, validator=_ratio)
    target_modules: str | tuple[str, ...] = attrs.field(default="all-linear")


@attrs.frozen(kw_only=True)
class _OptimConfig:
    """Optimiser and schedule settings shared by both stages (see the subclasses)."""

    # Optimisation
    learning_rate: float = attrs.field(default=5e-5, converter=float, validator=v.gt(0.0))
    lr_schedule: Literal["cosine", "linear", "constant"] = attrs.field(
        default="cosine", validator=v.in_(("cosine", "linear", "constant"))
    )
    min_lr_ratio: float = attrs.field(default=0.1, converter=float, validator=_ratio)
    warmup_ratio: float = attrs.field(default=0.1, converter=float, validator=_ratio)
    adam_betas: tuple[float, float] = attrs.field(default=(0.9, 0.98), converter=tuple)
    weight_decay: float = attrs.field(default=0.0, converter=float, validator=v.ge(0.0))
    max_grad_norm: float = attrs.field(default=1.0, converter=float, validator=v.ge(0.0))
    # Data
    epochs: int = attrs.field(default=1, validator=_positive_int)
    batch_size: int = attrs.field(default=32, validator=_positive_int)
    micro_batch_size: int | None = attrs.field(default=None, validator=v.optional(_positive_int))
    # Model
    lora: LoRAConfig = attrs.field(factory=LoRAConfig)
    # Reproducibility
    seed: int = attrs.field(default=123456, validator=v.instance_of(int))

    @adam_betas.validator
    def _check_betas(self, _attribute: object, value: tuple[float, ...]) -> None:
        if len(value) != 2 or not all(0.0 <= b < 1.0 for b in value):
            msg = f"adam_betas must be two numbers in [0, 1), got {value!r}"
            raise ConfigError(msg)

    def to_dict(self) -> dict[str, Any]:
        """Return the settings as a JSON-ready dictionary for the run manifest."""
        return attrs.asdict(self)


@attrs.frozen(kw_only=True)
class DPOConfig(_OptimConfig):
    """Settings for the DPO stage (teacher answers preferred over the student's own).

    Attributes:
        beta: DPO temperature. Paper: 0.1 (``--beta 0.1``).
        nll_coef: weight of the negative log-likelihood of the chosen answer, mean per token,
            added to the DPO loss. Paper: 0.1 (``--nll_loss_coef 0.1``).
        kl_coef: weight of a squared log-ratio penalty that keeps the policy near the
            reference token by token, which the summed-log-prob DPO term alone does not: the
            batch mean, over sequences (chosen and rejected each count), of the mean over
            that sequence's answer tokens of ``(log pi - log pi_ref) ** 2``. Not the usual
            KL estimator: the square penalises moving either way. 0 leaves it out. Paper:
            0.001 (``--kl_loss_coef 0.001``, logged by its OpenRLHF fork as ``sq_approx_kl``).
        max_length: pairs whose prompt plus answer exceed this many tokens are dropped.
            Paper: 1,024.
        learning_rate: peak learning rate. Paper: 5e-5 with LoRA rank 64 / alpha 128.
        lr_schedule: decay after warmup. Paper: cosine down to ``min_lr_ratio`` x the peak.
        min_lr_ratio: the cosine floor as a share of the peak. Paper: 0.1.
        warmup_ratio: share of steps spent warming up. Paper: 0.1.
        adam_betas: Adam's (beta1, beta2). Paper: (0.9, 0.98).
        weight_decay: decoupled weight decay. Paper: 0.
        max_grad_norm: gradient clipping norm (0 disables). Paper: 1.0.
        epochs: passes over the pairs. Paper: 1.
        batch_size: pairs per optimiser step (local backends reach it by gradient
            accumulation). Paper: 32.
        micro_batch_size: pairs per forward pass; ``None`` lets the backend choose.
            Paper: 1-2, set by GPU memory.
        lora: the adapter. Paper: rank 64, alpha 128, dropout 0, all linear layers.
        seed: training seed. Paper: 123456.

    The loss is sigmoid DPO on summed answer log-probabilities plus ``nll_coef`` x NLL plus
    ``kl_coef`` x the squared log-ratio term, as the paper's fork computes it. Neither TRL's
    nor Tinker's DPO has the last term; backends add it themselves.

    Examples:
        >>> config = DPOConfig(learning_rate=1e-5)
        >>> config.beta, config.nll_coef, config.kl_coef
        (0.1, 0.1, 0.001)
    """

    beta: float = attrs.field(default=0.1, converter=float, validator=v.gt(0.0))
    nll_coef: float = attrs.field(default=0.1, converter=float, validator=v.ge(0.0))
    kl_coef: float = attrs.field(default=0.001, converter=float, validator=v.ge(0.0))
    max_length: int = attrs.field(default=1024, validator=_positive_int)


@attrs.frozen(kw_only=True)
class SFTConfig(_OptimConfig):
    """Settings for the SFT stage on introspective data, started from the DPO result.

    Attributes:
        max_length: conversations are truncated to this many tokens. Paper: 3,072.
        start: how SFT builds on the DPO checkpoint. ``"stack"`` trains a new adapter on the
            DPO-merged weights, the model the paper evaluated; ``"continue"`` keeps training
            the DPO adapter itself (cheaper, one adapter to ship).

    The optimiser, batch, LoRA and seed fields are those of :class:`DPOConfig`, with the same
    paper values (lr 5e-5 cosine, 1 epoch, batch 32).

    Loss is taken on every assistant turn of each conversation, not only the last one (the
    paper's trainer used the last message only, which corrupted its multi-turn rows).
    """

    max_length: int = attrs.field(default=3072, validator=_positive_int)
    start: Literal["stack", "continue"] = attrs.field(
        default="stack", validator=v.in_(("stack", "continue"))
    )


def total_steps(examples: int, config: DPOConfig | SFTConfig) -> int:
    """Return the optimiser steps a stage takes: ceil(examples / batch_size) x epochs.

    >>> total_steps(100, DPOConfig())
    4
    """
    return -(-examples // config.batch_size) * config.epochs


def learning_rate_at(step: int, steps: int, config: DPOConfig | SFTConfig) -> float:
    """Return the learning rate for 1-based ``step`` of ``steps``: linear warmup, then decay.

    Backends that run their own step loop (Tinker) call this each step; trainers with built-in
    schedulers use the same shape (the paper's ``cosine_with_min_lr``).

    >>> config = DPOConfig(warmup_ratio=0.0)
    >>> learning_rate_at(1, 10, config) == config.learning_rate
    True
    >>> round(learning_rate_at(10, 10, config) / config.learning_rate, 3)
    0.122
    """
    peak = config.learning_rate
    warmup = round(steps * config.warmup_ratio)
    if step <= warmup:
        return peak * step / warmup
    if config.lr_schedule == "constant":
        return peak
    progress = (step - 1 - warmup) / max(1, steps - warmup)
    floor = peak * config.min_lr_ratio
    if config.lr_schedule == "linear":
        return floor + (peak - floor) * (1.0 - progress)
    return floor + (peak - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))
