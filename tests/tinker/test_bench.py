"""benchmarks/bench_tinker.py runs: a quick pass of both sides against the fake service."""

from __future__ import annotations

import math


def test_the_tinker_benchmark_runs_both_sides_alike(load_benchmark, tiny_model_dir, capsys):
    """--quick: both sides train the same steps with the same requests, and print a ratio."""
    bench = load_benchmark("bench_tinker")
    results = bench.main(["--quick", "--model-dir", str(tiny_model_dir)])
    assert set(results) == {"latency", "cycle"}
    for ours, naive in results.values():
        assert ours.steps == naive.steps == 2
        assert ours.calls == naive.calls
        assert ours.calls["compute_logprobs"] == 16  # 8 pairs x (chosen, rejected), once
        assert ours.calls["forward_backward"] == ours.calls["optim_step"] == 2
        for side in (ours, naive):
            assert math.isclose(side.first["dpo_loss"], math.log(2), abs_tol=1e-4)
        assert ours.waits < naive.waits  # the pipelining; times vary with the machine
    out = capsys.readouterr().out
    assert out.count("ours / naive = ") == 2
