"""How much the run store costs per row, against a bare ``json.dumps`` + ``write`` loop.

Run: python benchmarks/bench_runstore.py [--rows 20000]

Stages append every completion the moment it arrives (flush each row, fsync at a bounded
interval, secret redaction on every line). This measures that per-row cost, in the same run,
against the plain loop it wraps, and against the 0.5 ms per-generation budget the stages
have for all their bookkeeping.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from opencharacter import RunDir

BUDGET_SECONDS = 0.5e-3


def make_row(i: int) -> dict[str, object]:
    """Return a DPO row of realistic size (two answers of about 3,000 characters)."""
    answer = ("The quick brown fox considers the lazy dog with measured irony. " * 48)[:3000]
    return {
        "id": f"row-{i}",
        "prompt": [{"role": "user", "content": f"Question number {i} about something?"}],
        "chosen": [{"role": "assistant", "content": answer}],
        "rejected": [{"role": "assistant", "content": answer[::-1]}],
        "trait": i % 10,
    }


def bare(path: Path, rows: int) -> float:
    """Time the plain loop: dumps and write, one flush at the end."""
    started = time.perf_counter()
    with path.open("w", encoding="utf-8") as handle:
        for i in range(rows):
            handle.write(json.dumps(make_row(i), ensure_ascii=False) + "\n")
    return time.perf_counter() - started


def run_store(folder: Path, rows: int) -> float:
    """Time RunDir.append: flushed, fsynced at intervals, redacted, locked run."""
    started = time.perf_counter()
    with RunDir.open(folder) as run:
        for i in range(rows):
            run.append("distill", make_row(i))
    return time.perf_counter() - started


def main() -> None:
    """Measure both loops on the same rows and print the ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    rows = parser.parse_args().rows
    with tempfile.TemporaryDirectory() as tmp:
        base = bare(Path(tmp) / "bare.jsonl", rows)
        ours = run_store(Path(tmp) / "run", rows)
    per_row = ours / rows
    print(f"rows: {rows}")
    print(f"bare json.dumps + write: {rows / base:,.0f} rows/s")
    print(f"RunDir.append:           {rows / ours:,.0f} rows/s")
    print(f"ratio RunDir / bare time: {ours / base:.2f}x")
    print(f"per row: {per_row * 1e3:.3f} ms = {per_row / BUDGET_SECONDS:.2f} of the 0.5 ms budget")


if __name__ == "__main__":
    main()
