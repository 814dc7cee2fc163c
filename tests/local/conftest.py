"""Fixtures for the local backend's tests: a tiny model built offline, and few CPU threads."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """Build the tiny random Qwen3 once per session; no network is ever needed."""
    from opencharacter_local.tiny import build_tiny_model  # noqa: PLC0415 - torch may be absent

    return build_tiny_model(tmp_path_factory.mktemp("tiny-qwen3"))


@pytest.fixture(autouse=True, scope="session")
def _two_threads():
    """Run torch on two threads, as on the CI machines, and restore the setting afterwards."""
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)
