"""The backend contract on the Tinker backend: the real SDK against the fake service."""

from __future__ import annotations

import pytest

from opencharacter.registry import load_backend
from opencharacter.testing import BackendContract

from .conftest import TINY


class TestTinker(BackendContract):
    model = TINY

    @pytest.fixture
    def backend(self, fake, options):
        return load_backend("tinker", options)
