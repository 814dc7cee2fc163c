"""The pipeline is deterministic, survives faults and kills, and estimates before it spends."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from opencharacter.cli import cli, main
from opencharacter.config import STAGES, resolve_config
from opencharacter.constitution import load_constitution
from opencharacter.estimate import estimate, format_duration
from opencharacter.jsonl import read_jsonl
from opencharacter.pipeline import STAGE_FUNCTIONS
from opencharacter.stages.prompts import load_generic_prompts

DATA_FILES = ("prompts", "distill", "reflection", "interaction", "sft_data")


def pipeline(run_dir, *extra):
    """Run the CLI pipeline on the simulated backend at smoke scale."""
    args = ["pipeline", "sarcasm", "--backend", "simulated", "--scale", "smoke", "--seed", "7",
            "--run-dir", str(run_dir), *extra]  # fmt: skip
    return CliRunner().invoke(cli, args, catch_exceptions=False)


def rows(run_dir, name):
    return list(read_jsonl(Path(run_dir) / f"{name}.jsonl"))


def test_same_seed_same_data_other_seed_other_data(tmp_path):
    """Two runs with one seed write identical rows; another seed writes different text."""
    for name in ("a", "b"):
        assert pipeline(tmp_path / name).exit_code == 0
    for data in DATA_FILES:
        assert rows(tmp_path / "a", data) == rows(tmp_path / "b", data), data
    other = CliRunner().invoke(
        cli,
        [
            "pipeline",
            "sarcasm",
            "--backend",
            "simulated",
            "--scale",
            "smoke",
            "--seed",
            "8",
            "--run-dir",
            str(tmp_path / "c"),
        ],
    )
    assert other.exit_code == 0
    assert rows(tmp_path / "a", "distill") != rows(tmp_path / "c", "distill")


def test_transient_failures_are_retried_until_every_row_exists(tmp_path):
    """With 20% injected transient failures the run completes with exactly the clean run's rows."""
    assert pipeline(tmp_path / "clean").exit_code == 0
    result = pipeline(tmp_path / "flaky", "-o", "failure_rate=0.2")
    assert result.exit_code == 0, result.output
    for data in DATA_FILES:
        clean = {r["id"] for r in rows(tmp_path / "clean", data)}
        assert clean == {r["id"] for r in rows(tmp_path / "flaky", data)}, data


def test_permanent_failure_stops_with_a_message_and_saved_state(tmp_path, capsys):
    """An authentication error stops the stage at once: exit 1, one message, state 'failed'."""
    with pytest.raises(SystemExit) as exit_info:
        main(["pipeline", "sarcasm", "--backend", "simulated", "--scale", "smoke",
              "--run-dir", str(tmp_path / "r"), "-o", "fail_permanently=true"])  # fmt: skip
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert "401" in err
    assert "Traceback" not in err
    manifest = json.loads((tmp_path / "r" / "manifest.json").read_text())
    assert manifest["stages"]["prompts"]["state"] == "failed"


def test_resume_refuses_to_change_what_shapes_the_data(tmp_path):
    """--resume keeps the run's settings; a new CONSTITUTION or --run-dir is refused."""
    assert pipeline(tmp_path / "r", "--until", "prompts").exit_code == 0
    result = CliRunner().invoke(cli, ["pipeline", "pirate", "--resume", str(tmp_path / "r")])
    assert result.exit_code != 0
    resumed = CliRunner().invoke(cli, ["pipeline", "--resume", str(tmp_path / "r")])
    assert resumed.exit_code == 0, resumed.output
    assert not rows(tmp_path / "r", "distill")  # the run's own --until prompts still holds
    further = CliRunner().invoke(cli, ["pipeline", "--resume", str(tmp_path / "r"), "--until",
                                       "sft"])  # fmt: skip
    assert further.exit_code == 0, further.output
    assert rows(tmp_path / "r", "sft_data")


def test_a_run_directory_holding_another_run_is_refused(tmp_path):
    """Starting a different run in a used folder fails and points to --resume."""
    assert pipeline(tmp_path / "r", "--until", "prompts").exit_code == 0
    result = CliRunner().invoke(cli, ["pipeline", "pirate", "--backend", "simulated",
                                      "--run-dir", str(tmp_path / "r")])  # fmt: skip
    assert result.exit_code != 0
    assert "--resume" in str(result.exception)


def test_estimate_counts_the_papers_generations():
    """At paper scale a 10-trait persona makes (10 x 50 + 1,330) x 5 x 2 distillation answers."""
    config, _ = resolve_config(flags={"constitution": "sarcasm", "scale": "paper"}, environ={})
    stages = {s.stage: s for s in estimate(config, load_constitution("sarcasm"))}
    assert stages["distill"].generations == (10 * 50 + 1330) * 5 * 2
    assert stages["introspect"].generations == 12 * 1000 + 2 * 1000 * 10
    assert stages["distill"].cost > 0
    assert stages["sft"].train_tokens > 0
    assert stages["eval"].generations > 0
    assert tuple(stages) == STAGES


def test_one_list_of_stages_drives_the_pipeline_the_estimate_and_the_cli():
    """Every stage the config names has a function, an estimate and exactly one CLI command."""
    assert tuple(STAGE_FUNCTIONS) == STAGES
    config, _ = resolve_config(flags={"constitution": "sarcasm", "backend": "simulated"},
                               environ={})  # fmt: skip
    assert [row.stage for row in estimate(config, load_constitution("sarcasm"))] == list(STAGES)
    commands = [cli.commands[name].params[0].type.choices for name in ("generate", "train")]
    assert sorted([*commands[0], *commands[1], "eval"]) == sorted(STAGES)
    assert "eval" in cli.commands


def test_a_plugins_time_model_may_follow_its_options():
    """The simulated plugin times a run by its own latency_ms; the core knows no option names."""

    def seconds(latency_ms):
        config, _ = resolve_config(flags={"constitution": "sarcasm", "backend": "simulated",
                                          "backend_options": {"latency_ms": latency_ms}},
                                   environ={})  # fmt: skip
        return sum(row.seconds for row in estimate(config, load_constitution("sarcasm")))

    assert seconds("0") == 0
    assert seconds("1000") > seconds("10") > 0


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0 s"), (59.4, "59 s"), (60, "1.0 min"), (750, "12.5 min"), (7620, "2 h 07 min")],
)
def test_durations_read_in_their_own_unit(seconds, text):
    assert format_duration(seconds) == text


def test_estimate_flag_prints_and_spends_nothing(tmp_path):
    """--estimate prints per-stage figures and creates no run directory."""
    result = CliRunner().invoke(cli, ["pipeline", "sarcasm", "--scale", "paper", "--estimate",
                                      "--run-dir", str(tmp_path / "r")])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "distill" in result.output
    assert "18,300" in result.output  # distill requests at paper scale
    assert not (tmp_path / "r").exists()


def test_a_run_that_cannot_start_creates_nothing(tmp_path):
    """A backend that refuses its options fails before the run folder exists, so the same
    folder then takes the corrected command instead of refusing "another configuration"."""
    target = tmp_path / "r"
    args = ["pipeline", "sarcasm", "--backend", "simulated", "--scale", "smoke", "--run-dir",
            str(target), "--until", "prompts"]  # fmt: skip
    refused = CliRunner().invoke(cli, [*args, "-o", "no_such_option=1"])
    assert refused.exit_code != 0
    assert "no_such_option" in str(refused.exception)
    assert not target.exists()
    assert CliRunner().invoke(cli, args).exit_code == 0


def test_single_stage_commands_work_on_a_run_directory(tmp_path):
    """`generate` and `train` run one stage each on an existing run."""
    assert pipeline(tmp_path / "r", "--until", "prompts").exit_code == 0
    runner = CliRunner()
    for args in (["generate", "distill"], ["train", "dpo"], ["generate", "introspect"],
                 ["train", "sft"]):  # fmt: skip
        result = runner.invoke(cli, [*args, str(tmp_path / "r")], catch_exceptions=False)
        assert result.exit_code == 0, result.output
    assert "sft checkpoint: simulated://" in result.output


KILLS = 10


def test_kill_9_at_random_moments_loses_and_duplicates_nothing(tmp_path):
    """A run killed with SIGKILL 10 times and resumed ends with exactly an unkilled run's rows."""
    command = [sys.executable, "-m", "opencharacter", "pipeline", "sarcasm", "--backend",
               "simulated", "--scale", "smoke", "--seed", "7", "-o", "latency_ms=150",
               "--concurrency", "4"]  # fmt: skip
    subprocess.run([*command, "--run-dir", str(tmp_path / "clean")], check=True,
                   capture_output=True)  # fmt: skip
    victim = tmp_path / "killed"
    rng = random.Random(int(os.environ.get("KILL_TEST_SEED", "1")))
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    started = [*command, "--run-dir", str(victim)]
    mid_run = 0
    for _ in range(KILLS):
        proc = subprocess.Popen(started, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                env=env)  # fmt: skip
        time.sleep(rng.uniform(0.4, 0.9))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        if not (victim / "events.jsonl").exists():
            continue  # killed while starting, before the run folder (a slow, busy machine)
        events = [e["event"] for e in read_jsonl(victim / "events.jsonl")]
        mid_run += "pipeline-end" not in events
        if (victim / "manifest.json").exists():
            started = [sys.executable, "-m", "opencharacter", "pipeline", "--resume", str(victim)]
    assert mid_run >= KILLS // 2, "most kills should land while the run is working"
    subprocess.run(started, check=True, capture_output=True, env=env)
    for data in (*DATA_FILES, "distill_completions", "interaction_turns"):
        clean = [r["id"] for r in rows(tmp_path / "clean", data)]
        resumed = [r["id"] for r in rows(victim, data)]
        assert len(resumed) == len(set(resumed)), f"{data}: a row was written twice"
        assert sorted(resumed) == sorted(clean), f"{data}: rows differ from the unkilled run"
    for data in ("distill", "reflection", "interaction"):
        by_id = {r["id"]: r for r in rows(tmp_path / "clean", data)}
        assert by_id, data
        assert all(row == by_id[row["id"]] for row in rows(victim, data)), data


def test_ctrl_c_saves_state_and_exits_130(tmp_path):
    """SIGINT mid-stage marks the stage interrupted in the manifest and exits with 130."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "opencharacter", "pipeline", "sarcasm", "--backend", "simulated",
         "--scale", "smoke", "-o", "latency_ms=200", "--concurrency", "2", "--run-dir",
         str(tmp_path / "r")],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    time.sleep(1.5)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    manifest = json.loads((tmp_path / "r" / "manifest.json").read_text())
    states = {name: stage["state"] for name, stage in manifest["stages"].items()}
    assert "interrupted" in states.values(), states


def test_generic_prompts_come_from_a_user_file(tmp_path):
    """A JSONL or text file of generic prompts replaces the built-in set."""
    jsonl = tmp_path / "lima.jsonl"
    jsonl.write_text('{"conversations": ["First turn?", "reply"]}\n{"prompt": "Second?"}\n'
                     '{"messages": [{"role": "user", "content": "Third?"}]}\n')  # fmt: skip
    assert list(load_generic_prompts(str(jsonl))) == ["First turn?", "Second?", "Third?"]
    text = tmp_path / "prompts.txt"
    text.write_text("One?\n\nTwo.\n")
    assert list(load_generic_prompts(str(text))) == ["One?", "Two."]
    assert len(load_generic_prompts(None)) >= 300


def test_a_teacher_of_its_own_is_timed_and_priced_with_its_own_options():
    """Naming a teacher backend gives it its own options everywhere: never the student's."""
    from opencharacter.config import RunConfig, teacher_side  # noqa: PLC0415
    from opencharacter.estimate import side_timing  # noqa: PLC0415

    config = RunConfig(constitution="sarcasm", teacher="big", student="small",
                       backend="simulated", backend_options={"latency_ms": "500"},
                       teacher_backend="simulated")  # fmt: skip
    assert teacher_side(config) == ("simulated", {})
    assert side_timing(config, "student").request_seconds == 0.5
    assert side_timing(config, "teacher").request_seconds == 0.0
