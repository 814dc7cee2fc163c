"""examples/train_with_trl.py: a run's rows train with TRL's own DPO and SFT trainers."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from opencharacter.cli import cli

EXAMPLE = Path(__file__).parents[2] / "examples" / "train_with_trl.py"


def test_trl_trains_dpo_then_sft_on_a_runs_rows(tiny_model_dir, tmp_path):
    """On a simulated run through sft, each stage saves a LoRA adapter and logs finite losses."""
    run_dir = tmp_path / "run"
    flags = ["--backend", "simulated", "--scale", "smoke", "--run-dir", str(run_dir)]
    result = CliRunner().invoke(cli, ["pipeline", "loving", *flags, "--until", "sft"])
    assert result.exit_code == 0, result.output
    model = ["--model", str(tiny_model_dir)]
    small = ["--max-steps", "2", "--batch-size", "2", "--lora-rank", "8"]
    command = [sys.executable, str(EXAMPLE), "--run-dir", str(run_dir), *model, *small]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}  # every model is a local folder
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False,
                          timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    losses = {}
    for stage in ("dpo", "sft"):
        adapter = run_dir / "trl" / stage
        assert (adapter / "adapter_model.safetensors").is_file()
        config = json.loads((adapter / "adapter_config.json").read_text())
        assert (config["r"], config["base_model_name_or_path"]) == (8, str(tiny_model_dir))
        history = json.loads((adapter / "trainer_state.json").read_text())["log_history"]
        losses[stage] = [entry["loss"] for entry in history if "loss" in entry]
        assert len(losses[stage]) == 2, history
        assert all(math.isfinite(loss) for loss in losses[stage])
        assert f"{stage}: 2 steps, loss" in done.stdout
    # The paper's NLL term rides on the DPO loss: plain DPO starts at ln 2.
    assert losses["dpo"][0] > math.log(2) + 0.1
    # SFT went on training the DPO adapter: a new one would have new random A matrices.
    torch = pytest.importorskip("torch")
    from safetensors.torch import load_file  # noqa: PLC0415 - torch may be absent

    dpo, sft = (load_file(run_dir / "trl" / s / "adapter_model.safetensors") for s in losses)
    lora_a = [name for name in dpo if "lora_A" in name]
    assert lora_a
    assert dpo.keys() == sft.keys()
    assert all(torch.allclose(dpo[name], sft[name], atol=1e-3) for name in lora_a)
    assert "Run it" in EXAMPLE.read_text()
