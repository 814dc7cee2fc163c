"""Fixtures for the openai backend's tests: the real ``openai`` client against a loopback fake."""

from __future__ import annotations

import pytest

pytest.importorskip("openai")

from opencharacter_openai.fake_server import FakeOpenAIServer

KEY = "sk-test-never-logged-0123456789abcdef"


@pytest.fixture(autouse=True)
def _no_real_openai(monkeypatch):
    """No address or key from the machine; the tests set their own."""
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", KEY)


@pytest.fixture
def server():
    """A fake vLLM-like server serving "teacher", requiring the test key."""
    with FakeOpenAIServer({"teacher": "vllm"}, api_key=KEY) as fake:
        yield fake
