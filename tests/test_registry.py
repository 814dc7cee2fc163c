"""Backends are discovered through entry points, checked without importing, and loaded lazily."""

from __future__ import annotations

import asyncio
import importlib
import subprocess
import sys
import warnings
from typing import Literal

import attrs
import pytest

from opencharacter import registry
from opencharacter.errors import (
    ConfigError,
    MissingDependencyError,
    PluginError,
    UnknownBackendError,
)
from opencharacter.protocols import Backend
from opencharacter.registry import (
    BackendSpec,
    available_backends,
    coerce_options,
    get_backend_spec,
    load_backend,
    register_backend,
    unregister_backend,
)
from opencharacter.types import GenerationRequest

PLUGIN = __import__("pathlib").Path(__file__).parent / "plugin_pkg"


@pytest.fixture(scope="module")
def installed_plugin(tmp_path_factory):
    """Install the tiny plugin package from tests/ with pip, into a folder put on sys.path."""
    target = tmp_path_factory.mktemp("site")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--target",
            str(target),
            str(PLUGIN),
        ],
        check=True,
    )
    sys.path.insert(0, str(target))
    importlib.invalidate_caches()
    yield target
    sys.path.remove(str(target))
    for name in [m for m in sys.modules if m.startswith("echo_plugin")]:
        del sys.modules[name]
    importlib.invalidate_caches()


def test_simulated_is_registered_through_entry_points():
    """The built-in simulated backend is found in the entry-point group like any plugin."""
    names = {ep.name for ep in registry._entry_points()}
    assert "simulated" in names
    assert get_backend_spec("simulated").check().ready


def test_unknown_backend_lists_installed_and_closest():
    """An unknown name lists the installed backends and suggests the closest one."""
    with pytest.raises(UnknownBackendError) as info:
        get_backend_spec("simulatd")
    message = str(info.value)
    assert "Did you mean 'simulated'?" in message
    assert "Installed backends:" in message


def test_third_party_plugin_is_found_and_loaded(installed_plugin):
    """A pip-installed third-party package registers a working backend by entry point."""
    with pytest.warns(RuntimeWarning):
        assert "echo" in available_backends()
    backend = load_backend("echo", {"prefix": "x-"})
    assert isinstance(backend, Backend)
    teacher = backend.teacher("m")
    request = GenerationRequest(id="r", messages=[{"role": "user", "content": "hello"}])

    async def collect():
        return [c async for c in teacher.generate([request])]

    [completion] = asyncio.run(collect())
    assert (completion.text, completion.model) == ("hello", "x-m")


def test_broken_plugins_warn_and_do_not_break_others(installed_plugin):
    """A plugin that fails to load or is not a spec is skipped with a warning."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        found = available_backends()
    messages = " ".join(str(w.message) for w in caught)
    assert "'broken'" in messages
    assert "'not-a-spec'" in messages
    assert {"echo", "simulated"} <= set(found)
    assert "broken" not in found


def test_missing_dependency_names_package_and_pip_command(installed_plugin):
    """A backend whose requirement is absent raises one error with the exact pip command."""
    spec = get_backend_spec("needs-missing")
    assert not spec.check().ready
    with pytest.raises(MissingDependencyError) as info:
        spec.load()
    message = str(info.value)
    assert "opencharacter_absent_dependency" in message
    assert "pip install opencharacter-absent-dependency" in message
    assert isinstance(info.value, ImportError)


def test_broken_factory_is_a_plugin_error():
    """A spec whose factory module does not exist is reported as a broken plugin."""
    spec = BackendSpec(name="ghost", description="", factory="opencharacter.nope:Ghost")
    with pytest.raises(PluginError, match="Reinstall"):
        spec.load()


def test_register_backend_refuses_collisions():
    """Programmatic registration raises on a taken name unless replace=True."""
    spec = BackendSpec(name="extra", description="d", factory="x:y")
    register_backend(spec)
    try:
        with pytest.raises(ConfigError, match="already registered"):
            register_backend(spec)
        register_backend(attrs.evolve(spec, description="e"), replace=True)
        assert get_backend_spec("extra").description == "e"
    finally:
        unregister_backend("extra")


@attrs.frozen(kw_only=True)
class _Options:
    count: int = 1
    rate: float = 0.5
    flag: bool = False
    name: str = "n"
    limit: int | None = None
    engine: Literal["vllm", "transformers"] = "vllm"


def test_string_options_convert_to_field_types():
    """Command-line strings become ints, floats, bools and optionals per the factory's fields."""
    converted = coerce_options(
        _Options,
        {"count": "3", "rate": "0.25", "flag": "yes", "limit": "none", "engine": "transformers"},
        "t",
    )
    assert converted == {
        "count": 3, "rate": 0.25, "flag": True, "limit": None, "engine": "transformers"
    }  # fmt: skip
    assert _Options(**converted).count == 3


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        ({"cuont": "3"}, "Unknown option"),
        ({"count": "three"}, "count='three' is not a whole number"),
        ({"flag": "maybe"}, "flag='maybe' is not true or false"),
        ({"engine": "tgi"}, "engine='tgi' is not one of"),
    ],
)
def test_bad_options_are_config_errors(options, fragment):
    """Unknown names and unconvertible values fail with the valid names or expected type."""
    with pytest.raises(ConfigError, match=fragment):
        coerce_options(_Options, options, "t")
