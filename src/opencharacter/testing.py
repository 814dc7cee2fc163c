"""The backend contract as a pytest suite: what a plugin runs against itself to prove it fits.

A third-party backend subclasses :class:`BackendContract` in its own tests, gives it a
``backend`` fixture and a model it serves, and pytest runs every check the pipeline relies on:
the start-up check, one completion per sample of every request, token limits, seeds, students
at their base weights, foreign checkpoints refused, (when the backend trains) DPO then SFT
giving checkpoints it samples from, and, given ``pipeline_options``, the whole pipeline with
the backend as the student (:func:`smoke_pipeline`). Our own backends run it too::

    import pytest
    from opencharacter.registry import load_backend
    from opencharacter.testing import BackendContract

    class TestMyBackend(BackendContract):
        model = "my-org/my-model"

        @pytest.fixture
        def backend(self):
            return load_backend("mine", {"endpoint": "http://localhost:9000"})

This module needs pytest; nothing else in the library imports it.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import pytest

from opencharacter.errors import ConfigError, OpenCharacterError
from opencharacter.protocols import Backend, Capabilities, Sampler
from opencharacter.registry import available_backends
from opencharacter.training import DPOConfig, LoRAConfig, SFTConfig
from opencharacter.types import (
    ChatExample,
    Checkpoint,
    Completion,
    GenerationRequest,
    PreferencePair,
    SamplingParams,
)


def collect(sampler: Sampler, requests: Sequence[GenerationRequest]) -> list[Completion]:
    """Return every completion ``sampler`` streams for ``requests``, in arrival order."""

    async def run() -> list[Completion]:
        return [completion async for completion in sampler.generate(requests)]

    return asyncio.run(run())


def ask(request_id: str, *, samples: int = 1, **params: object) -> GenerationRequest:
    """Return a short chat request (``params``: :class:`SamplingParams` fields)."""
    text = f"In one sentence, what is worth knowing about {request_id}?"
    return GenerationRequest(id=request_id, messages=[{"role": "user", "content": text}],
                             params=SamplingParams(**params), samples=samples)  # type: ignore[arg-type]  # fmt: skip


def smoke_pipeline(
    run_dir: str | os.PathLike[str],
    *,
    backend: str,
    student: str,
    options: Mapping[str, Any] | None = None,
    until: str = "sft",
    **settings: Any,
) -> Path:
    """Run every stage up to ``until`` with ``backend`` as the student; return the run folder.

    The simulated backend is the teacher and the judge (the fakes a plugin needs: they answer
    in character, judge, and cost nothing), at the ``smoke`` scale, so the run takes seconds
    beyond the plugin's own time. ``settings`` are more run settings (``filters=False`` for a
    model that writes nonsense, ``sampling={...}``). The backend must be registered (an
    entry point, or :func:`~opencharacter.registry.register_backend` in the test).
    """
    from opencharacter.config import resolve_config  # noqa: PLC0415 - the pipeline, lazily
    from opencharacter.pipeline import prepare_backends, run_pipeline, start_run  # noqa: PLC0415

    flags = {"constitution": "pirate", "backend": backend, "backend_options": options or {},
             "student": student, "teacher_backend": "simulated", "teacher": "simulated-teacher",
             "judge_backend": "simulated", "judge": "simulated-judge", "scale": "smoke",
             "until": until, **settings}  # fmt: skip
    config, layers = resolve_config(flags=flags, environ={})
    backends = prepare_backends(config, layers)
    with start_run(run_dir, config, layers) as run:
        run_pipeline(run, config, backends=backends)
        return run.path


class BackendContract:
    """Subclass as ``Test...`` with a ``backend`` fixture and a ``model`` it serves.

    Attributes:
        model: a model the backend samples (and trains, when it trains).
        checks_model_names: the start-up check refuses a model the backend cannot serve (a
            service asks; a simulator serves any name, and a local backend may only find out
            when it loads the model, so they say False and that check is skipped).
        unknown_model: a name the backend must refuse at start.
        lora: the adapter the training checks train (small, to stay quick).
        pipeline_options: the backend's options for the pipeline check (which loads the
            registered backend by name); ``None`` skips that check.
        pipeline_settings: more run settings for it (see :func:`smoke_pipeline`).
    """

    model: ClassVar[str]
    checks_model_names: ClassVar[bool] = True
    unknown_model: ClassVar[str] = "opencharacter-contract/no-such-model"
    lora: ClassVar[LoRAConfig] = LoRAConfig(rank=4, alpha=8)
    pipeline_options: ClassVar[Mapping[str, Any] | None] = None
    pipeline_settings: ClassVar[Mapping[str, Any]] = {}

    @pytest.fixture
    def backend(self) -> Backend:
        """The backend under test: override this fixture."""
        msg = "give the contract a `backend` fixture returning the backend under test"
        raise NotImplementedError(msg)

    def test_it_is_a_backend_with_capabilities(self, backend: Backend) -> None:
        """It meets the Backend protocol, with a name and its capabilities."""
        assert isinstance(backend, Backend)
        assert isinstance(backend.capabilities, Capabilities)
        assert isinstance(backend.name, str)
        assert backend.name

    def test_its_model_passes_the_start_check(self, backend: Backend) -> None:
        """The start-up check accepts the model, for training too when the backend trains."""
        train = [self.model] if backend.capabilities.training else []
        backend.check_models(sample=[self.model], train=train)

    def test_an_unknown_model_fails_the_start_check(self, backend: Backend) -> None:
        """A model the backend cannot serve is refused at start with our error and its fix."""
        if not self.checks_model_names:
            pytest.skip("the backend does not check model names at start")
        with pytest.raises(OpenCharacterError):
            backend.check_models(sample=[self.unknown_model])

    def test_every_sample_of_every_request_comes_once(self, backend: Backend) -> None:
        """K samples a request, each once, numbered 0..K-1, with a finish reason."""
        requests = [ask(f"topic-{k}", samples=k, max_tokens=16, seed=k) for k in (1, 2, 3)]
        done = collect(backend.teacher(self.model), requests)
        expected = sorted((r.id, k) for r in requests for k in range(r.samples))
        assert sorted((c.request_id, c.sample) for c in done) == expected
        for completion in done:
            assert completion.finish_reason in ("stop", "length")
            assert isinstance(completion.text, str)

    def test_the_token_limit_is_kept(self, backend: Backend) -> None:
        """No answer reports more tokens than its request allowed."""
        teacher = backend.teacher(self.model)
        [completion] = collect(teacher, [ask("limit", max_tokens=3, seed=1)])
        assert completion.completion_tokens <= 3

    def test_a_seeded_request_repeats(self, backend: Backend) -> None:
        """Where seeds are honoured, the same seeded request gives the same text."""
        if not backend.capabilities.seeded_sampling:
            pytest.skip("the backend does not honour seeds")
        teacher = backend.teacher(self.model)
        first, again = (collect(teacher, [ask("seeded", max_tokens=12, seed=7)]) for _ in "ab")
        assert first[0].text == again[0].text

    def test_a_student_samples_its_base_weights(self, backend: Backend) -> None:
        """A student without a checkpoint names its base model and samples."""
        student = backend.student(self.model)
        assert student.checkpoint is None
        assert student.base_model == self.model
        assert len(collect(student, [ask("student", max_tokens=8)])) == 1

    def test_a_checkpoint_of_another_backend_is_refused(self, backend: Backend) -> None:
        """Moving a student to a checkpoint another backend made fails at once."""
        foreign = Checkpoint(backend=f"not-{backend.name}", base_model=self.model,
                             uri="elsewhere://adapter", kind="dpo")  # fmt: skip
        with pytest.raises(ConfigError):
            backend.student(self.model).at(foreign)

    def test_dpo_then_sft_give_checkpoints_it_samples(
        self, backend: Backend, tmp_path: Path
    ) -> None:
        """Where it trains: DPO, then SFT from the DPO checkpoint; it samples from both."""
        if not backend.capabilities.training:
            pytest.skip("the backend does not train")
        student, trainer = backend.student(self.model), backend.trainer()
        pairs = [PreferencePair(id=f"p{i}", prompt=[{"role": "user", "content": f"Hi {i}"}],
                                chosen=f"Well, hello {i}.", rejected=f"Hello {i}.")
                 for i in range(4)]  # fmt: skip
        dpo = trainer.dpo(student, pairs, DPOConfig(batch_size=2, lora=self.lora),
                          output_dir=tmp_path / "dpo")  # fmt: skip
        assert (dpo.backend, dpo.kind, dpo.base_model) == (backend.name, "dpo", self.model)
        examples = [ChatExample(id=f"e{i}", messages=[{"role": "user", "content": f"Who {i}?"},
                                                      {"role": "assistant", "content": "Me."}])
                    for i in range(4)]  # fmt: skip
        config = SFTConfig(
            batch_size=2,
            lora=self.lora,
            start="stack" if backend.capabilities.stack_sft else "continue",
        )
        sft = trainer.sft(student.at(dpo), examples, config, output_dir=tmp_path / "sft")
        assert (sft.backend, sft.kind) == (backend.name, "sft")
        for checkpoint in (dpo, sft):
            trained = student.at(checkpoint)
            assert trained.checkpoint == checkpoint
            assert len(collect(trained, [ask("trained", max_tokens=8)])) == 1

    def test_the_pipeline_trains_it_as_the_student(self, backend: Backend, tmp_path: Path) -> None:
        """Every stage through SFT, with this backend as the student and trainer."""
        if self.pipeline_options is None:
            pytest.skip("set pipeline_options to run the whole pipeline on the backend")
        if backend.name not in available_backends():
            pytest.skip(f"{backend.name!r} is not registered, so a run cannot name it")
        until = "sft" if backend.capabilities.training else "distill"
        run_dir = smoke_pipeline(tmp_path / "run", backend=backend.name, student=self.model,
                                 options=self.pipeline_options, until=until,
                                 **self.pipeline_settings)  # fmt: skip
        assert (run_dir / "distill.jsonl").stat().st_size > 0
        if until == "sft":
            assert (run_dir / "sft_data.jsonl").stat().st_size > 0


__all__ = ["BackendContract", "ask", "collect", "smoke_pipeline"]
