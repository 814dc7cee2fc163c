"""Fit a run's settings to what its backends can do, once, before anything is spent.

The rule, for every setting a backend cannot honour:

* **Given explicitly** (a flag, a config file, an ``OPENCHARACTER_*`` variable): the run is
  refused, naming the setting, the backend and the fix. Nobody's explicit choice is ignored.
* **Left at its default**: it is downgraded to the nearest setting the backend can honour,
  with a warning naming the setting and the backend, recorded in the manifest.

The window (``concurrency``) is capped to each backend's ``max_concurrency`` either way: it
changes how fast a run goes, never what it makes.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from typing import Any

import attrs

from opencharacter.config import TRAINING_STAGES, RunConfig
from opencharacter.errors import ConfigError
from opencharacter.protocols import Capabilities


@attrs.frozen(kw_only=True)
class Adjustment:
    """One setting changed to fit a backend, with why; kept in the manifest.

    Attributes:
        setting: dotted name, e.g. ``"sft.start"``.
        requested: the value asked for.
        used: the value the run uses (equal to ``requested`` when it is only not honoured).
        backend: the backend that cannot honour it.
        reason: one sentence for the user.
    """

    setting: str
    requested: Any
    used: Any
    backend: str
    reason: str


def explicit_settings(layers: Mapping[str, Any] | None) -> frozenset[str]:
    """Return the dotted names of every setting the user gave (flags, file, environment).

    ``layers`` is what :func:`opencharacter.config.resolve_config` returns and the manifest
    keeps; ``{"dpo": {"lora": {"alpha": 16}}}`` gives ``"dpo.lora.alpha"``.

    >>> sorted(explicit_settings({"flags": {"sft": {"start": "stack"}}, "environment": {}}))
    ['sft', 'sft.start']
    """
    names: set[str] = set()
    layers = layers or {}
    file_layer = layers.get("file") or {}
    for layer in (layers.get("flags"), file_layer.get("values"), layers.get("environment")):
        names.update(_dotted(layer or {}, ""))
    return frozenset(names)


def _dotted(values: Mapping[str, Any], prefix: str) -> Iterable[str]:
    for key, value in values.items():
        yield prefix + key
        if isinstance(value, Mapping):
            yield from _dotted(value, f"{prefix}{key}.")


def fit_config(
    config: RunConfig,
    *,
    teacher: tuple[str, Capabilities],
    student: tuple[str, Capabilities],
    explicit: Collection[str] = (),
) -> tuple[RunConfig, list[Adjustment]]:
    """Return the configuration the backends can run, and what was changed to get there.

    Args:
        config: the run's configuration as asked.
        teacher: the teacher backend's name and capabilities.
        student: the student backend's name and capabilities (it trains too).
        explicit: settings the user gave explicitly (see :func:`explicit_settings`).

    Raises:
        ConfigError: an explicit setting a backend cannot honour, or a backend that cannot
            do its part at all.
    """
    changes: list[Adjustment] = []

    def refuse_or(setting: str, backend: str, reason: str, fix: str) -> None:
        if setting in explicit:
            msg = f"{setting}: {reason}, so the {backend!r} backend cannot run it; {fix}"
            raise ConfigError(msg)

    for side, (backend, caps) in (("teacher", teacher), ("student", student)):
        if not caps.sampling:
            msg = f"the {backend!r} backend cannot sample, so it cannot serve the {side}"
            raise ConfigError(msg)
        penalty = config.sampling.repetition_penalty
        if penalty != 1.0 and not caps.repetition_penalty:
            msg = (
                f"sampling.repetition_penalty={penalty}: the {backend!r} backend ({side}) has "
                "no repetition penalty; set it to 1.0 or use a backend that has one"
            )
            raise ConfigError(msg)
    name, caps = student
    if config.trains and not caps.training:
        msg = f"the {name!r} backend cannot train; choose a training backend with --backend"
        raise ConfigError(msg)
    if not caps.lora_alpha:
        for stage in TRAINING_STAGES:
            setting = f"{stage}.lora.alpha"
            alpha = getattr(config, stage).lora.alpha
            reason = f"{name!r} fixes its own LoRA scaling and ignores alpha"
            refuse_or(setting, name, reason, f"remove {setting} from your settings")
            changes.append(Adjustment(setting=setting, requested=alpha, used=alpha, backend=name,
                                      reason=f"not honoured: {reason}"))  # fmt: skip
    if config.sft.start == "stack" and not caps.stack_sft:
        reason = "SFT cannot train a new adapter on DPO-merged weights there"
        refuse_or("sft.start", name, reason, 'set sft.start = "continue"')
        config = attrs.evolve(config, sft=attrs.evolve(config.sft, start="continue"))
        changes.append(Adjustment(setting="sft.start", requested="stack", used="continue",
                                  backend=name, reason=f"{reason}; SFT keeps training the DPO "
                                  "adapter instead"))  # fmt: skip
    for side, (backend, caps) in (("teacher", teacher), ("student", student)):
        window = window_for(config, caps)
        if window < config.concurrency:
            changes.append(Adjustment(setting="concurrency", requested=config.concurrency,
                                      used=window, backend=backend,
                                      reason=f"the {side}'s window is capped to the {window} "
                                      "requests it serves at once"))  # fmt: skip
    return config, changes


def window_for(config: RunConfig, capabilities: Capabilities) -> int:
    """Return the requests to keep in flight on a backend: the run's, capped to its maximum."""
    return min(config.concurrency, capabilities.max_concurrency or config.concurrency)


def describe(change: Adjustment) -> str:
    """Return one warning line for an adjustment.

    >>> describe(Adjustment(setting="sft.start", requested="stack", used="continue",
    ...                     backend="tinker", reason="cannot stack"))
    "sft.start: 'stack' -> 'continue' on the 'tinker' backend (cannot stack)"
    """
    if change.requested == change.used:
        return f"{change.setting}={change.requested!r} on the {change.backend!r} backend: " + (
            change.reason
        )
    return (
        f"{change.setting}: {change.requested!r} -> {change.used!r} on the "
        f"{change.backend!r} backend ({change.reason})"
    )
