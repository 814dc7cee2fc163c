"""Filter your own JSONL with the library's data-quality filters: no pipeline, no backend.

Run it (rows stream through one at a time, so any size of file works):

    python examples/filter_my_jsonl.py my_data.jsonl --out-dir filtered

Each line is a preference row in TRL's format (``prompt``/``chosen``/``rejected``, as message
lists or plain strings) or a plain ``{"prompt", "response"}`` row; a row without an ``id`` is
named by its line number. Preference rows go through the distillation chains (the chosen side
is checked for identity leaks and disclosure, the rejected side is not), plain rows through
the reflection chain. The script writes ``kept.jsonl`` (TRL's conversational rows, cleaned
texts written back), ``dropped.jsonl`` (each row with its reasons by place) and
``report.json``, and prints the drops by reason.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from opencharacter.console import exit_code_of
from opencharacter.errors import DataError
from opencharacter.filters import FilterChain, QualityReport, dpo_chains, filter_rows


def messages(value: str | list[dict[str, str]], role: str) -> list[dict[str, str]]:
    """Return a TRL field as a message list: a plain string is one message of ``role``."""
    return [{"role": role, "content": value}] if isinstance(value, str) else value


def library_row(row: dict[str, Any], line: int) -> dict[str, Any]:
    """Return a row in the conversational form the filters read, with a string id."""
    row = {**row, "id": str(row.get("id") or f"line-{line}")}
    if "response" in row:  # a plain row: one exchange, filtered as an SFT conversation
        prompt, response = row.pop("prompt", []), row.pop("response")
        row["messages"] = [*messages(prompt, "user"), *messages(response, "assistant")]
        return row
    for side, role in (("prompt", "user"), ("chosen", "assistant"), ("rejected", "assistant")):
        if side in row:
            row[side] = messages(row[side], role)
    return row


def read_rows(path: Path) -> Iterator[dict[str, Any]]:
    """Yield the file's rows, each in the filters' form, named by line number if unnamed.

    Read line by line here, since ``opencharacter.jsonl.read_jsonl`` does not say where each
    row came from.
    """
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                row = None
            if not isinstance(row, dict):
                msg = f"{path}:{number}: expected a JSON object on each line"
                raise DataError(msg)
            yield library_row(row, number)


def main() -> None:
    """Filter the file, write kept and dropped rows and the counts, and print the report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="a JSONL file of preference or plain rows")
    parser.add_argument("--out-dir", type=Path, default=Path("filtered"))
    parser.add_argument("--student-name", help="the trained model's name: never an identity leak")
    args = parser.parse_args()

    # A chain for each place a text sits; each row takes those of its shape.
    name = args.student_name
    chains = {**dpo_chains(student_name=name),
              "messages": FilterChain.for_stage("reflection", student_name=name)}  # fmt: skip
    report = QualityReport()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    # Plain files, rewritten on each run: the library's JsonlWriter appends (run files resume).
    with (
        (args.out_dir / "kept.jsonl").open("w", encoding="utf-8") as kept,
        (args.out_dir / "dropped.jsonl").open("w", encoding="utf-8") as dropped,
    ):
        for result in filter_rows(read_rows(args.source), chains):
            report.add(result)
            if result.keep:
                kept.write(json.dumps(result.row, ensure_ascii=False) + "\n")
            else:
                row = {**result.row, "reasons": result.to_dict()["reasons"]}
                dropped.write(json.dumps(row, ensure_ascii=False) + "\n")
    counts = report.to_dict()
    (args.out_dir / "report.json").write_text(json.dumps(counts, indent=2) + "\n")

    print(f"{args.source}: {report.summary()}")
    for reason, count in counts["dropped_by_reason"].items():
        print(f"  {reason:<22} {count:>6}")
    print(f"kept and dropped rows, and report.json, in {args.out_dir}")


if __name__ == "__main__":
    sys.exit(exit_code_of(main))
