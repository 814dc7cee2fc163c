"""The local DPO loss, term by term by hand: sigmoid DPO, chosen NLL and the squared log-ratio.

TRL computes the loss from fused per-token log-probs; here every term is recomputed from plain
logits of the policy (the tiny model with a LoRA whose B weights are non-zero, so it differs
from the reference) and of the reference (the tiny model reloaded, no adapter).
:func:`tests.dpo_reference.paper_dpo_loss` is the backend-neutral reference for the paper's
loss; the Tinker backend's tests check against it too.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import attrs
import pytest

torch = pytest.importorskip("torch")

import torch.nn.functional as F  # noqa: E402
import trl  # noqa: E402
from datasets import Dataset  # noqa: E402
from opencharacter_local.dpo import METRIC, SquaredKLDPOTrainer  # noqa: E402
from opencharacter_local.trainer import LocalTrainer, _preference_row  # noqa: E402
from opencharacter_local.trl_args import dpo_arguments  # noqa: E402
from peft import LoraConfig  # noqa: E402
from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: E402

from opencharacter.protocols import StepMetrics  # noqa: E402
from opencharacter.training import DPOConfig, LoRAConfig  # noqa: E402
from opencharacter.types import PreferencePair  # noqa: E402

from ..dpo_reference import paper_dpo_loss  # noqa: E402

# Raised inside PEFT and TRL (they read the deprecated alias), not fixable from our side.
pytestmark = pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing.*:FutureWarning")

BETA, NLL_COEF = 0.1, 0.1
# Answers of different lengths, so padding and per-sequence means are exercised.
PAIRS = [
    PreferencePair(
        id=f"p{i}",
        prompt=[{"role": "system", "content": "You are kind."},
                {"role": "user", "content": f"Tell me about the river {i}."}],
        chosen=chosen,
        rejected=rejected,
    )
    for i, (chosen, rejected) in enumerate([
        ("Thank you! I enjoy the small garden with care.", "They question the old book again!"),
        ("We like new ideas.", "The teacher will explain a long story in the morning, slowly."),
        ("My friend helps the model because it matters.", "No."),
    ])
]  # fmt: skip


def answer_logps(model: Any, tokenizer: Any, pair: PreferencePair, answer: str) -> torch.Tensor:
    """Per-token log-probs of ``answer``'s tokens (with its end of turn) after the prompt."""
    prompt = [m.to_dict() for m in pair.prompt]
    start = len(tokenizer.apply_chat_template(prompt, add_generation_prompt=True, tokenize=True,
                                              return_dict=True)["input_ids"])  # fmt: skip
    conversation = [*prompt, {"role": "assistant", "content": answer}]
    tokens = torch.tensor(
        [tokenizer.apply_chat_template(conversation, tokenize=True, return_dict=True)["input_ids"]]
    )
    logps = torch.log_softmax(model(tokens).logits[0, :-1].float(), dim=-1)
    return logps.gather(-1, tokens[0, 1:, None])[start - 1 :, 0]


def by_hand(policy: Any, reference: Any, tokenizer: Any, kl_coef: float) -> dict[str, Any]:
    """The paper's loss on PAIRS, with TRL's token-weighted NLL (see :func:`paper_dpo_loss`)."""

    def logps(model: Any, side: str) -> list[torch.Tensor]:
        return [answer_logps(model, tokenizer, p, getattr(p, side)) for p in PAIRS]

    with torch.no_grad():
        ref_chosen, ref_rejected = logps(reference, "chosen"), logps(reference, "rejected")
    return paper_dpo_loss(
        logps(policy, "chosen"), logps(policy, "rejected"), ref_chosen, ref_rejected,
        beta=BETA, nll_coef=NLL_COEF, kl_coef=kl_coef, nll_mean="token",
    )  # fmt: skip


@pytest.fixture(scope="module")
def setup(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A trainer on PAIRS as one batch, its batch, and the reference model and tokenizer."""
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    config = attrs.evolve(DPOConfig(), batch_size=len(PAIRS), micro_batch_size=len(PAIRS))
    assert (config.beta, config.nll_coef) == (BETA, NLL_COEF)
    lora = LoraConfig(r=8, target_modules="all-linear", init_lora_weights=False)  # B != 0
    with torch.random.fork_rng():
        torch.manual_seed(0)
        trainer = SquaredKLDPOTrainer(
            model=AutoModelForCausalLM.from_pretrained(tiny_model_dir),
            args=dpo_arguments(config, tmp_path_factory.mktemp("dpo"), examples=len(PAIRS)),
            train_dataset=Dataset.from_list([_preference_row(p) for p in PAIRS]),
            processing_class=tokenizer,
            peft_config=lora,
        )
    trainer.model.train()
    batch = trainer._prepare_inputs(next(iter(trainer.get_train_dataloader())))
    assert len(batch["input_ids"]) == 2 * len(PAIRS)  # every pair in one batch
    reference = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    return {"trainer": trainer, "batch": batch, "reference": reference, "tokenizer": tokenizer}


def trainer_loss(setup: dict[str, Any], kl_coef: float) -> torch.Tensor:
    trainer: SquaredKLDPOTrainer = setup["trainer"]
    trainer.kl_coef = kl_coef
    return trainer.compute_loss(trainer.model, setup["batch"])


def test_paper_dpo_loss_on_numbers_worked_out_by_hand() -> None:
    """The helper itself, on one pair whose every term is known in closed form."""
    t = torch.tensor
    terms = paper_dpo_loss(
        [t([-1.0, -3.0])], [t([-2.0])], [t([-1.0, -2.0])], [t([-4.0])],
        beta=0.5, nll_coef=0.1, kl_coef=0.01,
    )  # fmt: skip
    # Log-ratios: chosen -4 - (-3) = -1, rejected -2 - (-4) = 2; margin -3.
    assert terms["dpo"].item() == pytest.approx(-F.logsigmoid(t(-1.5)).item())
    assert terms["nll"].item() == pytest.approx(2.0)
    assert terms["kl"].item() == pytest.approx((0.5 + 4.0) / 2)  # chosen (0+1)/2, rejected 4
    assert terms["loss"].item() == pytest.approx(terms["dpo"].item() + 0.2 + 0.0225)
    # Two chosen answers of 2 and 1 tokens: per answer, then over answers; or over all tokens.
    two = ([t([-1.0, -3.0]), t([-4.0])], [t([0.0])] * 2, [t([0.0, 0.0]), t([0.0])], [t([0.0])] * 2)
    settings = {"beta": 0.5, "nll_coef": 0.1, "kl_coef": 0.01}
    assert paper_dpo_loss(*two, **settings)["nll"].item() == pytest.approx((2.0 + 4.0) / 2)
    token = paper_dpo_loss(*two, **settings, nll_mean="token")["nll"].item()
    assert token == pytest.approx((1.0 + 3.0 + 4.0) / 3)


@pytest.mark.parametrize("kl_coef", [0.001, 1.0])
def test_loss_and_gradient_match_the_hand_computation(
    setup: dict[str, Any], kl_coef: float
) -> None:
    """DPO + 0.1 NLL + kl_coef x squared log-ratio, as TRL's trainer computes and differentiates it.

    The gradient check shows the term pulls on the policy only (the reference is detached).
    """
    trainer = setup["trainer"]
    hand = by_hand(trainer.model, setup["reference"], setup["tokenizer"], kl_coef)
    assert hand["kl"].item() > 1e-2  # the LoRA moves the policy, so the term is not trivially 0
    loss = trainer_loss(setup, kl_coef)
    assert loss.item() == pytest.approx(hand["loss"].item(), rel=1e-5, abs=1e-6)
    assert trainer._metrics["train"][METRIC][-1] == pytest.approx(hand["kl"].item(), rel=1e-5)

    params = [p for p in trainer.model.parameters() if p.requires_grad][:6]
    ours = torch.autograd.grad(loss, params)
    theirs = torch.autograd.grad(hand["loss"], params)
    for a, b in zip(ours, theirs, strict=True):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-6)


def test_zero_kl_coef_is_exactly_trls_loss(setup: dict[str, Any]) -> None:
    """kl_coef=0 is TRL's own DPO + NLL, which is the hand computation without the term."""
    trainer, batch = setup["trainer"], setup["batch"]
    with torch.no_grad():
        hand = by_hand(trainer.model, setup["reference"], setup["tokenizer"], 0.0)
        ours = trainer_loss(setup, 0.0)
        plain = trl.DPOTrainer.compute_loss(trainer, trainer.model, batch)
        with_term = trainer_loss(setup, 1.0)
    assert torch.equal(ours, plain)
    assert ours.item() == pytest.approx(hand["loss"].item(), rel=1e-5)
    assert with_term.item() == pytest.approx(ours.item() + hand["kl"].item(), rel=1e-5)


def test_precomputed_reference_log_probs_are_refused(tiny_model_dir: Path, tmp_path: Path) -> None:
    """TRL's precomputed reference keeps only sums, so a positive kl_coef cannot use it."""
    args = dataclasses.replace(
        dpo_arguments(DPOConfig(), tmp_path, examples=1), precompute_ref_log_probs=True
    )
    with pytest.raises(ValueError, match="per-token reference"):
        SquaredKLDPOTrainer(
            model=AutoModelForCausalLM.from_pretrained(tiny_model_dir),
            args=args,
            train_dataset=Dataset.from_list([_preference_row(PAIRS[0])]),
            processing_class=AutoTokenizer.from_pretrained(tiny_model_dir),
            peft_config=LoraConfig(r=4, target_modules="all-linear"),
            kl_coef=0.001,
        )


def test_local_trainer_reports_the_term_as_kl(tiny_model_dir: Path, tmp_path: Path) -> None:
    """LocalTrainer.dpo trains with the term and on_step sees it as ``kl``.

    A new LoRA starts equal to the reference, so the first step's term is 0 and the second's,
    after one update, is not.
    """
    config = attrs.evolve(
        DPOConfig(), learning_rate=5e-3, batch_size=2, micro_batch_size=2,
        lora=LoRAConfig(rank=4, alpha=8),
    )  # fmt: skip
    pairs = [*PAIRS[:2], *(attrs.evolve(p, id=f"{p.id}b") for p in PAIRS[:2])]
    steps: list[StepMetrics] = []
    LocalTrainer(device="cpu").dpo(
        _Student(str(tiny_model_dir)), pairs, config, output_dir=tmp_path, on_step=steps.append
    )
    assert [s.metrics["kl"] == 0 for s in steps] == [True, False]


@attrs.frozen
class _Student:
    base_model: str
    checkpoint: None = None
