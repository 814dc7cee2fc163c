"""docs/cli.md and the program say the same thing, and every command line in the docs parses.

(a) Every visible command of the click tree has a heading in docs/cli.md, and the first table
under it lists exactly that command's options and arguments: none missing, none invented.
(b) Every ``opencharacter ...`` command in a shell block of README.md and of every page under
docs/ (whatever pages exist when the tests run) parses against the real click command line, so
click itself checks the command names, option names, types and choices. Nothing runs.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from pathlib import Path

import click
import pytest

from opencharacter.cli import cli

ROOT = Path(__file__).parents[1]
CLI_PAGE = ROOT / "docs" / "cli.md"
PROG = "opencharacter"


# The click tree -----------------------------------------------------------------------------


def _walk(command: click.Command, path: str, parent: click.Context | None) -> Iterator[tuple]:
    ctx = click.Context(command, info_name=path.rsplit(" ", 1)[-1], parent=parent)
    yield path, command
    if isinstance(command, click.Group):
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            if sub is not None and not sub.hidden:
                yield from _walk(sub, f"{path} {name}", ctx)


COMMANDS: dict[str, click.Command] = dict(_walk(cli, PROG, None))


def _help_names() -> set[str]:
    """The help option's names (``-h``, ``--help``), documented once, on the root command."""
    ctx = click.Context(cli, info_name=PROG, **cli.context_settings)
    option = cli.get_help_option(ctx)
    return set(option.opts) if option is not None else set()


def expected_names(path: str) -> set[str]:
    """The names a command's table must list: option flags, and arguments in upper case."""
    names: set[str] = set()
    for param in COMMANDS[path].params:
        if isinstance(param, click.Argument):
            names.add((param.name or "").upper())
        elif not getattr(param, "hidden", False):
            names.update(param.opts, param.secondary_opts)
    if path == PROG:
        names |= _help_names()
    return names


# The reference page -------------------------------------------------------------------------

HEADING = re.compile(r"^#{1,6}\s")
COMMAND_HEADING = re.compile(rf"^#{{2,6}}\s+`({PROG}(?: [a-z][\w-]*)*)`\s*$")
FENCE = re.compile(r"^\s*(`{3,}|~{3,})\s*([\w+-]*)")
CELL_SPLIT = re.compile(r"(?<!\\)\|")
ARGUMENT = re.compile(r"[A-Z][A-Z0-9_]*")


def _prose_lines(text: str) -> Iterator[tuple[int, str]]:
    """Yield the numbered lines outside fenced code blocks (a bash comment is no heading)."""
    fence = None
    for number, line in enumerate(text.splitlines(), 1):
        match = FENCE.match(line)
        if fence is None and match:
            fence = match.group(1)
        elif fence is not None and line.strip().startswith(fence) and not line.strip(" `~"):
            fence = None
        elif fence is None:
            yield number, line


def page_sections(text: str) -> dict[str, list[str]]:
    """Return each command heading's lines, up to the next heading of any level."""
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for _, line in _prose_lines(text):
        if HEADING.match(line):
            match = COMMAND_HEADING.match(line)
            current = sections.setdefault(match.group(1), []) if match else None
        elif current is not None:
            current.append(line)
    return sections


def table_names(lines: list[str]) -> tuple[set[str], list[str]]:
    """Return the names in the first column of a section's first table, and what is no name.

    The header row and the separator row are skipped; a cell's names are in backticks
    (`` `-o`, `--option` ``, `` `RUN_DIR` ``).
    """
    rows: list[str] = []
    for line in lines:
        if line.startswith("|"):
            rows.append(line)
        elif rows:
            break  # the first table ends here
    names: set[str] = set()
    odd: list[str] = []
    for row in rows[2:]:
        first_cell = CELL_SPLIT.split(row)[1]
        for name in re.findall(r"`([^`]+)`", first_cell):
            if name.startswith("-") or ARGUMENT.fullmatch(name):
                names.add(name)
            else:
                odd.append(name)
    return names, odd


@pytest.fixture(scope="module")
def sections() -> dict[str, list[str]]:
    return page_sections(CLI_PAGE.read_text(encoding="utf-8"))


def test_every_command_has_a_section_and_every_section_a_command(sections):
    """Each command path has a `` ### `opencharacter ...` `` heading; no heading names a ghost."""
    missing = sorted(set(COMMANDS) - set(sections))
    invented = sorted(set(sections) - set(COMMANDS))
    assert not missing, f"commands without a section in {CLI_PAGE.name}: {missing}"
    assert not invented, f"sections of {CLI_PAGE.name} naming no command: {invented}"


@pytest.mark.parametrize("path", sorted(COMMANDS))
def test_each_table_lists_exactly_the_commands_options(path, sections):
    """The first table under a command's heading lists its options and arguments, no others."""
    documented, odd = table_names(sections.get(path, []))
    expected = expected_names(path)
    assert not odd, f"{path}: first-column entries that are no option or argument: {odd}"
    assert not expected - documented, f"{path}: not in its table: {sorted(expected - documented)}"
    assert not documented - expected, f"{path}: no such option: {sorted(documented - expected)}"


# Command lines in the docs ------------------------------------------------------------------

SHELLS = frozenset({"bash", "sh", "shell", "zsh"})
CONTROL = frozenset({"|", "||", "&&", ";", "&", "|&", "(", ")", ";;"})
ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")
FD_BEFORE_REDIRECT = re.compile(r"(?<=\s)\d+(?=[<>])")


def strip_comment(line: str) -> str:
    """Return ``line`` without its shell comment: a ``#`` outside quotes, at a word's start."""
    quote = None
    escaped = False
    for i, char in enumerate(line):
        if escaped:
            escaped = False
        elif char == "\\" and quote != "'":
            escaped = True
        elif quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i]
    return line


def shell_lines(text: str) -> Iterator[tuple[int, str]]:
    """Yield each logical line of the shell code blocks, comments gone, continuations joined.

    The number is the line where the command starts.
    """
    fence = None
    shell = False
    start, parts = 0, []
    for number, line in enumerate(text.splitlines(), 1):
        if fence is None:
            match = FENCE.match(line)
            if match:
                fence, shell = match.group(1), match.group(2).lower() in SHELLS
            continue
        if line.strip().startswith(fence) and not line.strip(" `~"):
            fence = None
            continue
        if not shell:
            continue
        code = strip_comment(line).rstrip()
        if not parts:
            start = number
        if code.endswith("\\"):
            parts.append(code[:-1])
            continue
        parts.append(code)
        joined = " ".join(parts).strip()
        parts = []
        if joined:
            yield start, joined


def simple_commands(line: str) -> list[list[str]]:
    """Split a shell line into its simple commands' words, without redirections.

    ``a && b | c > out 2>&1`` gives ``[a], [b], [c]``; quotes are resolved as the shell does.
    """
    lexer = shlex.shlex(FD_BEFORE_REDIRECT.sub("", line), posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    lexer.commenters = ""
    commands: list[list[str]] = [[]]
    target = False
    for token in lexer:
        if target:  # the file of a redirection
            target = False
        elif token in CONTROL:
            commands.append([])
        elif not token.strip("<>&|;()"):  # >, >>, <, >&, &> ...
            target = True
        else:
            commands[-1].append(token)
    return [words for words in commands if words]


def opencharacter_argv(words: list[str]) -> list[str] | None:
    """Return the arguments of an ``opencharacter`` command (or ``python -m opencharacter``).

    Leading ``VAR=value`` assignments are dropped; any other program gives ``None``.
    """
    while words and ASSIGNMENT.match(words[0]):
        words = words[1:]
    if words[:1] == [PROG]:
        return words[1:]
    if (
        len(words) >= 3
        and re.fullmatch(r"python(3(\.\d+)?)?", words[0])
        and words[1:3]
        == [
            "-m",
            PROG,
        ]
    ):
        return words[3:]
    return None


def parse(argv: list[str]) -> str | None:
    """Parse ``argv`` as the ``opencharacter`` program would, through every group; run nothing.

    Returns:
        The command's path (``opencharacter constitution lint``), or ``None`` where ``--help``
        or ``--version`` ends the parse.

    Raises:
        click.ClickException: what click would report (exit 2), a usage error.
    """
    command: click.Command = cli
    name, parent = PROG, None
    try:
        while True:
            ctx = command.make_context(name, list(argv), parent=parent)
            if not isinstance(command, click.Group):
                return ctx.command_path
            # click 8 keeps the subcommand's name apart from ctx.args; click 9 keeps it in args.
            rest = [*getattr(ctx, "_protected_args", []), *ctx.args]
            if not rest:
                raise click.UsageError("Missing command.", ctx)
            found, sub, argv = command.resolve_command(ctx, rest)
            assert found is not None
            assert sub is not None
            command, name, parent = sub, found, ctx
    except click.exceptions.Exit as exc:  # --help and --version end the parse, successfully
        if exc.exit_code:
            raise click.UsageError(f"exits {exc.exit_code}") from exc
        return None


def doc_files() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


@pytest.fixture
def placeholders_are_paths(monkeypatch, tmp_path):
    """Let a documented path that must exist (``RUN_DIR``, ``my.toml``) stand for one.

    Click checks that such a path exists while it parses, but the docs name the reader's
    files, which exist only on the reader's machine. The parse runs in an empty folder with
    only that one check switched off, on exactly the parameters that make it; every other
    check (names, types, choices, ranges, file or folder where a path exists) still runs.
    """
    for command in COMMANDS.values():
        for param in command.params:
            if isinstance(param.type, click.Path) and param.type.exists:
                monkeypatch.setattr(param.type, "exists", False)
    monkeypatch.chdir(tmp_path)


def check_file(path: Path) -> tuple[list[str], list[str]]:
    """Return the paths of the commands that ``path``'s lines run, and one line per failure."""
    failures: list[str] = []
    parsed: list[str] = []
    where = path.relative_to(ROOT)
    for number, line in shell_lines(path.read_text(encoding="utf-8")):
        try:
            commands = simple_commands(line)
        except ValueError as exc:  # an unclosed quote
            failures.append(f"{where}:{number}: {line}\n    cannot split: {exc}")
            continue
        for words in commands:
            argv = opencharacter_argv(words)
            if argv is None:
                continue
            try:
                parsed.append(parse(argv) or PROG)
            except click.ClickException as exc:
                failures.append(f"{where}:{number}: {line}\n    {exc.format_message()}")
    return parsed, failures


@pytest.mark.usefixtures("placeholders_are_paths")
@pytest.mark.parametrize("path", doc_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_documented_command_lines_parse(path):
    """Each ``opencharacter`` command in the page's shell blocks is a valid command line."""
    _, failures = check_file(path)
    assert not failures, "command lines that do not parse:\n" + "\n".join(failures)


@pytest.mark.usefixtures("placeholders_are_paths")
def test_the_reference_page_has_an_example_of_every_command():
    """docs/cli.md's own examples are checked too: each command has at least one."""
    used, _ = check_file(CLI_PAGE)
    leaves = [p for p, c in COMMANDS.items() if not isinstance(c, click.Group)]
    lacking = [p for p in leaves if p not in used]
    assert not lacking, f"commands with no example in {CLI_PAGE.name}: {lacking}"


# The checker itself -------------------------------------------------------------------------


def test_shell_lines_join_continuations_and_drop_comments():
    text = (
        "Prose with `opencharacter nosuch`.\n"
        "```bash\n"
        "# a comment\n"
        "opencharacter pipeline x \\\n"
        "    --seed 7   # the seed\n"
        "pip install x\n"
        "```\n"
        "```python\n"
        "opencharacter = 1\n"
        "```\n"
    )
    assert list(shell_lines(text)) == [
        (4, "opencharacter pipeline x      --seed 7"),
        (6, "pip install x"),
    ]


def test_simple_commands_split_lists_pipes_and_redirections():
    line = (
        "A=1 B=2 opencharacter backends --json 2>&1 | head -1 && python3 -m opencharacter demo >x"
    )
    commands = simple_commands(line)
    assert commands == [
        ["A=1", "B=2", "opencharacter", "backends", "--json"],
        ["head", "-1"],
        ["python3", "-m", "opencharacter", "demo"],
    ]
    assert [opencharacter_argv(words) for words in commands] == [
        ["backends", "--json"],
        None,
        ["demo"],
    ]
    assert (
        strip_comment("opencharacter x -o 'a # b' url#frag # c")
        == "opencharacter x -o 'a # b' url#frag "
    )


@pytest.mark.usefixtures("placeholders_are_paths")
@pytest.mark.parametrize(
    "argv",
    [
        ["pipline", "sarcasm"],
        ["pipeline", "sarcasm", "--scale", "huge"],
        ["pipeline", "sarcasm", "--seeds", "1"],
        ["pipeline", "sarcasm", "--concurrency", "0"],
        ["train", "kto", "runs/x"],
        ["constitution"],
        ["constitution", "show"],
        ["report", "runs/x", "extra"],
        ["--debug"],
    ],
)
def test_the_parse_rejects_what_click_rejects(argv):
    with pytest.raises(click.UsageError):
        parse(argv)


@pytest.mark.usefixtures("placeholders_are_paths")
@pytest.mark.parametrize(
    "argv",
    [
        ["--version"],
        ["-vv", "--debug", "eval", "runs/x", "--limit", "5"],
        ["pipeline", "--resume", "runs/x", "--until", "dpo"],
        ["constitution", "validate", "a.toml", "b.json"],
        ["filter", "pairs.jsonl", "--out", "kept.jsonl"],
    ],
)
def test_the_parse_accepts_valid_lines_with_placeholder_paths(argv):
    parse(argv)
