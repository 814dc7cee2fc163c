"""evaluate_model: the evaluations of a model trained elsewhere, in an evaluation-only run."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from opencharacter.errors import ConfigError
from opencharacter.eval import evaluate, evaluate_model
from opencharacter.jsonl import read_jsonl
from opencharacter.runstore import read_manifest
from opencharacter.simulated._backend import SimulatedSampler
from opencharacter.types import Checkpoint

MODEL, BASE = "someone/loving-qwen", "Qwen/Qwen3-4B-Instruct-2507"
ANSWERS = ("preferences", "answers", "persistence")
VERDICTS = ("preference_verdicts", "scores", "coherence")


def evaluate_other(run_dir: Path, **changes: Any) -> dict[str, Any]:
    """Evaluate MODEL on the simulated backend with three prompts: a few seconds."""
    arguments: dict[str, Any] = {
        "model": MODEL, "base": BASE, "constitution": "loving", "backend": "simulated",
        "judge": "simulated-judge", "settings": {"scale": "smoke", "counts": {"eval_prompts": 3}},
    }  # fmt: skip
    return evaluate_model(run_dir, **{**arguments, **changes})


def counts(run_dir: Path) -> dict[str, int]:
    return {name: sum(1 for _ in read_jsonl(run_dir / "eval" / f"{name}.jsonl"))
            for name in (*ANSWERS, *VERDICTS)}  # fmt: skip


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory) -> tuple[Path, list[Checkpoint | None]]:
    """An evaluation of MODEL, and the checkpoints the student was asked to sample at."""
    run_dir = tmp_path_factory.mktemp("other") / "eval"
    sampled_at: list[Checkpoint | None] = []
    at = SimulatedSampler.at

    def recording(self: SimulatedSampler, checkpoint: Checkpoint | None) -> SimulatedSampler:
        sampled_at.append(checkpoint)
        return at(self, checkpoint)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(SimulatedSampler, "at", recording)
        evaluate_other(run_dir)
    return run_dir, sampled_at


@pytest.fixture
def copied(evaluated, tmp_path) -> Path:
    """A copy of the evaluated run, for tests that add to it."""
    return Path(shutil.copytree(evaluated[0], tmp_path / "eval"))


def test_the_model_is_evaluated_against_its_base_with_every_evaluation(evaluated):
    """The summary has every section, and the trained answers are the other model's."""
    run_dir, sampled_at = evaluated
    summary = json.loads((run_dir / "eval" / "summary.json").read_text())
    for section in ("preferences", "robustness", "coherence", "two_by_two", "drift", "examples"):
        assert summary[section], section
    assert summary["settings"]["models"] == {"base": None, "external": MODEL}
    assert [c.uri if c else None for c in sampled_at] == [None, MODEL]
    methods = {row["method"] for row in read_jsonl(run_dir / "eval" / "answers.jsonl")}
    assert methods == {"prompted", "base", "external", "trained-prompted"}
    assert (run_dir / "report.html").stat().st_size > 10_000


def test_the_run_records_the_model_as_an_external_checkpoint_and_nothing_trained(evaluated):
    """The manifest holds the eval stage only, the model, and the judge in the teacher's place."""
    manifest = read_manifest(evaluated[0])
    assert list(manifest["stages"]) == ["eval"]
    assert manifest["stages"]["eval"]["state"] == "done"
    assert list(manifest["checkpoints"]) == ["external"]
    checkpoint = Checkpoint.from_dict(manifest["checkpoints"]["external"])
    assert (checkpoint.kind, checkpoint.backend, checkpoint.base_model, checkpoint.uri) == (
        "external",
        "simulated",
        BASE,
        MODEL,
    )
    assert manifest["models"]["teacher"] == "simulated-judge"
    assert manifest["stages"]["eval"]["judge"]["model"] == "simulated-judge"


def test_calling_again_resumes_without_asking_anything_twice(copied):
    """The same call on a finished evaluation adds no row."""
    before = counts(copied)
    evaluate_other(copied)
    assert counts(copied) == before


def test_another_judge_judges_afresh_through_evaluate(copied):
    """evaluate() re-judges an evaluation-only run like any run, keeping the models' answers."""
    before = counts(copied)
    evaluate(copied, judge="another-judge")
    after = counts(copied)
    assert all(after[name] == before[name] for name in ANSWERS)
    assert all(after[name] == 2 * before[name] for name in VERDICTS)


def test_a_folder_evaluating_another_model_is_refused(copied, tmp_path, monkeypatch):
    """Another model in the same run directory is refused, naming both (a folder: absolute)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "adapter").mkdir()
    with pytest.raises(ConfigError, match=f"evaluates {MODEL}, not {tmp_path / 'adapter'};"):
        evaluate_other(copied, model="adapter")


def test_an_evaluation_only_run_refuses_data_and_training_stages(copied):
    """Resuming it as a pipeline, or running a stage on it, stops before anything is made."""
    from opencharacter.pipeline import resume_run, run_pipeline, run_stage  # noqa: PLC0415

    with pytest.raises(ConfigError, match="evaluates a model trained elsewhere"):
        run_stage(copied, "distill")
    run, config = resume_run(copied)
    with run, pytest.raises(ConfigError, match="only its evaluation runs there"):
        run_pipeline(run, config)
    assert not (copied / "distill.jsonl").exists()


def test_one_can_chat_with_the_evaluated_model(evaluated):
    """The chat's default model in an evaluation-only run is the model it evaluates."""
    from opencharacter.chat import choose_stage  # noqa: PLC0415

    checkpoints = read_manifest(evaluated[0])["checkpoints"]
    assert choose_stage(checkpoints, None) == "external"
