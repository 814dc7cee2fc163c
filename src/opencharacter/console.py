"""What a program built on opencharacter shows a person: errors, progress, exit codes.

The ``opencharacter`` command line and the plugins' own programs (``python -m
opencharacter_local.launch``, the exports) report user errors, interruptions and exit codes
alike, so they share this module instead of the plugins importing the command line. The
library itself never prints or configures logging; only programs call these functions.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, NoReturn

import click
from rich.console import Console
from rich.logging import RichHandler
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from opencharacter.errors import OpenCharacterError
from opencharacter.redact import RedactingFilter
from opencharacter.stages import Progress as StageProgress

EXIT_USER_ERROR = 1
EXIT_INTERRUPTED = 130

stderr = Console(stderr=True, soft_wrap=True)  # errors stay one greppable line in logs
stdout = Console(highlight=False, soft_wrap=True)


def quiet_frameworks() -> None:
    """Keep the frameworks a backend loads from drawing progress bars over ours.

    Only programs do this; the library never configures logging or warnings.
    """
    for variable in ("HF_DATASETS_DISABLE_PROGRESS_BARS", "HF_HUB_DISABLE_PROGRESS_BARS"):
        os.environ.setdefault(variable, "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"(transformers|peft|trl)\b")
    # The Tinker SDK logs each of its own retries (a busy queue is normal); failures still
    # reach us as exceptions.
    logging.getLogger("tinker").setLevel(logging.ERROR)


def configure_logging(*, verbose: int = 0, debug: bool = False) -> None:
    """Log warnings (``verbose`` 1: info, 2: debug) to stderr, with secrets redacted."""
    level = logging.WARNING - 10 * min(verbose, 2)
    handler = RichHandler(console=stderr, show_path=debug, rich_tracebacks=debug)
    handler.addFilter(RedactingFilter())
    logging.basicConfig(level=level, format="%(message)s", handlers=[handler], force=True)


def print_error(error: Exception) -> None:
    """Print a user error as one line on stderr, its text literal (no rich markup)."""
    stderr.print(f"[bold red]error:[/bold red] {escape(str(error))}", highlight=False)


def exit_code_of(call: Callable[[], Any], *, debug: bool = False) -> int:
    """Call ``call`` and return the exit status a program ends with.

    A user error (:class:`~opencharacter.errors.OpenCharacterError`) prints one line and gives
    1, re-raised instead under ``debug``; Ctrl-C gives 130 once the call has saved its state; a
    click usage error prints itself. Otherwise ``call``'s int result, else 0.
    """
    try:
        code = call()
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except (KeyboardInterrupt, click.Abort):
        stderr.print("[yellow]Interrupted; state saved.[/yellow]")
        return EXIT_INTERRUPTED
    except OpenCharacterError as exc:
        if debug:
            raise
        print_error(exc)
        return EXIT_USER_ERROR
    return code if isinstance(code, int) else 0


def run_command(
    command: click.Command, argv: Sequence[str] | None = None, *, prog_name: str
) -> NoReturn:
    """Run a click command on ``argv`` (default: the process's) and exit with its status."""
    args = list(sys.argv[1:] if argv is None else argv)
    sys.exit(
        exit_code_of(
            lambda: command.main(args=args, prog_name=prog_name, standalone_mode=False),
            debug="--debug" in args,
        )
    )


@contextmanager
def progress_display() -> Iterator[Any]:
    """Yield a progress callback that draws one rich progress bar per stage."""
    bars = Progress(
        TextColumn("{task.description:<10}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[tokens]} tok  ${task.fields[cost]:.2f}"),
        console=stdout,
        transient=False,
    )
    tasks: dict[str, TaskID] = {}

    def update(event: StageProgress) -> None:
        if event.message:
            bars.console.print(f"[cyan]{event.stage}[/cyan] {escape(event.message)}")
        if not event.total and not event.done:
            return  # a message before any work (a setting fitted to a backend, say)
        task = tasks.get(event.stage)
        if task is None:
            task = tasks[event.stage] = bars.add_task(
                event.stage, total=event.total, rate="", tokens=0, cost=0.0
            )
        elapsed = bars.tasks[task].elapsed or 0.0
        rate = f"{event.done / elapsed:,.1f}/s" if elapsed > 0.5 else ""
        bars.update(task, completed=event.done, total=max(event.total, event.done), rate=rate,
                    tokens=f"{event.usage.total:,}", cost=event.cost)  # fmt: skip

    with bars:
        yield update


__all__ = [
    "EXIT_INTERRUPTED",
    "EXIT_USER_ERROR",
    "configure_logging",
    "exit_code_of",
    "print_error",
    "progress_display",
    "quiet_frameworks",
    "run_command",
    "stderr",
    "stdout",
]
