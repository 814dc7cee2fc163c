"""Settings a backend cannot honour are refused when explicit, downgraded when defaults."""

from __future__ import annotations

import json

import attrs
import pytest

from opencharacter.capabilities import describe, explicit_settings, fit_config, window_for
from opencharacter.config import resolve_config
from opencharacter.errors import ConfigError
from opencharacter.pipeline import open_context, start_run
from opencharacter.protocols import Capabilities
from opencharacter.registry import BackendSpec, register_backend, unregister_backend

LOCAL = ("local", Capabilities())
REMOTE = Capabilities(
    remote=True,
    repetition_penalty=False,
    lora_alpha=False,
    stack_sft=False,
    retries=True,
    max_concurrency=8,
)
TINKER_LIKE = ("remote", REMOTE)


def config(**flags):
    resolved, layers = resolve_config(
        flags={"constitution": "pirate", "backend": "simulated", **flags}, environ={}
    )
    return resolved, explicit_settings(layers)


def test_explicit_settings_are_the_dotted_names_of_every_layer():
    """Flags, file values and environment variables all count; preset counts do not."""
    layers = {"flags": {"sft": {"start": "stack"}}, "file": {"values": {"dpo": {"lora": {
        "alpha": 16}}}}, "environment": {"seed": 3}, "scale": "mini"}  # fmt: skip
    assert explicit_settings(layers) == {"sft", "sft.start", "dpo", "dpo.lora", "dpo.lora.alpha",
                                         "seed"}  # fmt: skip
    assert explicit_settings(None) == frozenset()


def test_defaults_a_backend_cannot_honour_are_downgraded_and_recorded():
    """Default "stack" becomes "continue"; default alpha is kept but reported as ignored."""
    asked, explicit = config()
    fitted, changes = fit_config(asked, teacher=TINKER_LIKE, student=TINKER_LIKE,
                                 explicit=explicit)  # fmt: skip
    assert fitted.sft.start == "continue"
    assert fitted.dpo.lora.alpha == asked.dpo.lora.alpha
    assert {c.setting for c in changes} == {"sft.start", "dpo.lora.alpha", "sft.lora.alpha",
                                            "concurrency"}  # fmt: skip
    assert all(c.backend == "remote" for c in changes)
    assert "sft.start: 'stack' -> 'continue' on the 'remote' backend" in describe(
        next(c for c in changes if c.setting == "sft.start")
    )


@pytest.mark.parametrize(
    ("flags", "setting"),
    [({"sft": {"start": "stack"}}, "sft.start"), ({"dpo": {"lora": {"alpha": 32}}},
                                                  "dpo.lora.alpha")],
)  # fmt: skip
def test_explicit_settings_a_backend_cannot_honour_are_refused(flags, setting):
    """Nobody's explicit choice is silently changed: the run stops, naming setting and backend."""
    asked, explicit = config(**flags)
    with pytest.raises(ConfigError, match=rf"{setting}: .*'remote' backend cannot run it"):
        fit_config(asked, teacher=LOCAL, student=TINKER_LIKE, explicit=explicit)


def test_a_repetition_penalty_is_refused_on_either_side_without_one():
    """The teacher's backend counts too: a penalty it cannot apply is never dropped."""
    asked, explicit = config(sampling={"repetition_penalty": 1.1})
    with pytest.raises(
        ConfigError, match=r"repetition_penalty=1.1: the 'remote' backend \(teacher"
    ):
        fit_config(asked, teacher=TINKER_LIKE, student=LOCAL, explicit=explicit)
    fitted, changes = fit_config(asked, teacher=LOCAL, student=LOCAL, explicit=explicit)
    assert fitted == asked
    assert not changes


def test_a_backend_that_cannot_train_is_refused_for_training_stages():
    """A sampling-only student backend may make data, but not train."""
    sampling_only = ("echo", Capabilities(training=False))
    asked, _ = config(until="distill")
    fit_config(asked, teacher=LOCAL, student=sampling_only)
    with pytest.raises(ConfigError, match="cannot train"):
        fit_config(attrs.evolve(asked, until="dpo"), teacher=LOCAL, student=sampling_only)


def test_the_window_is_capped_per_side():
    """Each side keeps at most its backend's max_concurrency in flight."""
    asked, _ = config(concurrency=64)
    assert window_for(asked, TINKER_LIKE[1]) == 8
    assert window_for(asked, LOCAL[1]) == 64


def test_open_context_fits_records_and_gives_each_side_its_options(tmp_path):
    """Adjustments land in the manifest; the teacher's own options build its own backend."""
    register_backend(BackendSpec(name="tagged", description="test", factory=f"{__name__}:"
                                 "make_tagged"), replace=True)  # fmt: skip
    try:
        flags = {
            "constitution": "pirate",
            "backend": "tagged",
            "teacher_backend": "tagged",
            "teacher": "T",
            "student": "S",
            "backend_options": {"tag": "student"},
            "teacher_backend_options": {"tag": "teacher"},
            "scale": "smoke",
        }
        asked, layers = resolve_config(flags=flags, environ={})
        with start_run(tmp_path / "run", asked, layers) as run:
            context = open_context(run, asked)
            assert (context.teacher.model, context.student.model) == ("teacher:T", "student:S")
            assert context.config.sft.start == "continue"
        manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
        assert [a["setting"] for a in manifest["adjustments"]] == ["sft.start"]
    finally:
        unregister_backend("tagged")


def load_simulated(**options):
    from opencharacter.simulated._backend import SimulatedBackend  # noqa: PLC0415

    return SimulatedBackend(**options)


@attrs.frozen
class _Tagged:
    """A simulated backend whose models carry the options' tag, and cannot stack SFT."""

    inner: object
    tag: str
    name = "tagged"
    capabilities = Capabilities(stack_sft=False)

    def teacher(self, model):
        return self.inner.teacher(f"{self.tag}:{model}")

    def student(self, model, checkpoint=None):
        return self.inner.student(f"{self.tag}:{model}", checkpoint)

    def trainer(self):
        return self.inner.trainer()

    def check_models(self, *, sample=(), train=()):
        assert all(":" not in m for m in [*sample, *train])


def make_tagged(tag: str = ""):
    return _Tagged(load_simulated(), tag)
