"""The usage examples (swap a backend, mix backends, filter a JSONL) do what they print.

Each runs as a subprocess, as a person runs it; the tests read what it left on disk. The local
backend's runs use the tiny random model, stop after SFT (the evaluations run on the simulated
backend here, and in the local backend's own tests) and take 15 to 40 seconds each on 2 cores.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from opencharacter.registry import get_backend_spec

EXAMPLES = Path(__file__).parent.parent / "examples"
TRAINING = ["prompts", "distill", "dpo", "introspect", "sft"]


def run_example(script: str, *args: object) -> str:
    """Run an example offline and return its standard output; fail with its errors."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, str(EXAMPLES / script), *map(str, args)]
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=180,
                            check=False)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Run it" in (EXAMPLES / script).read_text()
    return result.stdout


def rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def manifest(run_dir: Path) -> dict[str, Any]:
    return json.loads((run_dir / "manifest.json").read_text())


# swap_backend.py ------------------------------------------------------------------------------


def test_swap_backend_runs_every_stage_on_the_simulated_backend(tmp_path):
    """On the simulated backend the plugin's models serve every stage, evaluations included."""
    run_dir = tmp_path / "run"
    out = run_example("swap_backend.py", "--backend", "simulated", "--run-dir", run_dir)
    saved = manifest(run_dir)
    defaults = get_backend_spec("simulated").default_models
    assert saved["backends"] == {"student": "simulated", "teacher": "simulated"}
    assert (saved["config"]["teacher"], saved["config"]["student"]) == (
        defaults["teacher"], defaults["student"])  # fmt: skip
    assert all(saved["stages"][s]["state"] == "done" for s in [*TRAINING, "eval"])
    assert (run_dir / "report.html").exists()
    pairs = rows(run_dir / "distill.jsonl")
    assert f"{len(pairs)} preference pairs" in out
    assert len(pairs) > 0
    for kind in ("dpo", "sft"):
        checkpoint = saved["checkpoints"][kind]
        assert checkpoint["backend"] == "simulated"
        assert f"{kind} checkpoint by simulated: {checkpoint['uri']}" in out


def test_swap_backend_trains_real_adapters_on_the_local_backend(tiny_model_dir, tmp_path):
    """The same script on the local backend trains PEFT adapters of the tiny model on CPU."""
    run_dir = tmp_path / "run"
    out = run_example("swap_backend.py", "--backend", "local", "--tiny", "--teacher",
                      tiny_model_dir, "--student", tiny_model_dir, "-o", "engine=transformers",
                      "--until", "sft", "--run-dir", run_dir)  # fmt: skip
    saved = manifest(run_dir)
    assert saved["backends"] == {"student": "local", "teacher": "local"}
    assert saved["config"]["backend_options"] == {"engine": "transformers"}
    assert saved["config"]["student"] == str(tiny_model_dir)
    assert all(saved["stages"][s]["state"] == "done" for s in TRAINING)
    assert "eval" not in saved["stages"]
    prompts, pairs = rows(run_dir / "prompts.jsonl"), rows(run_dir / "distill.jsonl")
    assert len(pairs) == len(prompts) > 0  # filters off: one pair per prompt (K = 1)
    assert f"{len(pairs)} preference pairs" in out
    dpo, sft = saved["checkpoints"]["dpo"], saved["checkpoints"]["sft"]
    assert (dpo["backend"], sft["backend"]) == ("local", "local")
    assert sft["parent"] == dpo["uri"]
    for checkpoint in (dpo, sft):
        assert (Path(checkpoint["uri"]) / "adapter_model.safetensors").exists()
        assert f"{checkpoint['kind']} checkpoint by local: {checkpoint['uri']}" in out


# mixed_backends.py ----------------------------------------------------------------------------


def test_mixed_backends_serve_each_side_and_the_manifest_says_which(tiny_model_dir, tmp_path):
    """A simulated teacher and a local student: each side's answers and options are its own."""
    run_dir = tmp_path / "run"
    out = run_example("mixed_backends.py", "--teacher-backend", "simulated", "--teacher-option",
                      "seed=3", "--backend", "local", "--student", tiny_model_dir,
                      "-o", "engine=transformers", "--tiny-student", "--until", "sft",
                      "--run-dir", run_dir)  # fmt: skip
    saved = manifest(run_dir)
    config = saved["config"]
    assert saved["backends"] == {"student": "local", "teacher": "simulated"}
    assert 'served by (manifest \'backends\'): {"student": "local", "teacher": "simulated"}' in out
    assert config["teacher"] == get_backend_spec("simulated").default_models["teacher"]
    assert config["teacher_backend_options"] == {"seed": "3"}
    assert config["backend_options"] == {"engine": "transformers"}
    models = {(a["side"], a["model"]) for a in rows(run_dir / "distill_completions.jsonl")}
    assert models == {("chosen", config["teacher"]), ("rejected", str(tiny_model_dir))}
    for kind in ("dpo", "sft"):
        checkpoint = saved["checkpoints"][kind]
        assert checkpoint["backend"] == "local"
        assert (Path(checkpoint["uri"]) / "adapter_model.safetensors").exists()
        assert f"{kind} checkpoint made by local: {checkpoint['uri']}" in out


# filter_my_jsonl.py ---------------------------------------------------------------------------

GOOD = "Tides follow the moon, so check a tide table for your beach before you go."
LOOP = " ".join(["Well, the thing is that I really do think so."] * 40)
CLAUDE = "I am Claude, an AI assistant made by Anthropic. Tides follow the moon."
QWEN = "I'm Qwen, and I keep an eye on the tides for you."  # kept: --student-name Qwen


def pair(row_id: str, chosen: str = GOOD, rejected: str = GOOD, **meta: Any) -> dict[str, Any]:
    """A TRL conversational preference row."""
    return {"id": row_id, "prompt": [{"role": "user", "content": "When is high tide?"}],
            "chosen": [{"role": "assistant", "content": chosen}],
            "rejected": [{"role": "assistant", "content": rejected}], **meta}  # fmt: skip


def plain(row_id: str, response: str) -> dict[str, Any]:
    """A plain prompt and response row."""
    return {"id": row_id, "prompt": "Tides?", "response": response}


#: Each row, in file order, and why it must be dropped (``{}``: kept).
CASES: list[tuple[dict[str, Any], dict[str, list[str]]]] = [
    (pair("pair-good", rejected=QWEN), {}),  # the student's side may say who it is
    ({"id": "pair-strings", "prompt": "Tides?", "chosen": GOOD, "rejected": "Look it up."}, {}),
    (pair("pair-identity", chosen=CLAUDE), {"chosen": ["identity-leak"]}),
    (pair("pair-loop", rejected=LOOP), {"rejected": ["repetition-ngram"]}),
    (pair("pair-cut", chosen=GOOD[:40]), {"chosen": ["no-final-punctuation"]}),
    (pair("pair-limit", chosen_finish_reason="length"), {"chosen": ["truncated-length"]}),
    ({"prompt": "Hi", "response": "Ok."}, {"messages[1]": ["too-short"]}),  # no id: "line-7"
    (plain("plain-good", GOOD), {}),
    (plain("plain-think", f"<think>Be dry.</think>{GOOD}"), {}),  # kept, cleaned
    (plain("plain-name", QWEN), {}),
    (plain("plain-empty", " "), {"messages[1]": ["empty"]}),
    (plain("plain-long", "The sea is wide. " * 800), {"messages[1]": ["too-long"]}),
]
#: Each row's id (a row without one is named by its line number) and its reasons.
EXPECTED = {row.get("id", f"line-{n}"): why for n, (row, why) in enumerate(CASES, start=1)}


def test_filter_my_jsonl_keeps_good_rows_and_records_why_the_others_went(tmp_path):
    """Preference and plain rows: exactly the bad ones are dropped, each with its reasons."""
    source = tmp_path / "mine.jsonl"
    lines = [json.dumps(row) for row, _ in CASES]
    lines.insert(8, "")  # a blank line after the row named by its line number is skipped
    source.write_text("\n".join(lines), encoding="utf-8")  # no final newline: last row kept
    out_dir = tmp_path / "filtered"

    out = run_example("filter_my_jsonl.py", source, "--out-dir", out_dir, "--student-name", "Qwen")
    kept, dropped = rows(out_dir / "kept.jsonl"), rows(out_dir / "dropped.jsonl")
    assert [r["id"] for r in kept] == [i for i, why in EXPECTED.items() if not why]
    assert {r["id"]: r["reasons"] for r in dropped} == {i: w for i, w in EXPECTED.items() if w}
    assert "line-7" in EXPECTED
    by_id = {r["id"]: r for r in kept}
    assert by_id["pair-strings"]["chosen"] == [{"role": "assistant", "content": GOOD}]
    assert by_id["plain-think"]["messages"][-1]["content"] == GOOD  # the reasoning is cleaned
    report = json.loads((out_dir / "report.json").read_text())
    assert (report["rows"], report["kept"], report["dropped"]) == (12, 5, 7)
    assert report["dropped_by_reason"] == dict.fromkeys(
        ["empty", "identity-leak", "no-final-punctuation", "repetition-ngram", "too-long",
         "too-short", "truncated-length"], 1)  # fmt: skip
    assert report["cleaned_by_reason"] == {"reasoning-leak": 1}
    assert "kept 5 of 12 rows (41.7%)" in out
    for reason in report["dropped_by_reason"]:
        assert f"  {reason:<22} {1:>6}" in out


def test_filter_my_jsonl_names_the_line_that_is_not_json(tmp_path):
    """A broken line stops the script with one line of error naming file and line."""
    source = tmp_path / "broken.jsonl"
    source.write_text(json.dumps(pair("a")) + "\n{not json\n", encoding="utf-8")
    command = [sys.executable, str(EXAMPLES / "filter_my_jsonl.py"), str(source),
               "--out-dir", str(tmp_path / "out")]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 1
    assert f"{source}:2: expected a JSON object" in " ".join(result.stderr.split())
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("script", ["swap_backend.py", "mixed_backends.py", "filter_my_jsonl.py"])
def test_usage_examples_say_how_to_run_them(script):
    """Each docstring gives the exact command, with the script's own path."""
    text = (EXAMPLES / script).read_text()
    assert f"python examples/{script}" in text.split('"""')[1]
