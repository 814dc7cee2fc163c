"""The backend contract on the openai backend, against the fake server."""

from __future__ import annotations

import pytest

from opencharacter.registry import load_backend
from opencharacter.testing import BackendContract


class TestOpenAI(BackendContract):
    model = "teacher"

    @pytest.fixture
    def backend(self, server):
        return load_backend("openai", {"base_url": server.base_url})
