"""``opencharacter filter``: run a stage's filter chain over a JSONL file of DPO or SFT rows."""

from __future__ import annotations

from contextlib import closing
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.markup import escape

from opencharacter.filters import Chains, FilterChain, QualityReport, dpo_chains, filter_rows
from opencharacter.filters.drift import drift_report, learn_markers
from opencharacter.jsonl import JsonlWriter, read_jsonl

console = Console(highlight=False, soft_wrap=True)


def _chains(stage: str, teacher_names: tuple[str, ...], student_name: str | None) -> Chains:
    if stage == "distill":
        return dpo_chains(teacher_names=teacher_names, student_name=student_name)
    return FilterChain.for_stage(stage, teacher_names=teacher_names, student_name=student_name)


def _answers(row: Any, side: str) -> list[str]:
    """Return the assistant texts of a row: one side of a DPO row, or an SFT row's turns."""
    if "messages" in row:
        return [m["content"] for m in row["messages"] if m.get("role") == "assistant"]
    return [m["content"] for m in row.get(side, [])]


@click.command("filter")
@click.argument("source", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Where kept rows go (cleaned texts written back).",
)
@click.option(
    "--rejected",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where dropped rows go, each with its reasons.",
)
@click.option(
    "--stage",
    type=click.Choice(["distill", "reflection", "interaction"]),
    default="distill",
    show_default=True,
    help="Which stage's chain: distill for DPO rows, the others for SFT rows.",
)
@click.option(
    "--teacher-name",
    "teacher_names",
    multiple=True,
    help="A name the teacher was given, replaced by --student-name (repeatable).",
)
@click.option(
    "--student-name",
    help="The trained model's name: it replaces teacher names, and is no identity leak.",
)
@click.option(
    "--report", is_flag=True, help="Also print drops by side and drift metrics of the kept answers."
)
def filter_(
    *,
    source: Path,
    out: Path,
    rejected: Path | None,
    stage: str,
    teacher_names: tuple[str, ...],
    student_name: str | None,
    report: bool,
) -> None:
    """Filter SOURCE's rows; rows keep their ids, dropped rows carry their reasons.

    Rows stream through one at a time, so memory stays flat however large the file (except
    with --report, which keeps the kept answers to measure drift). --out and --rejected are
    written afresh.
    """
    for target in (out, rejected):
        if target is not None and target.resolve() == source.resolve():
            msg = f"{target} is SOURCE itself; write the filtered rows to another file"
            raise click.BadParameter(msg)
        if target is not None:
            target.unlink(missing_ok=True)
    quality = QualityReport()
    chosen: list[str] = []
    other: list[str] = []
    # closing(): a bad row raises mid-file, and the reader's file must close then, not at GC
    with (
        JsonlWriter(out, fsync_interval=5.0) as kept_file,
        closing(read_jsonl(source, user_file=True)) as rows,
    ):
        dropped_file = JsonlWriter(rejected, fsync_interval=5.0) if rejected else None
        try:
            for result in filter_rows(rows, _chains(stage, teacher_names, student_name)):
                quality.add(result)
                if result.keep:
                    kept_file.append(result.row)
                    if report:
                        chosen += _answers(result.row, "chosen")
                        other += _answers(result.row, "rejected")
                elif dropped_file is not None:
                    summary = result.to_dict()
                    dropped_file.append({**result.row, "reasons": summary["reasons"]})
        finally:
            if dropped_file is not None:
                dropped_file.close()
    console.print(f"{source}: {quality.summary()}")
    if report:
        _print_report(quality, chosen, other)


def _print_report(quality: QualityReport, answers: list[str], contrast: list[str]) -> None:
    """Print drops by side, then the drift metrics of the kept answers."""
    for side, counts in quality.to_dict()["dropped_by_side"].items():
        console.print(f"  dropped on {side}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    learned = learn_markers(answers, contrast, top_k=20) if contrast else []
    markers = [m for m, _ in learned] or None
    drift = drift_report(answers, markers=markers)
    openers = ", ".join(f"{o!r} {n}" for o, n in drift.openers.top[:3])
    console.print(f"  opener concentration {drift.openers.top_share:.2f} (top: {openers})")
    lengths = drift.lengths
    console.print(
        f"  answer length in characters: p10 {lengths.p10:.0f}, median {lengths.median:.0f}, "
        f"p90 {lengths.p90:.0f}, max {lengths.max}"
    )
    if markers and drift.balance is not None:
        balance = drift.balance
        console.print(
            f"  persona markers (learned: {', '.join(markers[:5])}...): "
            f"{balance.first_density:.2f} per 1,000 characters at the start of long answers, "
            f"{balance.last_density:.2f} at the end"
        )
    for warning in drift.warnings:
        console.print(f"[yellow]warning:[/yellow] {escape(warning)}")
