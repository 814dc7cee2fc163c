"""Model cards: Hub metadata, the constitution, training and evaluation, from a run alone."""

from __future__ import annotations

import pytest
import yaml
from click.testing import CliRunner

from opencharacter.cli import cli
from opencharacter.model_card import base_model_license, model_card, write_model_card


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A smoke run on the simulated backend, evaluated."""
    path = tmp_path_factory.mktemp("card") / "run"
    args = ["pipeline", "pirate", "--backend", "simulated", "--scale", "smoke", "--run-dir",
            str(path)]  # fmt: skip
    assert CliRunner().invoke(cli, args, catch_exceptions=False).exit_code == 0
    return path


def test_the_card_carries_hub_metadata_and_every_section(run_dir):
    card = model_card(run_dir, stage="sft", adapter=True, license="apache-2.0")
    metadata = yaml.safe_load(card.split("---")[1])
    assert metadata["base_model"] == "Qwen/Qwen3-8B"
    assert (metadata["library_name"], metadata["license"]) == ("peft", "apache-2.0")
    assert {"opencharacter", "persona-pirate", "lora"} <= set(metadata["tags"])
    for section in ("## The constitution", "## Training", "## Evaluation", "## Use"):
        assert section in card
    assert "| DPO |" in card
    assert "| SFT |" in card
    assert "Elo change of the constitution's traits" in card
    assert "AutoPeftModelForCausalLM" in card
    assert "check it before use" not in card


def test_a_dpo_export_shows_dpo_only_and_an_unknown_license_says_so(run_dir, tmp_path):
    path = write_model_card(run_dir, tmp_path, stage="dpo", adapter=False)
    card = path.read_text()
    assert path.name == "README.md"
    assert "| SFT |" not in card
    assert "license: other" in card
    assert "check it before use" in card
    assert "AutoModelForCausalLM" in card


def test_an_unevaluated_run_says_how_to_evaluate(tmp_path):
    path = tmp_path / "run"
    args = ["pipeline", "pirate", "--backend", "simulated", "--scale", "smoke", "--until", "sft",
            "--run-dir", str(path)]  # fmt: skip
    assert CliRunner().invoke(cli, args, catch_exceptions=False).exit_code == 0
    assert "Not evaluated: run `opencharacter eval RUN_DIR`" in model_card(
        path, stage="sft", adapter=True)  # fmt: skip


def test_a_local_base_model_s_license_is_read_from_its_card(tmp_path):
    (tmp_path / "README.md").write_text("---\nlicense: 'mit'\ntags: [x]\n---\n# Model\n")
    assert base_model_license(tmp_path) == "mit"
    (tmp_path / "README.md").write_text("# no front matter\nlicense: gpl\n")
    assert base_model_license(tmp_path) is None
