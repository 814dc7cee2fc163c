"""docs/data-formats.md shows each run file's rows with exactly the keys a real run writes."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from opencharacter.cli import cli

PAGE = Path(__file__).parents[1] / "docs" / "data-formats.md"
_SAMPLE = re.compile(r"^### `(.+?)`\n.*?```json\n(.*?)\n```", re.DOTALL | re.MULTILINE)


def shape(value: object) -> object:
    """Return the keys of a row, nested: a dict's keys with their shapes, a list's first item's."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list) and value and isinstance(value[0], dict | list):
        return [shape(value[0])]
    return None


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """The page's run, and a run whose answers are cut short (for filtered.jsonl)."""
    root = tmp_path_factory.mktemp("formats")
    config = root / "short.toml"
    config.write_text("[sampling]\nanswer_tokens = 60\n")
    commands = {
        "full": ["pipeline", "sarcasm", "--backend", "simulated", "--scale", "smoke",
                 "--seed", "7", "--run-dir", str(root / "full")],
        "short": ["pipeline", "sarcasm", "--backend", "simulated", "--scale", "smoke",
                  "--seed", "7", "--config", str(config), "--until", "distill",
                  "--run-dir", str(root / "short")],
    }  # fmt: skip
    for args in commands.values():
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 0, result.output
    return {name: root / name for name in commands}


def documented() -> list[pytest.param]:
    """Each file the page shows a row of, with that row."""
    return [pytest.param(name, json.loads(row), id=name)
            for name, row in _SAMPLE.findall(PAGE.read_text())]  # fmt: skip


@pytest.mark.parametrize(("name", "row"), documented())
def test_documented_row_has_the_real_keys(runs, name, row):
    """The page's row and the real file's first row have the same keys, nested alike."""
    run = runs["short" if name == "filtered.jsonl" else "full"]
    with (run / name).open() as rows:
        real = json.loads(rows.readline())
    assert shape(row) == shape(real)


def test_every_row_file_is_documented(runs):
    """Each JSONL file a full run writes has its sample on the page."""
    written = {p.relative_to(runs["full"]).as_posix() for p in runs["full"].rglob("*.jsonl")}
    assert written | {"filtered.jsonl"} == {name for name, _ in _SAMPLE.findall(PAGE.read_text())}
