r"""Feed a run's rows to your own TRL training: DPO, then SFT, on a LoRA, with TRL's trainers.

A run directory holds TRL's own data formats: ``distill.jsonl`` is conversational preference
data (``prompt``, ``chosen`` and ``rejected`` message lists) and ``sft_data.jsonl`` is
conversational language modelling (``messages``), every row with metadata keys beside them
(``id``, ``trait``, ``source``, ``teacher``...). So ``datasets.load_dataset("json", ...)`` reads
them, and TRL's ``DPOTrainer`` and ``SFTTrainer`` train on them with none of our code: this
script is the whole recipe. It uses the paper's settings: DPO with beta 0.1 plus a 0.1 NLL
term on the chosen answers, LoRA rank 64 and alpha 128 on every linear layer, learning rate
5e-5 with cosine decay to a tenth, batches of 32, one epoch; then SFT on the introspective
data, continuing the same adapter.

Run it on a run that went as far as the sft stage (which assembles ``sft_data.jsonl``; on the
simulated backend that takes a second), with a chat model TRL can train (SFT trains on the
assistant turns only, which needs a chat template TRL knows, such as Qwen3's, or one with
``{% generation %}`` markers):

    opencharacter pipeline loving --backend simulated --scale smoke --run-dir runs/loving \
        --until sft
    python examples/train_with_trl.py --run-dir runs/loving --model Qwen/Qwen3-4B-Instruct-2507

The adapters land in ``RUN_DIR/trl/dpo`` and ``RUN_DIR/trl/sft`` (``--out``), each beside
TRL's ``trainer_state.json`` with the logged losses. ``--max-steps 2 --batch-size 2
--lora-rank 8`` makes it a smoke test on CPU with a small model. The SFT adapter applies to
the model as it is, so our evaluations can judge it against that model:

    python examples/evaluate_other_model.py --model runs/loving/trl/sft \
        --base Qwen/Qwen3-4B-Instruct-2507 --constitution loving --run-dir runs/loving-trl-eval
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

#: The paper's DPO loss: sigmoid DPO plus 0.1 x the mean NLL of the chosen answers. TRL 1.x
#: combines losses by weight; older releases spelled the NLL term ``rpo_alpha=0.1``.
DPO_LOSS: dict[str, Any] = {
    "beta": 0.1,
    "loss_type": ["sigmoid", "sft"],
    "loss_weights": [1.0, 0.1],
}
#: Sequences per forward pass (the paper's 1-2); gradient accumulation makes up the batch.
MICRO_BATCH = 2


def main() -> None:
    """Load the two files, train DPO then SFT, and save each adapter with its logged losses."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", type=Path, required=True, help="a run through sft")
    parser.add_argument("--model", required=True, help="the model to train: a name or folder")
    parser.add_argument("--out", type=Path, help="where the adapters go (default RUN_DIR/trl)")
    parser.add_argument("--max-steps", type=int, default=-1, help="per stage (-1: one epoch)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lora-rank", type=int, default=64, help="alpha is twice the rank")
    parser.add_argument("--learning-rate", type=float, default=5e-5)
    args = parser.parse_args()
    for name in ("distill.jsonl", "sft_data.jsonl"):
        if not (args.run_dir / name).is_file():  # sft_data.jsonl: the sft stage assembles it
            parser.error(f"no {name} in {args.run_dir}; run its stages first: opencharacter "
                         f"pipeline --resume {args.run_dir} --until sft")  # fmt: skip

    # The heavy imports come after the flags parse, as in TRL's own scripts.
    import torch  # noqa: PLC0415
    from datasets import load_dataset  # noqa: PLC0415
    from peft import LoraConfig  # noqa: PLC0415
    from trl import DPOConfig, DPOTrainer, SFTConfig, SFTTrainer  # noqa: PLC0415

    out = args.out or args.run_dir / "trl"
    # The metadata columns are there to choose rows by (a trait, a source); the trainers read
    # only their own columns. TRL 1.x drops the others itself, but a collator or trainer of
    # one's own may not, so keep exactly what is trained on.
    pairs = load_dataset("json", data_files=str(args.run_dir / "distill.jsonl"), split="train")
    print(f"distill.jsonl: {pairs.num_rows} pairs; columns {', '.join(pairs.column_names)}")
    pairs = pairs.select_columns(["prompt", "chosen", "rejected"])
    chats = load_dataset("json", data_files=str(args.run_dir / "sft_data.jsonl"), split="train")
    sources = sorted(set(chats["source"]))
    print(f"sft_data.jsonl: {chats.num_rows} conversations from {', '.join(sources)}")
    chats = chats.select_columns(["messages"])

    gpu = torch.cuda.is_available()
    shared: dict[str, Any] = {
        "learning_rate": args.learning_rate,
        "lr_scheduler_type": "cosine_with_min_lr",
        "lr_scheduler_kwargs": {"min_lr_rate": 0.1},
        "warmup_steps": 0.1,  # a share of the steps
        "adam_beta2": 0.98,
        "num_train_epochs": 1,
        "max_steps": args.max_steps,
        "per_device_train_batch_size": MICRO_BATCH,
        "gradient_accumulation_steps": max(args.batch_size // MICRO_BATCH, 1),
        "logging_steps": 1,
        "save_strategy": "no",
        "report_to": "none",
        "bf16": gpu,
        "use_cpu": not gpu,
        "seed": 0,
    }
    rank = args.lora_rank
    lora = LoraConfig(r=rank, lora_alpha=2 * rank, target_modules="all-linear",
                      task_type="CAUSAL_LM")  # fmt: skip

    dpo_args = DPOConfig(output_dir=str(out / "dpo"), max_length=1024, **DPO_LOSS, **shared)
    dpo = DPOTrainer(model=args.model, args=dpo_args, train_dataset=pairs, peft_config=lora)
    dpo.train()
    finish(dpo, "dpo")

    # SFT keeps training the DPO adapter, so the final adapter applies to --model as it is
    # (our SFTConfig(start="continue")). The paper merged the DPO adapter into the weights and
    # trained a new one on top (start="stack"): pass model=dpo.model.merge_and_unload() and
    # peft_config=lora instead, and keep the merged weights, which that adapter applies to.
    sft_args = SFTConfig(output_dir=str(out / "sft"), max_length=3072, assistant_only_loss=True,
                         **shared)  # fmt: skip
    sft = SFTTrainer(model=dpo.model, args=sft_args, train_dataset=chats,
                     processing_class=dpo.processing_class)  # fmt: skip
    sft.train()
    finish(sft, "sft")


def finish(trainer: Any, stage: str) -> None:
    """Save the adapter and TRL's log of the run (``trainer_state.json``); print the losses."""
    trainer.save_model()
    trainer.save_state()
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    print(f"{stage}: {len(losses)} steps, loss {losses[0]:.4f} -> {losses[-1]:.4f}; "
          f"adapter in {trainer.args.output_dir}")  # fmt: skip


if __name__ == "__main__":
    main()
