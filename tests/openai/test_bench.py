"""The window benchmark runs: both sides against a fake server in a child process."""

from __future__ import annotations


def test_quick_run_prints_both_sides_against_the_ideal(load_benchmark, capsys):
    results = load_benchmark("bench_openai").main(["--quick", "--latency", "0.05"])
    out = capsys.readouterr().out
    for side in ("ideal", "ours", "plain"):
        assert f"   {side} " in out
    assert results["ideal"] == 4 * 0.05  # 64 requests, a window of 16: four rounds
    assert results["ours"] >= results["ideal"]
    assert results["plain"] >= results["ideal"]
