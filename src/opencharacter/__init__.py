"""opencharacter: train the character of an AI assistant from a constitution.

The public API in one namespace. Importing it loads no machine-learning framework or SDK:
backends import theirs only when loaded (see :mod:`opencharacter.registry`).
"""

from opencharacter.constitution import (
    Constitution,
    LintWarning,
    Trait,
    builtin_names,
    lint,
    load_constitution,
)
from opencharacter.errors import (
    BackendError,
    ConfigError,
    ConstitutionError,
    DataError,
    EvaluationError,
    MissingDependencyError,
    OpenCharacterError,
    PermanentBackendError,
    RunLockedError,
    TransientBackendError,
    UnknownBackendError,
)
from opencharacter.protocols import (
    Backend,
    Capabilities,
    Readiness,
    Sampler,
    StepMetrics,
    Student,
    Teacher,
    Trainer,
)
from opencharacter.registry import (
    BackendSpec,
    available_backends,
    get_backend_spec,
    load_backend,
    register_backend,
)
from opencharacter.runstore import RunDir
from opencharacter.training import DPOConfig, LoRAConfig, SFTConfig
from opencharacter.types import (
    ChatExample,
    Checkpoint,
    Completion,
    GenerationRequest,
    Message,
    PreferencePair,
    Purpose,
    SamplingParams,
    SamplingSettings,
    TokenUsage,
    stable_id,
)

__all__ = [
    "Backend",
    "BackendError",
    "BackendSpec",
    "Capabilities",
    "ChatExample",
    "Checkpoint",
    "Completion",
    "ConfigError",
    "Constitution",
    "ConstitutionError",
    "DPOConfig",
    "DataError",
    "EvaluationError",
    "GenerationRequest",
    "LintWarning",
    "LoRAConfig",
    "Message",
    "MissingDependencyError",
    "OpenCharacterError",
    "PermanentBackendError",
    "PreferencePair",
    "Purpose",
    "Readiness",
    "RunDir",
    "RunLockedError",
    "SFTConfig",
    "Sampler",
    "SamplingParams",
    "SamplingSettings",
    "StepMetrics",
    "Student",
    "Teacher",
    "TokenUsage",
    "Trainer",
    "Trait",
    "TransientBackendError",
    "UnknownBackendError",
    "available_backends",
    "builtin_names",
    "get_backend_spec",
    "lint",
    "load_backend",
    "load_constitution",
    "register_backend",
    "stable_id",
]


def __getattr__(name: str) -> str:
    if name == "__version__":
        from importlib.metadata import version  # noqa: PLC0415 - read on demand, like attrs

        return version("opencharacter")
    msg = f"module {__name__!r} has no attribute {name!r}"
    raise AttributeError(msg)
