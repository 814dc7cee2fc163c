"""The Tinker backend's DPO loss equals the paper's, computed by hand, term by term."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from opencharacter_tinker.losses import paper_dpo_loss  # noqa: E402

from ..dpo_reference import paper_dpo_loss as by_hand  # noqa: E402


def _batch(seed: int, pairs: int = 3) -> tuple[list, list]:
    """Answers of different lengths; policy and reference log-probs that differ."""
    generator = torch.Generator().manual_seed(seed)
    policy, reference = [], []
    for i in range(2 * pairs):
        length = 3 + (5 * i) % 7
        ref = -torch.rand(length, generator=generator) * 4
        policy.append((ref + torch.randn(length, generator=generator) * 0.3).requires_grad_())
        reference.append(ref)
    return policy, reference


@pytest.mark.parametrize("kl_coef", [0.0, 0.001, 1.0])
def test_each_term_and_the_gradient_match_the_hand_computation(kl_coef):
    """DPO, NLL (per answer, then over answers) and KL match; so does the gradient."""
    policy, reference = _batch(seed=3)
    loss, metrics = paper_dpo_loss(policy, reference, beta=0.1, nll_coef=0.1, kl_coef=kl_coef)
    expected = by_hand(policy[0::2], policy[1::2], reference[0::2], reference[1::2],
                       beta=0.1, nll_coef=0.1, kl_coef=kl_coef, nll_mean="sequence")  # fmt: skip
    assert metrics["dpo_loss"] == pytest.approx(expected["dpo"].item(), abs=1e-6)
    assert metrics["nll"] == pytest.approx(expected["nll"].item(), abs=1e-6)
    assert metrics["kl"] == pytest.approx(expected["kl"].item(), abs=1e-6)
    assert loss.item() == pytest.approx(expected["loss"].item(), abs=1e-6)
    ours = torch.autograd.grad(loss, policy, retain_graph=True)
    theirs = torch.autograd.grad(expected["loss"], policy)
    for a, b in zip(ours, theirs, strict=True):
        assert torch.allclose(a, b, atol=1e-6)


def test_at_the_reference_the_dpo_term_is_log_2_and_the_kl_term_zero():
    """With policy = reference every margin is 0: DPO is ln 2, KL is 0, accuracy 0."""
    _, reference = _batch(seed=5)
    policy = [r.clone().requires_grad_() for r in reference]
    _, metrics = paper_dpo_loss(policy, reference, beta=0.1, nll_coef=0.1, kl_coef=0.001)
    assert metrics["dpo_loss"] == pytest.approx(math.log(2))
    assert metrics["kl"] == 0.0
    assert metrics["accuracy"] == 0.0


def test_unpaired_sequences_are_refused():
    """An odd number of sequences cannot be (chosen, rejected) pairs."""
    policy, reference = _batch(seed=1)
    with pytest.raises(ValueError, match="pairs"):
        paper_dpo_loss(policy[:3], reference[:3], beta=0.1, nll_coef=0.1, kl_coef=0.0)
