"""The fidelity benchmark runs end to end: train the tiny student, probe it, print the table."""

from __future__ import annotations

import math

import pytest


@pytest.mark.slow  # about 30 s on two CPU cores (a real DPO and SFT); `nox -s slow` runs it
def test_quick_run_trains_probes_and_prints_every_model(load_benchmark, capsys):
    """Each model gets an in-persona probability; the student models a likelihood margin."""
    results = load_benchmark("bench_fidelity").main(["--quick"])
    out = capsys.readouterr().out
    assert "66 DPO pairs x 1 epochs" in out
    for name in ("base student", "after DPO", "after DPO + SFT", "teacher (the persona)"):
        assert f"   {name} " in out
        assert 0.0 <= results[name]["persona"] <= 1.0
    assert results["teacher (the persona)"]["persona"] > 0.9  # the classifier knows the persona
    assert results["base student"]["persona"] < 0.5
    assert all(math.isfinite(results[name]["margin"]) for name in ("base student", "after DPO"))
