"""Fixtures for the local backend's tests: few CPU threads, and a LoRA that changes outputs."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True, scope="session")
def _two_threads():
    """Run torch on two threads, as on the CI machines, and restore the setting afterwards."""
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def adapter_dir(tiny_model_dir, tmp_path_factory):
    """A LoRA with random B weights, so unlike a fresh adapter it changes the outputs."""
    torch = pytest.importorskip("torch")
    from peft import LoraConfig, get_peft_model  # noqa: PLC0415 - peft may be absent
    from transformers import AutoModelForCausalLM  # noqa: PLC0415 - likewise

    config = LoraConfig(r=8, target_modules="all-linear", init_lora_weights=False)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_model_dir), config)
    folder = tmp_path_factory.mktemp("adapter")
    model.save_pretrained(folder)
    return folder
