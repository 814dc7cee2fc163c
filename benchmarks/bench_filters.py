"""Throughput and memory of the default filter chains on synthetic DPO rows.

Run it from the repository root::

    python benchmarks/bench_filters.py              # 10,000 rows
    python benchmarks/bench_filters.py --rows 50000

It builds deterministic synthetic answers of about 3,000 characters (prose, markdown lists,
looping answers, answers with a leaked ``<think>`` block; curly quotes and dashes included),
wraps them lazily into DPO rows (a generator: nothing is kept in memory), and streams them
through :func:`opencharacter.filters.filter_rows` with the default chains: ``distill-chosen``
on the chosen side and ``distill-rejected`` on the rejected side, feeding a
:class:`~opencharacter.filters.QualityReport` as a real run would. The process is pinned to one
CPU where the platform allows it.

It prints rows per second, the ratio against one bare ``str.split()`` pass over the same rows
(the cheapest thing any filter could do with the text), and memory: the growth of peak RSS
during the timed run, and the tracemalloc peak of streaming M and 2M rows, which is flat when
the filters keep nothing per row.
"""

from __future__ import annotations

import argparse
import functools
import os
import random
import resource
import sys
import time
import tracemalloc
from collections.abc import Iterator
from typing import Any

from opencharacter.filters import QualityReport, dpo_chains, filter_rows

# Sentences are assembled from interchangeable parts, so prose rarely repeats four words in a
# row across sentences, as real prose does not.
OPENERS = (
    "In practice,",
    "Honestly,",
    "For most people,",
    "As a rule,",
    "In my experience,",
    "On balance,",
    "Surprisingly,",
    "Over time,",
    "If you can,",
    "Before anything else,",
    "Once you start,",
    "Day to day,",
    "Put simply,",
    "More often than not,",
    "At first,",
)
SUBJECTS = (
    "the tide",
    "a sourdough starter",
    "your budget",
    "a houseplant",
    "the debugger",
    "a Roman aqueduct",
    "a chess opening",
    "good sleep",
    "the cover letter",
    "a honeybee",
    "compound interest",
    "the slide deck",
    "a rain garden",
    "the night train",
    "a jazz solo",
    "an old map",
    "green tea",
    "a unit test",
    "the garden hose",
    "a cast-iron pan",
)
VERBS = (
    "rewards",
    "depends on",
    "punishes",
    "quietly shapes",
    "needs",
    "outlasts",
    "reveals",
    "responds to",
    "changes with",
    "benefits from",
    "suffers without",
    "magnifies",
)
OBJECTS = (
    "patience more than skill",
    "small habits kept daily",
    "careful measurement",
    "a little neglect",
    "the first ten minutes",
    "honest record-keeping",
    "cold mornings",
    "a clear plan",
    "steady practice",
    "good questions",
    "the right temperature",
    "an early start",
    "what you leave out",
    "the boring fundamentals",
    "a second opinion",
)
TAILS = (
    "and that is easy to forget.",
    "\u2014 which most guides skip.",
    "more than you think.",
    "so start there.",
    "and the rest follows.",
    "even on bad days.",
    "within a few weeks.",
    "if you let it.",
    "whatever the season.",
    "in ways that add up.",
    "and it shows.",
    "which is why it\u2019s worth the effort.",
    "long before anyone notices.",
)


def sentence(rng: random.Random) -> str:
    """Return one sentence from random parts."""
    parts = (OPENERS, SUBJECTS, VERBS, OBJECTS, TAILS)
    return " ".join(rng.choice(p) for p in parts)


LIST_ITEMS = (
    "**Start small:** pick one habit and keep it for two weeks before adding another.",
    "**Measure:** write the number down every day; what gets measured gets managed.",
    "**Plan for bad days:** decide in advance what the minimum version looks like.",
    "**Tell someone:** a friend who asks about it is worth more than any app.",
    "**Review weekly:** ten minutes on Sunday to see what worked and what did not.",
    "**Be kind to yourself:** missing one day is normal; missing two is a pattern.",
)
LOOP = "I hope this helps, and I hope you understand. "
TARGET = 3000


def _paragraph(rng: random.Random) -> str:
    return " ".join(sentence(rng) for _ in range(rng.randint(3, 6)))


@functools.cache
def _pool() -> tuple[str, ...]:
    """Return 1,024 fixed paragraphs; answers draw from them, so generating rows is cheap."""
    rng = random.Random(1234)
    return tuple(_paragraph(rng) for _ in range(1024))


def _prose(rng: random.Random, size: int) -> str:
    pool = _pool()
    paragraphs: list[str] = []
    total = 0
    while total < size:
        paragraph = pool[rng.randrange(len(pool))]
        paragraphs.append(paragraph)
        total += len(paragraph) + 2
    return "\n\n".join(paragraphs)


def _listing(rng: random.Random) -> str:
    parts = ["Here is a plan that works for most people:"]
    while sum(len(p) for p in parts) < TARGET - 300:
        items = rng.sample(LIST_ITEMS, k=4)
        parts.append("\n".join(f"- {item}" for item in items))
        parts.append(_prose(rng, 200))
    parts.append("Stick with it for a month and you will see the difference.")
    return "\n\n".join(parts)


def answer(rng: random.Random) -> str:
    """Return one synthetic answer of about 3,000 characters, of a randomly drawn kind."""
    kind = rng.random()
    if kind < 0.6:
        return _prose(rng, TARGET)
    if kind < 0.8:
        return _listing(rng)
    if kind < 0.9:  # an answer that starts well and then loops
        return _prose(rng, TARGET // 3) + " " + LOOP * ((2 * TARGET // 3) // len(LOOP))
    reasoning = "Okay, the user wants practical advice. Keep it warm and concrete. " * 6
    return f"<think>{reasoning}</think>\n\n{_prose(rng, TARGET - len(reasoning))}"


def rows(count: int, seed: int = 0) -> Iterator[dict[str, Any]]:
    """Yield ``count`` DPO rows lazily; the first rows are the same whatever ``count`` is."""
    rng = random.Random(seed)
    prompt = [{"role": "user", "content": "Can you give me some advice?"}]
    for i in range(count):
        yield {
            "id": f"bench-{i}",
            "prompt": prompt,
            "chosen": [{"role": "assistant", "content": answer(rng)}],
            "rejected": [{"role": "assistant", "content": answer(rng)}],
        }


def _split_pass(count: int) -> int:
    words = 0
    for row in rows(count):
        words += len(row["chosen"][0]["content"].split())
        words += len(row["rejected"][0]["content"].split())
    return words


def _filter_pass(count: int) -> QualityReport:
    report = QualityReport()
    for result in filter_rows(rows(count), dpo_chains()):
        report.add(result)
    return report


def _timed(fn: Any, *args: Any) -> tuple[float, Any]:
    start = time.perf_counter()
    value = fn(*args)
    return time.perf_counter() - start, value


def _traced_peak(count: int) -> int:
    tracemalloc.start()
    try:
        _filter_pass(count)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _max_rss_kib() -> int:
    # ru_maxrss is in KiB on Linux and in bytes on macOS.
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak // 1024 if sys.platform == "darwin" else peak


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000, help="rows to filter (10,000)")
    parser.add_argument(
        "--memory-rows", type=int, default=2_000, help="M for the tracemalloc M/2M check (2,000)"
    )
    args = parser.parse_args(argv)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
        print(f"pinned to CPU {min(os.sched_getaffinity(0))}")

    sample = [r["chosen"][0]["content"] for r in rows(200)]
    print(f"python {sys.version.split()[0]}; mean answer {sum(map(len, sample)) / 200:,.0f} chars")

    generate, _ = _timed(lambda n: sum(1 for _ in rows(n)), args.rows)
    split, _ = _timed(_split_pass, args.rows)
    rss_before = _max_rss_kib()
    filtered, report = _timed(_filter_pass, args.rows)
    rss_growth = _max_rss_kib() - rss_before

    n = args.rows
    print(f"rows: {n:,} DPO rows ({2 * n:,} answers), generated lazily in {generate:.2f} s")
    print(
        f"filter_rows, distill-chosen + distill-rejected: {filtered:.2f} s -> "
        f"{n / filtered:,.0f} rows/s ({2 * n / filtered:,.0f} answers/s)"
    )
    net_filter, net_split = filtered - generate, split - generate
    print(
        f"bare str.split() pass over the same rows: {split:.2f} s; ratio {filtered / split:.1f}x "
        f"({net_filter / net_split:.1f}x without row generation)"
    )
    print(f"quality: {report.summary()}")
    print(f"peak RSS growth during the filtering run: {rss_growth / 1024:.1f} MiB")
    m = args.memory_rows
    small, large = _traced_peak(m), _traced_peak(2 * m)
    print(
        f"tracemalloc peak: {m:,} rows {small / 2**20:.2f} MiB, {2 * m:,} rows "
        f"{large / 2**20:.2f} MiB (flat: nothing is kept per row)"
    )


if __name__ == "__main__":
    main()
