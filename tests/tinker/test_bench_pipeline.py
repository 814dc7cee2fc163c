"""The Tinker pipeline benchmark runs: a quick validation against the fake, then the projection.

The benchmark itself takes minutes; ``--quick`` runs the same code on a tiny configuration
with short injected times, so the benchmark cannot rot unnoticed.
"""

from __future__ import annotations

import pytest

from opencharacter.registry import get_backend_spec


@pytest.fixture(scope="module")
def bench(load_benchmark):
    return load_benchmark("bench_tinker_pipeline")


def test_quick_run_prints_the_validation_and_the_projection(bench, tiny_model_dir, capsys):
    """Every stage measured against its prediction, then the paper-scale time and cost."""
    timing = get_backend_spec("tinker").timing
    bench.main(["--quick", "--latency", "0.2", "--cycle", "0.2"], tiny=tiny_model_dir)
    out = capsys.readouterr().out
    assert "1. validation" in out
    table = out[out.index("1. validation") : out.index("2. projection")]
    for stage in ("distill", "dpo", "introspect", "sft", "total"):
        assert f"   {stage} " in table, table
    assert "2. projection" in out
    assert "Qwen/Qwen3.5-397B-A17B" in out
    assert "target under 1 h: " in out
    assert "seed report 004" in out
    assert get_backend_spec("tinker").timing is timing  # the fake's timing was unregistered


def test_the_fake_timing_changes_only_what_the_estimate_times(bench):
    """The patched estimate keeps the counts and costs, and the registry is restored."""
    config, _ = bench.resolve_config(
        flags={"constitution": "sarcasm", "backend": "tinker", "scale": "paper"}, environ={}
    )
    real = bench.predict(config)
    fake = bench.predict(config, bench.fake_timing(1.0, 1.0))
    assert [(r.stage, r.requests, r.cost) for r in real] == [
        (r.stage, r.requests, r.cost) for r in fake
    ]
    assert sum(r.seconds for r in fake) < sum(r.seconds for r in real)
    assert bench.predict(config) == real
