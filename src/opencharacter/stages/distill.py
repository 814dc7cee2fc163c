"""Stage 2, distill: in-character teacher answers (chosen) against the student's own (rejected).

Each prompt is answered K times by the teacher, under a constitution system prompt that names
the persona and forbids disclosing its traits, and K times by the student with no system
prompt; both use the same sampling and stop settings. The K answers of one side are one
request with ``samples=K``, so a remote service reads the prompt once. Every answer is appended to
``distill_completions.jsonl`` as it arrives, so no paid generation is lost; as soon as both
halves of a pair exist, the pair is filtered (the filter chains of :mod:`opencharacter.filters`,
the teacher's name replaced with the persona's), checked against the token cap, and written to
``distill.jsonl`` in TRL's preference format, or to ``filtered.jsonl`` with its reasons.

When filtering leaves fewer pairs than asked for, the stage tops up: each dropped pair gets a
fresh sample of its prompt, for up to ``top_up_rounds`` rounds, and any shortfall is reported.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

from opencharacter.filters import Chains, filter_row
from opencharacter.runstore import FILTERED
from opencharacter.stages import texts
from opencharacter.stages._context import StageContext, StageRecorder, replay_quality
from opencharacter.stages._engine import Dispatcher, gather_all
from opencharacter.stages.prompts import prompt_rows
from opencharacter.types import Completion, GenerationRequest, Purpose, stable_id

STAGE = "distill"
COMPLETIONS = "distill_completions"
SIDES = {"chosen": Purpose.CHOSEN, "rejected": Purpose.REJECTED}


def pair_id(prompt_id: str, sample: int) -> str:
    """Return the id of the pair for sample ``sample`` of prompt ``prompt_id``."""
    return stable_id(STAGE, prompt_id, sample)


def run_distill(context: StageContext) -> dict[str, Any]:
    """Make the DPO pairs, resuming by pair id; returns a summary with any shortfall."""
    run, config = context.run, context.config
    prompts = sorted(prompt_rows(context), key=lambda p: p["id"])  # file order may vary
    random.Random(stable_id(config.seed, STAGE)).shuffle(prompts)
    k = config.counts.samples_per_prompt
    target = len(prompts) * k
    halves: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    for row in run.rows(COMPLETIONS):
        halves[row["pair"]][row["side"]] = row
    finished = run.done_ids(STAGE) | {
        row["id"] for row in run.rows(FILTERED) if row.get("stage") == STAGE
    }
    recorder = StageRecorder(context, STAGE, total=2 * target)
    replay_quality(run, STAGE, STAGE, recorder.quality)
    recorder.skipped(sum(len(h) for h in halves.values()))
    chains = {
        "chosen": context.chain("distill-chosen"),
        "rejected": context.chain("distill-rejected"),
    }
    job = _Distill(context, recorder, halves, finished, chains)
    by_id = {p["id"]: p for p in prompts}
    for pid, pair_halves in list(halves.items()):
        if pid in finished:
            del halves[pid]
        elif len(pair_halves) == len(SIDES):  # both halves landed, then the run stopped
            any_half = pair_halves["chosen"]
            job.pair(by_id[any_half["prompt_id"]], any_half["sample"], halves.pop(pid))
    for round_number in range(config.top_up_rounds + 1):
        slots = list(_slots(context, prompts, round_number, k))
        if not slots or (round_number and _kept(context) >= target):
            break
        recorder.total = max(recorder.total, recorder.done + 2 * len(slots))
        recorder.run(job.make(slots))
    kept = _kept(context)
    summary: dict[str, Any] = {"pairs": kept, "target": target, "shortfall": max(0, target - kept)}
    if kept < target:
        recorder.say(
            f"{kept} of {target} pairs after {config.top_up_rounds} top-up rounds "
            f"(shortfall {target - kept}); see filtered.jsonl for the reasons"
        )
    recorder.finish(**summary)
    return summary


def _kept(context: StageContext) -> int:
    return sum(1 for _ in context.run.rows(STAGE))


def _slots(
    context: StageContext, prompts: list[dict[str, Any]], round_number: int, k: int
) -> Iterator[tuple[dict[str, Any], int]]:
    """Yield ``(prompt row, sample index)`` for the pairs a round must make.

    Round 0 makes samples ``0..k-1`` of every prompt. Round ``r`` replaces each pair dropped
    in round ``r - 1`` by sample ``index + k`` of the same prompt, so ids stay unique and a
    resumed run recomputes exactly the same slots from the files.
    """
    if round_number == 0:
        for prompt in prompts:
            for sample in range(k):
                yield prompt, sample
        return
    by_id = {p["id"]: p for p in prompts}
    low, high = (round_number - 1) * k, round_number * k
    for row in context.run.rows(FILTERED):
        if row.get("stage") == STAGE and low <= row["sample"] < high:
            yield by_id[row["prompt_id"]], row["sample"] + k


class _Distill:
    """One distillation job: the requests of a round, and pair assembly as halves arrive."""

    def __init__(
        self,
        context: StageContext,
        recorder: StageRecorder,
        halves: dict[str, dict[str, dict[str, Any]]],
        finished: set[str],
        chains: Chains,
    ) -> None:
        self.context = context
        self.recorder = recorder
        self.halves = halves
        self.finished = finished
        self.chains = chains
        config = context.config
        self.system = texts.constitution_system_prompt(config.name, context.constitution)
        self.prompt_lengths: dict[str, int] = {}
        self.max_tokens = config.dpo.max_length

    async def make(self, slots: list[tuple[dict[str, Any], int]]) -> None:
        teacher = self.context.dispatcher(self.context.require_teacher(), "chosen")
        student = self.context.dispatcher(self.context.require_student(), "rejected")
        await gather_all(
            [
                self._side(teacher, "chosen", slots),
                self._side(student, "rejected", slots),
            ]
        )

    async def _side(
        self, dispatcher: Dispatcher, side: str, slots: list[tuple[dict[str, Any], int]]
    ) -> None:
        groups: dict[str, tuple[dict[str, Any], list[int]]] = {}
        for prompt, sample in slots:
            groups.setdefault(prompt["id"], (prompt, []))[1].append(sample)
        requests = (
            self._request(side, prompt, samples)
            for prompt, samples in groups.values()
            if any(self._wanted(side, prompt["id"], sample) for sample in samples)
        )
        await dispatcher.complete_all(requests, self._arrived)

    def _wanted(self, side: str, prompt_id: str, sample: int) -> bool:
        pid = pair_id(prompt_id, sample)
        return pid not in self.finished and side not in self.halves[pid]

    def _request(self, side: str, prompt: dict[str, Any], samples: list[int]) -> GenerationRequest:
        """Return one request for every sample of a prompt in this round.

        The group is always whole, even when a crash left some of its answers on disk: the
        same request gives the same answers, and only the missing ones are kept.
        """
        request_id = stable_id(STAGE, side, prompt["id"], *samples)
        user = [{"role": "user", "content": prompt["text"]}]
        messages = [{"role": "system", "content": self.system}, *user] if side == "chosen" else user
        return GenerationRequest(
            id=request_id,
            purpose=SIDES[side],
            messages=messages,
            params=self.context.params(self.context.config.sampling.answer_tokens, request_id),
            samples=len(samples),
            meta={"side": side, "prompt": prompt, "samples": samples},
        )

    def _arrived(self, request: GenerationRequest, completion: Completion) -> None:
        side, prompt = request.meta["side"], request.meta["prompt"]
        sample = request.meta["samples"][completion.sample]
        self.recorder.completed(completion, SIDES[side])  # billed, even if already on disk
        if completion.sample == 0:  # samples arrive in order; the prompt is counted on the first
            self.prompt_lengths[request.id] = completion.prompt_tokens
        if not self._wanted(side, prompt["id"], sample):
            return  # an answer an earlier session already wrote
        pid = pair_id(prompt["id"], sample)
        half = {
            "id": stable_id(STAGE, side, prompt["id"], sample), "pair": pid, "side": side,
            "text": completion.text, "finish_reason": completion.finish_reason,
            "prompt_tokens": self.prompt_lengths.get(request.id, completion.prompt_tokens),
            "completion_tokens": completion.completion_tokens, "model": completion.model,
            "prompt_id": prompt["id"], "sample": sample,
        }  # fmt: skip
        self.context.run.append(COMPLETIONS, half)
        self.halves[pid][side] = half
        if len(self.halves[pid]) == len(SIDES):
            self.pair(prompt, sample, self.halves.pop(pid))

    def pair(self, prompt: dict[str, Any], sample: int, halves: dict[str, dict[str, Any]]) -> None:
        """Filter a complete pair and write it to the pairs or the filtered file."""
        pid = pair_id(prompt["id"], sample)
        chosen, rejected = halves["chosen"], halves["rejected"]
        row = {
            "id": pid,
            "prompt": [{"role": "user", "content": prompt["text"]}],
            "chosen": [{"role": "assistant", "content": chosen["text"]}],
            "rejected": [{"role": "assistant", "content": rejected["text"]}],
            "prompt_id": prompt["id"], "sample": sample, "trait": prompt["trait"],
            "source": prompt["source"], "teacher": chosen["model"], "student": rejected["model"],
        }  # fmt: skip
        result = filter_row(
            row,
            self.chains,
            finish_reasons={
                "chosen": chosen["finish_reason"],
                "rejected": rejected["finish_reason"],
            },
        )
        reasons = list(result.reasons)
        tokens = rejected["prompt_tokens"] + max(
            chosen["completion_tokens"], rejected["completion_tokens"]
        )
        if result.keep and tokens > self.max_tokens:
            reasons = [("pair", "too-many-tokens")]
        self.finished.add(pid)
        if reasons:
            self.context.run.record_filtered(STAGE, result.row, reasons)
            self.recorder.quality.count(keep=False, reasons=reasons)
            return
        self.context.run.append(STAGE, {**result.row, "cleaned": result.cleaned})
        self.recorder.quality.count(keep=True, cleaned=result.cleaned)
