"""The backend contract (opencharacter.testing) on every backend we ship that runs here."""

from __future__ import annotations

import pytest

from opencharacter.registry import load_backend
from opencharacter.testing import BackendContract


class TestSimulated(BackendContract):
    model = "contract-model"
    checks_model_names = False  # a simulator serves any name

    @pytest.fixture
    def backend(self):
        return load_backend("simulated", {"seed": 3})
