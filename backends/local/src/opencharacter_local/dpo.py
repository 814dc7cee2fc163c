"""TRL's DPO trainer plus the paper's squared log-ratio penalty (``--kl_loss_coef``).

The paper's OpenRLHF fork adds ``kl_coef`` x the batch mean, over sequences (chosen and
rejected each count), of the mean over each sequence's answer tokens of
``(log pi - log pi_ref) ** 2`` (its ``_get_batch_kl``, logged as ``sq_approx_kl``). TRL has no
such term, so :class:`SquaredKLDPOTrainer` adds it to TRL's own loss.

It needs both models' *per-token* log-probabilities, which exist only inside TRL 1.16's
``DPOTrainer._compute_loss``: the policy forward and then the reference forward (the same
PEFT model with its adapter disabled, or a separate ``ref_model``) each return a
``FusedCausalLMOutput`` whose ``log_probs`` are per token, and TRL sums them before anything
else sees them. Rather than copy that 300-line method, or run the reference a second time, the
trainer puts forward hooks on the two models for the length of the call and keeps those two
outputs: the term reuses the forwards TRL already runs and costs a subtract, square and sum.
The count of captured outputs is checked, so a TRL that calls its models differently fails
loudly instead of penalising the wrong tensors.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch
import trl
from trl.trainer.dpo_trainer import DPOTrainer  # trl exports lazily: mypy needs the module

METRIC = "sq_approx_kl"
"""The key the term's value is logged under, as in the paper's fork."""


def squared_log_ratio(
    policy_logps: torch.Tensor, ref_logps: torch.Tensor, mask: torch.Tensor
) -> torch.Tensor:
    """Return each sequence's mean over its masked tokens of ``(policy - ref) ** 2``.

    A sequence with no masked token gets 0, where the fork would divide by zero.

    Args:
        policy_logps: ``(batch, tokens)`` per-token log-probabilities under the policy.
        ref_logps: the same under the reference.
        mask: ``(batch, tokens)``, 1 on answer tokens and 0 on prompt and padding.

    Returns:
        A ``(batch,)`` tensor, differentiable through ``policy_logps``.

    Examples:
        >>> squared_log_ratio(torch.tensor([[0.0, -1.0, -3.0]]), torch.tensor([[5.0, -2.0, -1.0]]),
        ...                   torch.tensor([[0, 1, 1]]))
        tensor([2.5000])
    """
    weights = mask.to(torch.float32)
    delta = (policy_logps.float() - ref_logps.float()) * weights
    return delta.pow(2).sum(dim=-1) / weights.sum(dim=-1).clamp(min=1.0)


class SquaredKLDPOTrainer(DPOTrainer):
    """``trl.DPOTrainer`` whose loss adds ``kl_coef`` x the squared log-ratio term.

    With ``kl_coef == 0`` every call goes straight to TRL, so training is exactly TRL's. With
    ``kl_coef > 0`` the term's unweighted value is logged each step as :data:`METRIC`.

    Args:
        *args: passed to ``trl.DPOTrainer``.
        kl_coef: the term's weight (paper: 0.001).
        **kwargs: passed to ``trl.DPOTrainer``.

    Raises:
        ValueError: ``kl_coef`` is negative, or positive with ``precompute_ref_log_probs``
            (TRL then keeps only summed reference log-probs, and the term needs them per token).
    """

    def __init__(self, *args: Any, kl_coef: float = 0.0, **kwargs: Any) -> None:
        if kl_coef < 0:
            msg = f"kl_coef must be >= 0, got {kl_coef}"
            raise ValueError(msg)
        super().__init__(*args, **kwargs)
        self.kl_coef = float(kl_coef)
        if self.kl_coef > 0 and self.precompute_ref_logps:
            msg = (
                "kl_coef > 0 needs per-token reference log-probs, but precompute_ref_log_probs "
                "keeps only their sums; turn one of them off"
            )
            raise ValueError(msg)

    def _compute_loss(self, model: Any, inputs: dict[str, Any], return_outputs: bool) -> Any:
        """Return TRL's loss plus ``kl_coef`` x the squared log-ratio term (see the module)."""
        if self.kl_coef == 0:
            return super()._compute_loss(model, inputs, return_outputs)  # type: ignore[no-untyped-call]  # TRL: unannotated
        modules = [self.accelerator.unwrap_model(self.model)]
        if self.ref_model is not None:
            modules.append(self.accelerator.unwrap_model(self.ref_model))
        with _capture_log_probs(modules) as captured:
            result = super()._compute_loss(model, inputs, return_outputs)  # type: ignore[no-untyped-call]  # TRL: unannotated
        if len(captured) != 2:
            msg = (
                f"expected TRL {trl.__version__} to run the policy then the reference once each "
                f"inside _compute_loss, saw {len(captured)} forward passes; the squared "
                "log-ratio term cannot be computed"
            )
            raise RuntimeError(msg)
        mask = inputs["completion_mask"][..., 1:]
        tokens = mask.size(1)  # prompt-learning PEFT prepends virtual tokens, as TRL trims
        policy_logps, ref_logps = (logps[:, -tokens:] for logps in captured)
        per_sequence = squared_log_ratio(policy_logps, ref_logps.detach(), mask)
        term = per_sequence.mean()
        mode = "train" if model.training else "eval"
        gathered = self.accelerator.gather(per_sequence.detach())
        self._metrics[mode][METRIC].append(gathered.mean().item())
        if isinstance(result, tuple):
            loss, *rest = result
            return (loss + self.kl_coef * term, *rest)
        return result + self.kl_coef * term


@contextmanager
def _capture_log_probs(modules: Sequence[torch.nn.Module]) -> Iterator[list[torch.Tensor]]:
    """Collect, in call order, the per-token ``log_probs`` of fused forwards of ``modules``.

    Only TRL's fused-head calls (``fused_lm_head=True``) return ``log_probs``; a plain forward,
    such as the extra one ``return_outputs`` makes, is ignored.
    """
    captured: list[torch.Tensor] = []

    def keep(_module: torch.nn.Module, _args: Any, output: Any) -> None:
        log_probs = getattr(output, "log_probs", None)
        if log_probs is not None:
            captured.append(log_probs)

    handles = [module.register_forward_hook(keep) for module in modules]
    try:
        yield captured
    finally:
        for handle in handles:
            handle.remove()


__all__ = ["METRIC", "SquaredKLDPOTrainer", "squared_log_ratio"]
