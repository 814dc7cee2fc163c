"""The local trainer: TRL DPO and SFT on a LoRA, with a tiny random Qwen3 on CPU."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs
import pytest

torch = pytest.importorskip("torch")

import trl  # noqa: E402
from datasets import Dataset  # noqa: E402
from opencharacter_local.merging import merge_adapter  # noqa: E402
from opencharacter_local.trainer import LocalTrainer  # noqa: E402
from opencharacter_local.trl_args import dpo_arguments, sft_arguments  # noqa: E402
from peft import PeftModel  # noqa: E402
from transformers import AutoModelForCausalLM, AutoTokenizer, get_scheduler  # noqa: E402

from opencharacter.errors import ConfigError  # noqa: E402
from opencharacter.protocols import StepMetrics  # noqa: E402
from opencharacter.training import DPOConfig, LoRAConfig, SFTConfig  # noqa: E402
from opencharacter.types import ChatExample, Checkpoint, PreferencePair  # noqa: E402

# Raised inside PEFT and TRL (they read the deprecated alias), not fixable from our side.
pytestmark = pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing.*:FutureWarning")

# Tiny and fast: rank 8, a high learning rate, 16 examples in 4 steps of 4.
FAST = {
    "learning_rate": 5e-3,
    "batch_size": 4,
    "micro_batch_size": 2,
    "lora": LoRAConfig(rank=8, alpha=16),
}
DPO = attrs.evolve(DPOConfig(), **FAST)
SFT = attrs.evolve(SFTConfig(), **FAST)

CHOSEN = "Thank you! I enjoy the small garden with care."
REJECTED = "They question the old book again!"
PAIRS = [
    PreferencePair(
        id=f"p{i}",
        prompt=[{"role": "system", "content": "You are kind."},
                {"role": "user", "content": f"Tell me about the river {i}."}],
        chosen=CHOSEN,
        rejected=REJECTED,
    )
    for i in range(16)
]  # fmt: skip
EXAMPLES = [
    ChatExample(
        id=f"c{i}",
        messages=[
            {"role": "system", "content": "You are the model."},
            {"role": "user", "content": f"Hello! How are you {i}?"},
            {"role": "assistant", "content": "I am fine, thank you."},
            {"role": "user", "content": "What do you think about it?"},
            {"role": "assistant", "content": "That is a good question."},
        ],
    )
    for i in range(16)
]


@attrs.frozen
class Student:
    """The two members of the Student protocol the trainer reads."""

    base_model: str
    checkpoint: Checkpoint | None = None


@pytest.fixture(scope="session")
def tiny(tiny_model_dir: Path) -> str:
    """The shared tiny model's folder, as the string a student's ``base_model`` holds."""
    return str(tiny_model_dir)


@pytest.fixture(scope="module")
def dpo(tiny: str, tmp_path_factory: pytest.TempPathFactory) -> Checkpoint:
    return LocalTrainer(device="cpu").dpo(
        Student(tiny), PAIRS, DPO, output_dir=tmp_path_factory.mktemp("dpo")
    )


@pytest.fixture(scope="module")
def stacked(tiny: str, dpo: Checkpoint, tmp_path_factory: pytest.TempPathFactory) -> Checkpoint:
    return LocalTrainer(device="cpu").sft(
        Student(tiny, dpo), EXAMPLES, SFT, output_dir=tmp_path_factory.mktemp("sft")
    )


def load(weights: str, adapter: str | None = None) -> Any:
    model = AutoModelForCausalLM.from_pretrained(weights)
    return (PeftModel.from_pretrained(model, adapter) if adapter else model).eval()


def ids(tokenizer: Any, messages: list[dict[str, str]], **kwargs: Any) -> list[int]:
    return tokenizer.apply_chat_template(messages, return_dict=True, **kwargs)["input_ids"]


@torch.no_grad()
def answer_logprob(model: Any, tokenizer: Any, pair: PreferencePair, answer: str) -> float:
    prompt = [m.to_dict() for m in pair.prompt]
    start = len(ids(tokenizer, prompt, add_generation_prompt=True))
    tokens = torch.tensor([ids(tokenizer, [*prompt, {"role": "assistant", "content": answer}])])
    logprobs = torch.log_softmax(model(tokens).logits[0, :-1], dim=-1)
    return logprobs.gather(-1, tokens[0, 1:, None])[start - 1 :].sum().item()


def margin(model: Any, tokenizer: Any) -> float:
    return sum(
        answer_logprob(model, tokenizer, p, p.chosen)
        - answer_logprob(model, tokenizer, p, p.rejected)
        for p in PAIRS
    )


@torch.no_grad()
def assistant_nll(model: Any, tokenizer: Any) -> float:
    """Mean NLL per assistant token (content and end-of-turn) over the SFT conversations."""
    total, count = 0.0, 0
    for example in EXAMPLES:
        encoded = tokenizer.apply_chat_template(
            [m.to_dict() for m in example.messages],
            return_dict=True,
            return_assistant_tokens_mask=True,
        )
        tokens = torch.tensor([encoded["input_ids"]])
        mask = torch.tensor(encoded["assistant_masks"][1:], dtype=torch.bool)
        logprobs = torch.log_softmax(model(tokens).logits[0, :-1], dim=-1)
        total -= logprobs.gather(-1, tokens[0, 1:, None])[mask].sum().item()
        count += int(mask.sum())
    return total / count


def probe_logits(model: Any, tokenizer: Any) -> Any:
    with torch.no_grad():
        return model(torch.tensor([ids(tokenizer, EXAMPLES[0].to_row()["messages"])])).logits


def test_dpo_arguments_carry_the_paper_settings_and_nll_term(tmp_path: Path) -> None:
    """The TRL config adds 0.1 x chosen NLL to sigmoid DPO and keeps every paper setting."""
    args = dpo_arguments(DPOConfig(), tmp_path, examples=100)
    assert args.loss_type == ["sigmoid", "sft"]
    assert args.loss_weights == [1.0, 0.1]
    assert args.beta == 0.1
    assert args.learning_rate == 5e-5
    assert args.lr_scheduler_type == "cosine_with_min_lr"
    assert args.lr_scheduler_kwargs == {"min_lr_rate": 0.1}
    assert (args.adam_beta1, args.adam_beta2, args.weight_decay) == (0.9, 0.98, 0.0)
    assert (args.max_grad_norm, args.num_train_epochs, args.seed) == (1.0, 1, 123456)
    assert args.per_device_train_batch_size * args.gradient_accumulation_steps == 32
    assert args.max_length == 1024
    assert (args.use_cpu, args.bf16) == (True, False)


def test_sft_arguments_train_every_assistant_turn(tmp_path: Path) -> None:
    """SFT uses TRL's assistant-only loss, the paper's length and the effective batch."""
    args = sft_arguments(SFTConfig(micro_batch_size=4), tmp_path, examples=100)
    assert args.assistant_only_loss is True
    assert args.max_length == 3072
    assert (args.per_device_train_batch_size, args.gradient_accumulation_steps) == (4, 8)


@pytest.mark.parametrize(
    ("processes", "micro", "accumulation", "steps"),
    [(1, 2, 16, 32), (4, 2, 4, 32), (3, 2, 6, 28), (64, 1, 1, 16)],
)
def test_processes_share_the_batch_instead_of_multiplying_it(
    tmp_path: Path, processes: int, micro: int, accumulation: int, steps: int
) -> None:
    """Micro-batch x accumulation x processes is the config's 32, rounded up where it must be.

    On 3 processes the batch is 36 (28 steps for 1,000 pairs); on 64 it cannot be under 64.
    """
    args = dpo_arguments(DPOConfig(), tmp_path, examples=1000, processes=processes)
    assert (args.per_device_train_batch_size, args.gradient_accumulation_steps) == (
        micro,
        accumulation,
    )
    assert args.warmup_steps == round(steps * 0.1)


@pytest.mark.parametrize("schedule", ["cosine", "linear", "constant"])
def test_schedule_warms_up_then_decays_to_the_floor(tmp_path: Path, schedule: str) -> None:
    """The scheduler TRL builds from our config ends at min_lr_ratio x peak (constant stays)."""
    config = attrs.evolve(DPOConfig(), lr_schedule=schedule, warmup_ratio=0.2)
    args = dpo_arguments(config, tmp_path, examples=320, micro_batch_size=32)  # 10 steps
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=args.learning_rate)
    scheduler = get_scheduler(
        args.lr_scheduler_type,
        optimizer,
        num_warmup_steps=args.warmup_steps,
        num_training_steps=10,
        scheduler_specific_kwargs=args.lr_scheduler_kwargs,
    )
    rates = []
    for _ in range(10):
        rates.append(scheduler.get_last_lr()[0])
        optimizer.step()
        scheduler.step()
    assert args.warmup_steps == 2
    assert rates[2] == pytest.approx(5e-5)
    floor = 5e-5 if schedule == "constant" else 5e-6
    assert scheduler.get_last_lr()[0] == pytest.approx(floor)


def test_dpo_widens_the_chosen_over_rejected_margin(tiny: str, dpo: Checkpoint) -> None:
    """After DPO the adapter prefers the chosen answers by more log-probability than the base."""
    tokenizer = AutoTokenizer.from_pretrained(tiny)
    before = margin(load(tiny), tokenizer)
    after = margin(load(tiny, dpo.uri), tokenizer)
    assert after > before + 10.0
    assert (dpo.kind, dpo.backend, dpo.base_model, dpo.parent) == ("dpo", "local", tiny, None)
    assert dpo.meta["steps"] == 4
    assert dpo.meta["examples"] == 16
    assert "base_weights" not in dpo.meta
    assert {"adapter_config.json", "adapter_model.safetensors", "tokenizer_config.json"} <= {
        p.name for p in Path(dpo.uri).iterdir()
    }


def test_dpo_reports_each_step_and_drops_pairs_over_max_length(tiny: str, tmp_path: Path) -> None:
    """on_step sees every step's loss, lr, accuracy and margin; too-long pairs are not trained."""
    long = attrs.evolve(PAIRS[0], id="long", chosen=CHOSEN * 40)
    steps: list[StepMetrics] = []
    checkpoint = LocalTrainer(device="cpu").dpo(
        Student(tiny), [*PAIRS[:8], long], attrs.evolve(DPO, max_length=64),
        output_dir=tmp_path, on_step=steps.append,
    )  # fmt: skip
    assert (checkpoint.meta["examples"], checkpoint.meta["dropped"]) == (8, 1)
    assert [(s.stage, s.step, s.total_steps) for s in steps] == [("dpo", 1, 2), ("dpo", 2, 2)]
    assert {"loss", "lr", "accuracy", "margin"} <= set(steps[-1].metrics)


def test_sft_trains_on_assistant_tokens_only(tiny: str, tmp_path: Path) -> None:
    """The collator's labels cover exactly each assistant reply and its <|im_end|>."""
    tokenizer = AutoTokenizer.from_pretrained(tiny)
    trainer = trl.SFTTrainer(
        model=load(tiny),
        args=sft_arguments(SFT, tmp_path, examples=1),
        train_dataset=Dataset.from_list([{"messages": EXAMPLES[0].to_row()["messages"]}]),
        processing_class=tokenizer,
    )
    batch = trainer.data_collator([trainer.train_dataset[0]])
    trained = batch["input_ids"][batch["labels"] != -100]
    assert tokenizer.decode(trained) == (
        "I am fine, thank you.<|im_end|>That is a good question.<|im_end|>"
    )


def test_sft_lowers_the_loss_on_assistant_tokens(
    tiny: str, dpo: Checkpoint, stacked: Checkpoint
) -> None:
    """SFT stacked on the DPO model makes the assistant turns more likely."""
    tokenizer = AutoTokenizer.from_pretrained(tiny)
    before = assistant_nll(load(tiny, dpo.uri), tokenizer)
    after = assistant_nll(load(stacked.meta["base_weights"], stacked.uri), tokenizer)
    assert after < before - 0.2


def test_adapter_reloads_exactly_and_merges_within_tolerance(
    tiny: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The saved adapter reproduces the trained model's logits, and so does the merged export."""
    tokenizer = AutoTokenizer.from_pretrained(tiny)
    trained: list[Any] = []
    save_model = trl.DPOTrainer.save_model

    def capture(self: Any, *args: Any, **kwargs: Any) -> None:
        trained.append(probe_logits(self.model.eval(), tokenizer))
        save_model(self, *args, **kwargs)

    monkeypatch.setattr(trl.DPOTrainer, "save_model", capture)
    checkpoint = LocalTrainer(device="cpu").dpo(
        Student(tiny), PAIRS[:4], DPO, output_dir=tmp_path / "dpo"
    )
    reloaded = probe_logits(load(tiny, checkpoint.uri), tokenizer)
    merged = probe_logits(load(str(merge_adapter(checkpoint, tmp_path / "merged"))), tokenizer)
    assert torch.equal(reloaded, trained[0])
    assert torch.allclose(merged, reloaded, atol=1e-4)
    assert not torch.allclose(reloaded, probe_logits(load(tiny), tokenizer), atol=1e-4)


def test_dpo_resumes_from_its_last_checkpoint(tiny: str, dpo: Checkpoint, tmp_path: Path) -> None:
    """An interrupted stage resumes at its saved step, ends as an unbroken run, then is reused."""

    def interrupt(step: StepMetrics) -> None:
        if step.step == 3:
            raise KeyboardInterrupt

    trainer = LocalTrainer(device="cpu", save_steps=1)
    with pytest.raises(KeyboardInterrupt):
        trainer.dpo(Student(tiny), PAIRS, DPO, output_dir=tmp_path, on_step=interrupt)
    assert [p.name for p in (tmp_path / "trainer").glob("checkpoint-*")] == ["checkpoint-2"]

    steps: list[StepMetrics] = []
    resumed = trainer.dpo(Student(tiny), PAIRS, DPO, output_dir=tmp_path, on_step=steps.append)
    assert [s.step for s in steps] == [3, 4]
    assert resumed.meta["steps"] == 4
    assert not (tmp_path / "trainer").exists()
    tokenizer = AutoTokenizer.from_pretrained(tiny)
    assert torch.allclose(
        probe_logits(load(tiny, resumed.uri), tokenizer),
        probe_logits(load(tiny, dpo.uri), tokenizer),
        atol=1e-5,
    )

    again = trainer.dpo(Student(tiny), PAIRS, DPO, output_dir=tmp_path, on_step=steps.append)
    assert again == resumed
    assert len(steps) == 2
    with pytest.raises(ConfigError, match="other inputs"):
        trainer.dpo(Student(tiny), PAIRS[:8], DPO, output_dir=tmp_path)


def test_stack_trains_a_new_adapter_on_the_merged_dpo_weights(
    tiny: str, dpo: Checkpoint, stacked: Checkpoint, tmp_path: Path
) -> None:
    """'stack' saves DPO-merged weights once and returns an adapter that applies to them."""
    tokenizer = AutoTokenizer.from_pretrained(tiny)
    base_weights = stacked.meta["base_weights"]
    assert (stacked.kind, stacked.parent) == ("sft", dpo.uri)
    assert Path(base_weights) == Path(stacked.uri).parent / "base"
    assert torch.allclose(
        probe_logits(load(base_weights), tokenizer),
        probe_logits(load(tiny, dpo.uri), tokenizer),
        atol=1e-4,
    )
    exported = merge_adapter(stacked, tmp_path)
    assert torch.allclose(
        probe_logits(load(str(exported)), tokenizer),
        probe_logits(load(base_weights, stacked.uri), tokenizer),
        atol=1e-4,
    )


def test_continue_keeps_training_the_dpo_adapter(
    tiny: str, dpo: Checkpoint, tmp_path: Path
) -> None:
    """'continue' trains the DPO adapter further on the base model, with no merged weights."""
    checkpoint = LocalTrainer(device="cpu").sft(
        Student(tiny, dpo), EXAMPLES[:8], attrs.evolve(SFT, start="continue"), output_dir=tmp_path
    )
    tokenizer = AutoTokenizer.from_pretrained(tiny)
    assert (checkpoint.kind, checkpoint.parent) == ("sft", dpo.uri)
    assert "base_weights" not in checkpoint.meta
    assert assistant_nll(load(tiny, checkpoint.uri), tokenizer) < assistant_nll(
        load(tiny, dpo.uri), tokenizer
    )
