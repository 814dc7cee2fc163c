"""The ``opencharacter`` command line: thin commands over the public Python API.

User errors (:class:`~opencharacter.errors.OpenCharacterError`) print one clear message and
exit 1; Ctrl-C exits 130 once the command has saved its state; ``--debug`` shows tracebacks.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings
from collections.abc import Sequence

import click
from rich.console import Console
from rich.logging import RichHandler
from rich.markup import escape

from opencharacter.cli._backends import backends
from opencharacter.cli._constitution import constitution
from opencharacter.cli._demo import demo
from opencharacter.cli._filter import filter_
from opencharacter.cli._pipeline import generate, pipeline, train
from opencharacter.errors import OpenCharacterError
from opencharacter.redact import RedactingFilter

EXIT_USER_ERROR = 1
EXIT_INTERRUPTED = 130

stderr = Console(stderr=True, soft_wrap=True)  # errors stay one greppable line in logs


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="opencharacter")
@click.option("--debug", is_flag=True, help="Show full tracebacks on errors.")
@click.option("-v", "--verbose", count=True, help="Log more (-v: info, -vv: debug).")
@click.pass_context
def cli(ctx: click.Context, debug: bool, verbose: int) -> None:
    """Train the character of an AI assistant from a constitution."""
    ctx.obj = {"debug": debug}
    if not verbose:
        quiet_frameworks()
    level = logging.WARNING - 10 * min(verbose, 2)
    handler = RichHandler(console=stderr, show_path=debug, rich_tracebacks=debug)
    handler.addFilter(RedactingFilter())
    logging.basicConfig(level=level, format="%(message)s", handlers=[handler], force=True)


def quiet_frameworks() -> None:
    """Keep the frameworks a backend loads from drawing progress bars over ours.

    Only the command line does this; the library never configures logging or warnings.
    """
    for variable in ("HF_DATASETS_DISABLE_PROGRESS_BARS", "HF_HUB_DISABLE_PROGRESS_BARS"):
        os.environ.setdefault(variable, "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"(transformers|peft|trl)\b")
    # The Tinker SDK logs each of its own retries (a busy queue is normal); failures still
    # reach us as exceptions.
    logging.getLogger("tinker").setLevel(logging.ERROR)


cli.add_command(backends)
cli.add_command(constitution)
cli.add_command(filter_)
cli.add_command(pipeline)
cli.add_command(generate)
cli.add_command(train)
cli.add_command(demo)


def main(
    argv: Sequence[str] | None = None,
    *,
    command: click.Command = cli,
    prog_name: str = "opencharacter",
) -> None:
    """Run the command line and exit with its status (the ``opencharacter`` script).

    A plugin's own command (``command``) gets the same error handling and exit codes.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        code = command.main(args=args, prog_name=prog_name, standalone_mode=False)
    except click.ClickException as exc:
        exc.show()
        code = exc.exit_code
    except (KeyboardInterrupt, click.Abort):
        stderr.print("[yellow]Interrupted; state saved.[/yellow]")
        code = EXIT_INTERRUPTED
    except OpenCharacterError as exc:
        if "--debug" in args:
            raise
        print_error(exc)
        code = EXIT_USER_ERROR
    sys.exit(code if isinstance(code, int) else 0)


def print_error(error: Exception) -> None:
    """Print a user error as one line on stderr, its text literal (no rich markup)."""
    stderr.print(f"[bold red]error:[/bold red] {escape(str(error))}", highlight=False)
