"""The HTML report: every section, figures inline, nothing remote, untrusted text escaped."""

from __future__ import annotations

import base64
import json
import os
import random
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from opencharacter.cli import cli, main
from opencharacter.errors import ConfigError
from opencharacter.eval import plots
from opencharacter.eval.report import SECTIONS, render_report, write_report
from opencharacter.filters import QualityReport
from opencharacter.runstore import RunDir, read_manifest

SECTION_IDS = [sid for sid, _, _ in SECTIONS]
EVAL_KEYS = ("preferences", "robustness", "two_by_two", "coherence", "drift", "capabilities",
             "examples")  # fmt: skip
EVAL_SECTION = dict(zip(EVAL_KEYS, SECTION_IDS[4:], strict=True))
# Sections with figures, and how many each draws from the fixture below.
FIGURES = {"training": 2, "preferences": 1, "robustness": 1, "two-by-two": 1, "coherence": 1,
           "drift": 2}  # fmt: skip
HOSTILE = '<script>alert("x")</script><img src="https://evil.example/t.png">'
TOP, BOTTOM = "wry", "earnest"


def _interval(rng: random.Random, point: float, spread: float) -> dict[str, float]:
    return {"point": point, "low": point - rng.uniform(1, spread), "high": point + spread}


def _tally(judgements: int, failures: int) -> dict[str, object]:
    rate = failures / judgements
    return {"judgements": judgements, "parse_failures": failures, "failure_rate": rate,
            "reasons": {"no answer tag": failures}}  # fmt: skip


def full_summary() -> dict[str, object]:
    """Return a summary with every section filled with plausible numbers (150 traits)."""
    rng = random.Random(0)
    traits = [f"trait{i:03d}" for i in range(148)] + [TOP, BOTTOM]
    points = {t: rng.uniform(-80, 80) for t in traits} | {TOP: 240.0, BOTTOM: -210.0}
    base = {t: _interval(rng, 1000 + rng.uniform(-200, 200), 30) for t in traits}
    trained = {t: _interval(rng, base[t]["point"] + points[t], 30) for t in traits}
    variants = ["none", *(f"v{i}" for i in range(8))]
    metric = {"macro_f1": 0.8, "accuracy": 0.82, "n": 40, "in_persona": 0.75}
    cell = {"mean": 6.1, "sem": 0.3, "n": 20}
    return {
        "settings": {"judge": {"backend": "simulated", "model": "judge-1"}, "prompts": "builtin",
                     "n_prompts": 40, "seed": 0,
                     "models": {"base": None, "dpo": "sim://dpo", "sft": "sim://sft"}},
        "preferences": {
            "judge": _tally(400, 3),
            "ratings": {"base": base, "trained": trained},
            "deltas": {t: _interval(rng, points[t], 40) for t in traits},
            "spearman": 0.41,
            "constitution_traits": {TOP: _interval(rng, 240.0, 40)},
        },
        "robustness": {
            "engine": "tfidf", "target": "sarcasm", "personas": ["sarcasm", "loving", "poetic"],
            "scores": {m: {v: dict(metric, macro_f1=rng.uniform(0.5, 1)) for v in variants}
                       for m in ("prompted", "dpo", "sft")},
            "summary": {m: {"macro_f1_mean": 0.8, "macro_f1_sem": 0.02, "accuracy_mean": 0.81,
                            "accuracy_sem": 0.02} for m in ("prompted", "dpo", "sft")},
        },
        "coherence": {"judge": _tally(48, 4) | {"pairs": 24, "inconsistent": 3,
                                                "inconsistency_rate": 0.125},  # 8.3%: flagged
                      "versus": {"prompted": {"win_rate": 0.7, "sem": 0.05, "wins": 14,
                                              "consistent": 20, "pairs": 24}}},
        "two_by_two": {"judge": _tally(80, 0),
                       "cells": {"base": {"plain": cell, "prompted": dict(cell, mean=7.2)},
                                 "trained": {"plain": dict(cell, mean=7.9),
                                             "prompted": dict(cell, mean=8.3)}}},
        "drift": {
            "openers": {"base-prompted": {"concentration": 0.4, "top": [["Ah,", 0.3]]},
                        "trained": {"concentration": 0.2, "top": [["Well", 0.1]]}},
            "position_balance": {"base-prompted": 0.45,  # a number, or a marker record
                                 "trained": {"answers": 20, "end_to_start": 0.62}},
            "warnings": {"trained": ["openers repeat <often>"]},
            "persistence": {m: [{"turn": t, "mean": 6.0 - d * t, "sem": 0.4, "n": 20}
                                for t in range(1, 6)]
                            for m, d in (("base-prompted", 0.5), ("trained", 0.1))},
        },
        "capabilities": {"arithmetic": {"metric": "accuracy", "base": 0.61, "trained": 0.60}},
        "examples": [{"prompt": "Tell me a joke.", "base": "Plain answer.", "trained": HOSTILE}],
    }  # fmt: skip


def _write_summary(run_dir: Path, summary: dict[str, object] | None) -> None:
    path = run_dir / "eval" / "summary.json"
    if summary is None:
        path.unlink(missing_ok=True)
        return
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(summary), encoding="utf-8")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real smoke-scale run on the simulated backend, plus a planted filter report."""
    path = tmp_path_factory.mktemp("report") / "run"
    args = ["pipeline", "sarcasm", "--backend", "simulated", "--scale", "smoke", "--seed", "7",
            "--until", "sft", "--run-dir", str(path)]  # fmt: skip
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    planted = QualityReport()
    planted.count(keep=False, reasons=[("chosen", "too_long"), ("rejected", "too_long")])
    planted.count(keep=False, reasons=[("chosen", "too_long")])
    planted.count(keep=True, cleaned=[("chosen", "reasoning")])
    quality = json.loads((path / "quality.json").read_text()) | {"planted": planted.to_dict()}
    (path / "quality.json").write_text(json.dumps(quality))
    return path


@pytest.fixture(scope="module")
def full_page(run_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The report of the run with every evaluation filled in, kept apart from later rewrites."""
    _write_summary(run_dir, full_summary())
    page = tmp_path_factory.mktemp("page") / "report.html"
    shutil.copy(write_report(run_dir), page)
    return page


@pytest.fixture
def full(full_page: Path) -> str:
    return full_page.read_text(encoding="utf-8")


def sections(page: str) -> dict[str, str]:
    """Return each section's HTML by id, in page order."""
    parts = re.split(r'<section id="([^"]+)">', page)[1:]
    return dict(zip(parts[0::2], parts[1::2], strict=True))


def test_every_section_is_there_in_order_with_its_figures(full: str) -> None:
    """Each section has its id and heading in order; each figure is an inline, decodable PNG."""
    found = sections(full)
    assert list(found) == SECTION_IDS
    for sid, title, _ in SECTIONS:
        assert f"<h2>{title}</h2>" in found[sid]
        assert "Not run" not in found[sid], sid
        images = re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"', found[sid])
        assert len(images) == FIGURES.get(sid, 0), sid
        assert all(base64.b64decode(i).startswith(b"\x89PNG\r\n\x1a\n") for i in images)
    assert full.count('href="#') == len(SECTIONS)  # the table of contents


def test_numbers_come_from_the_run(full: str, run_dir: Path) -> None:
    """Totals, planted drops, extreme traits and a flagged judge come through as written."""
    found = sections(full)
    stages = read_manifest(run_dir)["stages"].values()
    prompt_tokens = sum(s.get("usage", {}).get("prompt_tokens", 0) for s in stages)
    assert f"{prompt_tokens:,}" in found["stages"]
    assert re.search(r"<td>too_long</td><td class=\"num\">2</td><td>chosen 2, rejected 1</td>",
                     found["filters"])  # fmt: skip
    prefs = found["preferences"]
    assert prefs.index(f"<td>{TOP}</td>") < prefs.index(f"<td>{BOTTOM}</td>")
    assert "+240.0" in prefs
    assert "0.410" in prefs
    flagged = ('<p class="warn">Judge: 48 judgements, 4 unreadable (8.3%: no answer tag 4); '
               "3 of 24 pairs changed verdict with the order (12.5%).</p>")  # fmt: skip
    assert flagged in found["coherence"]
    assert "<p>Judge: 400 judgements, 3 unreadable (0.8%: no answer tag 3).</p>" in prefs
    drift = found["drift"]
    assert re.search(r"<td>base-prompted</td>.*?<td class=\"num\">0.450</td>", drift)
    assert re.search(r"<td>trained</td>.*?<td class=\"num\">0.620</td>", drift)  # end/start
    assert '<p class="warn">trained: openers repeat &lt;often&gt;</p>' in drift


def test_nothing_remote_no_script_and_model_text_escaped(full: str) -> None:
    """No src, href or url() leaves the file, and a model's markup arrives as inert text."""
    attributes = re.findall(r"""<[^<>]*?\b(?:src|href)\s*=\s*["']?([^"'\s>]*)""", full)
    urls = re.findall(r"""url\(\s*["']?([^"')\s]*)""", full)
    assert len(attributes) == len(SECTIONS) + sum(FIGURES.values())  # the contents and figures
    assert all(r.startswith(("#", "data:image/png;base64,")) for r in attributes + urls)
    assert not re.findall(r"<[^<>]*https?:", full)  # no tag names another place
    assert not re.search(r"<\s*(script|link|iframe|object)", full, re.IGNORECASE)
    assert html_escaped(HOSTILE) in sections(full)["examples"]


def html_escaped(text: str) -> str:
    return (
        text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
    )


@settings(max_examples=20)
@given(present=st.sets(st.sampled_from(EVAL_KEYS)))
def test_missing_sections_say_not_run(run_dir: Path, present: set[str]) -> None:
    """Exactly the evaluations absent from the summary say 'Not run', naming the summary."""
    summary = {k: v for k, v in full_summary().items() if k in present or k == "settings"}
    _write_summary(run_dir, summary)
    with pytest.MonkeyPatch.context() as mp:  # tables only: fast, and the no-matplotlib path
        mp.setattr(plots, "available", lambda: False)
        found = sections(render_report(run_dir))
    for key, sid in EVAL_SECTION.items():
        said = "Not run: no" in found[sid] and "eval/summary.json" in found[sid]
        assert said == (key not in present), sid


def test_without_a_summary_or_matplotlib_the_page_has_tables_and_says_what_to_install(
    run_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No eval/summary.json: every evaluation says not run; no matplotlib: a hint, no images."""
    _write_summary(run_dir, None)
    monkeypatch.setattr(plots, "available", lambda: False)
    found = sections(write_report(run_dir).read_text(encoding="utf-8"))
    assert all("add --until eval" in found[sid] for sid in EVAL_SECTION.values())
    assert plots.INSTALL_HINT.replace('"', "&quot;") in found["training"]
    assert "<img" not in "".join(found.values())
    assert "<table>" in found["training"]


def test_undefined_numbers_show_as_a_dash(run_dir: Path) -> None:
    """A statistic the evaluation could not compute (null) reads '—' and draws nothing."""
    summary = full_summary()
    summary["two_by_two"]["cells"]["base"]["plain"]["mean"] = None  # type: ignore[index]
    summary["drift"]["persistence"]["trained"][2]["mean"] = None  # type: ignore[index]
    summary["coherence"]["versus"]["prompted"]["sem"] = None  # type: ignore[index]
    kept = ("two_by_two", "drift", "coherence")
    _write_summary(run_dir, {k: v for k, v in summary.items() if k in kept})
    found = sections(render_report(run_dir))
    assert '<td class="num">— ± 0.30 (n 20)</td>' in found["two-by-two"]
    assert '<td class="num">—</td>' in found["coherence"]
    assert '<td class="num">— ± 0.40</td>' in found["drift"]
    assert all("<img " in found[sid] for sid in ("two-by-two", "drift", "coherence"))


def test_the_report_reads_a_run_another_process_holds(
    run_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run locked by its writer can still be reported on: the report takes no lock."""
    monkeypatch.setattr(plots, "available", lambda: False)  # tables suffice here
    with RunDir.open(run_dir, create=False):
        assert write_report(run_dir).exists()


def test_curve_panels_group_the_backends_metric_names() -> None:
    """The local, Tinker and simulated metric keys land in loss/accuracy/margin panels."""
    row = {"step": 1, "total_steps": 3, "loss": 0.6, "dpo_loss": 0.5, "nll": 1.2, "kl": 0.01,
           "accuracy": 0.6, "margin": 0.3, "chosen_reward": 0.2, "rejected_reward": -0.1,
           "lr": 5e-5, "grad_norm": 1.0, "loss:sum": 9.0, "train_tokens": 900}  # fmt: skip
    assert plots.curve_panels([row]) == {
        "loss": ["loss", "dpo_loss", "nll"],
        "accuracy": ["accuracy"],
        "margin": ["margin", "chosen_reward", "rejected_reward"],
    }


@given(points=st.dictionaries(st.text(min_size=1), st.floats(-1e3, 1e3), max_size=60))
def test_extremes_keep_the_largest_and_smallest_changes(points: dict[str, float]) -> None:
    """At most 20 traits, largest first, always including the extreme ones."""
    deltas = {t: {"point": p, "low": p - 1, "high": p + 1} for t, p in points.items()}
    shown = plots.extremes(deltas)
    assert len(shown) == min(len(points), 20)
    assert [deltas[t]["point"] for t in shown] == sorted(
        (deltas[t]["point"] for t in shown), reverse=True
    )
    if points:
        assert max(points.values()) == points[shown[0]]
        assert min(points.values()) == points[shown[-1]]


def test_cli_prints_the_path_and_refuses_a_folder_without_a_run(
    run_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`opencharacter report` prints the page's path; a missing or empty folder is named."""
    monkeypatch.setattr(plots, "available", lambda: False)
    result = CliRunner().invoke(cli, ["report", str(run_dir)])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == str(run_dir / "report.html")
    for folder in (tmp_path / "missing", tmp_path):
        with pytest.raises(SystemExit) as exit_info:
            main(["report", str(folder)])
        assert exit_info.value.code == 1
        assert str(folder) in capsys.readouterr().err.replace("\n", "")
        with pytest.raises(ConfigError, match=re.escape(str(folder))):
            write_report(folder)


@pytest.fixture(scope="module")
def chromium() -> str:
    """Chromium's path; skips without it, but fails in CI, which must have installed it."""
    path = shutil.which("chromium")
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is not on PATH; the nox tests session installs it in CI")
        pytest.skip("chromium is not on PATH (apt-get install chromium); CI runs this test")
    return path


def test_chromium_renders_every_section(
    chromium: str, full: str, full_page: Path, tmp_path: Path
) -> None:
    """Headless Chromium parses the page into a DOM with every section, and draws it."""
    url = full_page.as_uri()
    flags = [chromium, "--headless", "--disable-gpu", "--no-sandbox", "--no-first-run",
             f"--user-data-dir={tmp_path / 'profile'}"]  # fmt: skip
    dom = subprocess.run([*flags, "--dump-dom", url], capture_output=True, text=True,
                         timeout=120, check=True).stdout  # fmt: skip
    for sid in SECTION_IDS:
        assert f'<section id="{sid}">' in dom, sid
    assert dom.count("<img ") == full.count("<img ") == sum(FIGURES.values())
    shot = tmp_path / "page.png"
    subprocess.run([*flags, f"--screenshot={shot}", "--window-size=1200,4000",
                    "--virtual-time-budget=5000", url],
                   capture_output=True, timeout=120, check=True)  # fmt: skip
    assert shot.read_bytes().startswith(b"\x89PNG")
    assert shot.stat().st_size > 50_000  # text, tables and figures, not a blank page
