"""Find, check and load backends, registered through the ``opencharacter.backends`` entry points.

Registration is separate from importing. An entry point resolves to a cheap
:class:`BackendSpec` (a name, the modules it needs, the exact install command, and the dotted
path of its factory); the heavy backend module is imported only by :meth:`BackendSpec.load`.
So ``opencharacter backends`` lists every installed backend, with what each one lacks, without
importing torch or an SDK, and one broken plugin cannot break the others.

A third-party backend registers the same way the built-in ones do::

    [project.entry-points."opencharacter.backends"]
    mybackend = "my_package.plugin:SPEC"
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import typing
import warnings
from collections.abc import Callable, Iterable, Mapping
from importlib.metadata import EntryPoint, entry_points
from typing import Any

import attrs

from opencharacter.convert import convert
from opencharacter.errors import (
    ConfigError,
    MissingDependencyError,
    OpenCharacterError,
    PluginError,
    UnknownBackendError,
)
from opencharacter.protocols import Backend, Readiness
from opencharacter.types import Price

ENTRY_POINT_GROUP = "opencharacter.backends"
DEFAULT_BACKEND = "tinker"
#: How to install each first-party backend plugin, for a name asked for but not installed.
_FIRST_PARTY: Mapping[str, str] = {
    name: f'pip install "opencharacter[{name}]" (from a clone: pip install ./backends/{name})'
    for name in ("local", "openai", "tinker")
}


@attrs.frozen(kw_only=True)
class ServiceTiming:
    """How long a backend takes, for estimates made before a run: a model, with its sources.

    Attributes:
        request_seconds: a sampling request's time before its first token (queue, prefill).
        tokens_per_second: decode speed of one sequence (``inf``: instant).
        step_seconds: one training step (a pipelined forward-backward and optimiser step);
            ``0`` when unknown.
        dpo_passes: passes through the model a DPO step takes (2 where the loss runs on the
            client: a forward pass, then the forward-backward pass).
        source: where the numbers come from, printed with the estimate.
    """

    request_seconds: float
    tokens_per_second: float = float("inf")
    step_seconds: float = 0.0
    dpo_passes: int = 1
    source: str = ""

    def request(self, tokens: int) -> float:
        """Return the seconds one request writing ``tokens`` tokens takes."""
        return self.request_seconds + tokens / self.tokens_per_second


@attrs.frozen(kw_only=True)
class DemoPreset:
    """How ``opencharacter demo`` runs the whole pipeline on a backend, here, in minutes.

    Attributes:
        settings: run settings (as a config file holds them) under the persona and seed.
        about: what the demo runs and what to expect of it, shown first.
        real_command: the command that runs the same backend on a real model.
    """

    settings: Mapping[str, Any]
    about: str
    real_command: str


def _names(values: Iterable[str]) -> tuple[str, ...]:
    """Freeze a list of module or distribution names (typed: mypy cannot type ``tuple`` here)."""
    return tuple(values)


@attrs.frozen(kw_only=True)
class BackendSpec:
    """What the registry knows about a backend before importing it.

    Attributes:
        name: the registry name users type (``--backend NAME``).
        description: one line for ``opencharacter backends``.
        factory: ``"module:callable"`` returning a :class:`~opencharacter.protocols.Backend`
            from keyword options. An attrs class is ideal: string options from the command line
            are converted to its field types.
        requires: import names of the packages the factory needs (``"torch"``, ``"tinker"``).
        install: the exact command that installs what is missing.
        readiness: an optional cheap check (credentials, say) returning problems, each with
            its fix; it must not import heavy packages.
        default_models: the ``"teacher"`` and ``"student"`` a run uses on this backend when
            none is named. The plugin knows which models it serves well today.
        prices: US dollars per million tokens by model, for estimates and the manifest's
            cost accounting; a run's ``prices`` setting overrides them.
        deployment_price: the price of whatever model the backend serves, from its options,
            for a backend priced per deployment rather than per model (an OpenAI-compatible
            server); ``None`` when the options set none.
        timing: how long requests and training steps take there, for estimates; a function
            of the backend options where they set it (the simulated ``latency_ms``).
        distributions: the distributions a run records the versions of when this plugin is
            installed (its own first, then what it runs on).
        demo: how ``opencharacter demo`` shows this backend, if it can on any machine.
        default_concurrency: the requests a run keeps in flight there when it names no
            ``concurrency`` (a remote service wants far more than a local GPU); ``None`` keeps
            the run's default.
    """

    name: str
    description: str
    factory: str
    requires: tuple[str, ...] = attrs.field(default=(), converter=_names)
    install: str = ""
    readiness: Callable[[], tuple[str, ...]] | None = None
    default_models: Mapping[str, str] = attrs.field(factory=dict)
    prices: Mapping[str, Price] = attrs.field(factory=dict)
    deployment_price: Callable[[Mapping[str, Any]], Price | None] | None = None
    timing: ServiceTiming | Callable[[Mapping[str, Any]], ServiceTiming] | None = None
    default_concurrency: int | None = None
    distributions: tuple[str, ...] = attrs.field(default=(), converter=_names)
    demo: DemoPreset | None = None

    def timing_for(self, options: Mapping[str, Any]) -> ServiceTiming | None:
        """Return the time model of a run with these backend options, if the plugin has one."""
        return self.timing(options) if callable(self.timing) else self.timing

    def missing(self) -> tuple[str, ...]:
        """Return the required modules that are not installed, without importing any."""
        return tuple(m for m in self.requires if not _module_installed(m))

    def check(self) -> Readiness:
        """Return whether this backend can run here: dependencies first, then credentials."""
        missing = self.missing()
        if missing:
            return Readiness((self._missing_message(missing),))
        return Readiness(self.readiness() if self.readiness else ())

    def load(self, options: Mapping[str, Any] | None = None) -> Backend:
        """Import the backend and build it with ``options``.

        Raises:
            MissingDependencyError: a required package is not installed.
            PluginError: the plugin itself is broken.
            ConfigError: an option is unknown or has the wrong type.
        """
        missing = self.missing()
        if missing:
            raise MissingDependencyError(self._missing_message(missing))
        module_name, _, attr = self.factory.partition(":")
        try:
            factory = getattr(importlib.import_module(module_name), attr)
        except ImportError as exc:
            root = (exc.name or "").partition(".")[0]
            if root and root != module_name.partition(".")[0] and not _module_installed(root):
                raise MissingDependencyError(self._missing_message((root,))) from exc
            msg = (
                f"The {self.name!r} backend plugin is installed but its factory {self.factory} "
                f"cannot be imported ({exc}). Reinstall or upgrade the plugin."
            )
            raise PluginError(msg) from exc
        except AttributeError as exc:
            msg = f"The {self.name!r} backend plugin has no factory {self.factory} ({exc})."
            raise PluginError(msg) from exc
        coerced = coerce_options(factory, dict(options or {}), self.name)
        try:
            backend: Backend = factory(**coerced)
        except (TypeError, ValueError) as exc:
            if isinstance(exc, OpenCharacterError):
                raise
            msg = f"the {self.name!r} backend refuses an option: {exc}"
            raise ConfigError(msg) from exc
        return backend

    def _missing_message(self, missing: tuple[str, ...]) -> str:
        fix = f" Install it with: {self.install}" if self.install else ""
        return f"The {self.name!r} backend needs {', '.join(missing)}, which is not installed.{fix}"


def _module_installed(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


_registered: dict[str, BackendSpec] = {}


def register_backend(spec: BackendSpec, *, replace: bool = False) -> None:
    """Register a backend from code (tests, notebooks); entry points are the usual way.

    Raises:
        ConfigError: the name is taken and ``replace`` is False.
    """
    if spec.name in _registered and not replace:
        msg = f"a backend named {spec.name!r} is already registered; pass replace=True"
        raise ConfigError(msg)
    _registered[spec.name] = spec


def unregister_backend(name: str) -> None:
    """Remove a backend registered with :func:`register_backend` (no effect on entry points)."""
    _registered.pop(name, None)


def available_backends() -> dict[str, BackendSpec]:
    """Return every installed backend's spec by name, sorted, skipping broken plugins.

    A plugin whose entry point fails to load, or does not point at a :class:`BackendSpec`, is
    reported with a warning and left out, so it cannot break the other backends.
    """
    specs = {}
    for ep in _entry_points():
        spec = _load_spec(ep)
        if spec is not None:
            specs[spec.name] = spec
    specs.update(_registered)
    return dict(sorted(specs.items()))


def get_backend_spec(name: str) -> BackendSpec:
    """Return the spec of the backend called ``name``, importing only that plugin.

    Raises:
        UnknownBackendError: no such backend; the message lists the installed ones (and says
            how to install a first-party one).
    """
    if name in _registered:
        return _registered[name]
    for ep in _entry_points():
        if ep.name == name and (spec := _load_spec(ep)) is not None:
            return spec
    installed = sorted(available_backends())
    close = difflib.get_close_matches(name, installed, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    if name in _FIRST_PARTY:
        hint = f" Its plugin is not installed; install it with: {_FIRST_PARTY[name]}."
    listing = ", ".join(installed) or "none"
    msg = f"No backend named {name!r}.{hint} Installed backends: {listing}."
    raise UnknownBackendError(msg)


def load_backend(name: str, options: Mapping[str, Any] | None = None) -> Backend:
    """Return the backend called ``name``, built with ``options`` (see :meth:`BackendSpec.load`).

    Examples:
        >>> backend = load_backend("simulated", {"seed": "7"})
        >>> backend.name
        'simulated'
    """
    return get_backend_spec(name).load(options)


def _entry_points() -> tuple[EntryPoint, ...]:
    return tuple(entry_points(group=ENTRY_POINT_GROUP))


def _load_spec(ep: EntryPoint) -> BackendSpec | None:
    try:
        spec = ep.load()
    except Exception as exc:
        warnings.warn(
            f"Backend plugin {ep.name!r} ({ep.value}) failed to load and is skipped: {exc!r}",
            RuntimeWarning,
            stacklevel=3,
        )
        return None
    if not isinstance(spec, BackendSpec):
        warnings.warn(
            f"Backend plugin {ep.name!r} ({ep.value}) is not a BackendSpec and is skipped.",
            RuntimeWarning,
            stacklevel=3,
        )
        return None
    return spec


def coerce_options(factory: object, options: dict[str, Any], backend: str) -> dict[str, Any]:
    """Check option names against an attrs factory and convert string values to field types.

    Command-line options arrive as strings (``-o latency_ms=20``). For a factory that is an
    attrs class, unknown names are refused with the list of valid ones, and each string is
    converted to its field's type by :func:`opencharacter.convert.convert`, as every setting
    is. Other factories receive the options unchanged.

    Raises:
        ConfigError: an unknown option, or a value that does not convert.
    """
    if not (isinstance(factory, type) and attrs.has(factory)):
        return options
    fields = {f.alias: f for f in attrs.fields(factory) if f.init}
    hints = typing.get_type_hints(factory)
    unknown = sorted(set(options) - set(fields))
    if unknown:
        valid = ", ".join(sorted(fields)) or "none"
        msg = f"Unknown option(s) {', '.join(unknown)} for backend {backend!r}. Valid: {valid}."
        raise ConfigError(msg)
    source = f"backend {backend!r} option"
    return {
        key: convert(value, hints.get(fields[key].name, Any), setting=key, source=source)
        for key, value in options.items()
    }
