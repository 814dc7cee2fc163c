r"""``opencharacter chat``: talk to a run's trained model in the terminal, or through a pipe.

One message per line of standard input, so ``printf 'Hello\n/exit\n' | opencharacter chat
runs/x`` works as well as a person typing. Answers go to standard output and everything else
(the banner, notes) to standard error, so a script reads only the answers.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping
from contextlib import nullcontext
from pathlib import Path
from typing import IO

import click
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from opencharacter.chat import CHAT_STAGES, ChatSession
from opencharacter.console import print_error, stderr, stdout
from opencharacter.errors import TransientBackendError

#: Columns a terminal needs before a comparison is drawn side by side.
SIDE_BY_SIDE_WIDTH = 80
_HELP = "/reset clears the history, /exit (or end of input) quits"


@click.command()
@click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--stage",
    type=click.Choice(CHAT_STAGES),
    help="The model to chat with (default: the latest trained: sft, else dpo, else external).",
)
@click.option("--compare", is_flag=True, help="Answer each message with the base model too.")
def chat(run_dir: Path, stage: str | None, compare: bool) -> None:
    """Chat with the trained model of RUN_DIR, one message per line of standard input.

    No system prompt is sent: a trained persona shows without one. Each exchange is appended
    to RUN_DIR/chat/<session>.jsonl. /reset clears the history; /exit or end of input quits.
    """
    with ChatSession.open(run_dir, stage=stage, compare=compare) as session:
        _banner(session)
        for line in _lines(sys.stdin):
            text = line.strip()
            if not text:
                continue
            if text == "/exit":
                break
            if text == "/reset":
                session.reset()
                stderr.print("[dim]history cleared[/dim]")
                continue
            if text.startswith("/") and " " not in text:
                stderr.print(f"unknown command {escape(text)}; {_HELP}")
                continue
            try:
                waiting = stdout.status("thinking…") if stdout.is_terminal else nullcontext()
                with waiting:
                    answers = session.say(text)
            except TransientBackendError as exc:  # still failing after retries: try again later
                print_error(exc)
                continue
            _show(answers)


def _banner(session: ChatSession) -> None:
    for label, model in session.models.items():
        where = model.checkpoint.uri if model.checkpoint else "base weights"
        stderr.print(f"[bold]{label}[/bold]: {escape(model.base_model)} ({escape(where)})")
    if not session.backend.capabilities.trains_weights:
        stderr.print(f"[yellow]the {session.backend.name!r} backend trains no weights: its "
                     "answers are synthetic text[/yellow]")  # fmt: skip
    stderr.print(f"[dim]transcript: {escape(str(session.transcript))}; {_HELP}[/dim]")


def _lines(stream: IO[str]) -> Iterator[str]:
    """Yield the messages: prompted lines from a person, or the lines of a pipe."""
    if not stream.isatty():
        yield from stream
        return
    while True:
        try:
            yield stdout.input("[bold cyan]you>[/bold cyan] ")
        except EOFError:
            stdout.print()
            return


def _show(answers: Mapping[str, str]) -> None:
    """Print the answers: plain for one model, side by side or in labelled blocks for two."""
    if len(answers) == 1:
        stdout.print(Text(next(iter(answers.values()))))
        stdout.print()
        return
    if stdout.is_terminal and stdout.width >= SIDE_BY_SIDE_WIDTH:
        grid = Table.grid(expand=True, padding=(0, 1))
        for _ in answers:
            grid.add_column(ratio=1)
        grid.add_row(*(Panel(Text(text), title=label, title_align="left")
                       for label, text in answers.items()))  # fmt: skip
        stdout.print(grid)
        return
    for label, text in answers.items():
        stdout.print(f"{label}:", markup=False)
        stdout.print(Text(text))
        stdout.print()
