"""The paper's DPO loss computed by hand: the reference every backend's DPO is tested against."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F


def paper_dpo_loss(
    policy_chosen: Sequence[torch.Tensor],
    policy_rejected: Sequence[torch.Tensor],
    ref_chosen: Sequence[torch.Tensor],
    ref_rejected: Sequence[torch.Tensor],
    *,
    beta: float,
    nll_coef: float,
    kl_coef: float,
    nll_mean: Literal["sequence", "token"] = "sequence",
) -> dict[str, torch.Tensor]:
    """Return the paper's DPO loss and its terms for one batch of pairs, by hand.

    Each argument holds one 1-D tensor per pair: the log-probabilities of that pair's answer
    tokens (chosen or rejected) under the policy or the reference.

    * ``dpo``: mean over pairs of ``-logsigmoid(beta * (chosen log-ratio - rejected
      log-ratio))``, each log-ratio summed over the answer's tokens;
    * ``nll``: the chosen answers' negative log-likelihood, mean per token. The paper's fork
      averages each answer's tokens, then the answers (``nll_mean="sequence"``); TRL's ``"sft"``
      loss averages all chosen tokens of the batch at once (``"token"``). They agree when the
      batch holds one pair or answers of one length;
    * ``kl``: mean over all 2 x pairs sequences of the mean over its tokens of
      ``(log pi - log pi_ref) ** 2``;
    * ``loss``: ``dpo + nll_coef * nll + kl_coef * kl``.
    """
    pairs = range(len(policy_chosen))
    dpo = torch.stack([
        -F.logsigmoid(beta * ((policy_chosen[i].sum() - ref_chosen[i].sum())
                              - (policy_rejected[i].sum() - ref_rejected[i].sum())))
        for i in pairs
    ]).mean()  # fmt: skip
    if nll_mean == "sequence":
        nll = -torch.stack([answer.mean() for answer in policy_chosen]).mean()
    else:
        nll = -torch.cat(list(policy_chosen)).mean()
    kl = torch.stack([
        ((policy - ref) ** 2).mean()
        for policy, ref in zip([*policy_chosen, *policy_rejected],
                               [*ref_chosen, *ref_rejected], strict=True)
    ]).mean()  # fmt: skip
    return {"dpo": dpo, "nll": nll, "kl": kl, "loss": dpo + nll_coef * nll + kl_coef * kl}
