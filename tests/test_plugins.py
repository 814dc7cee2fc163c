"""The built-in plugin distributions register through entry points and report what they lack."""

from __future__ import annotations

import json
from importlib.metadata import PackageNotFoundError, distribution

import pytest
from click.testing import CliRunner

from opencharacter.cli import cli
from opencharacter.errors import MissingDependencyError
from opencharacter.registry import DEFAULT_BACKEND, available_backends, get_backend_spec


def installed(dist: str) -> bool:
    try:
        distribution(dist)
    except PackageNotFoundError:
        return False
    return True


needs_plugins = pytest.mark.skipif(
    not all(installed(f"opencharacter-{name}") for name in ("local", "tinker", "openai")),
    reason="the backend plugin distributions are not installed (nox installs them)",
)


@needs_plugins
def test_the_plugins_are_listed_with_simulated():
    """With the plugin distributions installed, every built-in backend is listed."""
    assert {"local", "openai", "simulated", "tinker"} <= set(available_backends())
    assert DEFAULT_BACKEND == "tinker"
    output = CliRunner().invoke(cli, ["backends", "--json"], catch_exceptions=False).output
    rows = {row["name"]: row for row in map(json.loads, output.splitlines())}
    assert {"local", "openai", "simulated", "tinker"} <= set(rows)
    assert [name for name, row in rows.items() if row["default"]] == ["tinker"]


@needs_plugins
def test_local_readiness_names_its_missing_frameworks():
    """Without torch and friends, `local` is not ready and says how to install them."""
    spec = get_backend_spec("local")
    missing = spec.missing()
    if not missing:
        pytest.skip("the local backend's dependencies are installed here")
    [problem] = spec.check().problems
    assert missing[0] in problem
    assert 'pip install "opencharacter[local]"' in problem
    with pytest.raises(MissingDependencyError, match=missing[0]):
        spec.load()


@needs_plugins
def test_tinker_readiness_checks_credentials(monkeypatch, tmp_path):
    """`tinker` reports missing credentials with the fix, and is satisfied by TINKER_API_KEY."""
    opencharacter_tinker = pytest.importorskip("opencharacter_tinker")
    monkeypatch.setattr(opencharacter_tinker, "CREDENTIALS_FILE", tmp_path / "none.json")
    monkeypatch.delenv("TINKER_API_KEY", raising=False)
    monkeypatch.delenv("TINKER_CREDENTIAL_CMD", raising=False)
    [problem] = opencharacter_tinker.credentials_problems()
    assert "TINKER_API_KEY" in problem
    monkeypatch.setenv("TINKER_API_KEY", "tml-test")
    assert opencharacter_tinker.credentials_problems() == ()
