"""A third-party backend plugin for tests: a sampler that echoes, and two faulty entries."""

from opencharacter.registry import BackendSpec

SPEC = BackendSpec(
    name="echo",
    description="Echoes the last user message (test plugin).",
    factory="echo_plugin.backend:EchoBackend",
)
NEEDS_MISSING = BackendSpec(
    name="needs-missing",
    description="Needs a package that is never installed (test plugin).",
    factory="echo_plugin.backend:EchoBackend",
    requires=("opencharacter_absent_dependency",),
    install="pip install opencharacter-absent-dependency",
)
NOT_A_SPEC = "this entry point does not point at a BackendSpec"
