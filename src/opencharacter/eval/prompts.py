"""The user prompts every evaluation answers: our built-in offline set, a file, or a Hub dataset.

The paper evaluated on first turns of real conversations (Pure-Dove for robustness, WildChat
for preferences). Those need the Hub, so the default is :func:`builtin_prompts`, a set of our
own that runs offline: advice, code, explanations, opinions, creative requests, small talk, a
few invitations for a persona to show itself and a few long requests. It shares no line with
the generic prompts of distillation, so no evaluation prompt was seen in training.

:func:`load_prompts` reads any of the sources, drops duplicates, shuffles with a seed and keeps
the first ``limit``: the same inputs always give the same prompts, and a smaller limit gives a
prefix of a larger one, so a short trial run asks a subset of what a full run asks.
"""

from __future__ import annotations

import functools
import json
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from opencharacter.errors import ConfigError, DataError, MissingDependencyError

__all__ = ["BUILTIN", "HUB_PREFIX", "builtin_prompts", "first_user_turn", "load_prompts"]

#: The source name of the built-in set.
BUILTIN = "builtin"
#: The prefix of a Hugging Face dataset source: ``hf:<dataset>[:split]``.
HUB_PREFIX = "hf:"

# Where a row keeps its prompt, in the order they are tried: a string, or a list of chat turns
# whose first user turn is the prompt (TRL, OpenAI, WildChat, ShareGPT and Pure-Dove layouts).
_PROMPT_KEYS = ("prompt", "messages", "conversation", "conversations", "text", "instruction")
_USER_ROLES = frozenset({"user", "human"})
_FORMATS = (
    "'builtin', a .txt file (one prompt per line), a .jsonl file (rows with a \"prompt\" "
    "string or a \"messages\" list), or 'hf:<dataset>[:split]'"
)


@functools.cache
def builtin_prompts() -> tuple[str, ...]:
    """Return our built-in evaluation prompts, in file order, one per non-empty line.

    >>> len(builtin_prompts()) >= 120
    True
    """
    data = resources.files("opencharacter.eval").joinpath("eval_prompts.txt")
    lines = data.read_text(encoding="utf-8").splitlines()
    return tuple(line.strip() for line in lines if line.strip())


def load_prompts(source: str, *, limit: int | None = None, seed: int = 0) -> tuple[str, ...]:
    """Return prompts from ``source``: deduplicated, shuffled with ``seed``, cut to ``limit``.

    Args:
        source: ``"builtin"`` for :func:`builtin_prompts`; a ``.txt`` file, one prompt per line
            (blank lines skipped); a ``.jsonl`` file whose every row holds a prompt, as a
            ``"prompt"`` string or as the first user turn of a ``"messages"`` or
            ``"conversation"`` list of ``{"role", "content"}`` turns; or
            ``"hf:<dataset>[:split]"`` (split ``train`` by default) for a Hugging Face dataset,
            whose rows are read the same way (WildChat's ``conversation`` column, say). A
            dataset's rows without a prompt are skipped; a file's are an error.
        limit: how many prompts to keep; ``None`` keeps all. A source with fewer gives fewer.
        seed: the shuffle's seed.

    Returns:
        The prompts, each once, stripped of surrounding whitespace.

    Raises:
        ConfigError: ``source`` is none of the forms above, or ``limit`` is below 1.
        DataError: the file or dataset is malformed or holds no prompt; the message names
            the file and line, or the dataset and its columns.
        MissingDependencyError: a Hub dataset was asked for without ``datasets`` installed.
    """
    if limit is not None and limit < 1:
        msg = f"the number of evaluation prompts must be at least 1, got {limit}"
        raise ConfigError(msg)
    source = source.strip()
    if source == BUILTIN:
        return _take(builtin_prompts(), limit, seed)
    if source.startswith(HUB_PREFIX):
        return _from_hub(source.removeprefix(HUB_PREFIX), limit, seed)
    path = Path(source).expanduser()
    if not path.is_file():
        msg = f"evaluation prompts: {source!r} is not an existing file; use {_FORMATS}"
        raise ConfigError(msg)
    readers = {".txt": _read_txt, ".jsonl": _read_jsonl}
    reader = readers.get(path.suffix.lower())
    if reader is None:
        msg = f"{path}: unknown prompt file type {path.suffix!r}; use {_FORMATS}"
        raise ConfigError(msg)
    prompts = _take(reader(path), limit, seed)
    if not prompts:
        msg = f"{path}: the file holds no prompt; add one per line, or use {_FORMATS}"
        raise DataError(msg)
    return prompts


def _take(prompts: Sequence[str], limit: int | None, seed: int) -> tuple[str, ...]:
    """Return up to ``limit`` distinct prompts, in an order fixed by ``seed``."""
    return _take_lazily(len(prompts), prompts.__getitem__, limit, seed)


def _take_lazily(
    count: int, get: Callable[[int], str | None], limit: int | None, seed: int
) -> tuple[str, ...]:
    """Visit ``count`` items in seeded random order, keeping distinct non-empty prompts.

    Shuffling positions rather than prompts means a large dataset reads only the rows it
    keeps, and that a smaller limit always yields a prefix of a larger one.
    """
    order = list(range(count))
    random.Random(seed).shuffle(order)
    kept: dict[str, None] = {}
    for index in order:
        if limit is not None and len(kept) >= limit:
            break
        prompt = get(index)
        if prompt:
            kept.setdefault(prompt.strip())
    return tuple(kept)


def _lines(path: Path) -> Iterable[tuple[int, str]]:
    """Yield the numbered, decoded lines of ``path``, naming the first one that is not UTF-8."""
    # A hand-written file often lacks a final newline, so every line counts, the last too;
    # opencharacter.jsonl.read_jsonl would drop it as the torn tail of a crashed write.
    for lineno, raw in enumerate(path.read_bytes().splitlines(), start=1):
        try:
            yield lineno, raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            msg = f"{path}:{lineno}: this line is not valid UTF-8; save the file as UTF-8"
            raise DataError(msg) from None


def _read_txt(path: Path) -> list[str]:
    return [line.strip() for _, line in _lines(path) if line.strip()]


def _read_jsonl(path: Path) -> list[str]:
    prompts = []
    for lineno, line in _lines(path):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            msg = (
                f"{path}:{lineno}: not valid JSON ({exc.msg}); each line must be one JSON "
                'object, such as {"prompt": "How do tides work?"}'
            )
            raise DataError(msg) from None
        prompt = first_user_turn(row) if isinstance(row, Mapping) else None
        if not prompt:
            msg = (
                f'{path}:{lineno}: no prompt in this row; give it a non-empty "prompt" '
                'string, or a "messages" list of {"role": "user", "content": ...} turns'
            )
            raise DataError(msg)
        prompts.append(prompt)
    return prompts


def first_user_turn(row: Mapping[str, Any]) -> str | None:
    """Return the prompt a dataset row holds, or ``None`` if it holds none.

    >>> first_user_turn({"messages": [{"role": "system", "content": "Be brief."},
    ...                               {"role": "user", "content": " Hi "}]})
    'Hi'
    >>> first_user_turn({"conversation": [{"input": "Why?", "output": "Because."}]})
    'Why?'
    """
    for key in _PROMPT_KEYS:
        value = row.get(key)
        prompt = value if isinstance(value, str) else _first_user(value)
        if prompt and prompt.strip():
            return prompt.strip()
    return None


def _first_user(turns: Any) -> str | None:
    """Return the content of the first user turn of a chat, in any common layout."""
    if not isinstance(turns, list):
        return None
    for turn in turns:
        if not isinstance(turn, Mapping):
            continue
        if isinstance(turn.get("input"), str):  # Pure-Dove: {"input", "output"} exchanges
            return str(turn["input"])
        role = turn.get("role", turn.get("from"))
        if role in _USER_ROLES:
            return _text(turn.get("content", turn.get("value")))
    return None


def _text(content: Any) -> str | None:
    """Return a turn's text: a string, or the text parts of a list of content parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [p["text"] for p in content if isinstance(p, Mapping) and "text" in p]
        return "\n".join(str(p) for p in parts) or None
    return None


def _from_hub(spec: str, limit: int | None, seed: int) -> tuple[str, ...]:
    name, _, split = spec.partition(":")
    name, split = name.strip(), split.strip() or "train"
    if not name:
        msg = f"evaluation prompts: {HUB_PREFIX}{spec!r} names no dataset; use {_FORMATS}"
        raise ConfigError(msg)
    try:
        import datasets  # noqa: PLC0415 - optional and heavy: only for a Hub source
    except ImportError as exc:
        msg = (
            f"evaluation prompts from the Hugging Face dataset {name!r} need the 'datasets' "
            "package: pip install datasets (or use a local file, or 'builtin')"
        )
        raise MissingDependencyError(msg) from exc
    try:
        table = datasets.load_dataset(name, split=split)
    except (OSError, ValueError) as exc:
        msg = (
            f"could not load split {split!r} of the Hugging Face dataset {name!r}: {exc}. "
            "Check the name and split, your network and your Hub login, or use a local file"
        )
        raise DataError(msg) from exc
    columns = list(table.column_names)
    if not set(columns) & set(_PROMPT_KEYS):
        msg = (
            f"the Hugging Face dataset {name!r} has the columns {columns}, none of which holds "
            f"prompts; it needs one of {list(_PROMPT_KEYS)}"
        )
        raise DataError(msg)
    prompts = _take_lazily(len(table), lambda i: first_user_turn(table[i]), limit, seed)
    if not prompts:
        msg = f"the Hugging Face dataset {name!r} (split {split!r}) holds no usable prompt"
        raise DataError(msg)
    return prompts
