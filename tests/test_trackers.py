"""Experiment trackers: every training step and stage summary reaches W&B, MLflow and Trackio.

Each tracker runs for real in its offline or local-file mode, fed by a smoke run on the
simulated backend, and what it stored is read back.
"""

from __future__ import annotations

import importlib.util
import os
import sqlite3
import subprocess
import sys

import pytest
from click.testing import CliRunner

from opencharacter.cli import cli
from opencharacter.config import resolve_config
from opencharacter.errors import ConfigError
from opencharacter.trackers import PROJECT, Trackers, _numbers


def pipeline(run_dir, *extra):
    args = ["pipeline", "pirate", "--backend", "simulated", "--scale", "smoke", "--until",
            "sft", "--run-dir", str(run_dir), *extra]  # fmt: skip
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output


class Recorder:
    def __init__(self):
        self.steps, self.summaries, self.finished = [], {}, False

    def log(self, values, step):
        self.steps.append((step, dict(values)))

    def summary(self, values):
        self.summaries.update(values)

    def finish(self):
        self.finished = True


def test_steps_number_on_across_stages_and_only_numbers_go():
    recorder = Recorder()
    trackers = Trackers([recorder])
    trackers.step("dpo", {"loss": 0.5, "note": "text", "flag": True})
    trackers.step("sft", {"loss": 2.0, "usage": {"train_tokens": 7}})
    trackers.stage_done("sft", {"wall_seconds": 1.5, "state": "done"})
    trackers.finish()
    assert recorder.steps == [(1, {"dpo/loss": 0.5}),
                              (2, {"sft/loss": 2.0, "sft/usage.train_tokens": 7.0})]  # fmt: skip
    assert recorder.summaries == {"sft/wall_seconds": 1.5}
    assert recorder.finished


def test_numbers_flatten_nested_tables():
    assert _numbers({"a": {"b": {"c": 1}}, "d": "x"}, "s/") == {"s/a.b.c": 1.0}


@pytest.mark.parametrize(("given", "names"), [("wandb, mlflow", ("wandb", "mlflow")),
                                              (["trackio"], ("trackio",)), ("", ())])  # fmt: skip
def test_report_to_takes_a_comma_list_or_a_list(given, names):
    config, _ = resolve_config(flags={"constitution": "pirate", "backend": "simulated",
                                      "report_to": given}, environ={})  # fmt: skip
    assert config.report_to == names


def test_an_unknown_tracker_is_refused_naming_the_choices():
    with pytest.raises(ConfigError, match="unknown tracker 'tensorboard'; choose from wandb"):
        resolve_config(flags={"constitution": "pirate", "backend": "simulated",
                              "report_to": "tensorboard"}, environ={})  # fmt: skip


def test_a_missing_tracker_fails_before_the_run_exists(monkeypatch, tmp_path):
    real = importlib.util.find_spec
    monkeypatch.setattr("opencharacter.trackers.importlib.util.find_spec",
                        lambda name, *a: None if name == "wandb" else real(name, *a))  # fmt: skip
    result = CliRunner().invoke(cli, ["pipeline", "pirate", "--backend", "simulated",
                                      "--run-dir", str(tmp_path / "run"), "--report-to",
                                      "wandb"])  # fmt: skip
    assert "pip install wandb" in str(result.exception)
    assert not (tmp_path / "run").exists()


def test_mlflow_gets_every_step_the_settings_and_the_summaries(monkeypatch, tmp_path):
    mlflow = pytest.importorskip("mlflow")
    uri = f"file://{tmp_path / 'mlruns'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # the local-file mode
    pipeline(tmp_path / "run", "--report-to", "mlflow")
    client = mlflow.tracking.MlflowClient(uri)
    [run] = client.search_runs([client.get_experiment_by_name(PROJECT).experiment_id])
    assert run.info.run_name == "run"
    assert run.data.params["dpo.beta"] == "0.1"
    losses = client.get_metric_history(run.info.run_id, "dpo/loss")
    assert [m.step for m in losses] == [1, 2, 3]
    assert "sft/wall_seconds" in run.data.metrics
    assert run.info.status == "FINISHED"


def test_trackio_stores_the_steps_locally(tmp_path):
    """In a process of its own: trackio reads TRACKIO_DIR once, when first imported."""
    if importlib.util.find_spec("trackio") is None:
        pytest.skip("trackio is not installed")
    command = [sys.executable, "-m", "opencharacter", "pipeline", "pirate", "--backend",
               "simulated", "--scale", "smoke", "--until", "sft", "--run-dir",
               str(tmp_path / "run"), "--report-to", "trackio"]  # fmt: skip
    env = {**os.environ, "TRACKIO_DIR": str(tmp_path / "trackio")}
    subprocess.run(command, env=env, check=True, capture_output=True)
    with sqlite3.connect(tmp_path / "trackio" / f"{PROJECT}.db") as db:
        logged = [row[0] for row in db.execute("select metrics from metrics")]
    assert sum(b'"dpo/loss"' in row for row in logged) == 3
    assert any(b'"sft/wall_seconds"' in row for row in logged)


def test_wandb_offline_gets_every_step_and_keeps_out_of_the_run(monkeypatch, tmp_path):
    wandb = pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    logged = []
    real_log = wandb.Run.log
    monkeypatch.setattr(wandb.Run, "log", lambda run, data, step=None, **kw: (
        logged.append((step, dict(data))), real_log(run, data, step=step, **kw))[1])  # fmt: skip
    pipeline(tmp_path / "run", "--report-to", "wandb")
    steps = [step for step, data in logged if "dpo/loss" in data]
    assert steps == [1, 2, 3]
    assert any("sft/loss" in data for _, data in logged)
    assert list((tmp_path / "wandb").glob("offline-run-*/run-*.wandb"))
    assert not (tmp_path / "run" / "wandb").exists()
