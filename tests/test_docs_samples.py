"""Every Python and TOML sample in the docs and the README runs or loads as written.

Doctest samples (``>>>``) run in the ``docs`` nox session and the command lines in
``tests/test_docs_cli.py``; this file covers the rest: a ``python`` block runs in a fresh
interpreter, a run configuration resolves, a constitution loads, and a plugin's entry-point
table names our real entry-point group.
"""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest

from opencharacter.config import resolve_config
from opencharacter.constitution import load_constitution
from opencharacter.registry import ENTRY_POINT_GROUP

ROOT = Path(__file__).parents[1]
PAGES = (*sorted((ROOT / "docs").glob("*.md")), ROOT / "README.md")
_FENCE = re.compile(r"^( *)```(\w+)\n(.*?)^\1```", re.DOTALL | re.MULTILINE)


def samples(language: str) -> list[pytest.param]:
    """Return each ``language`` block of the pages (doctests excluded), named by page and line."""
    found = []
    for page in PAGES:
        text = page.read_text()
        for block in _FENCE.finditer(text):
            body = textwrap.dedent(block.group(3))
            if block.group(2) == language and ">>>" not in body:
                line = text.count("\n", 0, block.start()) + 1
                found.append(pytest.param(body, id=f"{page.name}:{line}"))
    return found


@pytest.mark.parametrize("code", samples("python"))
def test_python_samples_run(code, tmp_path):
    """A Python block runs on its own, in an empty folder, with only the core installed."""
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                            text=True, timeout=120, check=False)  # fmt: skip
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("text", samples("toml"))
def test_toml_samples_load(text, tmp_path):
    """A TOML block is a run configuration, a constitution or a plugin's entry-point table."""
    data = tomllib.loads(text)
    path = tmp_path / "sample.toml"
    path.write_text(text)
    if "traits" in data:
        assert load_constitution(path).traits
    elif "project" in data:
        assert ENTRY_POINT_GROUP in data["project"]["entry-points"]
    else:
        config, _ = resolve_config(file=path, environ={})
        assert config.constitution == data["constitution"]


def test_samples_are_found():
    """The collector sees the pages' blocks (an empty parametrisation would pass silently)."""
    assert len(samples("python")) >= 2
    assert len(samples("toml")) >= 3


def test_costs_page_shows_the_real_estimate(monkeypatch):
    """docs/costs.md's estimate table is what ``--estimate`` prints for that command today."""
    from click.testing import CliRunner  # noqa: PLC0415

    from opencharacter.cli import cli  # noqa: PLC0415
    from opencharacter.console import stdout  # noqa: PLC0415

    # The page's width; the console otherwise keeps the width it found when first imported.
    monkeypatch.setattr(stdout, "_width", 110)
    result = CliRunner().invoke(cli, ["pipeline", "sarcasm", "--scale", "paper", "--estimate"])
    assert result.exit_code == 0, result.output
    page = (ROOT / "docs" / "costs.md").read_text()
    shown = page.split("```text\n", 1)[1].split("```", 1)[0].strip().splitlines()
    assert result.output.strip().splitlines()[: len(shown)] == shown
