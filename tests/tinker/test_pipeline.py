"""The whole pipeline on the Tinker backend against the fake server: kills, resumes, mixed runs.

Each run is a real ``opencharacter pipeline`` process talking to the fake service over
loopback. Runs stopped with SIGKILL during distillation and during DPO, then resumed, must end
with exactly the rows, reference log-probabilities and training steps of a run never stopped.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import TINY

SETTINGS = f"""
constitution = "sarcasm"
backend = "tinker"
teacher = "{TINY}"
student = "{TINY}"
assistant_name = "Tiny"
scale = "smoke"
concurrency = 16
filters = false
seed = 11
judge_backend = "simulated"   # the tiny model cannot judge; the students sample on Tinker
[evaluation]
personas = ["pirate"]
persistence_turns = 1
[counts]
eval_prompts = 4
questions_per_trait = 5     # the seed questions only: no expansion round
generic_prompts = 4
samples_per_prompt = 2      # two answers per prompt: one request of two samples
reflections_per_prompt = 1
interactions_per_variant = 1
interaction_turns = 2
[sampling]
answer_tokens = 16
reflection_tokens = 16
turn_tokens = 12
[dpo]
batch_size = 8
learning_rate = 1e-3
[sft]
batch_size = 4
learning_rate = 1e-3
"""
DATA_FILES = ("prompts", "distill_completions", "distill", "reflection", "interaction",
              "sft_data")  # fmt: skip


@pytest.fixture(scope="module")
def settings(tmp_path_factory):
    path = tmp_path_factory.mktemp("config") / "run.toml"
    path.write_text(SETTINGS, encoding="utf-8")
    return path


def _env(fake) -> dict[str, str]:
    return {**os.environ, **fake.env(), "HF_HUB_OFFLINE": "1"}


def _start(fake, *args: str) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "opencharacter", "pipeline", *args]
    return subprocess.Popen(command, env=_env(fake), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)  # fmt: skip


def _run(fake, *args: str) -> str:
    process = _start(fake, *args)
    out, _ = process.communicate(timeout=300)
    assert process.returncode == 0, out
    return out


def _kill_when(process: subprocess.Popen[str], ready, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        assert process.poll() is None, process.communicate()[0]
        assert time.monotonic() < deadline, "the run never reached the point to kill it"
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=30)


def _lines(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


def _rows(run: Path, name: str) -> dict[str, dict]:
    """Rows by id, without ``model``: it names the checkpoint, whose run id differs per run."""
    path = run / f"{name}.jsonl"
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    return {row["id"]: {k: v for k, v in row.items() if k != "model"} for row in rows}


def _steps(run: Path, stage: str) -> list[int]:
    return [row["step"] for row in _rows_list(run / "metrics.jsonl") if row["stage"] == stage]


def _rows_list(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_killed_twice_and_resumed_equals_a_run_never_stopped(
    fake, settings, tiny_model_dir, tmp_path
):
    """SIGKILL in distillation and in DPO, then resume: the same rows, no step or score twice."""
    options = ("-o", f"tokenizer={tiny_model_dir}", "-o", "save_every=1")
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    before = fake.calls["compute_logprobs"]
    _run(fake, "--config", str(settings), *options, "--run-dir", str(whole))
    scored_once = fake.calls["compute_logprobs"] - before

    distilling = _start(fake, "--config", str(settings), *options, "--run-dir", str(parts))
    _kill_when(distilling, lambda: _lines(parts / "distill_completions.jsonl") >= 20)
    assert _lines(parts / "distill.jsonl") < len(_rows(whole, "distill"))  # killed mid-stage
    before = fake.calls["compute_logprobs"]
    training = _start(fake, "--resume", str(parts))
    _kill_when(training, (parts / "dpo" / "progress.json").exists)
    _run(fake, "--resume", str(parts))

    for name in DATA_FILES:
        assert _rows(parts, name) == _rows(whole, name), name
    assert fake.calls["compute_logprobs"] - before == scored_once  # each pair scored once
    assert _rows(parts / "dpo", "reference") == _rows(whole / "dpo", "reference")
    for stage in ("dpo", "sft"):
        assert sorted(_steps(parts, stage)) == _steps(whole, stage)  # every step, each once
    done = {name: json.loads((run / "manifest.json").read_text())["checkpoints"]
            for name, run in (("whole", whole), ("parts", parts))}  # fmt: skip
    for stage in ("dpo", "sft"):
        assert done["parts"][stage]["meta"]["loss"] == pytest.approx(
            done["whole"][stage]["meta"]["loss"], rel=1e-4
        )


def test_a_mixed_run_samples_the_teacher_on_tinker_and_trains_the_student_here(
    fake, settings, tiny_model_dir, tmp_path
):
    """--teacher-backend tinker --backend local: each side gets its own backend and options."""
    run = tmp_path / "mixed"
    out = _run(fake, "--config", str(settings), "--backend", "local", "--teacher-backend",
               "tinker", "--teacher-option", f"tokenizer={tiny_model_dir}", "-o",
               "engine=transformers", "--until", "dpo", "--run-dir", str(run))  # fmt: skip
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["backends"] == {"student": "local", "teacher": "tinker"}
    assert manifest["checkpoints"]["dpo"]["backend"] == "local"
    assert not manifest["adjustments"], out  # the local student honours every setting
    pairs = _rows(run, "distill")
    assert pairs
    assert all(row["teacher"] == TINY for row in pairs.values())
    usage = manifest["stages"]["distill"]["usage"]
    assert usage["cached_prompt_tokens"] > 0  # the teacher's prompts hit Tinker's prefix cache
