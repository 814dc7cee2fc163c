"""Multi-process training: two CPU processes under torchrun train exactly as one process does.

``accelerate launch --multi_gpu`` starts the same ``torch.distributed.run`` workers that these
tests start with ``torchrun --standalone``; on CPU the processes meet over gloo instead of nccl.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

pytest.importorskip("trl")
from safetensors.torch import load_file

from opencharacter.config import resolve_config
from opencharacter.errors import ConfigError
from opencharacter.pipeline import start_run
from opencharacter.stages.introspect import REFLECTION
from opencharacter.training import DPOConfig, SFTConfig
from opencharacter.types import ChatExample, PreferencePair

STEP = {"batch_size": 8, "learning_rate": 1e-3, "lora": {"rank": 8, "alpha": 16}}
WORDS = ["kind", "river", "garden", "book", "light", "stone", "quiet", "bright"]


def _text(i: int, n: int) -> str:
    return " ".join(WORDS[(i * k + n) % len(WORDS)] for k in range(1, 4 + i % 5))


@pytest.fixture(scope="module")
def prepared_run(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A local run with 16 preference pairs and 16 reflections (two full batches each)."""
    flags = {"constitution": "sarcasm", "backend": "local", "teacher": str(tiny_model_dir),
             "student": str(tiny_model_dir), "backend_options": {"micro_batch_size": "2"},
             "dpo": STEP, "sft": STEP}  # fmt: skip
    config, layers = resolve_config(flags=flags, environ={})
    path = tmp_path_factory.mktemp("prepared") / "run"
    with start_run(path, config, layers) as run:
        for i in range(16):
            prompt = [{"role": "user", "content": f"Tell me about {_text(i, 1)}?"}]
            pair = PreferencePair(id=f"p{i}", prompt=prompt, chosen=_text(i, 2),
                                  rejected=_text(i, 5))  # fmt: skip
            run.append("distill", pair.to_row())
            reflection = ChatExample(id=f"r{i}", messages=[*prompt, {"role": "assistant",
                                     "content": _text(i, 3)}])  # fmt: skip
            run.append(REFLECTION, {**reflection.to_row(), "source": REFLECTION})
    return path


def _launch(*args: str | Path, processes: int = 2) -> subprocess.CompletedProcess[str]:
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                f"--nproc-per-node={processes}"]  # fmt: skip
    command = [*torchrun, "-m", "opencharacter_local.launch", *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)


def _train(*args: str | Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "opencharacter", "train", *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)


def _metrics(run: Path) -> list[dict[str, Any]]:
    lines = (run / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def _max_difference(first: Path, second: Path) -> float:
    a, b = (load_file(folder / "adapter_model.safetensors") for folder in (first, second))
    assert a.keys() == b.keys()
    return max((a[name] - b[name]).abs().max().item() for name in a)


@pytest.fixture(scope="module")
def alone_and_launched(prepared_run: Path) -> tuple[Path, Path]:
    """The same run trained (DPO, then SFT) by one process and by two processes."""
    alone, launched = prepared_run.with_name("alone"), prepared_run.with_name("launched")
    for copy in (alone, launched):
        shutil.copytree(prepared_run, copy)
    for stage in ("dpo", "sft"):
        result = _train(stage, alone)
        assert result.returncode == 0, result.stderr
        result = _launch(stage, launched)
        assert result.returncode == 0, result.stderr
    return alone, launched


def test_two_processes_train_as_one_process_does(alone_and_launched: tuple[Path, Path]) -> None:
    """Same steps, same per-step loss and gradient norm, same adapters, to float noise."""
    alone, launched = alone_and_launched
    one, two = _metrics(alone), _metrics(launched)
    steps = [("dpo", 1), ("dpo", 2), ("sft", 1), ("sft", 2)]  # each logged once, by rank 0
    assert [(m["stage"], m["step"]) for m in one] == [(m["stage"], m["step"]) for m in two] == steps
    for single, parallel in zip(one, two, strict=True):
        assert parallel["loss"] == pytest.approx(single["loss"], rel=1e-4)
        assert parallel["grad_norm"] == pytest.approx(single["grad_norm"], rel=1e-3)
    for stage in ("dpo", "sft"):
        assert _max_difference(alone / stage / "adapter", launched / stage / "adapter") < 1e-4


def test_rank_0_alone_records_the_stage(alone_and_launched: tuple[Path, Path]) -> None:
    """One manifest entry and one event per stage; the batch is shared out, not multiplied."""
    alone, launched = alone_and_launched
    manifest = json.loads((launched / "manifest.json").read_text())
    single = json.loads((alone / "manifest.json").read_text())
    for stage in ("dpo", "sft"):
        meta = manifest["checkpoints"][stage]["meta"]
        alone_meta = single["checkpoints"][stage]["meta"]
        assert (meta["processes"], alone_meta["processes"]) == (2, 1)
        assert meta["effective_batch"] == alone_meta["effective_batch"] == 8
        assert manifest["stages"][stage]["state"] == "done"
        assert not (launched / stage / "trainer").exists()
    assert (launched / "sft" / "base" / "config.json").exists()  # merged once, by rank 0
    lines = (launched / "events.jsonl").read_text().splitlines()
    events = [json.loads(line)["event"] for line in lines]
    assert events.count("stage-start") == events.count("stage-end") == 2


def test_a_stage_that_fails_on_rank_0_stops_every_rank(prepared_run: Path, tmp_path: Path) -> None:
    """Rank 0's error is printed once and the launch ends instead of leaving ranks waiting."""
    empty = tmp_path / "empty"
    shutil.copytree(prepared_run, empty)
    (empty / "distill.jsonl").write_text("")
    result = _launch("dpo", empty)
    assert result.returncode != 0
    assert result.stderr.count("no preference pairs") == 1


def test_only_local_runs_are_launched(tmp_path: Path) -> None:
    config, layers = resolve_config(flags={"constitution": "sarcasm", "backend": "simulated"},
                                    environ={})  # fmt: skip
    start_run(tmp_path / "run", config, layers).close()
    result = _launch("dpo", tmp_path / "run")
    assert result.returncode == 1
    assert result.stderr.count("this launcher trains local runs") == 1
    result = _launch("eval", tmp_path / "run", processes=1)
    assert result.returncode != 0
    assert "-m opencharacter_local.launch {dpo,sft} RUN_DIR" in result.stderr


def test_other_ranks_may_not_train_a_stage_themselves(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """In a script of one's own under torchrun, rank 1 calling dpo() would write rank 0's files."""
    from opencharacter_local.trainer import LocalTrainer  # noqa: PLC0415 - after importorskip

    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    trainer, student = LocalTrainer(device="cpu"), SimpleNamespace(base_model="m", checkpoint=None)
    with pytest.raises(ConfigError, match="only rank 0 calls dpo"):
        trainer.dpo(student, [], DPOConfig(), output_dir=tmp_path)
    with pytest.raises(ConfigError, match="the other ranks call follow"):
        trainer.sft(student, [], SFTConfig(), output_dir=tmp_path)
    assert not any(tmp_path.iterdir())
