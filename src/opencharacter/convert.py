"""One conversion from what people type to typed settings, for every way a setting arrives.

Command-line flags, ``-o key=value`` backend options, ``OPENCHARACTER_*`` variables, TOML
files and Python all go through :func:`convert` and :func:`build`: ``"8"`` becomes the same
``8`` on every path, ``"none"`` the same ``None``, and a wrong value fails with the same
message everywhere, naming the setting, the value, the type expected and where it came from.
"""

from __future__ import annotations

import difflib
import json
import types
import typing
from collections.abc import Iterable, Mapping
from typing import Any, Literal, TypeVar

import attrs

from opencharacter.errors import ConfigError, OpenCharacterError

T = TypeVar("T")

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})
_NONE = frozenset({"none", "null", ""})


def parse_options(pairs: Iterable[str]) -> dict[str, str]:
    """Return ``KEY=VALUE`` strings (``-o`` flags) as backend options, values still text.

    The backend's own fields convert the values (:func:`build`), as for every other source.

    >>> parse_options(["engine=vllm", "max_batch_size = 32"])
    {'engine': 'vllm', 'max_batch_size': '32'}
    """
    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            msg = f"backend options are KEY=VALUE, got {pair!r}"
            raise ConfigError(msg)
        options[key.strip()] = value.strip()
    return options


def convert(value: Any, hint: Any, *, setting: str, source: str) -> Any:
    """Return ``value`` as the type ``hint``: strings are parsed, other values checked.

    Handles ``bool``, ``int``, ``float``, ``str``, ``Literal`` choices, optionals and unions
    of those, ``tuple`` (a string is a one-item tuple), mappings and attrs classes (a mapping
    is built with :func:`build`); other hints pass the value through.

    Raises:
        ConfigError: the value is not of the type and does not parse as it.
    """
    origin = typing.get_origin(hint)
    if origin is Literal:
        choices = typing.get_args(hint)
        if value in choices:
            return value
        raise _refused(value, f"one of {', '.join(map(str, choices))}", setting, source)
    if origin in (typing.Union, types.UnionType):
        return _convert_union(value, typing.get_args(hint), setting, source)
    if origin is tuple:
        return _convert_tuple(value, typing.get_args(hint), setting, source)
    if (isinstance(origin, type) and issubclass(origin, Mapping)) or attrs.has(hint):
        return _convert_table(value, hint, setting, source)
    parse = _SCALARS.get(hint)
    return value if parse is None else parse(value, setting, source)


def build(cls: type[T], data: Mapping[str, Any], *, source: str) -> T:
    """Build the attrs class ``cls`` from ``data``: names checked, values converted, validated.

    Raises:
        ConfigError: an unknown name (with the nearest valid one), a value of the wrong type,
            or one the class's validators refuse; each names ``source``.
    """
    fields = {field.alias: field for field in attrs.fields(cls) if field.init}  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(fields))
    if unknown:
        near = difflib.get_close_matches(unknown[0], list(fields), n=1)
        hint = f" (did you mean {near[0]!r}?)" if near else ""
        msg = (
            f"{source}: unknown setting(s) {', '.join(unknown)}{hint}; "
            f"valid: {', '.join(sorted(fields))}"
        )
        raise ConfigError(msg)
    hints = typing.get_type_hints(cls)
    values = {
        key: convert(value, hints.get(fields[key].name, Any), setting=key, source=source)
        for key, value in data.items()
    }
    try:
        return cls(**values)
    except (TypeError, ValueError) as exc:
        if isinstance(exc, OpenCharacterError):
            raise
        msg = f"{source}: {exc}"
        raise ConfigError(msg) from exc


def _convert_table(value: Any, hint: Any, setting: str, source: str) -> Any:
    """A mapping as a dict, or settings as their attrs class (built from a mapping).

    On the command line a table is JSON text: ``-o extra_body='{"top_k": 20}'``.
    """
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise _refused(value, "a table of settings (JSON text)", setting, source) from None
    if not attrs.has(hint):
        if isinstance(value, Mapping):
            return dict(value)
        raise _refused(value, "a table of settings", setting, source)
    if isinstance(value, hint):
        return value
    if isinstance(value, Mapping):
        return build(hint, value, source=f"{source} [{setting}]")
    raise _refused(value, f"a table of {hint.__name__} settings", setting, source)


def _convert_union(value: Any, kinds: tuple[Any, ...], setting: str, source: str) -> Any:
    optional = type(None) in kinds
    if value is None or (optional and isinstance(value, str) and value.lower() in _NONE):
        if optional:
            return None
        raise _refused(value, "a value", setting, source)
    real = [kind for kind in kinds if kind is not type(None)]
    if type(value) in real:  # already one of them: kept as given
        return value
    for kind in sorted(real, key=lambda k: k is str):  # a string is the last resort
        try:
            return convert(value, kind, setting=setting, source=source)
        except ConfigError:
            continue
    expected = " or ".join(_name(kind) for kind in real) + (" or none" if optional else "")
    raise _refused(value, expected, setting, source)


def _convert_tuple(value: Any, args: tuple[Any, ...], setting: str, source: str) -> tuple[Any, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list | tuple):
        raise _refused(value, "a list", setting, source)
    if len(args) == 2 and args[1] is Ellipsis:
        args = (args[0],) * len(items)
    elif args and len(args) != len(items):
        raise _refused(value, f"a list of {len(args)}", setting, source)
    if not args:
        return tuple(items)
    return tuple(convert(item, kind, setting=setting, source=source)
                 for item, kind in zip(items, args, strict=True))  # fmt: skip


def _bool(value: Any, setting: str, source: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise _refused(value, "true or false", setting, source)


def _int(value: Any, setting: str, source: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    raise _refused(value, "a whole number", setting, source)


def _float(value: Any, setting: str, source: str) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            pass
    raise _refused(value, "a number", setting, source)


def _str(value: Any, setting: str, source: str) -> str:
    if isinstance(value, str):
        return value
    raise _refused(value, "text", setting, source)


_SCALARS: Mapping[Any, Any] = {bool: _bool, int: _int, float: _float, str: _str}


def _name(kind: Any) -> str:
    names = {bool: "true or false", int: "a whole number", float: "a number", str: "text"}
    return names.get(kind, getattr(kind, "__name__", str(kind)))


def _refused(value: Any, expected: str, setting: str, source: str) -> ConfigError:
    return ConfigError(f"{source}: {setting}={value!r} is not {expected}")
