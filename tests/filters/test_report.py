"""The quality report counts kept, dropped and cleaned rows by reason."""

from __future__ import annotations

import json

from opencharacter.filters import QualityReport, dpo_chains, filter_rows
from opencharacter.types import PreferencePair

ANSWER = "Arr, the tide waits for no one, matey. Set sail at dawn and mind the reef."
PLAIN = "The tide turns roughly every six hours, so plan to leave at high water."
PROMPT = [{"role": "user", "content": "When should I set sail?"}]

ROWS = [
    (ANSWER, PLAIN),  # kept
    ("<think>voice</think>" + ANSWER, PLAIN),  # kept, cleaned
    ("", ""),  # dropped: empty on both sides
    (ANSWER, "The tide turns roughly every"),  # dropped: rejected truncated
    ("ha" * 100 + ".", PLAIN),  # dropped: chosen loops
]


def _report() -> QualityReport:
    rows = (
        PreferencePair(id=f"r{i}", prompt=PROMPT, chosen=c, rejected=r).to_row()
        for i, (c, r) in enumerate(ROWS)
    )
    report = QualityReport()
    for result in filter_rows(rows, dpo_chains()):
        report.add(result)
    return report


def test_report_counts_rows_by_outcome_and_reason():
    """Rows are counted once as kept or dropped, with drops by reason and by side."""
    data = _report().to_dict()
    assert data["rows"] == 5
    assert data["kept"] == 2
    assert data["dropped"] == 3
    assert data["cleaned"] == 1
    assert data["kept_share"] == 0.4
    assert data["dropped_by_reason"] == {
        "empty": 1,
        "no-final-punctuation": 1,
        "repetition-chars": 1,
    }
    assert data["dropped_by_side"] == {
        "chosen": {"empty": 1, "repetition-chars": 1},
        "rejected": {"empty": 1, "no-final-punctuation": 1},
    }
    assert data["cleaned_by_reason"] == {"reasoning-leak": 1}


def test_report_is_json_ready():
    """The report's dictionary serialises to JSON unchanged."""
    data = _report().to_dict()
    assert json.loads(json.dumps(data)) == data


def test_report_summary_is_one_readable_line():
    """The summary states the kept share, then drops and cleanings by reason."""
    assert _report().summary() == (
        "kept 2 of 5 rows (40.0%); dropped 3: empty 1, no-final-punctuation 1, "
        "repetition-chars 1; cleaned 1 kept rows: reasoning-leak 1"
    )


def test_reports_merge_by_adding_counts():
    """Merging two reports counts the rows of both."""
    merged = _report().merge(_report())
    assert merged.total == 10
    assert merged.to_dict()["dropped_by_side"]["chosen"] == {"empty": 2, "repetition-chars": 2}


def test_empty_report_has_zero_share():
    """A report with no rows has a kept share of zero and a plain summary."""
    report = QualityReport()
    assert report.kept_share == 0.0
    assert report.summary() == "kept 0 of 0 rows (0.0%)"
