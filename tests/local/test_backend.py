"""The local backend loads through the registry and runs the whole pipeline on a tiny model."""

from __future__ import annotations

import json

import pytest
import yaml

pytest.importorskip("torch")
pytestmark = pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing.*:FutureWarning")

from click.testing import CliRunner  # noqa: E402 - after the importorskip guard

from opencharacter.cli import cli  # noqa: E402
from opencharacter.errors import ConfigError  # noqa: E402
from opencharacter.protocols import Backend, Student, Teacher, Trainer  # noqa: E402
from opencharacter.registry import get_backend_spec, load_backend  # noqa: E402


def test_registry_loads_the_local_backend_with_options():
    """`local` is ready here, builds from string options and satisfies the protocols."""
    assert get_backend_spec("local").check().ready
    backend = load_backend("local", {"engine": "transformers", "device": "cpu",
                                     "max_batch_size": "8"})  # fmt: skip
    assert isinstance(backend, Backend)
    assert isinstance(backend.teacher("opencharacter/tiny-qwen3"), Teacher)
    assert isinstance(backend.student("opencharacter/tiny-qwen3"), Student)
    assert isinstance(backend.trainer(), Trainer)
    assert backend.capabilities.trains_weights


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    """`opencharacter demo`'s run directory, and what the command printed."""
    tmp_path = tmp_path_factory.mktemp("demo")
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv("OPENCHARACTER_CACHE", str(tmp_path / "cache"))
        run_dir = tmp_path / "demo"
        result = CliRunner().invoke(cli, ["demo", "--run-dir", str(run_dir)],
                                    catch_exceptions=False)  # fmt: skip
    assert result.exit_code == 0, result.output
    return run_dir, result.output


def test_demo_runs_every_stage_and_leaves_real_adapters(demo_run):
    """`opencharacter demo` runs prompts to eval on CPU: PEFT adapters, numbers, a report."""
    run_dir, output = demo_run
    assert "writes nonsense" in output
    assert f"The report: {run_dir / 'report.html'}" in output.replace("\n", "")
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert set(manifest["stages"]) >= {"prompts", "distill", "dpo", "introspect", "sft", "eval"}
    summary = json.loads((run_dir / "eval" / "summary.json").read_text())
    assert set(summary["robustness"]["scores"]) >= {"prompted", "dpo", "sft"}
    assert all(stage["state"] == "done" for stage in manifest["stages"].values())
    sft = manifest["checkpoints"]["sft"]
    assert sft["parent"] == manifest["checkpoints"]["dpo"]["uri"]
    for kind in ("dpo", "sft"):
        adapter = run_dir / kind / "adapter"
        assert (adapter / "adapter_config.json").exists()
        assert (adapter / "adapter_model.safetensors").exists()
    assert sft["meta"]["base_weights"]  # stacked on the DPO-merged weights, as the paper


def test_export_merges_the_stacked_sft_model_into_one_folder(demo_run, tmp_path):
    """The exported model computes what base + DPO + SFT adapters compute, on its own."""
    import torch  # noqa: PLC0415 - after the importorskip guard
    from opencharacter_local.export import export  # noqa: PLC0415 - likewise
    from peft import PeftModel  # noqa: PLC0415 - likewise
    from transformers import AutoModelForCausalLM  # noqa: PLC0415 - likewise

    run_dir, _ = demo_run
    out = tmp_path / "merged"
    result = CliRunner().invoke(export, [str(run_dir), str(out)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    card = (out / "README.md").read_text()
    metadata = yaml.safe_load(card.split("---")[1])
    assert metadata["base_model"] == "opencharacter/tiny-qwen3"
    assert (metadata["library_name"], metadata["license"]) == ("transformers", "other")
    assert "persona-sarcasm" in metadata["tags"]
    assert "## The constitution" in card
    assert "## Evaluation" in card
    sft = json.loads((run_dir / "manifest.json").read_text())["checkpoints"]["sft"]
    stacked = PeftModel.from_pretrained(
        AutoModelForCausalLM.from_pretrained(sft["meta"]["base_weights"]), sft["uri"]
    )
    tokens = torch.tensor([[1, 5, 9, 42, 7, 3]])
    with torch.no_grad():
        expected = stacked.eval()(tokens).logits
        merged = AutoModelForCausalLM.from_pretrained(out).eval()(tokens).logits
    assert torch.allclose(merged, expected, atol=1e-4)
    again = CliRunner().invoke(export, [str(run_dir), str(out)])
    assert again.exit_code != 0
    assert "is not empty" in str(again.exception)


def test_vllm_engine_settings_reach_the_engine_per_side():
    """Options given as strings (-o, --teacher-option) reach vllm.LLM typed; unset ones are
    left to vLLM's defaults."""
    teacher = load_backend("local", {"engine": "vllm", "tensor_parallel_size": "8",
                                     "gpu_memory_utilization": "0.85", "max_model_len": "8192",
                                     "quantization": "fp8"})  # fmt: skip
    assert teacher.vllm_options == {"tensor_parallel_size": 8, "gpu_memory_utilization": 0.85,
                                    "max_model_len": 8192, "quantization": "fp8"}  # fmt: skip
    assert teacher._engines._factory.keywords == teacher.vllm_options
    student = load_backend("local", {"engine": "vllm", "dtype": "float16"})
    assert student.vllm_options == {"tensor_parallel_size": 1, "dtype": "float16"}
    with pytest.raises(ConfigError, match="gpu_memory_utilization"):
        load_backend("local", {"gpu_memory_utilization": "1.5"})
