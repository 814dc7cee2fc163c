"""The backend contract on the local backend: the tiny model, transformers, TRL on a LoRA."""

from __future__ import annotations

import pytest

from opencharacter.registry import load_backend
from opencharacter.testing import BackendContract

# PEFT reads a property transformers 5 deprecated; nothing on our side can avoid the warning.
pytestmark = pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing.*:FutureWarning")


class TestLocal(BackendContract):
    model = "opencharacter/tiny-qwen3"
    checks_model_names = False  # a model loads, or says why not, when first used

    @pytest.fixture
    def backend(self):
        return load_backend("local", {"engine": "transformers", "device": "cpu"})
