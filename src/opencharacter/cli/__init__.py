"""The ``opencharacter`` command line: thin commands over the public Python API.

User errors (:class:`~opencharacter.errors.OpenCharacterError`) print one clear message and
exit 1; Ctrl-C exits 130 once the command has saved its state; ``--debug`` shows tracebacks.
"""

from __future__ import annotations

from collections.abc import Sequence

import click

from opencharacter.cli._backends import backends
from opencharacter.cli._chat import chat
from opencharacter.cli._constitution import constitution
from opencharacter.cli._demo import demo
from opencharacter.cli._eval import eval_
from opencharacter.cli._filter import filter_
from opencharacter.cli._pipeline import generate, pipeline, train
from opencharacter.cli._report import report
from opencharacter.console import configure_logging, quiet_frameworks, run_command


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
    configure_logging(verbose=verbose, debug=debug)


cli.add_command(backends)
cli.add_command(chat)
cli.add_command(constitution)
cli.add_command(filter_)
cli.add_command(pipeline)
cli.add_command(generate)
cli.add_command(train)
cli.add_command(eval_)
cli.add_command(demo)
cli.add_command(report)


def main(argv: Sequence[str] | None = None) -> None:
    """Run the command line and exit with its status (the ``opencharacter`` script).

    Errors and exit codes are handled as in :func:`opencharacter.console.run_command`, which
    a plugin's own program uses too.
    """
    run_command(cli, argv, prog_name="opencharacter")
