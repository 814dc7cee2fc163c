"""Checked by mypy, never run: the simulated backend satisfies every protocol statically.

A backend author copies this pattern to prove their classes match the protocols.
"""

from __future__ import annotations

from pathlib import Path

from opencharacter import (
    Backend,
    DPOConfig,
    GenerationRequest,
    PreferencePair,
    Student,
    Teacher,
    Trainer,
    load_backend,
)
from opencharacter.simulated._backend import SimulatedBackend, SimulatedSampler, SimulatedTrainer

backend: Backend = SimulatedBackend(seed=1)
teacher: Teacher = SimulatedSampler(SimulatedBackend(), "teacher")
student: Student = SimulatedSampler(SimulatedBackend(), "student")
trainer: Trainer = SimulatedTrainer(SimulatedBackend())
loaded: Backend = load_backend("simulated", {"latency_ms": "5"})


async def documented_usage(pairs: list[PreferencePair], request: GenerationRequest) -> str:
    """The README's tour, typed: sample, train, sample the trained student."""
    texts = [c.text async for c in teacher.generate([request])]
    checkpoint = trainer.dpo(student, pairs, DPOConfig(), output_dir=Path("runs/x/dpo"))
    tuned = student.at(checkpoint)
    return texts[0] + tuned.model
