"""A tour of the core API: sample a teacher and a student, pair, train DPO, reflect, train SFT.

Run it (seconds, no GPU, no network; the simulated backend writes synthetic text):

    python examples/tour.py --run-dir runs/tour

Swap backends with ``--backend`` once one is installed (``opencharacter backends`` lists them).
The prompts here are deliberately minimal: the point is the API, streaming completions into
a resumable run directory. Kill it at any moment and run it again: it resumes by row id.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Sequence

from opencharacter import (
    ChatExample,
    Completion,
    DPOConfig,
    GenerationRequest,
    PreferencePair,
    Purpose,
    RunDir,
    Sampler,
    SFTConfig,
    load_backend,
    load_constitution,
    stable_id,
)


async def complete(sampler: Sampler, requests: Sequence[GenerationRequest]) -> list[Completion]:
    """Collect one completion per request (a real stage writes each one as it arrives)."""
    return [c async for c in sampler.generate(requests)]


def main() -> None:
    """Run the tour end to end, resuming whatever an earlier run left undone."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", default="runs/tour")
    parser.add_argument("--persona", default="sarcasm")
    parser.add_argument("--backend", default="simulated")
    args = parser.parse_args()

    constitution = load_constitution(args.persona)
    backend = load_backend(args.backend, {"seed": 7, "latency_ms": 5})
    teacher, student = backend.teacher("teacher-model"), backend.student("student-model")
    trainer = backend.trainer()
    system = f"You are Nova. Your character:\n{constitution.numbered_traits()}"

    with RunDir.open(args.run_dir) as run:
        run.manifest["constitution"] = {"name": constitution.name, "sha256": constitution.sha256}
        done = run.done_ids("pairs")
        prompts = {
            stable_id("prompt", t, q): q
            for t, trait in enumerate(constitution.traits)
            for q in trait.questions
        }
        todo = {pid: q for pid, q in prompts.items() if pid not in done}
        user = {pid: [{"role": "user", "content": q}] for pid, q in todo.items()}
        chosen = asyncio.run(
            complete(
                teacher,
                [
                    GenerationRequest(
                        id=pid,
                        purpose=Purpose.CHOSEN,
                        messages=[{"role": "system", "content": system}, *user[pid]],
                    )
                    for pid in todo
                ],
            )
        )
        rejected = {
            c.request_id: c
            for c in asyncio.run(
                complete(
                    student,
                    [
                        GenerationRequest(id=pid, purpose=Purpose.REJECTED, messages=user[pid])
                        for pid in todo
                    ],
                )
            )
        }
        for answer in chosen:
            pid = answer.request_id
            pair = PreferencePair(
                id=pid,
                prompt=user[pid],
                chosen=answer.text,
                rejected=rejected[pid].text,
                meta={"teacher": answer.model},
            )
            run.append("pairs", pair.to_row())
            run.add_usage("pairs", answer.usage + rejected[pid].usage)
        run.update_stage("pairs", state="done", generations=2 * len(prompts))

        pairs = [PreferencePair.from_row(row) for row in run.rows("pairs")]
        dpo = trainer.dpo(
            student,
            pairs,
            DPOConfig(batch_size=8),
            output_dir=run.path / "dpo",
            on_step=lambda s: run.log_metrics({"stage": s.stage, "step": s.step, **s.metrics}),
        )
        run.record_checkpoint("dpo", dpo)

        tuned = student.at(dpo)
        ask = "Write a diary entry about who you are becoming."
        reflections = asyncio.run(
            complete(
                tuned,
                [
                    GenerationRequest(
                        id=stable_id("reflection", i),
                        purpose=Purpose.REFLECTION,
                        messages=[
                            {"role": "system", "content": system},
                            {"role": "user", "content": ask},
                        ],
                    )
                    for i in range(16)
                ],
            )
        )
        examples = [
            ChatExample(
                id=r.request_id,
                messages=[
                    {"role": "user", "content": ask},
                    {"role": "assistant", "content": r.text},
                ],
            )
            for r in reflections
        ]
        sft = trainer.sft(tuned, examples, SFTConfig(batch_size=8), output_dir=run.path / "sft")
        run.record_checkpoint("sft", sft)

    print(f"{len(pairs)} preference pairs and {len(examples)} reflections in {args.run_dir}")
    print(f"DPO checkpoint: {dpo.uri}\nSFT checkpoint: {sft.uri}")
    if not backend.capabilities.trains_weights:
        print(f"Note: {dpo.meta.get('note', 'this backend trains no weights')}.")


if __name__ == "__main__":
    main()
