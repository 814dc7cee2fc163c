"""Filter chains: an ordered, declarative list of filters with their parameters.

A chain is data: each step names a registered filter and its parameters, so a chain can be
written into a run manifest (:meth:`FilterChain.to_dict`) and rebuilt from it. The same chain
filters one completion as it arrives (:meth:`FilterChain.apply`) and whole files
(:func:`~opencharacter.filters.filter_rows`).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import Any

import attrs

from opencharacter.errors import ConfigError
from opencharacter.filters._disclosure import check_disclosure
from opencharacter.filters._identity import check_identity
from opencharacter.filters._repetition import check_repetition
from opencharacter.filters._tags import check_reasoning, check_roles
from opencharacter.filters._text import check_empty, check_garbage, check_length, check_truncation
from opencharacter.filters._verdict import Verdict

FilterFn = Callable[..., Verdict]

FILTERS: Mapping[str, FilterFn] = MappingProxyType(
    {
        "disclosure": check_disclosure,
        "empty": check_empty,
        "garbage": check_garbage,
        "identity": check_identity,
        "length": check_length,
        "reasoning": check_reasoning,
        "repetition": check_repetition,
        "roles": check_roles,
        "truncation": check_truncation,
    }
)
"""Every filter a chain can use, by the name chains and manifests record."""

_NAMES_BY_FUNCTION = {fn: name for name, fn in FILTERS.items()}

FILTER_POINTS: tuple[str, ...] = ("distill-chosen", "distill-rejected", "reflection", "interaction")
"""Where the pipeline filters data, each with a default chain (:meth:`FilterChain.for_stage`)."""

# Token ceilings applied when a token counter is given: the paper's 1,024-token DPO limit
# (paper-method §6), its 2,048-token reflections (§9) and 1,024-token interaction turns (§10).
_STAGE_MAX_TOKENS = {
    "distill-chosen": 1024,
    "distill-rejected": 1024,
    "reflection": 2048,
    "interaction": 1024,
}


def _freeze(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return tuple(_freeze(v) for v in value)
    return value


def _to_params(value: Mapping[str, Any] | None) -> Mapping[str, Any]:
    raw: object = value  # checked at run time: manifests are untyped JSON
    if raw is None:
        return MappingProxyType({})
    if not isinstance(raw, Mapping):
        msg = f"filter parameters must be a mapping of name to value, got {value!r}"
        raise ConfigError(msg)
    return MappingProxyType({str(k): _freeze(v) for k, v in sorted(raw.items())})


def _keyword_params(fn: FilterFn) -> frozenset[str]:
    return frozenset(
        name
        for name, p in inspect.signature(fn).parameters.items()
        if p.kind is inspect.Parameter.KEYWORD_ONLY and name != "finish_reason"
    )


@attrs.frozen
class FilterStep:
    """One filter of a chain and the parameters it is called with.

    Attributes:
        name: a key of :data:`FILTERS`.
        params: keyword arguments for the filter; lists become tuples, the mapping is
            read-only. Checked when the step is built: an unknown name or parameter, or a bad
            value, raises :class:`~opencharacter.errors.ConfigError` here, not mid-run.
    """

    name: str
    params: Mapping[str, Any] = attrs.field(factory=dict, converter=_to_params)

    def __attrs_post_init__(self) -> None:
        fn = FILTERS.get(self.name)
        if fn is None:
            msg = f"unknown filter {self.name!r}; the filters are {sorted(FILTERS)}"
            raise ConfigError(msg)
        unknown = set(self.params) - _keyword_params(fn)
        if unknown:
            msg = (
                f"filter {self.name!r} has no parameter(s) {sorted(unknown)}; it takes "
                f"{sorted(_keyword_params(fn))}"
            )
            raise ConfigError(msg)
        try:
            fn("A short check sentence.", **self.params)
        except ConfigError:
            raise
        except (TypeError, ValueError) as exc:
            msg = f"filter {self.name!r}: bad parameters {dict(self.params)!r}: {exc}"
            raise ConfigError(msg) from exc

    def apply(self, text: str, *, finish_reason: str | None = None) -> Verdict:
        """Run this step's filter on ``text``."""
        return FILTERS[self.name](text, finish_reason=finish_reason, **self.params)

    def to_dict(self) -> dict[str, Any]:
        """Return ``{"filter": name, "params": {...}}``, JSON-ready.

        A callable parameter (``count_tokens``) is recorded by its qualified name.
        """
        return {"filter": self.name, "params": {k: _jsonable(v) for k, v in self.params.items()}}


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    if callable(value):
        module = getattr(value, "__module__", None) or "?"
        return f"<callable {module}.{getattr(value, '__qualname__', type(value).__name__)}>"
    return value


StepSpec = FilterStep | tuple[str | FilterFn, Mapping[str, Any]] | str | FilterFn


def _to_step(spec: object) -> FilterStep:
    if isinstance(spec, FilterStep):
        return spec
    target: object = spec
    params: object = None
    if isinstance(spec, tuple) and len(spec) == 2:
        target, params = spec
    if callable(target):
        name = _NAMES_BY_FUNCTION.get(target)
        if name is None:
            msg = f"{target!r} is not a registered filter; chains take {sorted(FILTERS)}"
            raise ConfigError(msg)
        target = name
    if not isinstance(target, str) or not (params is None or isinstance(params, Mapping)):
        msg = f"a chain step is a filter name or (filter, params), got {spec!r}"
        raise ConfigError(msg)
    return FilterStep(target, params)


def _to_steps(specs: Iterable[StepSpec]) -> tuple[FilterStep, ...]:
    return tuple(_to_step(s) for s in specs)


@attrs.frozen
class FilterChain:
    """Filters applied in order; each sees the text the previous one cleaned.

    The first filter that drops a text ends the chain, so a dropped verdict names the first
    reason in chain order; the cleaning filters come first so the others judge clean text.

    Attributes:
        steps: the filters, as :class:`FilterStep` or ``(filter, params)`` pairs where
            ``filter`` is a name from :data:`FILTERS` or the function itself.
        stage: a label recorded in the manifest (the stage the chain was made for).

    >>> chain = FilterChain([("reasoning", {}), ("length", {"min_chars": 5})])
    >>> chain.apply("<think>hmm</think>Hello there, sailor!").text
    'Hello there, sailor!'
    """

    steps: tuple[FilterStep, ...] = attrs.field(converter=_to_steps)
    stage: str | None = attrs.field(default=None, kw_only=True)
    _calls: tuple[tuple[FilterFn, dict[str, Any]], ...] = attrs.field(
        init=False, eq=False, repr=False
    )

    def __attrs_post_init__(self) -> None:
        calls = tuple((FILTERS[s.name], dict(s.params)) for s in self.steps)
        object.__setattr__(self, "_calls", calls)

    @property
    def names(self) -> tuple[str, ...]:
        """Return the filter names in order."""
        return tuple(s.name for s in self.steps)

    def apply(self, text: str, *, finish_reason: str | None = None) -> Verdict:
        """Run every filter on ``text`` in order and return the combined verdict.

        Args:
            text: the answer.
            finish_reason: the backend's stop reason (``"stop"``, ``"length"``) or ``None``.
                Once a filter cuts off a hallucinated turn, the rest see ``"stop"``: the
                text that remains ended on its own.

        Returns:
            The dropping filter's reasons, or none if every filter kept the text; the text
            after all cleaning; every cleaning applied, in order.
        """
        cleaned: list[str] = []
        turn_ended = False
        for fn, params in self._calls:
            verdict = fn(text, finish_reason=finish_reason, **params)
            text = verdict.text
            for code in verdict.cleaned:
                if code not in cleaned:
                    cleaned.append(code)
            if verdict.turn_ended:
                turn_ended, finish_reason = True, "stop"
            if not verdict.keep:
                return Verdict(False, verdict.reasons, text, tuple(cleaned), turn_ended)
        return Verdict(True, (), text, tuple(cleaned), turn_ended)

    __call__ = apply

    def with_params(self, name: str, **params: Any) -> FilterChain:
        """Return a copy where the step ``name`` has ``params`` merged into its parameters.

        >>> FilterChain.for_stage("reflection").with_params("length", max_chars=20_000)
        ... # doctest: +ELLIPSIS
        FilterChain(...)
        """
        if name not in self.names:
            msg = f"this chain has no {name!r} step; its steps are {list(self.names)}"
            raise ConfigError(msg)
        steps = [
            FilterStep(s.name, {**s.params, **params}) if s.name == name else s for s in self.steps
        ]
        return attrs.evolve(self, steps=steps)

    def without(self, *names: str) -> FilterChain:
        """Return a copy without the steps ``names``."""
        missing = set(names) - set(self.names)
        if missing:
            msg = f"this chain has no step(s) {sorted(missing)}; its steps are {list(self.names)}"
            raise ConfigError(msg)
        return attrs.evolve(self, steps=[s for s in self.steps if s.name not in names])

    def to_dict(self) -> dict[str, Any]:
        """Return the chain as JSON-ready data for a run manifest."""
        return {"stage": self.stage, "steps": [s.to_dict() for s in self.steps]}

    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any], *, count_tokens: Callable[[str], int] | None = None
    ) -> FilterChain:
        """Rebuild a chain from :meth:`to_dict` output.

        Args:
            data: the recorded chain.
            count_tokens: the token counter, for a chain recorded with one (a callable cannot
                be stored; the record only names it).

        Raises:
            ConfigError: the data is not a recorded chain, or names a token counter that was
                not passed.
        """
        try:
            raw_steps = list(data["steps"])
            specs = [(s["filter"], dict(s.get("params") or {})) for s in raw_steps]
        except (KeyError, TypeError) as exc:
            msg = f"not a recorded filter chain (need 'steps' of {{'filter', 'params'}}): {exc}"
            raise ConfigError(msg) from exc
        for _, params in specs:
            if "count_tokens" in params and params["count_tokens"] is not None:
                if count_tokens is None:
                    msg = (
                        f"the chain was recorded with count_tokens={params['count_tokens']}; "
                        "pass count_tokens= to rebuild it"
                    )
                    raise ConfigError(msg)
                params["count_tokens"] = count_tokens
        return cls(specs, stage=data.get("stage"))

    @classmethod
    def for_stage(
        cls,
        stage: str,
        *,
        teacher_names: Sequence[str] = (),
        student_name: str | None = None,
        allowed_names: Sequence[str] = (),
        count_tokens: Callable[[str], int] | None = None,
        max_tokens: int | None = None,
    ) -> FilterChain:
        """Return the default chain for one stage of the pipeline.

        Every chain cleans first (reasoning blocks, hallucinated turns, the teacher's name),
        then drops empty, truncated, over-long, garbled and looping answers:

        - ``distill-chosen`` (teacher answers): all filters, identity replacement, and
          ``disclosure`` (the only chain with it: chosen answers must not narrate the
          persona).
        - ``distill-rejected`` (student answers): no ``identity``: the student's own voice,
          "I'm Qwen" included, is exactly what DPO moves away from, and the seed lost that
          contrast by dropping it (seed-lessons §3.2). No ``disclosure``.
        - ``reflection``: no ``disclosure``: reflections are about the model's values.
        - ``interaction`` (every assistant turn of a self-interaction transcript): no
          ``disclosure``; turns may be short (``min_chars`` 1, ``min_remaining_chars`` 10), as
          greetings are.

        Args:
            stage: one of :data:`FILTER_POINTS`.
            teacher_names: names the teacher was given (``("ChatGLM",)``); replaced by
                ``student_name`` where identity is checked.
            student_name: the trained model's name; never an identity leak.
            allowed_names: more names and companies the model may claim as its own.
            count_tokens: a token counter; with it the length filter also checks tokens.
            max_tokens: token ceiling per answer; default 1,024 (2,048 for reflections), the
                paper's limits. Ignored without ``count_tokens``.

        Raises:
            ConfigError: ``stage`` is not one of :data:`FILTER_POINTS`.

        >>> FilterChain.for_stage("distill-chosen").names
        ('reasoning', 'roles', 'identity', 'empty', 'truncation', 'length', 'garbage', \
'repetition', 'disclosure')
        """
        if stage not in FILTER_POINTS:
            msg = (
                f"no default chain for stage {stage!r}; the filter points are {list(FILTER_POINTS)}"
            )
            raise ConfigError(msg)
        identity: dict[str, Any] = {}
        if teacher_names:
            identity["teacher_names"] = tuple(teacher_names)
        if student_name is not None:
            identity["student_name"] = student_name
        if allowed_names:
            identity["allowed_names"] = tuple(allowed_names)
        length: dict[str, Any] = {}
        if count_tokens is not None:
            length["count_tokens"] = count_tokens
            length["max_tokens"] = max_tokens or _STAGE_MAX_TOKENS[stage]
        roles: dict[str, Any] = {}
        if stage == "interaction":
            length["min_chars"] = 1
            roles["min_remaining_chars"] = 10
        steps: list[tuple[str, Mapping[str, Any]]] = [("reasoning", {}), ("roles", roles)]
        if stage != "distill-rejected":
            steps.append(("identity", identity))
        steps += [
            ("empty", {}),
            ("truncation", {}),
            ("length", length),
            ("garbage", {}),
            ("repetition", {}),
        ]
        if stage == "distill-chosen":
            steps.append(("disclosure", {}))
        return cls(steps, stage=stage)


def dpo_chains(
    *,
    teacher_names: Sequence[str] = (),
    student_name: str | None = None,
    allowed_names: Sequence[str] = (),
    count_tokens: Callable[[str], int] | None = None,
    max_tokens: int | None = None,
) -> dict[str, FilterChain]:
    """Return ``{"chosen": ..., "rejected": ...}``, the default chains for DPO rows.

    Pass the result to :func:`~opencharacter.filters.filter_rows`.
    """
    options: dict[str, Any] = {
        "teacher_names": teacher_names,
        "student_name": student_name,
        "allowed_names": allowed_names,
        "count_tokens": count_tokens,
        "max_tokens": max_tokens,
    }
    return {
        "chosen": FilterChain.for_stage("distill-chosen", **options),
        "rejected": FilterChain.for_stage("distill-rejected", **options),
    }
