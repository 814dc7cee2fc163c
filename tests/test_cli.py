"""The command line wraps the public API, exits 1 on user errors and never shows a traceback."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import attrs
import pytest
from click.testing import CliRunner

from opencharacter.cli import cli, main
from opencharacter.constitution import builtin_names, load_constitution
from opencharacter.errors import MissingDependencyError
from opencharacter.registry import get_backend_spec

DATA = Path(__file__).parent / "data" / "constitutions"


def invoke(*args):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def run_main(args, capsys):
    """Run the real entry point (error handling included); return exit code and stderr."""
    with pytest.raises(SystemExit) as info:
        main(args)
    return info.value.code, capsys.readouterr()


def test_backends_lists_simulated_as_ready():
    """`opencharacter backends` lists the simulated backend as ready."""
    result = invoke("backends")
    assert result.exit_code == 0
    assert "simulated" in result.output
    assert "yes" in result.output


@pytest.mark.parametrize(
    ("command", "keys"),
    [
        (("backends",), {"name", "default", "ready", "description", "fix"}),
        (("constitution", "list"), {"name", "traits", "questions", "description"}),
    ],
)
def test_listings_give_scripts_json_lines_and_plain_rows(command, keys):
    """--json: one object per row; piped output: a header and one tab-separated line per row."""
    objects = [json.loads(line) for line in invoke(*command, "--json").output.splitlines()]
    assert objects
    assert all(set(o) == keys for o in objects)
    plain = invoke(*command).output.splitlines()  # not a terminal under the test runner
    assert plain[0].split("\t") == list(objects[0])
    assert [line.split("\t")[0] for line in plain[1:]] == [o["name"] for o in objects]


def test_constitution_list_shows_every_builtin():
    """`constitution list` shows each built-in persona."""
    result = invoke("constitution", "list")
    assert result.exit_code == 0
    for name in builtin_names():
        assert name in result.output


def test_show_prints_toml_that_loads_back(tmp_path):
    """`constitution show` prints our TOML, and that text loads to the same constitution."""
    result = invoke("constitution", "show", "sarcasm")
    path = tmp_path / "sarcasm.toml"
    path.write_text(result.output, encoding="utf-8")
    assert load_constitution(path) == load_constitution("sarcasm")


def test_validate_accepts_every_supported_format():
    """`constitution validate` exits 0 on a good file of each of the five formats."""
    good = sorted(p for p in DATA.iterdir() if not p.name.startswith("bad"))
    suffixes = {p.suffix for p in good}
    assert {".toml", ".yaml", ".txt", ".json", ".jsonl"} <= suffixes
    result = invoke("constitution", "validate", *map(str, good))
    assert result.exit_code == 0, result.output
    assert result.output.count("ok") == len(good)


def test_validate_rejects_malformed_files_with_file_and_place():
    """`constitution validate` exits 1 and names the file for each malformed one."""
    bad = sorted(p for p in DATA.iterdir() if p.name.startswith("bad"))
    assert bad
    for path in bad:
        result = invoke("constitution", "validate", str(path))
        assert result.exit_code == 1, path
        assert path.name in result.output.replace("\n", "")


def test_lint_flags_a_quoted_catch_phrase(tmp_path):
    """`constitution lint` exits 1 and reports a trait that quotes a catch-phrase."""
    source = load_constitution("sarcasm")
    quoted = attrs.evolve(
        source.traits[0],
        text='I like to open my replies with "Oh, how delightful" before getting to the point.',
    )
    path = tmp_path / "quoted.toml"
    path.write_text(attrs.evolve(source, traits=(quoted, *source.traits[1:])).to_toml())
    result = invoke("constitution", "lint", str(path))
    assert result.exit_code == 1
    assert "quoted-phrase" in result.output


@pytest.mark.parametrize("name", builtin_names())
def test_lint_passes_every_builtin(name):
    """Every built-in persona lints clean."""
    result = invoke("constitution", "lint", name)
    assert result.exit_code == 0, result.output


def test_new_writes_a_valid_starter_and_refuses_to_overwrite(tmp_path):
    """`constitution new` writes a loadable file and will not clobber it without --force."""
    out = tmp_path / "mine.toml"
    assert invoke("constitution", "new", "mine", "--out", str(out)).exit_code == 0
    assert load_constitution(out).name == "mine"
    result = CliRunner().invoke(cli, ["constitution", "new", "mine", "--out", str(out)])
    assert result.exit_code != 0
    copied = tmp_path / "copy.toml"
    invoke("constitution", "new", "copy", "--from", "pirate", "--out", str(copied))
    assert load_constitution(copied).traits == load_constitution("pirate").traits


def test_user_errors_print_one_line_and_exit_1(capsys):
    """A user error prints a one-line message on stderr, no traceback, and exits 1."""
    code, out = run_main(["constitution", "show", "no-such-persona"], capsys)
    assert code == 1
    assert "error:" in out.err
    assert "Traceback" not in out.err


def test_debug_shows_the_traceback():
    """With --debug the same error propagates with its traceback."""
    result = subprocess.run(
        [sys.executable, "-m", "opencharacter", "--debug", "constitution", "show", "nope"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert "Traceback" in result.stderr


def test_keyboard_interrupt_exits_130(monkeypatch, capsys):
    """Ctrl-C ends the command with exit status 130."""

    def interrupted(*_args, **_kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("opencharacter.cli._constitution.load_constitution", interrupted)
    code, _ = run_main(["constitution", "show", "sarcasm"], capsys)
    assert code == 130


def test_error_messages_keep_their_square_brackets(capsys, monkeypatch):
    """An error naming an extra such as "opencharacter[local]" is printed as written."""

    def missing(*_args, **_kwargs):
        raise MissingDependencyError('run: pip install "opencharacter[local]"')

    monkeypatch.setattr("opencharacter.cli._constitution.load_constitution", missing)
    code, out = run_main(["constitution", "show", "sarcasm"], capsys)
    assert code == 1
    assert 'pip install "opencharacter[local]"' in out.err.replace("\n", "")


def test_the_demo_is_a_plugins_preset(capsys, monkeypatch):
    """`demo` runs what a plugin offers; a backend without a preset is refused, naming those
    with one; with no plugin offering one, the error says what to install."""
    code, out = run_main(["demo", "--backend", "simulated"], capsys)
    assert code == 1
    assert "'simulated' backend offers no demo; backends that do: local" in out.err
    from opencharacter.cli._demo import _demo_backend  # noqa: PLC0415

    assert _demo_backend(None).name == "local"
    only = {"simulated": get_backend_spec("simulated")}
    monkeypatch.setattr("opencharacter.cli._demo.available_backends", lambda: only)
    with pytest.raises(MissingDependencyError, match="no installed backend offers a demo"):
        _demo_backend(None)


def test_a_run_ending_in_eval_without_its_packages_fails_before_making_anything(
    capsys, monkeypatch, tmp_path
):
    """No scikit-learn: the pipeline refuses at once, naming the extra; --until sft runs."""
    real = importlib.util.find_spec
    monkeypatch.setattr(
        "opencharacter.eval.stage.importlib.util.find_spec",
        lambda name, *args: None if name == "sklearn" else real(name, *args),
    )
    run_dir = tmp_path / "run"
    flags = ["pipeline", "pirate", "--backend", "simulated", "--scale", "smoke",
             "--run-dir", str(run_dir)]  # fmt: skip
    code, out = run_main(flags, capsys)
    assert code == 1
    assert 'pip install "opencharacter[eval]"' in out.err.replace("\n", "")
    assert not run_dir.exists()
    assert run_main([*flags, "--until", "sft"], capsys)[0] == 0
