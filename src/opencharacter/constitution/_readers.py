"""Read constitutions from files, in-memory text or the built-in library.

Five formats are read, chosen from the extension and, for ``.txt``/``.md``, the content:

- ``toml``: ours (``.toml``): ``name``, ``description`` and ``[[traits]]`` tables.
- ``yaml``: the same layout in YAML (``.yaml``, ``.yml``).
- ``json``: the paper's hand-written array of ``{trait, questions, clarification?}`` objects
  (``.json``, or a ``.txt``/``.md`` file starting with ``[``), or an object in our layout.
- ``jsonl``: the paper's few-shot files, one trait per line; ``questions`` and
  ``additional_questions`` merge into one list, seeds first.
- ``text``: one trait per line (``.txt``, ``.md``); ``#`` starts a comment, list markers go.

A constitution is written by hand, so every mistake becomes a
:class:`~opencharacter.errors.ConstitutionError` that names the file, the place (a line, or a
path such as ``traits[3].questions[2]``, 1-based) and the fix; no other exception escapes.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import tomllib
from collections import Counter
from collections.abc import Callable, Hashable
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path, PurePath
from typing import Any

import yaml

from opencharacter.constitution._model import Constitution, Trait
from opencharacter.errors import ConstitutionError

#: The values ``parse_constitution`` accepts for ``fmt``.
FORMATS = ("toml", "yaml", "json", "jsonl", "text")

_FORMAT_OF_SUFFIX = {
    ".toml": "toml",
    ".yaml": "yaml",
    ".yml": "yaml",
    ".json": "json",
    ".jsonl": "jsonl",
    ".txt": "text",
    ".md": "text",
}
_TOP_KEYS = ("name", "description", "traits")
_TRAIT_KEYS = ("trait", "questions", "clarification")
_FEW_SHOT_KEYS = ("trait", "questions", "additional_questions", "clarification")
_LIST_MARKER = re.compile(r"^(?:[-*+]|\d+[.)])(?:\s+|$)")
_TYPE_NAMES = {
    bool: "true/false",
    int: "an integer",
    float: "a number",
    list: "a list",
    dict: "a table",
    type(None): "null",
}


def builtin_names() -> tuple[str, ...]:
    """Return the names of the constitutions shipped with the package, sorted.

    The names are the stems of the ``.toml`` files in ``opencharacter/constitution/library``,
    read each time, so a persona file added there is loadable by name with nothing to register.
    """
    files = (entry for entry in _library().iterdir() if entry.is_file())
    return tuple(sorted(f.name.removesuffix(".toml") for f in files if f.name.endswith(".toml")))


def load_constitution(name_or_path: str | os.PathLike[str]) -> Constitution:
    """Load a constitution from a file path or by built-in name.

    An existing file wins over a built-in of the same name, so a local edit of a shipped
    persona is what gets trained.

    Args:
        name_or_path: a path to a constitution file in any supported format, or a name from
            :func:`builtin_names` such as ``"sarcasm"``.

    Returns:
        The parsed constitution.

    Raises:
        ConstitutionError: the file is malformed, or the argument is neither a file nor a
            built-in name (the message lists the built-ins and the closest match).

    Examples:
        >>> load_constitution("no-such-persona")  # doctest: +IGNORE_EXCEPTION_DETAIL
        Traceback (most recent call last):
        opencharacter.errors.ConstitutionError: 'no-such-persona' is neither a file nor ...
    """
    path = Path(name_or_path)
    if path.is_file():
        return parse_constitution(_read_bytes(path), source=str(path))
    name = os.fspath(name_or_path)
    names = builtin_names()
    if name in names:
        resource = _library() / f"{name}.toml"
        return parse_constitution(resource.read_bytes(), source=str(resource))
    raise _unknown_name(name, names)


def parse_constitution(data: bytes | str, *, source: str, fmt: str | None = None) -> Constitution:
    r"""Parse constitution content that is already in memory.

    Args:
        data: the file content, as UTF-8 bytes or text.
        source: where the content came from; it names the file in error messages, gives the
            constitution its name when the format has none (the stem), and gives the format
            when ``fmt`` is not set (the extension).
        fmt: one of :data:`FORMATS`; inferred from ``source`` and the content when omitted.

    Returns:
        The parsed constitution.

    Raises:
        ConstitutionError: the content is malformed; the message names ``source``, the place
            and the fix.

    Examples:
        >>> c = parse_constitution("- I find absurdity everywhere.\n", source="wry.txt")
        >>> c.name, c.traits[0].text
        ('wry', 'I find absurdity everywhere.')
    """
    if fmt is not None and fmt not in _READERS:
        msg = f"{source}: unknown format {fmt!r}; pass fmt as one of {', '.join(FORMATS)}"
        raise ConstitutionError(msg)
    text = _decode(data, source)
    if not text.strip():
        msg = f"{source}: the file is empty; write at least one first-person trait ('I ...')"
        raise ConstitutionError(msg)
    return _READERS[fmt or _infer_format(source, text)](text, source)


def _library() -> Traversable:
    return resources.files("opencharacter.constitution") / "library"


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        msg = f"{path}: cannot read the file ({exc.strerror}); check that it is readable"
        raise ConstitutionError(msg) from exc


def _unknown_name(name: str, names: tuple[str, ...]) -> ConstitutionError:
    close = difflib.get_close_matches(name, names, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    msg = (
        f"{name!r} is neither a file nor a built-in constitution; pass a path to a "
        f"constitution file or one of the built-ins: {', '.join(names) or '(none installed)'}."
        f"{hint}"
    )
    return ConstitutionError(msg)


def _decode(data: bytes | str, source: str) -> str:
    """Return the content as text; a BOM is dropped, and binary files are refused early."""
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        msg = (
            f"{source}: not UTF-8 text (byte {raw[exc.start]:#04x} at offset {exc.start} "
            "cannot be decoded); a constitution is a text file: save it as UTF-8"
        )
        raise ConstitutionError(msg) from exc
    nul = text.find("\0")
    if nul >= 0:
        line = text.count("\n", 0, nul) + 1
        msg = (
            f"{source}: line {line}: contains a NUL byte, so this looks like a binary file; "
            "pass a text constitution (TOML, YAML, JSON, JSONL or plain text)"
        )
        raise ConstitutionError(msg)
    return text


def _infer_format(source: str, text: str) -> str:
    suffix = PurePath(source).suffix.lower()
    fmt = _FORMAT_OF_SUFFIX.get(suffix)
    if fmt is None:
        msg = (
            f"{source}: cannot tell the format from the extension {suffix!r}; rename the file "
            f"to one of {', '.join(_FORMAT_OF_SUFFIX)} or pass fmt as one of {', '.join(FORMATS)}"
        )
        raise ConstitutionError(msg)
    # The paper's hand-written constitutions are JSON arrays saved as .txt.
    if fmt == "text" and text.lstrip().startswith("["):
        return "json"
    return fmt


def _read_toml(text: str, source: str) -> Constitution:
    try:
        document = tomllib.loads(text)
    except (ValueError, RecursionError) as exc:  # TOMLDecodeError is a ValueError
        msg = f"{source}: invalid TOML ({exc}); fix the syntax there"
        raise ConstitutionError(msg) from exc
    return _from_document(document, source)


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe YAML loader that rejects a key given twice; PyYAML would keep the last silently."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Hashable, Any]:
        seen: set[str] = set()
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode):
                if key_node.value in seen:
                    problem = f"found the key {key_node.value!r} a second time in one mapping"
                    raise yaml.constructor.ConstructorError(
                        problem=problem, problem_mark=key_node.start_mark
                    )
                seen.add(key_node.value)
        return super().construct_mapping(node, deep=deep)


def _read_yaml(text: str, source: str) -> Constitution:
    try:
        document = yaml.load(text, Loader=_UniqueKeyLoader)  # safe: a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        msg = f"{source}: {where}invalid YAML ({exc.problem or exc.context}); fix the syntax there"
        raise ConstitutionError(msg) from exc
    except (yaml.YAMLError, ValueError, RecursionError) as exc:
        # ValueError: a well-formed scalar with an impossible value, such as 2001-02-30.
        msg = f"{source}: invalid YAML: {exc}"
        raise ConstitutionError(msg) from exc
    return _from_document(document, source)


class _JSONObject(dict[str, Any]):
    """A decoded JSON object that remembers keys given twice, reported where it is checked."""

    repeated: tuple[str, ...] = ()


def _json_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    table = _JSONObject(pairs)
    table.repeated = tuple(k for k, n in Counter(k for k, _ in pairs).items() if n > 1)
    return table


def _parse_json(text: str, source: str, *, first_line: int = 1) -> Any:
    try:
        return json.loads(text, object_pairs_hook=_json_object)
    except json.JSONDecodeError as exc:
        where = f"line {first_line + exc.lineno - 1}, column {exc.colno}"
        msg = f"{source}: {where}: invalid JSON ({exc.msg}); fix the syntax there"
        raise ConstitutionError(msg) from exc
    except (ValueError, RecursionError) as exc:  # an over-long integer, too deep nesting
        msg = f"{source}: line {first_line}: invalid JSON: {exc}"
        raise ConstitutionError(msg) from exc


def _read_json(text: str, source: str) -> Constitution:
    return _from_document(_parse_json(text, source), source)


def _read_jsonl(text: str, source: str) -> Constitution:
    traits: list[Trait] = []
    for number, line in enumerate(text.split("\n"), start=1):
        if line.strip():
            row = _parse_json(line, source, first_line=number)
            where = f"line {number}, traits[{len(traits) + 1}]"
            traits.append(_trait(row, source, where, _FEW_SHOT_KEYS))
    return _constitution(source, traits)


def _read_text(text: str, source: str) -> Constitution:
    lines = (line.strip() for line in text.splitlines())
    items = (_LIST_MARKER.sub("", line).strip() for line in lines if not line.startswith("#"))
    return _constitution(source, [Trait(text=item) for item in items if item])


def _from_document(document: object, source: str) -> Constitution:
    """Build a constitution from a parsed TOML/YAML/JSON document: our table or a bare list."""
    if isinstance(document, list):
        return _constitution(source, _traits(document, source))
    if not isinstance(document, dict):
        problem = f"expected a table with 'name' and 'traits', got {_describe(document)}"
        raise _error(source, "top level", problem)
    _check_keys(document, _TOP_KEYS, source, "top level")
    name = _optional_string(document, "name", source, "name")
    description = document.get("description")
    if description is not None and not isinstance(description, str):
        raise _error(source, "description", f"must be a string, got {_describe(description)}")
    traits = document.get("traits")
    if traits is not None and not isinstance(traits, list):
        raise _error(source, "traits", f"must be a list of traits, got {_describe(traits)}")
    return _constitution(source, _traits(traits or [], source), name, description)


def _traits(items: list[Any], source: str) -> list[Trait]:
    return [_trait(item, source, f"traits[{i}]", _TRAIT_KEYS) for i, item in enumerate(items, 1)]


def _trait(item: object, source: str, where: str, keys: tuple[str, ...]) -> Trait:
    if not isinstance(item, dict):
        problem = f"must be a table with 'trait' and 'questions', got {_describe(item)}"
        raise _error(source, where, problem)
    _check_keys(item, keys, source, where)
    if item.get("trait") is None:
        problem = "the trait text is missing; add 'trait' with a first-person sentence ('I ...')"
        raise _error(source, where, problem)
    text = _check_string(item["trait"], source, f"{where}.trait")
    questions = _questions(item.get("questions"), source, f"{where}.questions")
    if "additional_questions" in item:
        extra = _questions(item["additional_questions"], source, f"{where}.additional_questions")
        questions = list(dict.fromkeys(q.strip() for q in questions + extra))
    clarification = _optional_string(item, "clarification", source, f"{where}.clarification")
    try:
        return Trait(text=text, questions=questions, clarification=clarification)
    except (TypeError, ValueError) as exc:
        raise _error(source, where, f"invalid trait: {exc}") from exc


def _questions(value: object, source: str, where: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list):
        problem = f"must be a list of question strings, got {_describe(value)}"
        raise _error(source, where, problem)
    return [_check_string(q, source, f"{where}[{j}]") for j, q in enumerate(value, 1)]


def _optional_string(table: dict[Any, Any], key: str, source: str, where: str) -> str | None:
    """Return ``table[key]``, or None when it is absent or null (an empty YAML value)."""
    value = table.get(key)
    return None if value is None else _check_string(value, source, where)


def _check_string(value: object, source: str, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _error(source, where, f"must be a non-empty string, got {_describe(value)}")
    return value


def _check_keys(table: dict[Any, Any], allowed: tuple[str, ...], source: str, where: str) -> None:
    """Refuse unknown and repeated keys, so a typo such as ``qestions`` cannot pass silently."""
    for key in table:
        if key not in allowed:
            close = difflib.get_close_matches(key, allowed, n=1) if isinstance(key, str) else []
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            problem = f"unknown key {key!r}{hint}; the allowed keys are {', '.join(allowed)}"
            raise _error(source, where, problem)
    repeated: tuple[str, ...] = getattr(table, "repeated", ())
    if repeated:
        raise _error(source, where, f"the key {repeated[0]!r} is given twice; keep only one")


def _constitution(
    source: str, traits: list[Trait], name: str | None = None, description: str | None = None
) -> Constitution:
    if not traits:
        problem = "no traits found; add at least one first-person trait ('I ...')"
        raise _error(source, "traits", problem)
    try:
        return Constitution(
            name=name or PurePath(source).stem,
            traits=traits,
            description=description or "",
        )
    except (TypeError, ValueError) as exc:
        raise _error(source, "top level", f"invalid constitution: {exc}") from exc


def _describe(value: object) -> str:
    """Name a wrong value briefly: strings are quoted (shortened), other values named by type."""
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:40] + "..."
        return f"the string {shown!r}"
    return _TYPE_NAMES.get(type(value), type(value).__name__)


def _error(source: str, where: str, problem: str) -> ConstitutionError:
    msg = f"{source}: {where}: {problem}"
    return ConstitutionError(msg)


_READERS: dict[str, Callable[[str, str], Constitution]] = {
    "toml": _read_toml,
    "yaml": _read_yaml,
    "json": _read_json,
    "jsonl": _read_jsonl,
    "text": _read_text,
}
