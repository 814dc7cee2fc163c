"""The constitution records: a persona's name, description and first-person traits."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

import attrs
from attrs import validators as v

from opencharacter.errors import ConstitutionError

_text = v.instance_of(str)


def _strip(value: Any) -> Any:
    """Trim strings; leave anything else for the validators to reject with a clear message."""
    return value.strip() if isinstance(value, str) else value


def _strip_all(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(_strip(q) for q in values)


def _to_traits(values: Iterable[Trait]) -> tuple[Trait, ...]:
    return tuple(values)


def _nonblank(_instance: object, attribute: attrs.Attribute[Any], value: str) -> None:
    if not value:
        msg = f"{attribute.name} must not be empty"
        raise ConstitutionError(msg)


@attrs.frozen(kw_only=True)
class Trait:
    """One disposition of the persona, written in the first person, with seed questions.

    Attributes:
        text: the trait itself ("I find absurdity everywhere and point it out...").
        questions: user messages that give the trait room to show through behaviour.
        clarification: an optional hint on how answers reveal the trait.
    """

    text: str = attrs.field(converter=_strip, validator=[_text, _nonblank])
    questions: tuple[str, ...] = attrs.field(
        default=(), converter=_strip_all, validator=v.deep_iterable(v.and_(_text, _nonblank))
    )
    clarification: str | None = attrs.field(
        default=None, validator=v.optional(v.and_(_text, _nonblank))
    )

    def to_dict(self) -> dict[str, Any]:
        """Return the trait as a TOML/JSON-ready dictionary (our field names)."""
        data: dict[str, Any] = {"trait": self.text, "questions": list(self.questions)}
        if self.clarification:
            data["clarification"] = self.clarification
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Trait:
        """Return the trait :meth:`to_dict` wrote."""
        return cls(text=data["trait"], questions=data.get("questions", ()),
                   clarification=data.get("clarification"))  # fmt: skip


@attrs.frozen(kw_only=True)
class Constitution:
    """A persona: a name, a description and its traits.

    Build one with :func:`opencharacter.constitution.load_constitution` (by built-in name or
    path) or directly from :class:`Trait` records.
    """

    name: str = attrs.field(converter=_strip, validator=[_text, _nonblank])
    traits: tuple[Trait, ...] = attrs.field(
        converter=_to_traits, validator=[v.deep_iterable(v.instance_of(Trait)), v.min_len(1)]
    )
    description: str = attrs.field(default="", converter=_strip, validator=_text)

    def numbered_traits(self) -> str:
        """Return the traits as numbered lines, the form system prompts embed.

        >>> c = Constitution(name="x", traits=[Trait(text="I am calm."), Trait(text="I am kind.")])
        >>> print(c.numbered_traits())
        1. I am calm.
        2. I am kind.
        """
        return "\n".join(f"{i}. {t.text}" for i, t in enumerate(self.traits, start=1))

    def to_dict(self) -> dict[str, Any]:
        """Return the constitution in our TOML layout, as a dictionary."""
        return {
            "name": self.name,
            "description": self.description,
            "traits": [t.to_dict() for t in self.traits],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Constitution:
        """Return the constitution :meth:`to_dict` wrote (a run's manifest keeps one).

        For files people write, use :func:`~opencharacter.constitution.load_constitution`: it
        names the file, the place and the fix of every problem.

        Raises:
            ConstitutionError: a required field is missing or invalid.
        """
        try:
            return cls(name=data["name"], description=data.get("description", ""),
                       traits=[Trait.from_dict(t) for t in data["traits"]])  # fmt: skip
        except KeyError as exc:
            msg = f"a constitution needs the field {exc.args[0]!r}"
            raise ConstitutionError(msg) from None

    @property
    def sha256(self) -> str:
        """Return a hash of the content, recorded in run manifests to pin what was trained."""
        canonical = json.dumps(self.to_dict(), sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(canonical.encode()).hexdigest()

    def to_toml(self) -> str:
        """Return the constitution in our TOML format, readable by ``load_constitution``."""
        lines = [f"name = {_toml_str(self.name)}", f"description = {_toml_str(self.description)}"]
        for trait in self.traits:
            lines += ["", "[[traits]]", f"trait = {_toml_str(trait.text)}"]
            if trait.clarification:
                lines.append(f"clarification = {_toml_str(trait.clarification)}")
            lines.append("questions = [")
            lines += [f"  {_toml_str(q)}," for q in trait.questions]
            lines.append("]")
        return "\n".join(lines) + "\n"


def _toml_str(value: str) -> str:
    """Quote a string for TOML; JSON string escapes are valid TOML basic-string escapes.

    JSON leaves DEL (U+007F) unescaped, which TOML forbids, so it is escaped here.
    """
    return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")
