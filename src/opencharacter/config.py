"""The run configuration: one typed record, resolved from flags, a file, the environment, a preset.

Resolution, highest first: command-line flags > config file (TOML) > environment variables
(``OPENCHARACTER_<FIELD>``, e.g. ``OPENCHARACTER_CONCURRENCY=128``) > the ``scale`` preset,
which fills counts only. Every layer and the resolved result are saved in the run manifest, so
a run can always say where each value came from.
"""

from __future__ import annotations

import os
import re
import tomllib
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, get_args

import attrs
from attrs import validators as v

from opencharacter.convert import build, convert
from opencharacter.errors import ConfigError
from opencharacter.eval.settings import EvalSettings, split_names
from opencharacter.registry import DEFAULT_BACKEND, get_backend_spec
from opencharacter.trackers import TRACKERS
from opencharacter.training import DPOConfig, SFTConfig
from opencharacter.types import Price, SamplingSettings

ENV_PREFIX = "OPENCHARACTER_"
#: The pipeline's stages in order: the one list the estimator, the pipeline and the CLI read.
Stage = Literal["prompts", "distill", "dpo", "introspect", "sft", "eval"]
STAGES: tuple[Stage, ...] = get_args(Stage)
#: The stages that train the student.
TRAINING_STAGES: tuple[Stage, ...] = ("dpo", "sft")
#: The checkpoint of an evaluation-only run: a model trained elsewhere
#: (:func:`opencharacter.eval.evaluate_model` records it; only the ``eval`` stage runs there).
EXTERNAL_CHECKPOINT = "external"
#: The stages that make training data.
DATA_STAGES: tuple[Stage, ...] = ("prompts", "distill", "introspect")
_count = v.and_(v.instance_of(int), v.ge(0))


@attrs.frozen(kw_only=True)
class Counts:
    """How much data each stage makes; the ``scale`` presets fill these.

    Attributes:
        questions_per_trait: the size each trait's question pool is grown to, seeds included.
            Paper: 50 (5 seeds + 45 written by the teacher).
        generic_prompts: prompts not tied to a trait. Paper: LIMA's 1,330 first turns.
        samples_per_prompt: teacher/student answer pairs per prompt (K). Paper: 5.
        reflections_per_prompt: samples of each reflection prompt. Paper: 1,000.
        interactions_per_variant: self-interaction conversations of each variant (free and
            leading). Paper: 1,000.
        interaction_turns: replies per conversation. Paper: 10.
        eval_prompts: prompts each evaluation uses. Paper: 500 (robustness, coherence).
    """

    questions_per_trait: int = attrs.field(default=10, validator=_count)
    generic_prompts: int = attrs.field(default=40, validator=_count)
    samples_per_prompt: int = attrs.field(default=1, validator=_count)
    reflections_per_prompt: int = attrs.field(default=10, validator=_count)
    interactions_per_variant: int = attrs.field(default=10, validator=_count)
    interaction_turns: int = attrs.field(default=4, validator=_count)
    eval_prompts: int = attrs.field(default=20, validator=_count)


#: The ``--scale`` presets. ``paper`` is the paper's counts; ``full`` is the same but with only
#: as many generic prompts as the built-in offline set holds, so it runs without the Hub;
#: ``half`` and ``quarter`` make about that share of the paper's generations; ``mini`` shows
#: signs of life in minutes on a real backend; ``smoke`` runs in seconds on the simulated one.
SCALES: Mapping[str, Counts] = {
    "smoke": Counts(
        questions_per_trait=6, generic_prompts=6, samples_per_prompt=1,
        reflections_per_prompt=1, interactions_per_variant=1, interaction_turns=2,
        eval_prompts=6,
    ),
    "mini": Counts(),
    "quarter": Counts(
        questions_per_trait=50, generic_prompts=330, samples_per_prompt=3,
        reflections_per_prompt=250, interactions_per_variant=250, interaction_turns=10,
        eval_prompts=125,
    ),
    "half": Counts(
        questions_per_trait=50, generic_prompts=660, samples_per_prompt=4,
        reflections_per_prompt=500, interactions_per_variant=500, interaction_turns=10,
        eval_prompts=250,
    ),
    "full": Counts(
        questions_per_trait=50, generic_prompts=320, samples_per_prompt=5,
        reflections_per_prompt=1000, interactions_per_variant=1000, interaction_turns=10,
        eval_prompts=500,
    ),
    "paper": Counts(
        questions_per_trait=50, generic_prompts=1330, samples_per_prompt=5,
        reflections_per_prompt=1000, interactions_per_variant=1000, interaction_turns=10,
        eval_prompts=500,
    ),
}  # fmt: skip


@attrs.frozen(kw_only=True)
class Sampling(SamplingSettings):
    """Sampling settings shared by every generation, and the token limit of each kind.

    Attributes:
        temperature: Paper: 0.7.
        top_p: Paper: 0.95.
        repetition_penalty: Paper: 1.1 (vLLM); 1.0 switches it off. Backends that cannot
            apply it (Tinker) refuse a value other than 1.0 rather than silently drop it.
        expansion_tokens: for the teacher writing new questions. Paper: 2,048.
        answer_tokens: for teacher and student answers. The paper sampled 4,096 but then
            dropped every pair over 1,024 tokens, so longer answers are wasted spend.
        reflection_tokens: per reflection. Paper: 2,048.
        turn_tokens: per self-interaction reply. Paper: 1,024.
        stop: extra stop strings, applied to teacher and student alike.
    """

    expansion_tokens: int = attrs.field(default=2048, validator=v.ge(1))
    answer_tokens: int = attrs.field(default=1024, validator=v.ge(1))
    reflection_tokens: int = attrs.field(default=2048, validator=v.ge(1))
    turn_tokens: int = attrs.field(default=1024, validator=v.ge(1))


def _prices(value: Mapping[str, Any]) -> Mapping[str, Price]:
    return {k: p if isinstance(p, Price) else Price(**p) for k, p in value.items()}


def _options(value: Mapping[str, Any]) -> Mapping[str, Any]:
    return dict(value)


def _tracker_names(value: str | Sequence[str]) -> tuple[str, ...]:
    """Accept ``"wandb,mlflow"`` (a flag, a variable) or a list (a TOML file, Python).

    Raises:
        ConfigError: a name that is not a tracker.
    """
    names = split_names(value)
    unknown = [name for name in names if name not in TRACKERS]
    if unknown:
        msg = f"report_to: unknown tracker {unknown[0]!r}; choose from {', '.join(TRACKERS)}"
        raise ConfigError(msg)
    return names


@attrs.frozen(kw_only=True)
class RunConfig:
    """Everything a pipeline run needs to know, with the paper's settings as defaults.

    Attributes:
        constitution: a built-in persona name or a constitution file.
        teacher: the teacher model. Paper: GLM-4.5-Air; any strong instruct model serves.
            :func:`resolve_config` fills in the teacher backend's default when none is given.
        student: the student model; likewise filled in from the backend's default.
        backend: the backend for the student and its training. Default ``tinker``.
        teacher_backend: the teacher's backend, when it differs (a remote teacher for a local
            student, say).
        backend_options: options for the student's backend, ``-o key=value`` on the command
            line.
        teacher_backend_options: options for the teacher's backend (``--teacher-option
            key=value``). When given, the teacher gets a backend instance of its own even on
            the same backend; otherwise a teacher on the student's backend shares it.
        assistant_name: the name the persona goes by; default: the student's family name
            (``Qwen`` for ``Qwen/Qwen3-4B-Instruct-2507``). The teacher is told this name, and
            its own name is replaced by it in chosen answers.
        scale: the preset that filled :attr:`counts`.
        counts: how much data each stage makes.
        concurrency: requests in flight per model; unset, the backend plugin's default, else 64.
        seed: drives every random choice: prompt order, greetings, sampling seeds, shuffles.
        sampling: sampling settings and token limits.
        generic_source: where generic prompts come from: a JSONL or text file, a Hugging Face
            dataset name (needs ``datasets`` and the Hub), or ``None`` for the built-in set.
        filters: apply the data-quality filters of :mod:`opencharacter.filters` (default). The
            demo turns them off: a random tiny model writes nonsense every filter would drop.
        top_up_rounds: extra rounds of distillation for prompts whose pairs were filtered out.
        max_attempts: tries per request before a transient error stops the stage.
        retry_base_delay: seconds before the first retry; doubled each time, with jitter.
        retry_max_delay: the longest wait between tries.
        dpo: DPO settings (paper defaults).
        sft: SFT settings (paper defaults).
        judge: the judge model of the evaluations; default: the teacher.
        judge_backend: the judge's backend; default: the teacher's.
        judge_backend_options: options for the judge's backend (``--judge-option key=value``);
            when given, the judge gets a backend instance of its own.
        evaluation: how the trained model is evaluated (the ``eval`` stage).
        until: the last stage to run; a full run ends with the evaluations.
        prices: prices per model (US dollars per million tokens) over the backends' own price
            tables, for estimates and cost accounting.
        report_to: experiment trackers that get every training step and stage summary
            (``wandb``, ``mlflow``, ``trackio``; see :mod:`opencharacter.trackers`).
    """

    constitution: str = attrs.field(validator=v.min_len(1))
    teacher: str = attrs.field(validator=v.min_len(1))
    student: str = attrs.field(validator=v.min_len(1))
    backend: str = DEFAULT_BACKEND
    teacher_backend: str | None = None
    backend_options: Mapping[str, Any] = attrs.field(factory=dict, converter=_options)
    teacher_backend_options: Mapping[str, Any] = attrs.field(factory=dict, converter=_options)
    assistant_name: str | None = None
    scale: str = attrs.field(default="mini", validator=v.in_(tuple(SCALES)))
    counts: Counts = attrs.field(factory=Counts)
    concurrency: int = attrs.field(default=64, validator=v.and_(v.instance_of(int), v.ge(1)))
    seed: int = attrs.field(default=0, validator=v.instance_of(int))
    sampling: Sampling = attrs.field(factory=Sampling)
    generic_source: str | None = None
    filters: bool = attrs.field(default=True, validator=v.instance_of(bool))
    top_up_rounds: int = attrs.field(default=2, validator=_count)
    max_attempts: int = attrs.field(default=8, validator=v.ge(1))
    retry_base_delay: float = attrs.field(default=1.0, converter=float, validator=v.ge(0.0))
    retry_max_delay: float = attrs.field(default=60.0, converter=float, validator=v.ge(0.0))
    dpo: DPOConfig = attrs.field(factory=DPOConfig)
    sft: SFTConfig = attrs.field(factory=SFTConfig)
    judge: str | None = None
    judge_backend: str | None = None
    judge_backend_options: Mapping[str, Any] = attrs.field(factory=dict, converter=_options)
    evaluation: EvalSettings = attrs.field(factory=EvalSettings)
    until: Stage = attrs.field(default="eval", validator=v.in_(STAGES))
    prices: Mapping[str, Price] = attrs.field(factory=dict, converter=_prices)
    report_to: tuple[str, ...] = attrs.field(default=(), converter=_tracker_names)

    @property
    def trains(self) -> bool:
        """Whether the run goes as far as a stage that trains the student."""
        return STAGES.index(self.until) >= STAGES.index(TRAINING_STAGES[0])

    @property
    def name(self) -> str:
        """The persona's name: :attr:`assistant_name`, else the student's family name."""
        return self.assistant_name or family_name(self.student)

    def to_dict(self) -> dict[str, Any]:
        """Return the resolved configuration as JSON-ready data (for the manifest)."""
        return attrs.asdict(self, value_serializer=_jsonable)


def _jsonable(_instance: object, _field: object, value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def teacher_side(config: RunConfig) -> tuple[str, Mapping[str, Any]]:
    """Return the teacher's backend and its options: the one rule every part of a run reads.

    The teacher shares the student's backend instance (and options) unless it names a backend
    or options of its own; then it gets its own instance with only its own options, so a
    teacher on another backend never inherits options meant for the student's.

    >>> base = {"constitution": "sarcasm", "teacher": "big", "student": "small"}
    >>> teacher_side(RunConfig(**base, backend="local", backend_options={"engine": "vllm"}))
    ('local', {'engine': 'vllm'})
    >>> teacher_side(RunConfig(**base, backend="local", teacher_backend="simulated",
    ...                        backend_options={"engine": "vllm"}))
    ('simulated', {})
    """
    if config.teacher_backend or config.teacher_backend_options:
        return config.teacher_backend or config.backend, config.teacher_backend_options
    return config.backend, config.backend_options


def price_table(config: RunConfig) -> dict[str, Price]:
    """Return the prices a run uses: its backends' own tables under its ``prices`` setting.

    A backend priced per deployment prices the model it serves in the run from its options.
    """
    sides = (
        (config.backend, config.backend_options, config.student),
        (*teacher_side(config), config.teacher),
    )
    table: dict[str, Price] = {}
    for backend, _, _ in sides:
        table.update(get_backend_spec(backend).prices)
    for backend, options, model in sides:
        spec = get_backend_spec(backend)
        price = spec.deployment_price(options) if spec.deployment_price else None
        if price is not None:
            table[model] = price
    return {**table, **config.prices}


def family_name(model: str) -> str:
    """Return a model's family name, the way users and the model itself refer to it.

    >>> family_name("Qwen/Qwen3-4B-Instruct-2507"), family_name("meta-llama/Llama-3.1-8B")
    ('Qwen', 'Llama')
    >>> family_name("zai-org/GLM-4.5-Air")
    'GLM'
    """
    stem = model.rstrip("/").rsplit("/", 1)[-1]
    match = re.match(r"[A-Za-z]+", stem)
    return match.group(0) if match else stem


# Resolution ---------------------------------------------------------------------------------

#: Settings given as a table (a TOML section, a dict), never as one value.
_TABLES = frozenset({"counts", "sampling", "dpo", "sft", "backend_options",
                     "teacher_backend_options", "judge_backend_options", "prices",
                     "evaluation"})  # fmt: skip


def read_config_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a TOML config file; errors name the file and what to fix."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        msg = f"{path}: cannot read the config file ({exc.strerror})"
        raise ConfigError(msg) from exc
    except tomllib.TOMLDecodeError as exc:
        msg = f"{path}: invalid TOML ({exc}); fix the syntax there"
        raise ConfigError(msg) from exc
    placeholders = {"constitution": "-", "teacher": "-", "student": "-"}
    build(RunConfig, {**placeholders, **data}, source=str(path))  # checked here, by file
    return _layer(data, str(path))


def environment_layer(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Return the top-level scalar settings given as ``OPENCHARACTER_<FIELD>`` variables."""
    env = os.environ if environ is None else environ
    layer: dict[str, Any] = {}
    for name, hint in _scalar_settings().items():
        variable = ENV_PREFIX + name.upper()
        if variable in env:
            layer[name] = convert(env[variable], hint, setting=name, source=variable)
    return layer


def _scalar_settings() -> dict[str, Any]:
    """The top-level settings one value sets (not a table), with their types."""
    hints = typing.get_type_hints(RunConfig)
    return {name: hint for name, hint in hints.items() if name not in _TABLES}


def resolve_config(
    *,
    flags: Mapping[str, Any] | None = None,
    file: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> tuple[RunConfig, dict[str, Any]]:
    """Return the run configuration and the layers it was resolved from.

    Args:
        flags: values given on the command line (``None`` values are ignored).
        file: a TOML config file.
        environ: the environment (default ``os.environ``).

    Returns:
        The configuration, and ``{"flags", "file", "environment", "scale"}`` for the manifest.

    Raises:
        ConfigError: an unknown key, a wrong type, or an invalid value, with where it came from.

    Examples:
        >>> config, _ = resolve_config(flags={"constitution": "pirate", "scale": "smoke"},
        ...                            environ={"OPENCHARACTER_SEED": "7"})
        >>> config.seed, config.counts.samples_per_prompt
        (7, 1)
    """
    given = {key: value for key, value in (flags or {}).items() if value is not None}
    flag_layer = _layer(given, "command line")
    file_layer = read_config_file(file) if file else {}
    env_layer = environment_layer(environ)
    merged = _merge(_merge(env_layer, file_layer), flag_layer)
    scale = merged.get("scale", "mini")
    if scale not in SCALES:
        msg = f"unknown scale {scale!r}; choose one of {', '.join(SCALES)}"
        raise ConfigError(msg)
    preset = {"counts": attrs.asdict(SCALES[scale])}
    merged = _merge(preset, merged)
    if "constitution" not in merged:
        msg = "no constitution given: name a built-in persona or a constitution file"
        raise ConfigError(msg)
    merged = _with_backend_defaults(merged)
    config = build(RunConfig, merged, source="configuration")
    layers = {
        "flags": flag_layer,
        "file": {"path": str(file), "values": file_layer} if file else None,
        "environment": env_layer,
        "scale": scale,
    }
    return config, layers


def _with_backend_defaults(values: dict[str, Any]) -> dict[str, Any]:
    """Fill in a missing teacher, student or concurrency from the backends' plugins.

    A plugin knows which models it serves well today and how many requests it wants in
    flight; with two backends the larger window wins, and each side is capped to its own.
    """
    student = values.get("backend", DEFAULT_BACKEND)
    sides = {"teacher": values.get("teacher_backend") or student, "student": student}
    specs = {side: get_backend_spec(str(backend)) for side, backend in sides.items()}
    for side, spec in specs.items():
        if side in values:
            continue
        default = spec.default_models.get(side)
        if default is None:
            msg = f"the {spec.name!r} backend has no default {side} model; pass --{side} NAME"
            raise ConfigError(msg)
        values = {**values, side: default}
    windows = [s.default_concurrency for s in specs.values() if s.default_concurrency]
    if "concurrency" not in values and windows:
        values = {**values, "concurrency": max(windows)}
    return values


def _merge(low: Mapping[str, Any], high: Mapping[str, Any]) -> dict[str, Any]:
    """Return ``low`` updated by ``high``, merging nested tables key by key."""
    out = dict(low)
    for key, value in high.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _layer(values: Mapping[str, Any], source: str) -> dict[str, Any]:
    """One layer's settings, its single values converted as every path converts them.

    Tables stay mappings, to merge key by key with the other layers; the final build converts
    them.
    """
    scalars = _scalar_settings()
    unknown = sorted(set(values) - set(scalars) - _TABLES)
    if unknown:
        valid = ", ".join(sorted({*scalars, *_TABLES}))
        msg = f"{source}: unknown setting(s) {', '.join(unknown)}; valid: {valid}"
        raise ConfigError(msg)
    return {
        key: convert(value, scalars[key], setting=key, source=source) if key in scalars else value
        for key, value in values.items()
    }
