"""JSONL files survive kills: torn last lines are dropped, damage elsewhere is an error."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from opencharacter.errors import DataError
from opencharacter.jsonl import JsonlWriter, read_jsonl


def test_rows_round_trip_in_order(tmp_path):
    """Appended rows read back identical and in order, unicode included."""
    path = tmp_path / "rows.jsonl"
    rows = [{"id": str(i), "text": f"héllo {i} 日本"} for i in range(5)]
    with JsonlWriter(path) as writer:
        for row in rows:
            writer.append(row)
    assert list(read_jsonl(path)) == rows


def test_missing_file_reads_as_empty(tmp_path):
    """Reading a file that does not exist yet yields nothing (a stage that has not started)."""
    assert list(read_jsonl(tmp_path / "absent.jsonl")) == []


def test_torn_last_line_is_ignored_then_removed_before_appending(tmp_path):
    """A half-written last line is skipped by readers and cut off by the next writer."""
    path = tmp_path / "rows.jsonl"
    path.write_text('{"id": "a"}\n{"id": "b"}\n{"id": "c", "te', encoding="utf-8")
    assert [r["id"] for r in read_jsonl(path)] == ["a", "b"]
    with JsonlWriter(path) as writer:
        writer.append({"id": "c"})
    assert [r["id"] for r in read_jsonl(path)] == ["a", "b", "c"]


def test_unterminated_but_parseable_last_line_is_not_counted(tmp_path):
    """A complete-looking last row without its newline is torn too, so no row is half-kept."""
    path = tmp_path / "rows.jsonl"
    path.write_text('{"id": "a"}\n{"id": "b"}', encoding="utf-8")
    assert [r["id"] for r in read_jsonl(path)] == ["a"]


def test_corrupt_line_in_the_middle_names_file_and_line(tmp_path):
    """Damage before the last line is an error naming the file and the line number."""
    path = tmp_path / "rows.jsonl"
    path.write_text('{"id": "a"}\nnot json\n{"id": "c"}\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"rows\.jsonl:2: corrupt row"):
        list(read_jsonl(path))


def test_non_object_rows_are_refused(tmp_path):
    """Each line must be a JSON object; a list or number is reported with its line."""
    path = tmp_path / "rows.jsonl"
    path.write_text('{"id": "a"}\n[1, 2]\n', encoding="utf-8")
    with pytest.raises(DataError, match=":2: expected a JSON object"):
        list(read_jsonl(path))


def test_transform_applies_to_every_line(tmp_path):
    """The writer's transform (secret redaction) sees each serialised line."""
    path = tmp_path / "rows.jsonl"
    with JsonlWriter(path, transform=lambda line: line.replace("secret", "***")) as writer:
        writer.append({"text": "a secret"})
    assert next(read_jsonl(path)) == {"text": "a ***"}


WRITER = """
import sys
from opencharacter.jsonl import JsonlWriter, read_jsonl
next_id = sum(1 for _ in read_jsonl(sys.argv[1]))
writer = JsonlWriter(sys.argv[1], fsync_interval=0.05)
while True:
    writer.append({"id": next_id, "payload": "x" * 2000})
    next_id += 1
"""


def test_kill_9_mid_write_loses_nothing_written_and_repeats_nothing(tmp_path):
    """Writers killed with SIGKILL at several moments leave rows 0..n-1, each exactly once."""
    path = tmp_path / "rows.jsonl"
    for delay in (0.05, 0.13, 0.21, 0.34):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)])
        time.sleep(0.5 + delay)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    ids = [row["id"] for row in read_jsonl(path)]
    assert len(ids) > 4
    assert ids == list(range(len(ids)))
