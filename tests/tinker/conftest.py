"""Fixtures for the Tinker backend's tests: the real SDK against the fake server, offline.

Nothing here reaches the network: the SDK's telemetry is off, credentials and base URL point
at an in-process :class:`~opencharacter_tinker.fake_server.FakeTinkerServer` serving the tiny
random Qwen3 under its reserved name.
"""

from __future__ import annotations

import pytest

pytest.importorskip("tinker")
torch = pytest.importorskip("torch")

TINY = "opencharacter/tiny-qwen3"


@pytest.fixture(autouse=True, scope="module")
def _offline():
    """No telemetry, no real credentials or address, no Hub; one torch thread.

    The fake service runs its model in this process beside the SDK's threads: on two cores one
    torch thread is many times faster than two fighting over them.
    """
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TINKER_TELEMETRY", "0")
        patch.setenv("HF_HUB_OFFLINE", "1")
        for name in ("TINKER_API_KEY", "TINKER_BASE_URL", "TINKER_CREDENTIAL_CMD"):
            patch.delenv(name, raising=False)
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        yield patch
        torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def fake(tiny_model_dir, _offline):
    """The fake service, serving the tiny model; the environment holds its address and key."""
    from opencharacter_tinker.fake_server import FakeTinkerServer  # noqa: PLC0415 - needs torch

    with FakeTinkerServer({TINY: tiny_model_dir}) as server:
        for name, value in server.env().items():
            _offline.setenv(name, value)
        yield server


@pytest.fixture
def options(tiny_model_dir):
    """Backend options for the tiny model: its tokenizer folder, a resume point every step."""
    return {"tokenizer": str(tiny_model_dir), "save_every": "1", "connect_timeout": "20"}
