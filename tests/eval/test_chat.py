"""`opencharacter chat` talks to a run's models through the protocols, keeping each history."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console

from opencharacter.chat import CHAT_STAGES, ChatSession, choose_stage
from opencharacter.cli import _chat as chat_cli
from opencharacter.cli import cli, main
from opencharacter.config import resolve_config
from opencharacter.errors import ConfigError
from opencharacter.jsonl import read_jsonl
from opencharacter.pipeline import start_run
from opencharacter.runstore import RunDir, read_manifest
from opencharacter.simulated._backend import SimulatedSampler
from opencharacter.types import Checkpoint, Message


def _pipeline(run_dir: Path, until: str) -> Path:
    args = ["pipeline", "sarcasm", "--backend", "simulated", "--scale", "smoke", "--seed", "7",
            "--until", until, "--run-dir", str(run_dir)]  # fmt: skip
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return run_dir


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A simulated run trained through SFT (it has dpo and sft checkpoints)."""
    return _pipeline(tmp_path_factory.mktemp("chat") / "run", "sft")


@pytest.fixture(scope="module")
def dpo_only(tmp_path_factory):
    """A simulated run stopped after DPO (no sft checkpoint)."""
    return _pipeline(tmp_path_factory.mktemp("chat") / "run", "dpo")


@pytest.fixture
def sent(monkeypatch):
    """Every request the simulated students receive, with the checkpoint each was sent to."""
    seen = []
    original = SimulatedSampler.generate

    def spy(self, requests):
        seen.extend((self.checkpoint, request) for request in requests)
        return original(self, requests)

    monkeypatch.setattr(SimulatedSampler, "generate", spy)
    return seen


def chat(run_dir, *args, text="Hello\nHow are you?\n/exit\n"):
    result = CliRunner().invoke(cli, ["chat", str(run_dir), *args], input=text,
                                catch_exceptions=False)  # fmt: skip
    assert result.exit_code == 0, result.output
    return result


def transcripts(run_dir):
    """Every transcript file's rows, newest session last."""
    return [list(read_jsonl(p)) for p in sorted((Path(run_dir) / "chat").glob("*.jsonl"))]


def latest(run_dir):
    return transcripts(run_dir)[-1]


def roles(messages):
    """(role, content) pairs of messages, as records or as transcript dictionaries."""
    return [(m.role, m.content) if isinstance(m, Message) else (m["role"], m["content"])
            for m in messages]  # fmt: skip


def test_answers_are_printed_and_each_exchange_is_kept(trained, sent):
    """Two messages give two printed answers and two transcript rows; turn 2 carries turn 1."""
    result = chat(trained)
    rows = latest(trained)
    assert [row["turn"] for row in rows] == [1, 2]
    assert [row["user"] for row in rows] == ["Hello", "How are you?"]
    first, second = (row["answers"]["sft"] for row in rows)
    assert first in result.stdout
    assert second in result.stdout
    assert first not in result.stderr  # answers alone on stdout: scripts can read them
    # What the backend received, not merely what was written down: no system prompt, and
    # the whole history on the second turn.
    assert [roles(r.messages) for _, r in sent] == [
        [("user", "Hello")],
        [("user", "Hello"), ("assistant", first), ("user", "How are you?")],
    ]
    assert all(c.kind == "sft" for c, _ in sent)
    assert roles(rows[1]["messages"]["sft"]) == roles(sent[1][1].messages)
    assert all(r.purpose == "chat" for _, r in sent)
    assert sent[0][1].params.seed != sent[1][1].params.seed  # seeded per turn


def test_reset_forgets_and_exit_stops_reading(trained, sent):
    """After /reset a message goes alone; lines after /exit are never sent."""
    chat(trained, text="Hello\n/reset\nAgain\n/exit\nNever sent\n")
    assert [roles(r.messages) for _, r in sent] == [[("user", "Hello")], [("user", "Again")]]
    rows = latest(trained)
    assert [row.get("event") for row in rows] == [None, "reset", None]
    assert "Never sent" not in json.dumps(rows)


def test_end_of_input_ends_the_chat_like_exit(trained):
    """Without /exit, the end of standard input ends the session cleanly."""
    chat(trained, text="Hello\n")
    assert len(latest(trained)) == 1


def test_compare_prints_both_models_each_with_its_own_history(trained, sent):
    """--compare answers with base and sft in labelled blocks; each sees only its own answers."""
    result = chat(trained, "--compare")
    rows = latest(trained)
    assert [set(row["answers"]) for row in rows] == [{"base", "sft"}] * 2
    for label in ("base", "sft"):
        assert f"{label}:\n{rows[0]['answers'][label]}" in result.stdout
        assert roles(rows[1]["messages"][label])[1] == ("assistant", rows[0]["answers"][label])
    assert rows[0]["answers"]["base"] != rows[0]["answers"]["sft"]
    assert {c is None for c, _ in sent} == {True, False}
    # One turn, one seed: the two sides differ by their weights, not by their dice.
    assert len({r.params.seed for _, r in sent[:2]}) == 1


@pytest.mark.parametrize(("stage", "checkpoint"), [("base", None), ("dpo", "dpo"), (None, "sft")])
def test_stage_picks_the_weights_and_defaults_to_the_latest(trained, sent, stage, checkpoint):
    """--stage base samples the base weights, dpo its checkpoint; the default is sft."""
    chat(trained, *(["--stage", stage] if stage else []), text="Hello\n")
    manifest = read_manifest(trained)
    expected = manifest["checkpoints"][checkpoint]["uri"] if checkpoint else None
    assert [c.uri if c else None for c, _ in sent] == [expected]
    label = stage or "sft"
    assert latest(trained)[0]["models"] == {label: expected or manifest["config"]["student"]}


def test_the_default_after_dpo_alone_is_dpo(dpo_only, sent):
    """A run trained only through DPO chats with its DPO checkpoint by default."""
    chat(dpo_only, text="Hello\n")
    assert [c.kind for c, _ in sent] == ["dpo"]


def run_main(args, capsys):
    with pytest.raises(SystemExit) as info:
        main(args)
    return info.value.code, capsys.readouterr().err


def test_a_stage_without_checkpoint_names_the_stages_there_are(dpo_only, capsys):
    """--stage sft on a run without SFT exits 1 naming base and dpo, without a traceback."""
    code, err = run_main(["chat", str(dpo_only), "--stage", "sft"], capsys)
    assert code == 1
    assert "no sft checkpoint" in err
    assert "base, dpo" in err
    assert "Traceback" not in err


def test_a_missing_run_directory_errors_clearly(tmp_path, capsys):
    """A folder that holds no run exits 1 saying so, and creates nothing."""
    code, err = run_main(["chat", str(tmp_path / "nowhere")], capsys)
    assert code == 1
    assert "is not a run directory" in err
    assert not (tmp_path / "nowhere").exists()


def test_compare_needs_a_trained_stage(trained, capsys):
    """--compare with --stage base is refused: there would be nothing to compare."""
    code, err = run_main(["chat", str(trained), "--compare", "--stage", "base"], capsys)
    assert code == 1
    assert "--stage dpo or sft" in err


def test_a_run_held_by_its_writer_can_still_be_chatted_with(trained):
    """The chat takes no lock: it works while another process holds the run."""
    with RunDir.open(trained, create=False):
        chat(trained, text="Hello\n")
    assert latest(trained)[0]["answers"]["sft"]


def test_a_session_replays_exactly_from_its_id(trained):
    """The same session id and messages give the same answers: seeds come from run and turn."""
    answers = []
    for _ in range(2):  # the second session appends to the same transcript
        with ChatSession.open(trained, compare=True, session_id="replay") as session:
            answers.append([session.say("Hello"), session.say("Tell me more")])
    assert answers[0] == answers[1]
    assert answers[0][0] != answers[0][1]


def test_an_empty_message_is_refused_and_changes_nothing(trained):
    """say('') raises a ConfigError and leaves history and turn count as they were."""
    with ChatSession.open(trained, session_id="empty") as session:
        with pytest.raises(ConfigError, match="empty"):
            session.say("  ")
        assert session.turn == 0
        assert session.histories == {"sft": []}
        assert not session.transcript.exists()


@given(
    present=st.sets(st.sampled_from(["dpo", "sft"])),
    stage=st.one_of(st.none(), st.sampled_from(CHAT_STAGES)),
)
def test_choose_stage_returns_only_what_exists(present, stage):
    """The chosen stage is base or has a checkpoint; the default is sft, else dpo, else an error."""
    checkpoints = {name: {"uri": name} for name in present}
    expected = stage if stage is not None else next((s for s in ("sft", "dpo") if s in present),
                                                     None)  # fmt: skip
    if expected is None or (expected != "base" and expected not in present):
        with pytest.raises(ConfigError):
            choose_stage(checkpoints, stage)
    else:
        assert choose_stage(checkpoints, stage) == expected


def test_a_wide_terminal_shows_the_comparison_side_by_side(monkeypatch):
    """On 120 columns both answers share lines; on 60 they come one after the other."""
    answers = {"base": "plain words from the base model", "sft": "sharp words from the trained one"}
    for width, side_by_side in ((120, True), (60, False)):
        screen = Console(file=io.StringIO(), force_terminal=True, width=width, color_system=None)
        monkeypatch.setattr(chat_cli, "stdout", screen)
        chat_cli._show(answers)
        lines = screen.file.getvalue().splitlines()
        shared = [line for line in lines if "plain words" in line and "sharp words" in line]
        assert bool(shared) is side_by_side, lines


@pytest.fixture
def local_run(tiny_model_dir, tmp_path):
    """A run on the local backend with the tiny model and an SFT adapter that changes outputs.

    No pipeline runs (the demo takes minutes on CPU); the adapter is recorded as a trained run
    records it, with random LoRA B weights so that it really moves the answers.
    """
    torch = pytest.importorskip("torch")
    peft = pytest.importorskip("peft")
    from transformers import AutoModelForCausalLM  # noqa: PLC0415 - torch may be absent

    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
        config = peft.LoraConfig(r=8, target_modules="all-linear", init_lora_weights=False)
        peft.get_peft_model(model, config).save_pretrained(tmp_path / "adapter")
    flags = {"constitution": "sarcasm", "backend": "local", "scale": "smoke",
             "teacher": str(tiny_model_dir), "student": str(tiny_model_dir),
             "backend_options": {"engine": "transformers", "device": "cpu"},
             "sampling": {"answer_tokens": 12}}  # fmt: skip
    run_config, layers = resolve_config(flags=flags, environ={})
    with start_run(tmp_path / "run", run_config, layers) as run:
        adapter = str(tmp_path / "adapter")
        run.record_checkpoint(
            "sft",
            Checkpoint(backend="local", base_model=str(tiny_model_dir), uri=adapter, kind="sft"),
        )
    return tmp_path / "run"


@pytest.mark.slow  # about 20 s on two CPU cores (torch, the tiny model); `nox -s slow` runs it
@pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing.*:FutureWarning")
def test_the_local_backend_chats_with_base_and_adapter(local_run):
    """On the local backend the comparison samples two real weight sets: the answers differ."""
    result = chat(local_run, "--compare", text="Hello\nAnd then?\n")
    rows = latest(local_run)
    assert len(rows) == 2
    first = rows[0]["answers"]
    assert first["base"] != first["sft"]
    assert rows[0]["models"]["sft"].endswith("adapter")
    assert f"sft:\n{first['sft']}" in result.stdout
    assert roles(rows[1]["messages"]["base"])[1] == ("assistant", first["base"])
