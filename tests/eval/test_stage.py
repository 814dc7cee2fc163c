"""The eval stage end to end on the simulated backend: every section, resumable, per judge."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from opencharacter.cli import cli
from opencharacter.errors import EvaluationError
from opencharacter.jsonl import read_jsonl
from opencharacter.runstore import read_manifest

EVAL_FILES = ("preferences", "answers", "persistence", "preference_verdicts", "scores",
              "coherence")  # fmt: skip
SIMULATED = ["--backend", "simulated", "--scale", "smoke", "--seed", "3"]


def invoke(*args: str) -> None:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output


def rows(run_dir: Path, name: str) -> list[dict]:
    return list(read_jsonl(run_dir / "eval" / f"{name}.jsonl"))


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory) -> Path:
    """A smoke run on the simulated backend, through the eval stage (the default end)."""
    run_dir = tmp_path_factory.mktemp("run") / "sarcasm"
    invoke("pipeline", "sarcasm", *SIMULATED, "--run-dir", str(run_dir))
    return run_dir


def test_a_full_run_ends_with_every_evaluation_and_the_report(evaluated):
    """The pipeline's last stage evaluates and writes the summary, the manifest entry and report."""
    summary = json.loads((evaluated / "eval" / "summary.json").read_text())
    for section in ("preferences", "robustness", "coherence", "two_by_two", "drift", "examples"):
        assert summary[section], section
    assert (evaluated / "report.html").stat().st_size > 10_000
    entry = read_manifest(evaluated)["stages"]["eval"]
    assert entry["state"] == "done"
    assert entry["judge"]["model"]
    assert entry["settings"]["classifier"] == "tfidf"
    prompts = summary["settings"]["n_prompts"]
    assert prompts == 6
    # Base and trained face the same trait pairs, so the Elo deltas compare like with like.
    pairs = {}
    for row in rows(evaluated, "preferences"):
        pairs.setdefault(row["prompt_id"], set()).add((row["trait_1"], row["trait_2"]))
    assert len(pairs) == prompts
    assert all(len(p) == 1 for p in pairs.values())
    assert len(summary["preferences"]["deltas"]) >= 140  # every trait, even unmatched ones


def test_the_2x2_separates_prompting_from_training(evaluated):
    """The simulated judge scores trait words: prompted answers beat unprompted ones."""
    cells = json.loads((evaluated / "eval" / "summary.json").read_text())["two_by_two"]["cells"]
    assert cells["base"]["prompted"]["mean"] > cells["base"]["plain"]["mean"]
    assert all(cells[m][c]["n"] == 6 for m in cells for c in cells[m])


def test_pairwise_verdicts_are_asked_in_both_orders(evaluated):
    """Every preference and coherence judgement exists forward and swapped."""
    for name, key in (("preference_verdicts", "answer_id"), ("coherence", "prompt_id")):
        orders: dict[tuple, set[str]] = {}
        for row in rows(evaluated, name):
            orders.setdefault((row[key], row.get("baseline")), set()).add(row["order"])
        assert orders, name
        assert all(o == {"forward", "swapped"} for o in orders.values()), name


def test_another_judge_judges_afresh_and_keeps_the_first_judges_rows(evaluated, tmp_path):
    """Verdicts are kept per judge: a second judge asks every question again."""
    before = {name: len(rows(evaluated, name)) for name in EVAL_FILES}
    invoke("eval", str(evaluated), "--judge", "another-judge")
    after = {name: len(rows(evaluated, name)) for name in EVAL_FILES}
    for name in ("preferences", "answers", "persistence"):
        assert after[name] == before[name], f"{name}: the models were asked again"
    for name in ("preference_verdicts", "scores", "coherence"):
        assert after[name] == 2 * before[name], f"{name}: the new judge did not judge afresh"
    assert read_manifest(evaluated)["stages"]["eval"]["judge"]["model"] == "another-judge"


def test_a_judge_that_cannot_be_parsed_stops_the_evaluation(evaluated, monkeypatch):
    """Numbers from a judge that mostly fails to answer are refused, with what to do."""
    from opencharacter.simulated import _text  # noqa: PLC0415

    monkeypatch.setattr(_text, "judge_verdict", lambda request, rng: "I cannot decide.")
    result = CliRunner().invoke(cli, ["eval", str(evaluated), "--judge", "mumbler"])
    assert isinstance(result.exception, EvaluationError)
    assert "could not be parsed" in str(result.exception)
    assert "--judge" in str(result.exception)
    assert read_manifest(evaluated)["stages"]["eval"]["state"] == "failed"


def test_a_killed_evaluation_resumes_without_asking_twice(tmp_path):
    """SIGKILL in the middle of the eval stage, then resume: the rows of an unkilled run."""
    slow = [*SIMULATED, "-o", "latency_ms=40", "--concurrency", "4"]
    clean, victim = tmp_path / "clean", tmp_path / "victim"
    for run_dir in (clean, victim):
        invoke("pipeline", "sarcasm", *slow, "--run-dir", str(run_dir), "--until", "sft")
    invoke("eval", str(clean))
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "opencharacter", "eval", str(victim)]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(rows_or_none(victim, "answers")) < 20:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (victim / "eval" / "summary.json").exists(), "the kill came too late"
    subprocess.run(command, check=True, capture_output=True, env=env)
    for name in EVAL_FILES:
        resumed = [row["id"] for row in rows(victim, name)]
        assert len(resumed) == len(set(resumed)), f"{name}: a row was written twice"
        assert sorted(resumed) == sorted(r["id"] for r in rows(clean, name)), name


def rows_or_none(run_dir: Path, name: str) -> list[dict]:
    path = run_dir / "eval" / f"{name}.jsonl"
    return list(read_jsonl(path)) if path.exists() else []


def test_a_capability_task_from_a_file_runs_through_the_eval_command(tmp_path):
    """`eval --capabilities file.py@task` scores base and trained, once per task and limit."""
    run_dir = tmp_path / "run"
    invoke("pipeline", "sarcasm", *SIMULATED, "--run-dir", str(run_dir), "--until", "sft")
    source = tmp_path / "arithmetic.py"
    source.write_text(
        "from inspect_ai import Task, task\n"
        "from inspect_ai.dataset import Sample\n"
        "from inspect_ai.scorer import includes\n"
        "@task\n"
        "def sums():\n"
        "    return Task(dataset=[Sample(input=f'What is {n} + {n}?', target=str(2 * n))\n"
        "                         for n in range(4)], scorer=includes())\n"
    )
    for _ in range(2):  # the second time finds the task done and runs nothing
        invoke("eval", str(run_dir), "--capabilities", f"{source}@sums", "--limit", "3")
    summary = json.loads((run_dir / "eval" / "summary.json").read_text(encoding="utf-8"))
    result = summary["capabilities"]["sums"]
    assert result["metric"] == "accuracy"
    assert result["samples"] == 3
    assert 0.0 <= result["base"] <= 1.0
    assert 0.0 <= result["trained"] <= 1.0
    assert [row["limit"] for row in rows(run_dir, "capabilities")] == [3]
