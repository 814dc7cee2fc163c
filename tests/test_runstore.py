"""A run directory is locked to one writer, saves its manifest atomically and keeps no secret."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from opencharacter.errors import DataError, RunLockedError
from opencharacter.registry import BackendSpec, register_backend, unregister_backend
from opencharacter.runstore import MANIFEST, RunDir, installed_versions, read_manifest
from opencharacter.types import Checkpoint, TokenUsage


def test_new_run_has_a_complete_manifest(tmp_path):
    """Opening a new folder writes a manifest with versions, stages and checkpoints."""
    with RunDir.open(tmp_path / "run") as run:
        assert (run.path / MANIFEST).exists()
    manifest = json.loads((tmp_path / "run" / MANIFEST).read_text())
    assert manifest["schema_version"] == 1
    assert manifest["versions"]["opencharacter"]
    assert manifest["stages"] == {}
    assert manifest["checkpoints"] == {}


def test_stage_state_usage_and_checkpoints_persist(tmp_path):
    """Stage fields, token usage and checkpoints survive closing and reopening the run."""
    checkpoint = Checkpoint(
        backend="simulated", base_model="m", uri="simulated://m/dpo", kind="dpo"
    )
    with RunDir.open(tmp_path) as run:
        run.update_stage("distill", state="running", generations=10)
        run.add_usage("distill", TokenUsage(prompt_tokens=5, requests=1))
        run.add_usage("distill", TokenUsage(completion_tokens=7, requests=1))
        run.record_checkpoint("dpo", checkpoint)
    with RunDir.open(tmp_path, create=False) as run:
        stage = run.stage("distill")
        assert (stage["state"], stage["generations"]) == ("running", 10)
        assert stage["usage"] == {
            "prompt_tokens": 5,
            "completion_tokens": 7,
            "train_tokens": 0,
            "cached_prompt_tokens": 0,
            "requests": 2,
        }
        assert run.checkpoint("dpo") == checkpoint
        assert run.checkpoint("sft") is None


def test_rows_resume_by_id(tmp_path):
    """done_ids reports exactly the ids written to the named files, across reopenings."""
    with RunDir.open(tmp_path) as run:
        for i in range(3):
            run.append("distill", {"id": f"d{i}"})
        run.record_filtered("distill", {"id": "d9"}, ["empty"])
    with RunDir.open(tmp_path) as run:
        assert run.done_ids("distill") == {"d0", "d1", "d2"}
        assert run.done_ids("distill", "filtered") == {"d0", "d1", "d2", "d9"}
        [filtered] = run.rows("filtered")
        assert filtered == {"stage": "distill", "reasons": ["empty"], "id": "d9"}


def test_sections_accumulate_in_one_json_file(tmp_path):
    """Per-stage reports are kept side by side in one file, each saved atomically."""
    with RunDir.open(tmp_path) as run:
        run.save_section("quality", "distill", {"kept": 9})
        run.save_section("quality", "reflection", {"kept": 4})
        run.save_section("quality", "distill", {"kept": 10})
    data = json.loads((tmp_path / "quality.json").read_text())
    assert data == {"distill": {"kept": 10}, "reflection": {"kept": 4}}


def test_second_writer_is_refused_while_the_first_holds_the_run(tmp_path):
    """A second process opening a locked run gets a clear RunLockedError naming the holder."""
    with RunDir.open(tmp_path):
        code = (
            "import sys\nfrom opencharacter.runstore import RunDir\n"
            "from opencharacter.errors import RunLockedError\n"
            f"try:\n    RunDir.open({str(tmp_path)!r})\n"
            "except RunLockedError as e:\n    print(e)\n    sys.exit(3)\n"
        )
        result = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=False
        )
        assert result.returncode == 3
        assert "in use by another process" in result.stdout
    with RunDir.open(tmp_path):  # released on close
        pass


def test_lock_is_per_open_even_in_one_process(tmp_path):
    """Two RunDir objects in one process cannot write the same run either."""
    with RunDir.open(tmp_path), pytest.raises(RunLockedError):
        RunDir.open(tmp_path)


def test_lock_is_released_when_the_holder_is_killed(tmp_path):
    """A run left by a process that died (even by SIGKILL) can be reopened at once."""
    code = (
        "import os, signal\nfrom opencharacter.runstore import RunDir\n"
        f"run = RunDir.open({str(tmp_path)!r})\nos.kill(os.getpid(), signal.SIGKILL)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=False)
    with RunDir.open(tmp_path, create=False):
        pass


def test_a_run_opened_by_a_relative_path_records_absolute_paths(tmp_path, monkeypatch):
    """Checkpoints written under run.path stay loadable when the run resumes from elsewhere."""
    monkeypatch.chdir(tmp_path)
    with RunDir.open("runs/x") as run:
        assert run.path == tmp_path / "runs" / "x"
        run.record_checkpoint("dpo", Checkpoint(backend="local", base_model="m", kind="dpo",
                                                uri=str(run.path / "dpo" / "adapter")))  # fmt: skip
    monkeypatch.chdir(tmp_path / "runs")
    recorded = read_manifest(tmp_path / "runs" / "x")["checkpoints"]["dpo"]["uri"]
    assert recorded == str(tmp_path / "runs" / "x" / "dpo" / "adapter")


def test_read_manifest_takes_no_lock_and_names_a_wrong_folder(tmp_path):
    with RunDir.open(tmp_path / "run") as run:
        run.update_stage("dpo", state="running")
        assert read_manifest(run.path)["stages"]["dpo"]["state"] == "running"
    with pytest.raises(DataError, match="is not a run directory"):
        read_manifest(tmp_path)


def test_open_refuses_a_folder_that_is_not_a_run(tmp_path):
    """Resuming a folder without a manifest, or with a damaged one, is a clear DataError."""
    with pytest.raises(DataError, match="not a run directory"):
        RunDir.open(tmp_path / "nothing", create=False)
    (tmp_path / MANIFEST).write_text("{broken", encoding="utf-8")
    with pytest.raises(DataError, match="not valid JSON"):
        RunDir.open(tmp_path)


def test_manifest_writes_leave_no_temporary_files(tmp_path):
    """Atomic manifest writes clean up after themselves."""
    with RunDir.open(tmp_path) as run:
        for i in range(5):
            run.update_stage("prompts", done=i)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".lock", MANIFEST]


def test_installed_versions_skips_absent_distributions():
    """Only installed distributions are listed, without importing them."""
    versions = installed_versions(["opencharacter", "surely-not-installed-dist"])
    assert list(versions) == ["opencharacter"]


def test_a_plugin_names_the_versions_a_run_records(tmp_path):
    """A third-party backend's distributions reach the manifest as ours do."""
    spec = BackendSpec(name="thirdparty", description="test", factory="x:y",
                       distributions=("thirdparty-backend", "hypothesis"))  # fmt: skip
    register_backend(spec)
    try:
        with RunDir.open(tmp_path) as run:
            versions = run.manifest["versions"]
    finally:
        unregister_backend("thirdparty")
    assert "hypothesis" in versions  # installed: recorded
    assert "thirdparty-backend" not in versions  # absent: skipped
    assert "opencharacter" in versions


def test_no_secret_reaches_any_run_file(tmp_path, monkeypatch):
    """A fake key planted in the environment is masked in every file a run writes."""
    key = "tml-FAKEsecretKEY0123456789"
    monkeypatch.setenv("TINKER_API_KEY", key)
    monkeypatch.setenv("MY_SERVICE_TOKEN", "plain-looking-value-42")
    with RunDir.open(tmp_path) as run:
        run.manifest["config"] = {
            "backend_options": {"api_key": "typed-on-cli"},
            "note": f"key is {key}",
        }
        run.save_manifest()
        run.append("distill", {"id": "x", "text": f"echoed {key} and plain-looking-value-42"})
        run.event("error", message=f"auth failed for {key}")
        run.log_metrics({"step": 1, "detail": "sk-ant-abcdefghijklmnopqrstuvwxyz"})
        run.record_filtered("distill", {"id": "y", "text": key}, ["identity-leak"])
    written = {p.name: p.read_text(encoding="utf-8") for p in tmp_path.iterdir() if p.is_file()}
    assert {
        "manifest.json",
        "distill.jsonl",
        "events.jsonl",
        "metrics.jsonl",
        "filtered.jsonl",
    } <= set(written)
    for name, text in written.items():
        for secret in (key, "plain-looking-value-42", "typed-on-cli", "sk-ant-abcdefghij"):
            assert secret not in text, f"{secret!r} leaked into {name}"
