"""Tests of the evaluation prompts: the built-in set and loading from files and the Hub."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from opencharacter.errors import ConfigError, DataError, MissingDependencyError
from opencharacter.eval.prompts import builtin_prompts, first_user_turn, load_prompts
from opencharacter.stages.texts import generic_prompts


def _write(tmp_path: Path, name: str, text: str | bytes) -> str:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return str(path)


# --- the built-in set ------------------------------------------------------------------------


def test_builtin_set_is_large_distinct_and_clean() -> None:
    """About 120+ distinct, stripped, non-blank prompts ship with the package."""
    prompts = builtin_prompts()
    assert len(prompts) >= 120
    assert len(set(prompts)) == len(prompts)
    assert all(p and p == p.strip() for p in prompts)


def test_builtin_set_shares_no_prompt_with_distillation() -> None:
    """No evaluation prompt is one of the generic prompts the model was trained on."""
    assert not set(builtin_prompts()) & set(generic_prompts())


def test_builtin_set_mixes_short_and_long_requests() -> None:
    """The set holds both short chat lines and long, detailed requests."""
    lengths = [len(p) for p in builtin_prompts()]
    assert min(lengths) < 40
    assert sum(n > 200 for n in lengths) >= 5


def test_builtin_source_is_a_seeded_permutation_of_the_set() -> None:
    """'builtin' yields every built-in prompt, in an order fixed by the seed."""
    first = load_prompts("builtin", seed=7)
    assert sorted(first) == sorted(builtin_prompts())
    assert load_prompts("builtin", seed=7) == first
    assert load_prompts("builtin", seed=8) != first


@given(st.integers(min_value=1, max_value=200), st.integers(min_value=0, max_value=3))
def test_a_smaller_limit_gives_a_prefix_of_a_larger_one(limit: int, seed: int) -> None:
    """Limits cut one seeded order, so a trial run asks a subset of a full run's prompts."""
    everything = load_prompts("builtin", seed=seed)
    assert load_prompts("builtin", limit=limit, seed=seed) == everything[:limit]


@pytest.mark.parametrize("limit", [0, -3])
def test_a_limit_below_one_is_refused(limit: int) -> None:
    """Asking for no prompts is a configuration error."""
    with pytest.raises(ConfigError, match="at least 1"):
        load_prompts("builtin", limit=limit)


# --- files -----------------------------------------------------------------------------------


def test_text_file_one_prompt_per_line(tmp_path: Path) -> None:
    """Lines are stripped, blank lines skipped, duplicates kept once, the last line counted."""
    path = _write(tmp_path, "p.txt", "\ufeffFirst?\n\n  Second.  \nFirst?\r\nThird!")
    assert sorted(load_prompts(path)) == ["First?", "Second.", "Third!"]


def test_jsonl_rows_in_every_supported_layout(tmp_path: Path) -> None:
    """A prompt string, a messages list (after a system turn) and a conversation all work."""
    rows = [
        {"prompt": "Plain?"},
        {"messages": [{"role": "system", "content": "Be nice."},
                      {"role": "user", "content": "From messages?"},
                      {"role": "assistant", "content": "Yes."}]},
        {"conversation": [{"role": "user", "content": "From WildChat?", "language": "English"}]},
        {"conversations": [{"from": "human", "value": "From ShareGPT?"}]},
        {"messages": [{"role": "user", "content": [{"type": "text", "text": "From parts?"}]}]},
    ]  # fmt: skip
    text = (
        "\n".join(json.dumps(r) for r in rows[:3])
        + "\n\n"
        + "\n".join(json.dumps(r) for r in rows[3:])
    )
    prompts = load_prompts(_write(tmp_path, "p.jsonl", text), seed=3)
    assert sorted(prompts) == sorted(
        ["Plain?", "From messages?", "From WildChat?", "From ShareGPT?", "From parts?"]
    )


def test_first_user_turn_reads_pure_dove_exchanges_and_rejects_rows_without_one() -> None:
    """Pure-Dove's input/output pairs give their first input; rows with no user turn give None."""
    assert first_user_turn({"conversation": [{"input": "Why?", "output": "So."}]}) == "Why?"
    assert first_user_turn({"messages": [{"role": "assistant", "content": "Hi"}]}) is None
    assert first_user_turn({"prompt": "   "}) is None
    assert first_user_turn({"id": 3}) is None


@pytest.mark.parametrize(
    ("text", "line", "hint"),
    [
        ('{"prompt": "ok"}\n{"prompt": "ok2"}\n{"prompt": broken}\n', 3, "not valid JSON"),
        ('{"prompt": "ok"}\n{"question": "where?"}\n', 2, '"prompt"'),
        ('{"prompt": "ok"}\n\n["a list"]\n', 3, '"prompt"'),
        ('{"messages": [{"role": "assistant", "content": "Hi"}]}\n', 1, '"messages"'),
    ],
)
def test_bad_jsonl_rows_name_file_line_and_fix(
    tmp_path: Path, text: str, line: int, hint: str
) -> None:
    """A malformed or prompt-less row is a DataError naming the file, the line and the fix."""
    path = _write(tmp_path, "bad.jsonl", text)
    with pytest.raises(DataError, match=rf"bad\.jsonl:{line}:") as caught:
        load_prompts(path)
    assert hint in str(caught.value)


def test_non_utf8_line_is_named(tmp_path: Path) -> None:
    """A line that is not UTF-8 is reported with its number."""
    path = _write(tmp_path, "p.txt", b"fine\nalso fine\nbad \xff byte\n")
    with pytest.raises(DataError, match=r"p\.txt:3: .*UTF-8"):
        load_prompts(path)


def test_empty_file_is_an_error(tmp_path: Path) -> None:
    """A file with no prompt at all fails instead of evaluating on nothing."""
    with pytest.raises(DataError, match="no prompt"):
        load_prompts(_write(tmp_path, "p.txt", "\n   \n"))


@pytest.mark.parametrize("source", ["missing.txt", "p.csv", "does/not/exist"])
def test_unusable_sources_say_which_forms_work(tmp_path: Path, source: str) -> None:
    """A missing file or an unknown file type is a ConfigError listing the accepted forms."""
    _write(tmp_path, "p.csv", "a,b\n")
    with pytest.raises(ConfigError, match="hf:<dataset>"):
        load_prompts(str(tmp_path / source))


# --- Hugging Face datasets (a stand-in module: no network here) -----------------------------


class _FakeTable:
    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.rows = rows
        self.column_names = sorted({key for row in rows for key in row})

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.rows[index]


def _fake_datasets(
    monkeypatch: pytest.MonkeyPatch, rows: list[dict[str, Any]]
) -> list[tuple[str, str]]:
    calls: list[tuple[str, str]] = []

    def load_dataset(name: str, *, split: str) -> _FakeTable:
        calls.append((name, split))
        if name == "nobody/nothing":
            raise FileNotFoundError(name)
        return _FakeTable(rows)

    module = types.ModuleType("datasets")
    module.load_dataset = load_dataset  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "datasets", module)
    return calls


def _wildchat(n: int) -> list[dict[str, Any]]:
    return [
        {"conversation": [{"role": "user", "content": f"question {i}"},
                          {"role": "assistant", "content": "answer"}], "turn": 1}
        for i in range(n)
    ]  # fmt: skip


def test_hub_source_reads_first_user_turns_of_the_split(monkeypatch: pytest.MonkeyPatch) -> None:
    """'hf:<name>:<split>' loads that split; rows without a prompt are skipped."""
    calls = _fake_datasets(monkeypatch, [*_wildchat(5), {"conversation": [], "turn": 0}])
    prompts = load_prompts("hf:org/chats:test", seed=1)
    assert calls == [("org/chats", "test")]
    assert sorted(prompts) == [f"question {i}" for i in range(5)]


def test_hub_source_defaults_to_train_and_honours_limit_and_seed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without a split, 'train' is loaded; limit and seed cut the same order as for files."""
    calls = _fake_datasets(monkeypatch, _wildchat(50))
    everything = load_prompts("hf:org/chats", seed=4)
    assert load_prompts("hf:org/chats", limit=7, seed=4) == everything[:7]
    assert calls[0] == ("org/chats", "train")


def test_hub_dataset_without_prompt_columns_names_its_columns(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A dataset with no usable column is a DataError that lists the columns it has."""
    _fake_datasets(monkeypatch, [{"question": "q", "answer": "a"}])
    with pytest.raises(DataError, match=r"\['answer', 'question'\]"):
        load_prompts("hf:org/qa")


def test_hub_load_failure_is_a_data_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """A dataset that cannot be loaded is reported with its name and what to check."""
    _fake_datasets(monkeypatch, [])
    with pytest.raises(DataError, match="nobody/nothing"):
        load_prompts("hf:nobody/nothing")


def test_hub_without_datasets_installed_gives_the_install_command(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without the datasets package the error names the pip command."""
    monkeypatch.setitem(sys.modules, "datasets", None)
    with pytest.raises(MissingDependencyError, match="pip install datasets"):
        load_prompts("hf:org/chats")


def test_hub_source_must_name_a_dataset() -> None:
    """'hf:' alone is a configuration error."""
    with pytest.raises(ConfigError, match="names no dataset"):
        load_prompts("hf:")
