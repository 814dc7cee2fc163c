"""`opencharacter filter` streams rows through a stage's chain into kept and rejected files."""

from __future__ import annotations

import json

from click.testing import CliRunner

from opencharacter.cli import cli
from opencharacter.jsonl import read_jsonl

GOOD = "Tides follow the moon, and the moon keeps its own schedule, so check a tide table first."
PROMPT = [{"role": "user", "content": "When is high tide?"}]


def dpo(row_id, chosen, rejected=GOOD):
    return {
        "id": row_id,
        "prompt": PROMPT,
        "chosen": [{"role": "assistant", "content": chosen}],
        "rejected": [{"role": "assistant", "content": rejected}],
        "trait": 1,
    }


def write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def test_dpo_rows_are_kept_cleaned_or_rejected_with_reasons(tmp_path):
    """Good rows pass, leaks are cleaned, broken rows land in --rejected with their reasons."""
    source = tmp_path / "pairs.jsonl"
    write(
        source,
        [
            dpo("a", GOOD),
            dpo("b", "<think>Be wry.</think>" + GOOD.replace("Tides", "I'm ChatGLM. Tides")),
            dpo("c", ""),
            dpo("d", GOOD, rejected="333," * 200 + "333."),
        ],
    )
    kept, rejected = tmp_path / "kept.jsonl", tmp_path / "rejected.jsonl"
    result = CliRunner().invoke(
        cli,
        [
            "filter",
            str(source),
            "--out",
            str(kept),
            "--rejected",
            str(rejected),
            "--teacher-name",
            "ChatGLM",
            "--student-name",
            "Qwen",
            "--report",
        ],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    assert "kept 2 of 4 rows" in result.output
    kept_rows = {r["id"]: r for r in read_jsonl(kept)}
    assert list(kept_rows) == ["a", "b"]
    assert kept_rows["b"]["chosen"][0]["content"].startswith("I'm Qwen. Tides")
    assert kept_rows["b"]["trait"] == 1
    reasons = {r["id"]: r["reasons"] for r in read_jsonl(rejected)}
    assert reasons["c"] == {"chosen": ["empty"]}
    assert "rejected" in reasons["d"]
    assert any(code.startswith("repetition") for code in reasons["d"]["rejected"])


def test_sft_rows_check_every_assistant_turn(tmp_path):
    """For reflection rows each assistant turn is checked and the row keeps its id."""
    source = tmp_path / "sft.jsonl"
    turns = [*PROMPT, {"role": "assistant", "content": GOOD}]
    write(
        source,
        [
            {"id": "r1", "messages": turns},
            {
                "id": "r2",
                "messages": [
                    *turns,
                    {"role": "user", "content": "And?"},
                    {"role": "assistant", "content": "\ufffd\ufffd\ufffd garbage"},
                ],
            },
        ],
    )
    kept = tmp_path / "kept.jsonl"
    result = CliRunner().invoke(
        cli, ["filter", str(source), "--out", str(kept), "--stage", "reflection"]
    )
    assert result.exit_code == 0, result.output
    assert [r["id"] for r in read_jsonl(kept)] == ["r1"]
    assert "kept 1 of 2 rows" in result.output


def test_a_malformed_row_is_a_user_error(tmp_path):
    """A row without an id stops the command with a message naming the problem."""
    source = tmp_path / "bad.jsonl"
    write(source, [{"prompt": PROMPT, "chosen": [], "rejected": []}])
    result = CliRunner().invoke(cli, ["filter", str(source), "--out", str(tmp_path / "k.jsonl")])
    assert result.exit_code != 0
    assert "id" in str(result.exception)


def test_a_hand_made_file_keeps_its_last_row_and_outputs_are_written_afresh(tmp_path):
    """A last line without its newline is a row, and running twice gives the same files."""
    source = tmp_path / "pairs.jsonl"
    source.write_text(json.dumps(dpo("a", GOOD)) + "\n" + json.dumps(dpo("b", GOOD)))
    kept = tmp_path / "kept.jsonl"
    for _ in range(2):
        result = CliRunner().invoke(cli, ["filter", str(source), "--out", str(kept)])
        assert result.exit_code == 0, result.output
        assert "kept 2 of 2 rows" in result.output
    assert [r["id"] for r in read_jsonl(kept)] == ["a", "b"]
    same = CliRunner().invoke(cli, ["filter", str(source), "--out", str(source)])
    assert same.exit_code == 2
    assert "is SOURCE itself" in same.output
    assert len(source.read_text().splitlines()) == 2
