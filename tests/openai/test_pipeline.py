"""A run whose teacher is an OpenAI-compatible server: the pipeline, its costs, its secrets."""

from __future__ import annotations

import json

from click.testing import CliRunner
from opencharacter_openai.fake_server import FakeOpenAIServer

from opencharacter.cli import cli
from opencharacter.jsonl import read_jsonl
from opencharacter.runstore import read_manifest
from opencharacter.types import Price, TokenUsage

from .conftest import KEY

PRICE = Price(prefill=1.0, sample=2.0, cached_prefill=0.5)


def test_a_run_samples_its_teacher_over_http_and_prices_it(server, tmp_path):
    """Simulated student, openai teacher: every stage to SFT, the teacher's tokens priced by
    the options, and the key nowhere in the run directory."""
    run_dir = tmp_path / "run"
    args = ["pipeline", "pirate", "--backend", "simulated", "--scale", "smoke",
            "--until", "sft", "--run-dir", str(run_dir),
            "--teacher-backend", "openai", "--teacher", "teacher",
            "--teacher-option", f"base_url={server.base_url}",
            "--teacher-option", "price_prompt=1", "--teacher-option", "price_completion=2",
            "--teacher-option", "price_cached_prompt=0.5"]  # fmt: skip
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    manifest = read_manifest(run_dir)
    assert manifest["backends"] == {"student": "simulated", "teacher": "openai"}
    assert all(stage["state"] == "done" for stage in manifest["stages"].values())
    chosen = [r for r in read_jsonl(run_dir / "distill_completions.jsonl") if r["side"] == "chosen"]
    assert chosen
    assert all(row["model"] == "teacher" for row in chosen)
    usage = sum((TokenUsage(prompt_tokens=r["prompt_tokens"],
                            completion_tokens=r["completion_tokens"],
                            cached_prompt_tokens=r["prompt_tokens"] // 2)  # the fake's cache
                 for r in chosen),
                TokenUsage())  # fmt: skip
    assert manifest["stages"]["distill"]["cost"] > 0
    assert abs(manifest["stages"]["distill"]["cost"] - PRICE.cost(usage)) < 1e-9
    for path in run_dir.rglob("*"):
        if path.is_file():
            assert KEY not in path.read_text(encoding="utf-8", errors="replace"), path


def test_an_openai_student_is_refused_before_the_run_exists(server, tmp_path):
    run_dir = tmp_path / "run"
    args = ["pipeline", "pirate", "--backend", "openai", "--teacher", "teacher",
            "--student", "teacher", "-o", f"base_url={server.base_url}",
            "--run-dir", str(run_dir)]  # fmt: skip
    result = CliRunner().invoke(cli, args)
    assert result.exit_code != 0
    assert "only samples" in str(result.exception)
    assert not run_dir.exists()


def test_extra_body_is_json_on_the_command_line(server, tmp_path):
    """-o extra_body='{...}' reaches every request; bad JSON is refused naming the option."""
    run_dir = tmp_path / "run"
    base = ["pipeline", "pirate", "--backend", "simulated", "--scale", "smoke",
            "--until", "prompts", "--run-dir", str(run_dir), "--teacher-backend", "openai",
            "--teacher", "teacher", "--teacher-option", f"base_url={server.base_url}"]  # fmt: skip
    bad = CliRunner().invoke(cli, [*base, "--teacher-option", "extra_body={min_p: 1}"])
    assert "extra_body" in str(bad.exception)
    assert "JSON" in str(bad.exception)
    good = CliRunner().invoke(
        cli, [*base, "--teacher-option", json.dumps({"min_p": 0.05}).join(["extra_body=", ""])]
    )
    assert good.exit_code == 0, good.output
    assert server.bodies
    assert all(body["min_p"] == 0.05 for body in server.bodies)


def test_a_judge_on_a_server_of_its_own_judges_a_finished_run(tmp_path):
    """`eval --judge-backend openai --judge-option base_url=...`: every verdict from there."""
    run_dir = tmp_path / "run"
    train = ["pipeline", "pirate", "--backend", "simulated", "--scale", "smoke",
             "--until", "sft", "--run-dir", str(run_dir)]  # fmt: skip
    assert CliRunner().invoke(cli, train, catch_exceptions=False).exit_code == 0
    with FakeOpenAIServer({"judge": "vllm"}, api_key=KEY,
                          writer=lambda *_: "<answer>1</answer>") as judge:  # fmt: skip
        result = CliRunner().invoke(cli, ["eval", str(run_dir), "--judge", "judge",
                                          "--judge-backend", "openai", "--judge-option",
                                          f"base_url={judge.base_url}"],
                                    catch_exceptions=False)  # fmt: skip
        assert result.exit_code == 0, result.output
        asked = judge.calls["/v1/chat/completions"]
    verdicts = list(read_jsonl(run_dir / "eval" / "scores.jsonl"))
    assert verdicts
    assert asked >= len(verdicts)
    assert read_manifest(run_dir)["config"]["judge_backend_options"] == {
        "base_url": judge.base_url}  # fmt: skip
