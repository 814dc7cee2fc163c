"""Stages 3, 5 and 6: DPO on the pairs, the SFT data set, and SFT from the DPO checkpoint.

Training goes through the :class:`~opencharacter.protocols.Trainer` protocol, so the same
stages run on every backend; each training step's metrics go to ``metrics.jsonl`` and the
resulting checkpoint into the manifest. A finished stage is not trained again on resume.
"""

from __future__ import annotations

import random
from typing import Any

from opencharacter.errors import ConfigError
from opencharacter.stages._context import StageContext, StageRecorder
from opencharacter.stages.distill import STAGE as DISTILL
from opencharacter.stages.introspect import INTERACTION, REFLECTION
from opencharacter.types import ChatExample, Checkpoint, PreferencePair, stable_id

SFT_DATA = "sft_data"


def run_dpo(context: StageContext) -> Checkpoint:
    """Train the student on the distillation pairs with DPO; record and return the checkpoint."""
    done = context.run.checkpoint("dpo")
    if done is not None:
        return done
    rows = sorted(_meta_free(context.run.rows(DISTILL)), key=lambda row: row["id"])
    # Rows land in arrival order, which a resumed run does not repeat; training must not see it.
    pairs = [PreferencePair.from_row(row, path=f"{DISTILL}.jsonl") for row in rows]
    if not pairs:
        msg = f"{context.run.path}: no preference pairs; run the distill stage first"
        raise ConfigError(msg)
    student = context.require_student()
    return _train(context, "dpo", lambda on_step: context.require_trainer().dpo(
        student, pairs, context.config.dpo, output_dir=context.run.path / "dpo",
        on_step=on_step), examples=len(pairs))  # fmt: skip


def run_sft_data(context: StageContext) -> dict[str, Any]:
    """Assemble the SFT set: reflections and interactions as TRL ``messages`` rows, shuffled.

    Interaction rows already carry the trait-free system prompt naming the model; reflection
    rows have none. The shuffle is seeded. The file is rebuilt whole each time (it is derived
    from the introspection files), so there is nothing to resume.
    """
    run = context.run
    rows = [*_meta_free(run.rows(REFLECTION)), *_meta_free(run.rows(INTERACTION))]
    rows.sort(key=lambda row: row["id"])  # rows land in arrival order; the shuffle must not
    random.Random(stable_id(context.config.seed, SFT_DATA)).shuffle(rows)
    run.replace_rows(SFT_DATA, rows)
    counts = {
        "rows": len(rows),
        "reflection": sum(r["source"] == REFLECTION for r in rows),
        "interaction": sum(r["source"] == INTERACTION for r in rows),
    }
    run.update_stage("sft-data", state="done", **counts)
    return counts


def run_sft(context: StageContext) -> Checkpoint:
    """Fine-tune the DPO-trained student on the SFT set; record and return the checkpoint."""
    done = context.run.checkpoint("sft")
    if done is not None:
        return done
    dpo = context.run.checkpoint("dpo")
    if dpo is None:
        msg = f"{context.run.path}: no DPO checkpoint; run the dpo stage first"
        raise ConfigError(msg)
    examples = [ChatExample.from_row(row, path=f"{SFT_DATA}.jsonl")
                for row in context.run.rows(SFT_DATA)]  # fmt: skip
    if not examples:
        msg = f"{context.run.path}: no SFT data; run the introspect stage first"
        raise ConfigError(msg)
    student = context.require_student().at(dpo)
    return _train(context, "sft", lambda on_step: context.require_trainer().sft(
        student, examples, context.config.sft, output_dir=context.run.path / "sft",
        on_step=on_step), examples=len(examples))  # fmt: skip


def _meta_free(rows: Any) -> list[dict[str, Any]]:
    """Drop the bookkeeping key ``cleaned`` that kept rows carry for quality accounting."""
    return [{k: v for k, v in row.items() if k != "cleaned"} for row in rows]


def _train(context: StageContext, stage: str, train: Any, *, examples: int) -> Checkpoint:
    """Run one training stage, keeping its books as every stage does (see StageRecorder).

    Tokens and dollars add up across resumed sessions, like a generation stage's: each step
    reports what it was billed for, priced as the student model's training (remote backends).
    """
    recorder = StageRecorder(context, stage, total=0, counts="steps", examples=examples)
    with recorder.failing():
        checkpoint: Checkpoint = train(recorder.trained)
    context.run.record_checkpoint(stage, checkpoint)
    if checkpoint.meta.get("note"):
        recorder.say(checkpoint.meta["note"])
    recorder.finish(checkpoint=checkpoint.uri)
    return checkpoint
