"""The paper's DPO loss on Tinker, computed on the client by ``forward_backward_custom``.

Tinker runs a forward pass, hands this function each datum's per-token log-probabilities,
and back-propagates the loss we return through a second pass. Datums come in pairs, chosen
then rejected; each sequence's mask marks its answer tokens (the answer and its end-of-turn).

loss = DPO + nll_coef x NLL + kl_coef x KL, where

* DPO = mean over pairs of -log sigmoid(beta x ((log pi_c - log ref_c) - (log pi_r - log ref_r))),
  with summed answer log-probabilities (the paper's, as TRL's sigmoid loss);
* NLL = the chosen answers' negative log-likelihood, mean per token of each answer, then mean
  over the answers (the paper's ``--nll_loss_coef``, as its fork computes it; TRL's ``sft``
  term, used by the local backend, pools every chosen token of a micro-batch instead, which
  agrees at the paper's micro-batch of one pair);
* KL = the mean over every sequence, chosen and rejected, of the mean over its answer tokens
  of (log pi - log ref)^2 (the paper's ``--kl_loss_coef``, logged there as ``sq_approx_kl``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F


def paper_dpo_loss(
    policy: Sequence[torch.Tensor],
    reference: Sequence[torch.Tensor],
    *,
    beta: float,
    nll_coef: float,
    kl_coef: float,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Return the loss and its metrics for interleaved (chosen, rejected) answers.

    Args:
        policy: each sequence's per-token log-probabilities over its answer tokens, chosen
            and rejected alternating (``[c0, r0, c1, r1, ...]``).
        reference: the reference model's log-probabilities of the same tokens, same order.
        beta: the DPO temperature.
        nll_coef: weight of the chosen answers' mean per-token NLL.
        kl_coef: weight of the squared log-ratio term.

    Returns:
        The scalar loss (differentiable in ``policy``) and ``dpo_loss``, ``nll``, ``kl``,
        ``accuracy``, ``margin``, ``chosen_reward`` and ``rejected_reward``.
    """
    if len(policy) != len(reference) or len(policy) % 2:
        msg = "expected chosen and rejected sequences in pairs, with a reference for each"
        raise ValueError(msg)
    ratios = [p - r.to(p.dtype) for p, r in zip(policy, reference, strict=True)]
    summed = torch.stack([ratio.sum() for ratio in ratios])
    chosen, rejected = summed[0::2], summed[1::2]
    logits = beta * (chosen - rejected)
    dpo = -F.logsigmoid(logits).mean()
    nll = -torch.stack([answer.mean() for answer in policy[0::2]]).mean()
    kl = torch.stack([(ratio**2).mean() for ratio in ratios]).mean()
    loss = dpo + nll_coef * nll + kl_coef * kl
    values = {
        "dpo_loss": dpo,
        "nll": nll,
        "kl": kl,
        "accuracy": (logits > 0).float().mean(),
        "margin": logits.mean(),
        "chosen_reward": beta * chosen.mean(),
        "rejected_reward": beta * rejected.mean(),
    }
    return loss, {name: value.detach().item() for name, value in values.items()}
