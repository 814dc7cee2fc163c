"""A griffe extension: our docstrings' reST touches render as Markdown in the API reference.

Our docstrings put short ``>>>`` examples right where they explain something, outside any
``Examples:`` section (doctest runs them wherever they are). Markdown would read their ``>>>``
as nested quotes, so each run of doctest lines (prompt, continuations and expected output, up
to a blank line) is wrapped in a ``pycon`` fence. ``Examples:`` sections are griffe's own.
Sphinx roles (``:class:`~a.B```) become code spans of the name (``B``).
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_EXAMPLES_HEADER = re.compile(r"^(\s*)Examples:\s*$")
_ROLE = re.compile(r":(?:class|func|meth|mod|attr|data|exc|obj):`~?([^`]+)`")


def markdown_roles(text: str) -> str:
    """Return ``text`` with Sphinx roles as code spans (``~`` keeps the last name only)."""

    def span(role: re.Match[str]) -> str:
        target = role.group(1)
        return f"`{target.rsplit('.', 1)[-1]}`" if role.group(0).count("~") else f"`{target}`"

    return _ROLE.sub(span, text)


def fence_doctests(text: str) -> str:
    """Return ``text`` with each doctest run outside an ``Examples:`` section fenced."""
    out: list[str] = []
    section_indent: int | None = None  # the indent of an open Examples: header
    run_indent = 0
    in_run = False
    for line in text.splitlines():
        indent = len(line) - len(line.lstrip())
        if section_indent is not None and line.strip() and indent <= section_indent:
            section_indent = None
        if header := _EXAMPLES_HEADER.match(line):
            section_indent = len(header.group(1))
        if in_run and not line.strip():
            out.append(" " * run_indent + "```")
            in_run = False
        elif not in_run and section_indent is None and line.lstrip().startswith(">>>"):
            run_indent = indent
            out.append(" " * run_indent + "```pycon")
            in_run = True
        out.append(line)
    if in_run:
        out.append(" " * run_indent + "```")
    return "\n".join(out)


class DocstringMarkdown(griffe.Extension):
    """Fence the doctest runs and convert the roles of every docstring griffe loads."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        """Rewrite the object's docstring before mkdocstrings parses it."""
        if obj.docstring is not None:
            obj.docstring.value = markdown_roles(fence_doctests(obj.docstring.value))
