"""The package imports light, exposes a curated API and reports its version."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import version

import opencharacter

HEAVY = (
    "torch",
    "transformers",
    "trl",
    "peft",
    "vllm",
    "tinker",
    "datasets",
    "numpy",
    "inspect_ai",
    "openai",
    "wandb",
    "mlflow",
    "trackio",
)


def test_import_loads_no_heavy_framework():
    """`import opencharacter` (and its CLI) imports none of the ML frameworks or SDKs."""
    code = (
        "import sys, opencharacter, opencharacter.cli, opencharacter.simulated\n"
        "opencharacter.available_backends()\n"
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""


def test_every_public_name_resolves_and_all_is_sorted():
    """Each name in __all__ exists, and __all__ is alphabetised."""
    for name in opencharacter.__all__:
        assert getattr(opencharacter, name) is not None
    assert opencharacter.__all__ == sorted(opencharacter.__all__)


def test_version_comes_from_metadata():
    """__version__ is the installed distribution's version."""
    assert opencharacter.__version__ == version("opencharacter")
