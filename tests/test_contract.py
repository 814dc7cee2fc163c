"""The backend contract (opencharacter.testing) on the simulated backend and on the example
plugin of examples/bigram_backend.py, registered from code as a third party would test it."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import pytest

from opencharacter.registry import load_backend, register_backend, unregister_backend
from opencharacter.testing import BackendContract


class TestSimulated(BackendContract):
    model = "contract-model"
    checks_model_names = False  # a simulator serves any name
    pipeline_options: ClassVar = {"seed": 3}

    @pytest.fixture
    def backend(self):
        return load_backend("simulated", {"seed": 3})


class TestTheExamplePlugin(BackendContract):
    model = "bigram/small"
    pipeline_options: ClassVar = {}
    pipeline_settings: ClassVar = {"filters": False}  # bigram babble would fail every filter

    @pytest.fixture
    def backend(self, monkeypatch):
        examples = Path(__file__).parents[1] / "examples"
        monkeypatch.syspath_prepend(str(examples))
        from bigram_backend import SPEC  # noqa: PLC0415 - importable once on the path

        register_backend(SPEC, replace=True)
        yield load_backend("bigram")
        unregister_backend("bigram")
