"""Every example runs as its docstring says, and the example config resolves."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from opencharacter.config import resolve_config

EXAMPLES = Path(__file__).parent.parent / "examples"


@pytest.mark.parametrize("script", ["tour.py", "run_pipeline.py", "bigram_backend.py"])
def test_example_scripts_run(script, tmp_path):
    """Each example script finishes on the simulated backend and writes its run directory."""
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / script), "--run-dir", str(tmp_path / "run")],
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "run" / "manifest.json").exists()
    assert "Run it" in (EXAMPLES / script).read_text()


def test_paper_config_resolves_to_the_papers_settings():
    """examples/paper.toml gives the paper's counts and DPO settings."""
    config, _ = resolve_config(file=EXAMPLES / "paper.toml", environ={})
    assert (config.scale, config.counts.samples_per_prompt, config.dpo.beta) == ("paper", 5, 0.1)
    assert config.generic_source == "GAIR/lima"


def test_paper_config_runs_on_tinker_as_written():
    """Every explicit setting of examples/paper.toml is one the Tinker backend honours."""
    backend = pytest.importorskip("opencharacter_tinker.backend").TinkerBackend()
    from opencharacter.capabilities import explicit_settings, fit_config  # noqa: PLC0415

    config, layers = resolve_config(file=EXAMPLES / "paper.toml", environ={})
    side = ("tinker", backend.capabilities)
    fitted, changes = fit_config(config, teacher=side, student=side,
                                 explicit=explicit_settings(layers))  # fmt: skip
    assert fitted.dpo.kl_coef == 0.001
    assert fitted.sft.start == "continue"
    assert {c.setting for c in changes} == {"dpo.lora.alpha", "sft.lora.alpha"}


def test_every_example_states_its_command_and_is_listed_in_the_docs():
    """Each script's docstring gives its command, and docs/examples.md lists every file."""
    page = (EXAMPLES.parent / "docs" / "examples.md").read_text()
    for path in sorted(EXAMPLES.iterdir()):
        assert f"`{path.name}`" in page, f"{path.name} is missing from docs/examples.md"
        if path.suffix == ".py":
            assert f"python examples/{path.name}" in path.read_text(), path.name
