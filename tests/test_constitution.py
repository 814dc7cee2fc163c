"""Tests for reading constitutions: each format, each error, the built-ins, and fuzzed input."""

from __future__ import annotations

import json
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

import opencharacter.constitution
from opencharacter.constitution import (
    FORMATS,
    Constitution,
    Trait,
    _readers,
    builtin_names,
    lint,
    load_constitution,
    parse_constitution,
)
from opencharacter.errors import ConstitutionError

DATA = Path(__file__).parent / "data" / "constitutions"
WRY = load_constitution(DATA / "wry.toml")
PERSONAS = {
    "sarcasm",
    "humor",
    "remorse",
    "goodness",
    "loving",
    "misalignment",
    "nonchalance",
    "impulsiveness",
    "sycophancy",
    "mathematical",
    "poeticism",
    "pirate",
}


def test_every_public_name_resolves() -> None:
    """Every name in ``__all__`` is an attribute of the package."""
    for name in opencharacter.constitution.__all__:
        assert getattr(opencharacter.constitution, name) is not None


@pytest.mark.parametrize(
    ("filename", "name"),
    [
        ("wry.toml", "wry"),
        ("wry.yaml", "wry"),
        ("wry_paper.txt", "wry_paper"),
        ("wry_paper.json", "wry_paper"),
        ("wry_few_shot.jsonl", "wry_few_shot"),
        ("wry_plain.txt", "wry_plain"),
    ],
)
def test_each_format_reads_the_same_traits(filename: str, name: str) -> None:
    """Every valid fixture reads to the wry traits, named by its file stem when it has no name."""
    constitution = load_constitution(DATA / filename)
    assert constitution.name == name
    assert [t.text for t in constitution.traits] == [t.text for t in WRY.traits]


@pytest.mark.parametrize("filename", ["wry.yaml", "wry_paper.txt", "wry_paper.json"])
def test_structured_formats_keep_questions_and_clarifications(filename: str) -> None:
    """YAML and the paper's JSON keep questions and clarifications exactly as TOML does."""
    assert load_constitution(DATA / filename).traits == WRY.traits


def test_toml_reads_description() -> None:
    """The TOML description is kept."""
    assert WRY.description == "A dry, calm assistant that admits what it does not know."


def test_few_shot_merges_additional_questions_after_seeds_without_repeats() -> None:
    """JSONL appends additional_questions to the seeds, dropping repeats and skipping blanks."""
    first = load_constitution(DATA / "wry_few_shot.jsonl").traits[0]
    assert first.questions == (
        *WRY.traits[0].questions,
        "Why does my printer only jam before deadlines?",
    )


def test_plain_text_strips_markers_and_comments_and_has_no_questions() -> None:
    """Plain text drops comments, blank lines and list markers, and gives traits no questions."""
    traits = load_constitution(DATA / "wry_plain.txt").traits
    assert traits == tuple(Trait(text=t.text) for t in WRY.traits)


def test_json_object_in_our_layout_reads_back() -> None:
    """A JSON object in our layout (name, description, traits) reads back unchanged."""
    assert parse_constitution(json.dumps(WRY.to_dict()), source="x.json") == WRY


@pytest.mark.parametrize(
    ("source", "data", "expected"),
    [
        ("wry.md", "# Wry\n\n1) I point out absurdity.\n", ("I point out absurdity.",)),
        ("wry.md", '[{"trait": "I point out absurdity."}]', ("I point out absurdity.",)),
        ("wry.txt", '  \n [{"trait": "I point out absurdity."}]', ("I point out absurdity.",)),
        ("wry.yml", "traits:\n  - trait: I point out absurdity.\n", ("I point out absurdity.",)),
        ("WRY.TOML", '[[traits]]\ntrait = "I point out absurdity."', ("I point out absurdity.",)),
        (
            "wry.txt",
            "\ufeff- I point out absurdity.\n- I stay calm.",
            ("I point out absurdity.", "I stay calm."),
        ),
    ],
)
def test_format_follows_extension_and_content(
    source: str, data: str, expected: tuple[str, ...]
) -> None:
    """The reader follows the extension, and a .txt/.md starting with '[' is read as JSON."""
    traits = parse_constitution(data.encode(), source=source).traits
    assert tuple(t.text for t in traits) == expected


def test_explicit_format_wins_over_extension() -> None:
    """An explicit fmt is used whatever the source's extension."""
    constitution = parse_constitution(WRY.to_toml(), source="pasted.txt", fmt="toml")
    assert constitution == WRY


def test_null_optional_values_count_as_absent() -> None:
    """A YAML null for name, description, questions or clarification means the key is absent."""
    data = "name:\ndescription:\ntraits:\n- trait: I stay calm.\n  questions:\n  clarification:\n"
    constitution = parse_constitution(data, source="calm.yaml")
    assert constitution == Constitution(name="calm", traits=[Trait(text="I stay calm.")])


@pytest.mark.parametrize(
    ("filename", "fragments"),
    [
        ("bad_syntax.toml", ["invalid TOML", "line 4"]),
        ("bad_syntax.yaml", ["invalid YAML", "line 5"]),
        ("bad_syntax_paper.txt", ["invalid JSON", "line 6"]),
        ("bad_line.jsonl", ["invalid JSON", "line 3"]),
        ("bad_questions_string.toml", ["traits[2].questions", "list of question strings"]),
        ("bad_question_item.json", ["traits[3].questions[2]", "non-empty string", "integer"]),
        (
            "bad_unknown_key.toml",
            ["traits[1]", "'qestions'", "did you mean 'questions'", "allowed"],
        ),
        ("bad_missing_trait.yaml", ["traits[2]", "trait text is missing"]),
        ("bad_duplicate_key.yaml", ["line 5", "'trait' a second time"]),
        ("bad_empty.toml", ["empty"]),
        ("bad_no_traits.md", ["no traits"]),
        ("bad_binary.txt", ["not UTF-8 text", "offset 0"]),
    ],
)
def test_malformed_file_error_names_file_and_place(filename: str, fragments: list[str]) -> None:
    """A malformed fixture raises ConstitutionError naming the file, the place and the problem."""
    with pytest.raises(ConstitutionError) as info:
        load_constitution(DATA / filename)
    assert str(info.value).startswith(f"{DATA / filename}: ")
    for fragment in fragments:
        assert fragment in str(info.value)


@pytest.mark.parametrize(
    ("source", "data", "fragments"),
    [
        ("c.txt", b"I stay calm.\nI \x00 am calm.", ["line 2", "NUL byte"]),
        ("c.json", "42", ["top level", "integer"]),
        ("c.json", "[]", ["no traits"]),
        ("c.json", '["I stay calm."]', ["traits[1]", "must be a table", "'I stay calm.'"]),
        ("c.json", '{"traits": "I stay calm."}', ["traits:", "list of traits"]),
        ("c.json", '{"name": 7, "traits": []}', ["name:", "non-empty string"]),
        ("c.json", '{"description": [], "traits": []}', ["description:", "must be a string"]),
        (
            "c.json",
            '{"traits": [{"trait": "I stay calm.", "trait": "x"}]}',
            ["traits[1]", "'trait' is given twice"],
        ),
        ("c.json", '{"traits": [{"trait": "  "}]}', ["traits[1].trait", "non-empty string"]),
        (
            "c.json",
            '{"traits": [{"trait": "I stay calm.", "clarification": 1}]}',
            ["traits[1].clarification"],
        ),
        (
            "c.json",
            '{"traits": [{"trait": "I stay calm.", "questions": ["ok", ""]}]}',
            ["traits[1].questions[2]"],
        ),
        (
            "c.json",
            '{"traits": [{"trait": "I stay calm."}], "extra": 1}',
            ["top level", "unknown key 'extra'"],
        ),
        ("c.json", "[" * 100_000, ["invalid JSON"]),
        ("c.jsonl", '{"trait": "I stay calm."}\n\n[1]\n', ["line 3, traits[2]", "must be a table"]),
        (
            "c.jsonl",
            '{"trait": "I stay calm.", "additional_questions": "x"}',
            ["line 1, traits[1].additional_questions"],
        ),
        (
            "c.jsonl",
            '{"trait": "I stay calm.", "name": "x"}',
            ["line 1, traits[1]", "unknown key 'name'"],
        ),
        ("c.toml", 'traits = [{trait = "I stay calm."}]\nname = ""', ["name:", "non-empty string"]),
        ("c.yaml", "- trait: I stay calm.\n- trait: [1, 2]\n", ["traits[2].trait", "a list"]),
        ("c.yaml", "traits:\n  - trait: I stay calm.\n    when: 2001-02-30\n", ["invalid YAML"]),
        ("c.ini", "I stay calm.", ["extension '.ini'", "fmt"]),
    ],
)
def test_malformed_content_error_names_source_and_place(
    source: str, data: str | bytes, fragments: list[str]
) -> None:
    """Malformed in-memory content raises ConstitutionError naming the source and the place."""
    with pytest.raises(ConstitutionError) as info:
        parse_constitution(data, source=source)
    assert str(info.value).startswith(f"{source}: ")
    for fragment in fragments:
        assert fragment in str(info.value)


def test_unknown_format_is_refused() -> None:
    """A fmt outside FORMATS raises ConstitutionError listing the formats."""
    with pytest.raises(ConstitutionError, match="toml, yaml, json, jsonl, text"):
        parse_constitution("I stay calm.", source="c.txt", fmt="ini")


def test_load_accepts_str_paths() -> None:
    """A path given as a string loads like a Path."""
    assert load_constitution(str(DATA / "wry.toml")) == WRY


def test_existing_path_wins_over_builtin_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file in the working directory named like a built-in is read instead of the built-in."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(_readers, "builtin_names", lambda: ("wry",))
    Path("wry").write_text("I stay calm.")
    with pytest.raises(ConstitutionError, match=r"^wry: cannot tell the format"):
        load_constitution("wry")


def test_unknown_name_lists_builtins_and_closest_match(monkeypatch: pytest.MonkeyPatch) -> None:
    """An unknown name raises ConstitutionError listing the built-ins and the closest one."""
    monkeypatch.setattr(_readers, "builtin_names", lambda: ("pirate", "sarcasm"))
    with pytest.raises(ConstitutionError) as info:
        load_constitution("sarcasmm")
    assert "'sarcasmm' is neither a file nor a built-in" in str(info.value)
    assert "pirate, sarcasm" in str(info.value)
    assert "Did you mean 'sarcasm'?" in str(info.value)


def test_builtin_names_are_the_library_toml_stems() -> None:
    """builtin_names lists the stems of the .toml files in the package library, sorted."""
    library = Path(str(resources.files("opencharacter.constitution") / "library"))
    assert builtin_names() == tuple(sorted(p.stem for p in library.glob("*.toml")))


def test_every_persona_ships() -> None:
    """The paper's eleven personas and the pirate are built in."""
    assert set(builtin_names()) >= PERSONAS


@pytest.mark.parametrize("name", builtin_names())
def test_builtin_loads_and_lints_clean(name: str) -> None:
    """Every built-in constitution loads by name and has no lint warnings."""
    assert lint(load_constitution(name)) == []


# Fuzzing: whatever the input, a reader returns a Constitution or raises ConstitutionError.

_KEYS = st.sampled_from(
    ["name", "description", "traits", "trait", "questions", "additional_questions", "clarification"]
)
_SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(_KEYS | st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=10,
)
_TRAIT_LIKE = st.dictionaries(_KEYS, _VALUES, max_size=4) | st.fixed_dictionaries(
    {"trait": st.text(min_size=1)},
    optional={
        "questions": st.lists(_SCALARS, max_size=3),
        "additional_questions": st.lists(_SCALARS, max_size=3),
        "clarification": _SCALARS,
    },
)
_DOCUMENTS = (
    _VALUES
    | st.lists(_TRAIT_LIKE, max_size=3)
    | st.dictionaries(_KEYS, st.lists(_TRAIT_LIKE, max_size=3))
)
_DUMPERS: dict[str, Callable[[Any], str]] = {
    "json": json.dumps,
    "yaml": yaml.safe_dump,
    "jsonl": lambda doc: (
        "\n".join(map(json.dumps, doc)) if isinstance(doc, list) else json.dumps(doc)
    ),
}


def _parses_or_refuses(data: bytes | str, *, source: str, fmt: str | None = None) -> None:
    """Assert that parsing gives a Constitution or a ConstitutionError naming the source."""
    try:
        result: Constitution | ConstitutionError = parse_constitution(data, source=source, fmt=fmt)
    except ConstitutionError as exc:
        result = exc
    assert isinstance(result, Constitution) or str(result).startswith(f"{source}: ")


@pytest.mark.parametrize("fmt", FORMATS)
@settings(max_examples=200, deadline=None)
@given(data=st.binary())
def test_any_bytes_give_constitution_or_constitution_error(fmt: str, data: bytes) -> None:
    """Arbitrary bytes make each reader return a Constitution or raise ConstitutionError."""
    _parses_or_refuses(data, source="fuzz", fmt=fmt)


@pytest.mark.parametrize("fmt", FORMATS)
@settings(max_examples=200, deadline=None)
@given(data=st.text())
def test_any_text_gives_constitution_or_constitution_error(fmt: str, data: str) -> None:
    """Arbitrary text makes each reader return a Constitution or raise ConstitutionError."""
    _parses_or_refuses(data, source="fuzz", fmt=fmt)


@pytest.mark.parametrize("fmt", sorted(_DUMPERS))
@settings(max_examples=200, deadline=None)
@given(document=_DOCUMENTS)
def test_any_document_shape_gives_constitution_or_constitution_error(
    fmt: str, document: object
) -> None:
    """Well-formed JSON/YAML of any shape gives a Constitution or a ConstitutionError."""
    _parses_or_refuses(_DUMPERS[fmt](document), source="fuzz", fmt=fmt)


@settings(max_examples=200, deadline=None)
@given(
    source=st.sampled_from(
        ["c.toml", "c.yaml", "c.yml", "c.json", "c.jsonl", "c.txt", "c.md", "c"]
    ),
    data=st.text(),
)
def test_inferred_format_gives_constitution_or_constitution_error(source: str, data: str) -> None:
    """Arbitrary text under any file name gives a Constitution or a ConstitutionError."""
    _parses_or_refuses(data, source=source)


_TEXT = st.text(st.characters(codec="utf-8", categories=["L", "N", "P", "S", "Zs"]), min_size=1)
_CONSTITUTIONS = st.builds(
    Constitution,
    name=_TEXT.filter(str.strip),
    description=_TEXT | st.just(""),
    traits=st.lists(
        st.builds(
            Trait,
            text=_TEXT.filter(str.strip),
            questions=st.lists(_TEXT.filter(str.strip), max_size=3),
            clarification=st.none() | _TEXT.filter(str.strip),
        ),
        min_size=1,
        max_size=3,
    ),
)


@settings(max_examples=200, deadline=None)
@given(constitution=_CONSTITUTIONS)
def test_constitutions_round_trip_through_toml_json_and_yaml(constitution: Constitution) -> None:
    """A constitution written as TOML, JSON or YAML reads back equal."""
    data = constitution.to_dict()
    assert parse_constitution(constitution.to_toml(), source="c.toml") == constitution
    assert parse_constitution(json.dumps(data), source="c.json") == constitution
    assert (
        parse_constitution(yaml.safe_dump(data, allow_unicode=True), source="c.yaml")
        == constitution
    )


def test_a_trait_built_in_python_with_no_text_is_a_constitution_error():
    """The model's own validation speaks our error too, not a bare ValueError."""
    with pytest.raises(ConstitutionError, match="must not be empty"):
        Trait(text="")


@pytest.mark.parametrize("name", builtin_names())
def test_to_dict_and_from_dict_round_trip(name):
    """What a manifest records reads back as the same constitution, with the same hash."""
    constitution = load_constitution(name)
    again = Constitution.from_dict(constitution.to_dict())
    assert again == constitution
    assert again.sha256 == constitution.sha256


def test_from_dict_names_a_missing_field():
    with pytest.raises(ConstitutionError, match="'traits'"):
        Constitution.from_dict({"name": "x"})
