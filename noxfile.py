#!/usr/bin/env -S uv run --script
# /// script
# dependencies = ["nox>=2025.02.09"]
# ///
"""Every task of the project: `nox -l` lists them, `nox` runs the default ones (what CI runs)."""

from __future__ import annotations

import nox

nox.needs_version = ">=2025.02.09"
# pip (not uv) installs, so the machine's pip configuration (find-links for the CPU torch wheel)
# applies inside sessions too.
nox.options.default_venv_backend = "venv"
nox.options.sessions = ["tests", "lint", "typing", "docs"]
nox.options.error_on_missing_interpreters = True

PYPROJECT = nox.project.load_toml("pyproject.toml")
PLUGINS = ("backends/tinker", "backends/local")


def install_project(session: nox.Session, *groups: str) -> None:
    """Install the core, the backend plugins' registrations and the named dependency groups."""
    session.install(
        ".", *(dep for g in groups for dep in nox.project.dependency_groups(PYPROJECT, g))
    )
    # The plugins register through entry points exactly as third parties do. Their heavy
    # dependencies are not needed to test the core; the backend sessions install them.
    session.install("--no-deps", *PLUGINS)


@nox.session
def tests(session: nox.Session) -> None:
    """The default test suite (slow tests excluded)."""
    install_project(session, "test")
    session.run("pytest", *session.posargs)


@nox.session(default=False)
def slow(session: nox.Session) -> None:
    """Only the tests marked slow."""
    install_project(session, "test")
    session.run("pytest", "-m", "slow", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check over the whole tree."""
    session.install(*nox.project.dependency_groups(PYPROJECT, "lint"))
    session.run("ruff", "check", *session.posargs)
    session.run("ruff", "format", "--check", *session.posargs)


@nox.session
def typing(session: nox.Session) -> None:
    """mypy --strict on the library and on tests/typing (documented usage type-checks)."""
    install_project(session, "typing")
    session.run("mypy", "src/opencharacter", "tests/typing", *session.posargs)


@nox.session
def docs(session: nox.Session) -> None:
    """Doctests of the docs, the README and every docstring example."""
    install_project(session, "test")
    session.run(
        "pytest",
        "-p",
        "no:cacheprovider",
        "--doctest-modules",
        "--doctest-glob=*.md",
        "-o",
        "testpaths=",
        "src/opencharacter",
        "docs",
        "README.md",
        *session.posargs,
    )
