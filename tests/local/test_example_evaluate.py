"""examples/evaluate_other_model.py: our evaluations of an adapter trained elsewhere."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from opencharacter.runstore import read_manifest

# peft asks transformers a deprecated question when it wraps the tiny model (the adapter fixture).
pytestmark = pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing.*:FutureWarning")

EXAMPLE = Path(__file__).parents[2] / "examples" / "evaluate_other_model.py"
#: Two prompts, one other persona, short answers: the evaluations in seconds on the tiny model.
SMALL = """
[counts]
eval_prompts = 2
[evaluation]
persistence_turns = 1
personas = ["humor"]
[sampling]
answer_tokens = 16
turn_tokens = 16
"""


def test_an_adapter_is_evaluated_against_its_base_model(tiny_model_dir, adapter_dir, tmp_path):
    """The tiny model's adapter, judged by the simulated judge: every evaluation and the report."""
    config, run_dir = tmp_path / "small.toml", tmp_path / "eval"
    config.write_text(SMALL)
    models = ["--model", str(adapter_dir), "--base", str(tiny_model_dir)]
    judge = ["--judge", "simulated-judge", "--judge-backend", "simulated"]
    command = [sys.executable, str(EXAMPLE), *models, "--constitution", "loving", *judge,
               "--run-dir", str(run_dir), "--config", str(config)]  # fmt: skip
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}  # every model is a local folder
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False,
                          timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads((run_dir / "eval" / "summary.json").read_text())
    for section in ("preferences", "robustness", "coherence", "two_by_two", "drift", "examples"):
        assert summary[section], section
    assert summary["settings"]["n_prompts"] == 2
    assert summary["settings"]["models"]["external"] == str(adapter_dir)
    checkpoint = read_manifest(run_dir)["checkpoints"]["external"]
    assert (checkpoint["backend"], checkpoint["base_model"]) == ("local", str(tiny_model_dir))
    assert set(summary["robustness"]["summary"]) == {"base", "prompted", "external"}
    assert (run_dir / "report.html").is_file()
    assert "trait score" in done.stdout
    assert "Run it" in EXAMPLE.read_text()
