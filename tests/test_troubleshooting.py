"""docs/troubleshooting.md: every problem on the page happens here for real, with its message.

Each test makes one entry's problem happen through the command line (``main``, as the
``opencharacter`` script runs, or a ``python -m opencharacter`` process) and then checks that
each fragment it names is in the entry's ```text block *and* in what the program printed. So
the page cannot quote a message the program no longer prints. Every ``##`` entry of the page
has a test here, and every entry shows a message, a cause and a fix.

Problems that need a GPU (running out of its memory) are injected: the real code path runs on
CPU and torch's own ``OutOfMemoryError`` is raised where CUDA would raise it.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from opencharacter.cli import main

ROOT = Path(__file__).parents[1]
PAGE = ROOT / "docs" / "troubleshooting.md"
_ENTRY = re.compile(r"^## (.+?)\n(.*?)(?=^## |\Z)", re.DOTALL | re.MULTILINE)
_TEXT = re.compile(r"^```text\n(.*?)^```", re.DOTALL | re.MULTILINE)
SMOKE = ("--backend", "simulated", "--scale", "smoke")
TINY = "opencharacter/tiny-qwen3"
RETIRED = "Qwen/Qwen3-4B-Instruct-2507"

#: Each entry's title, with the tests that reproduce it.
ENTRIES: dict[str, list[str]] = {}


def entry(title: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Mark a test as reproducing the page's entry ``title``."""

    def mark(test: Callable[..., None]) -> Callable[..., None]:
        ENTRIES.setdefault(title, []).append(test.__name__)
        return test

    return mark


def page_entries() -> dict[str, str]:
    """Return each ``##`` entry of the page: its title and its body."""
    return {title.strip(): body for title, body in _ENTRY.findall(PAGE.read_text("utf-8"))}


def _flat(text: str) -> str:
    return " ".join(text.split())


def expect(title: str, output: str, *fragments: str) -> None:
    """Assert each fragment is in the entry's message on the page and in the program's output."""
    quoted = _flat(" ".join(_TEXT.findall(page_entries()[title])))
    for fragment in fragments:
        assert _flat(fragment) in quoted, f"{title!r}: the page does not quote {fragment!r}"
        assert _flat(fragment) in _flat(output), (
            f"{title!r}: the program did not print {fragment!r}"
        )


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """Run ``opencharacter ARGS`` as the script does; return its exit status and its output."""
    with pytest.raises(SystemExit) as info:
        main([*args])
    out = capsys.readouterr()
    code = info.value.code
    return (code if isinstance(code, int) else 1), out.out + out.err


def rows(path: Path) -> list[str]:
    return path.read_text("utf-8").splitlines()


# The page itself ------------------------------------------------------------------------------


def test_every_entry_is_reproduced_by_a_test():
    """The page's entries and this file's tests name the same problems."""
    assert set(page_entries()) == set(ENTRIES)


@pytest.mark.parametrize("title", sorted(page_entries()))
def test_every_entry_shows_a_message_a_cause_and_a_fix(title):
    """An entry quotes the message in a text block, then says the cause and the fix."""
    body = page_entries()[title]
    assert _TEXT.search(body), f"{title!r} quotes no message"
    assert "**Cause.**" in body
    assert "**Fix.**" in body


# Credentials ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tinker_service(tiny_model_dir):
    """The fake Tinker service serving the tiny model; the environment as a user's would be."""
    pytest.importorskip("tinker")
    from opencharacter_tinker.fake_server import FakeTinkerServer  # noqa: PLC0415 - torch

    with pytest.MonkeyPatch.context() as patch, FakeTinkerServer({TINY: tiny_model_dir}) as fake:
        patch.setenv("HF_HUB_OFFLINE", "1")  # for the processes started here; for this one:
        patch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)  # read at its import
        patch.delenv("TINKER_CREDENTIAL_CMD", raising=False)
        for name, value in fake.env().items():
            patch.setenv(name, value)
        yield fake


@pytest.fixture
def tinker(tinker_service, tiny_model_dir, tmp_path):
    """Flags of a Tinker run of the tiny model in a fresh folder (its tokenizer from disk)."""
    return ["sarcasm", "--run-dir", str(tmp_path / "run"), "-o", f"tokenizer={tiny_model_dir}"]


@entry("Tinker: no API key, or a key it refuses")
def test_tinker_without_a_key_or_with_a_wrong_one(tinker, monkeypatch, capsys, tmp_path):
    """No key stops the run before anything is made; a wrong key is refused by the service."""
    import opencharacter_tinker  # noqa: PLC0415 - the plugin is optional

    monkeypatch.setattr(opencharacter_tinker, "CREDENTIALS_FILE", tmp_path / "absent.json")
    monkeypatch.delenv("TINKER_API_KEY")
    code, missing = run(capsys, "pipeline", *tinker, "--student", TINY, "--teacher", TINY)
    assert code == 1
    assert not (tmp_path / "run").exists()
    monkeypatch.setenv("TINKER_API_KEY", "tml-not-the-key")
    code, wrong = run(capsys, "pipeline", *tinker, "--student", TINY, "--teacher", TINY)
    assert code == 1
    title = "Tinker: no API key, or a key it refuses"
    expect(
        title,
        missing,
        "error: No Tinker credentials: set TINKER_API_KEY (or "
        "TINKER_CREDENTIAL_CMD), or run `tinker auth login`.",
    )
    expect(
        title,
        wrong,
        "error: Tinker: the API key was rejected (401); set TINKER_API_KEY (a "
        "key starting with 'tml-') or run `tinker auth login`",
    )


@pytest.fixture
def openai_server():
    """An OpenAI-compatible server serving "teacher" that requires a key."""
    pytest.importorskip("openai")
    from opencharacter_openai.fake_server import FakeOpenAIServer  # noqa: PLC0415

    with FakeOpenAIServer({"teacher": "vllm"}, api_key="sk-the-servers-key") as server:
        yield server


@entry("openai backend: the server refuses the key")
def test_openai_without_its_key_variable(openai_server, monkeypatch, capsys, tmp_path):
    """An unset key variable is named, whether the default one or the api_key_env option's."""
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "TEACHER_KEY"):
        monkeypatch.delenv(name, raising=False)
    flags = [
        "pipeline",
        "sarcasm",
        *SMOKE,
        "--run-dir",
        str(tmp_path / "run"),
        "--teacher-backend",
        "openai",
        "--teacher",
        "teacher",
        "--teacher-option",
        f"base_url={openai_server.base_url}",
    ]
    code, default = run(capsys, *flags)
    assert code == 1
    code, named = run(capsys, *flags, "--teacher-option", "api_key_env=TEACHER_KEY")
    assert code == 1
    monkeypatch.setenv("TEACHER_KEY", "sk-the-servers-key")
    assert (
        run(capsys, *flags, "--teacher-option", "api_key_env=TEACHER_KEY", "--until", "prompts")[0]
        == 0
    )
    title = "openai backend: the server refuses the key"
    expect(
        title,
        default,
        "refuses the API key (401: Incorrect API key provided.); "
        "OPENAI_API_KEY is not set: set it to the server's key, or name the variable that "
        "holds it with the api_key_env option",
    )
    expect(title, named, "TEACHER_KEY is not set: set it to the server's key")


@entry("openai backend: no default model")
def test_openai_needs_a_model_name(capsys, tmp_path):
    """The openai backend serves whatever the server serves, so it has no default model."""
    pytest.importorskip("openai")
    code, output = run(
        capsys,
        "pipeline",
        "sarcasm",
        *SMOKE,
        "--teacher-backend",
        "openai",
        "--run-dir",
        str(tmp_path / "run"),
    )
    assert code == 1
    expect(
        "openai backend: no default model",
        output,
        "error: the 'openai' backend has no default teacher model; pass --teacher NAME",
    )


@entry("The service or server cannot be reached")
def test_an_unreachable_service_is_reported_in_seconds(
    tinker_service, tiny_model_dir, capsys, tmp_path
):
    """A closed port: Tinker answers within connect_timeout, an openai server at once.

    Tinker in a process of its own: after a timeout the SDK's thread keeps retrying for
    minutes, holding its process-wide lock on new REST clients.
    """
    pytest.importorskip("openai")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    env = {**os.environ, "TINKER_BASE_URL": f"http://127.0.0.1:{closed}"}
    started = time.monotonic()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "opencharacter",
            "pipeline",
            "sarcasm",
            "--student",
            TINY,
            "--teacher",
            TINY,
            "-o",
            f"tokenizer={tiny_model_dir}",
            "-o",
            "connect_timeout=2",
            "--run-dir",
            str(tmp_path / "tinker"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    assert time.monotonic() - started < 30
    code, openai = run(
        capsys,
        "pipeline",
        "sarcasm",
        *SMOKE,
        "--teacher-backend",
        "openai",
        "--teacher",
        "teacher",
        "--teacher-option",
        f"base_url=http://127.0.0.1:{closed}/v1",
        "--run-dir",
        str(tmp_path / "openai"),
    )
    assert code == 1
    title = "The service or server cannot be reached"
    expect(
        title,
        done.stderr,
        "error: Tinker: no answer to the capabilities request within 2 s; "
        "check the network and TINKER_BASE_URL (options connect_timeout and step_timeout set "
        "the limits)",
    )
    expect(
        title,
        openai,
        "cannot be reached (Connection error.)",
        "error: start-up check: the OpenAI-compatible server at",
    )


# Models ---------------------------------------------------------------------------------------


@entry("A retired or misspelt model")
def test_a_retired_model_is_refused_with_the_models_on_offer(tinker, capsys, tmp_path):
    """Tinker's start-up check lists the served models when one is not among them."""
    code, output = run(capsys, "pipeline", *tinker, "--student", RETIRED, "--teacher", TINY)
    assert code == 1
    assert not (tmp_path / "run").exists()
    expect(
        "A retired or misspelt model",
        output,
        f"error: Tinker does not serve '{RETIRED}' (retired, or misspelt). Models on offer: "
        f"{TINY}. Choose one with --teacher/--student.",
    )


@entry("Tinker: cannot load the tokenizer")
def test_a_tokenizer_out_of_reach_names_the_option_that_gives_one(tinker_service, capsys, tmp_path):
    """Offline, a model's tokenizer must come from a folder: the message says which option."""
    code, output = run(
        capsys,
        "pipeline",
        "sarcasm",
        "--student",
        TINY,
        "--teacher",
        TINY,
        "--run-dir",
        str(tmp_path / "run"),
    )
    assert code == 1
    expect(
        "Tinker: cannot load the tokenizer",
        output,
        f"error: cannot load the tokenizer of '{TINY}'",
        "pass -o tokenizer=FOLDER with a local copy, or log in to the Hugging Face Hub",
    )


@entry("A setting the backend cannot honour")
def test_an_explicit_setting_the_backend_cannot_honour_is_refused(tinker, capsys, tmp_path):
    """Tinker has no repetition penalty and no SFT on merged weights: explicit asks stop."""
    settings = tmp_path / "run.toml"
    settings.write_text(
        f'constitution = "sarcasm"\nteacher = "{TINY}"\nstudent = "{TINY}"\n'
        '[sampling]\nrepetition_penalty = 1.1\n[sft]\nstart = "stack"\n'
    )
    code, penalty = run(capsys, "pipeline", "--config", str(settings), *tinker[1:])
    assert code == 1
    settings.write_text(settings.read_text().replace("repetition_penalty = 1.1\n", ""))
    code, stack = run(capsys, "pipeline", "--config", str(settings), *tinker[1:])
    assert code == 1
    title = "A setting the backend cannot honour"
    expect(
        title,
        penalty,
        "error: sampling.repetition_penalty=1.1: the 'tinker' backend "
        "(teacher) has no repetition penalty; set it to 1.0 or use a backend that has one",
    )
    expect(
        title,
        stack,
        "error: sft.start: SFT cannot train a new adapter on DPO-merged weights "
        "there, so the 'tinker' backend cannot run it; set sft.start = \"continue\"",
    )


# Out of memory --------------------------------------------------------------------------------

LOCAL_RUN = f"""
constitution = "sarcasm"
backend = "local"
teacher_backend = "simulated"
teacher = "simulated-teacher"
student = "{TINY}"
assistant_name = "Tiny"
scale = "smoke"
filters = false
[counts]
questions_per_trait = 5
generic_prompts = 4
[sampling]
answer_tokens = 8
[dpo]
batch_size = 4
"""


def _out_of_memory(*_args: object, **_kwargs: object) -> None:
    import torch  # noqa: PLC0415 - torch is the local backend's

    raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 1.50 GiB.")


@entry("Out of GPU memory (local backend)")
def test_running_out_of_gpu_memory_names_the_settings_that_fit(
    tiny_model_dir, monkeypatch, capsys, tmp_path
):
    """Sampling and training out of memory each stop with one line naming what to lower."""
    pytest.importorskip("trl")
    import transformers  # noqa: PLC0415
    from opencharacter_local.engines import TransformersEngine  # noqa: PLC0415

    monkeypatch.setenv("OPENCHARACTER_CACHE", str(tiny_model_dir.parent))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    settings = tmp_path / "local.toml"
    settings.write_text(LOCAL_RUN)
    run_dir = str(tmp_path / "run")
    start = ["pipeline", "--config", str(settings), "--run-dir", run_dir, "-o", "device=cpu"]
    assert run(capsys, *start, "--until", "prompts")[0] == 0
    with monkeypatch.context() as patch:
        patch.setattr(TransformersEngine, "_generate_batch", _out_of_memory)
        code, sampling = run(capsys, "pipeline", "--resume", run_dir, "--until", "distill")
    assert code == 1
    assert run(capsys, "pipeline", "--resume", run_dir, "--until", "distill")[0] == 0
    monkeypatch.setattr(transformers.Trainer, "train", _out_of_memory)
    code, training = run(capsys, "pipeline", "--resume", run_dir, "--until", "dpo")
    assert code == 1
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["stages"]["dpo"]["state"] == "failed"
    title = "Out of GPU memory (local backend)"
    expect(
        title,
        training,
        "error: dpo: out of GPU memory at 2 pairs per forward pass of up to "
        "1024 tokens each. Lower the local backend's micro_batch_size (-o micro_batch_size=1;",
        "is kept by gradient accumulation) or dpo.max_length, free the GPU of other "
        "processes, or train on a larger GPU",
    )
    expect(
        title,
        sampling,
        "does not fit in GPU memory alone",
        "lower the run's [sampling] "
        "token limits (answer_tokens, reflection_tokens, turn_tokens), free the GPU of other "
        "processes, or sample with a smaller model or on a larger GPU",
    )


@entry("Out of GPU memory (local backend)")
def test_the_memory_settings_the_page_names_exist(tmp_path):
    """Every knob the entry names is a real setting, accepted where the page says it goes."""
    pytest.importorskip("torch")
    from opencharacter.config import resolve_config  # noqa: PLC0415
    from opencharacter.errors import ConfigError  # noqa: PLC0415
    from opencharacter.registry import load_backend  # noqa: PLC0415

    options = {
        "micro_batch_size": "1",
        "max_batch_size": "8",
        "gpu_memory_utilization": "0.5",
        "max_model_len": "4096",
        "tensor_parallel_size": "2",
        "engines_cached": "1",
    }
    backend = load_backend("local", options)
    assert backend.vllm_options == {
        "tensor_parallel_size": 2,
        "gpu_memory_utilization": 0.5,
        "max_model_len": 4096,
    }
    body = page_entries()["Out of GPU memory (local backend)"]
    for option in options:
        assert f"`{option}`" in body
    settings = tmp_path / "memory.toml"
    settings.write_text(
        'constitution = "sarcasm"\n[dpo]\nmax_length = 512\nmicro_batch_size = 1\n'
        "[sft]\nmax_length = 2048\n[sampling]\nanswer_tokens = 512\n"
    )
    config, _ = resolve_config(file=settings, environ={})
    assert (config.dpo.max_length, config.dpo.micro_batch_size) == (512, 1)
    assert (config.sft.max_length, config.sampling.answer_tokens) == (2048, 512)
    with pytest.raises(ConfigError, match="Unknown option"):  # not a knob: the page says so
        load_backend("local", {"gradient_checkpointing": "true"})


# Runs -----------------------------------------------------------------------------------------


@entry("Resuming a run with other settings")
def test_a_resume_refuses_settings_that_shape_the_data(capsys, tmp_path):
    """--resume keeps the run's settings: a new seed is refused, --until and --concurrency not."""
    run_dir = str(tmp_path / "run")
    assert (
        run(capsys, "pipeline", "sarcasm", *SMOKE, "--run-dir", run_dir, "--until", "prompts")[0]
        == 0
    )
    code, output = run(capsys, "pipeline", "--resume", run_dir, "--seed", "8")
    assert code == 1
    code, estimate = run(capsys, "pipeline", "--resume", run_dir, "--estimate")
    assert code == 1
    code, _ = run(
        capsys, "pipeline", "--resume", run_dir, "--until", "distill", "--concurrency", "8"
    )
    assert code == 0
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["config"]["seed"] == 0
    assert manifest["stages"]["distill"]["state"] == "done"
    title = "Resuming a run with other settings"
    expect(
        title,
        output,
        "error: cannot change seed when resuming",
        ": the run's data was made "
        "with its own settings. Resume without it, or start a new run with --run-dir. A resume "
        "may change only: concurrency, judge, judge_backend, judge_backend_options, "
        "max_attempts, retry_base_delay, retry_max_delay, until",
    )
    expect(
        title,
        estimate,
        "error: --resume takes the run's own settings; drop --run-dir, --config and --estimate",
    )


@entry("A folder that already holds another run")
def test_a_new_run_in_a_used_folder_is_refused(capsys, tmp_path):
    """Starting a run with other settings where one exists points to --resume."""
    run_dir = str(tmp_path / "run")
    assert (
        run(capsys, "pipeline", "sarcasm", *SMOKE, "--run-dir", run_dir, "--until", "prompts")[0]
        == 0
    )
    code, output = run(
        capsys,
        "pipeline",
        "sarcasm",
        *SMOKE,
        "--run-dir",
        run_dir,
        "--until",
        "prompts",
        "--seed",
        "8",
    )
    assert code == 1
    expect(
        "A folder that already holds another run",
        output,
        "already holds a run with another "
        "configuration; resume it with --resume, or choose a new --run-dir",
    )


@entry("A corrupt row in a run file")
def test_a_damaged_row_names_its_file_and_line_and_the_stage_remakes_it(capsys, tmp_path):
    """A broken line mid-file stops the run; deleted, the stage that writes the file remakes it."""
    run_dir = tmp_path / "run"
    assert (
        run(capsys, "pipeline", "sarcasm", *SMOKE, "--run-dir", str(run_dir), "--until", "distill")[
            0
        ]
        == 0
    )
    pairs = run_dir / "distill.jsonl"
    lines = rows(pairs)
    damaged = [*lines[:4], lines[4][:60], *lines[5:]]
    pairs.write_text("\n".join(damaged) + "\n")
    code, output = run(capsys, "pipeline", "--resume", str(run_dir), "--until", "dpo")
    assert code == 1
    assert f"{pairs}:5: corrupt row" in output
    pairs.write_text("\n".join([*lines[:4], *lines[5:]]) + "\n")  # the fix: delete that line
    assert run(capsys, "generate", "distill", str(run_dir))[0] == 0
    assert sorted(rows(pairs)) == sorted(lines)
    assert run(capsys, "pipeline", "--resume", str(run_dir), "--until", "dpo")[0] == 0
    expect(
        "A corrupt row in a run file",
        output,
        "distill.jsonl:5: corrupt row (",
        "). The file was damaged outside a normal write; repair or delete that line, then "
        "run again.",
    )


@entry("The run directory is in use")
def test_a_live_holder_is_named_and_a_killed_one_holds_nothing(capsys, tmp_path):
    """A running pipeline keeps others out, by pid; killed with SIGKILL, its run resumes."""
    run_dir = tmp_path / "run"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "opencharacter",
            "pipeline",
            "sarcasm",
            *SMOKE,
            "-o",
            "latency_ms=400",
            "--concurrency",
            "1",
            "--until",
            "distill",
            "--run-dir",
            str(run_dir),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        lock, manifest = run_dir / ".lock", run_dir / "manifest.json"
        while not (lock.exists() and lock.read_text() == str(holder.pid) and manifest.exists()):
            assert holder.poll() is None, "the run ended before the test could meet it"
            assert time.monotonic() < deadline
            time.sleep(0.05)
        code, output = run(capsys, "pipeline", "--resume", str(run_dir))
        assert code == 1
        assert holder.poll() is None, "the holder must still be running"
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
    assert holder.returncode == -signal.SIGKILL
    assert lock.read_text() == str(holder.pid)  # the dead holder's pid stays; it holds nothing
    code, _ = run(capsys, "pipeline", "--resume", str(run_dir), "--concurrency", "64")
    assert code == 0
    assert json.loads(manifest.read_text())["stages"]["distill"]["state"] == "done"
    assert f"(pid {holder.pid})" in output
    expect(
        "The run directory is in use",
        output,
        "is in use by another process (pid ",
        "). Wait for it to finish or stop it, or choose another --run-dir.",
    )


# Constitutions --------------------------------------------------------------------------------


@entry("Unknown constitution name")
def test_an_unknown_constitution_lists_the_builtins_and_makes_no_folder(capsys, tmp_path):
    """A misspelt persona is refused with the built-ins and a close match, before any folder."""
    code, output = run(capsys, "pipeline", "sarcsm", *SMOKE, "--run-dir", str(tmp_path / "run"))
    assert code == 1
    assert not (tmp_path / "run").exists()
    expect(
        "Unknown constitution name",
        output,
        "error: 'sarcsm' is neither a file nor a "
        "built-in constitution; pass a path to a constitution file or one of the built-ins: "
        "goodness, humor,",
        "Did you mean 'sarcasm'?",
    )


@entry("Malformed constitution file")
def test_a_malformed_constitution_names_file_place_and_fix(capsys, tmp_path, monkeypatch):
    """A typo'd key and broken TOML are named with the file and the place."""
    monkeypatch.chdir(tmp_path)
    Path("mine.toml").write_text(
        'name = "mine"\n[[traits]]\ntrait = "I answer dryly."\nqestions = ["Why?"]\n'
    )
    Path("broken.toml").write_text('name = "mine\n')
    code, typo = run(capsys, "pipeline", "mine.toml", *SMOKE, "--run-dir", "run")
    assert code == 1
    assert not Path("run").exists()
    code, syntax = run(capsys, "constitution", "validate", "broken.toml")
    assert code == 1
    title = "Malformed constitution file"
    expect(
        title,
        typo,
        "error: mine.toml: traits[1]: unknown key 'qestions' (did you mean "
        "'questions'?); the allowed keys are trait, questions, clarification",
    )
    expect(
        title,
        syntax,
        "invalid broken.toml: invalid TOML (Illegal character '\\n' (at line 1, "
        "column 13)); fix the syntax there",
    )


# Backends and packages ------------------------------------------------------------------------


@entry("A backend that is not installed")
def test_a_backend_not_installed_says_how_to_install_it(monkeypatch, capsys, tmp_path):
    """No Tinker plugin, or no torch for the local one: the message gives the pip command."""
    from opencharacter import registry  # noqa: PLC0415

    installed = registry._entry_points()  # the core alone: only the built-in backend
    monkeypatch.setattr(
        registry, "_entry_points", lambda: tuple(ep for ep in installed if ep.name == "simulated")
    )
    code, plugin = run(capsys, "pipeline", "sarcasm", "--run-dir", str(tmp_path / "run"))
    assert code == 1
    monkeypatch.setattr(registry, "_entry_points", lambda: installed)
    real = registry._module_installed
    monkeypatch.setattr(registry, "_module_installed", lambda name: name != "torch" and real(name))
    code, dependency = run(
        capsys, "pipeline", "sarcasm", "--backend", "local", "--run-dir", str(tmp_path / "run")
    )
    assert code == 1
    assert not (tmp_path / "run").exists()
    title = "A backend that is not installed"
    expect(
        title,
        plugin,
        "error: No backend named 'tinker'. Its plugin is not installed; install "
        'it with: pip install "opencharacter[tinker]" (from a clone: pip install '
        "./backends/tinker). Installed backends:",
    )
    expect(
        title,
        dependency,
        "error: The 'local' backend needs torch, which is not installed. "
        'Install it with: pip install "opencharacter[local]" (from a clone: pip install '
        "./backends/local)",
    )


@entry("A backend option that is misspelt or of the wrong type")
def test_backend_options_are_checked_by_name_and_type(capsys, tmp_path):
    """-o names a field of the backend; a typo lists the valid ones, a bad value its type."""
    run_dir = str(tmp_path / "run")
    code, typo = run(
        capsys, "pipeline", "sarcasm", *SMOKE, "-o", "latncy_ms=20", "--run-dir", run_dir
    )
    assert code == 1
    code, value = run(
        capsys, "pipeline", "sarcasm", *SMOKE, "-o", "latency_ms=fast", "--run-dir", run_dir
    )
    assert code == 1
    title = "A backend option that is misspelt or of the wrong type"
    expect(
        title,
        typo,
        "error: Unknown option(s) latncy_ms for backend 'simulated'. Valid: chars_per_token,",
        "latency_ms, max_concurrency, seed.",
    )
    expect(title, value, "error: backend 'simulated' option: latency_ms='fast' is not a number")


@entry("The evaluations' packages are missing")
def test_a_run_ending_in_eval_needs_its_packages(monkeypatch, capsys, tmp_path):
    """Without scikit-learn a run that ends with the evaluations stops before anything."""
    real = importlib.util.find_spec
    monkeypatch.setattr(
        "opencharacter.eval.stage.importlib.util.find_spec",
        lambda name, *args: None if name == "sklearn" else real(name, *args),
    )
    run_dir = tmp_path / "run"
    code, output = run(capsys, "pipeline", "sarcasm", *SMOKE, "--run-dir", str(run_dir))
    assert code == 1
    assert not run_dir.exists()
    assert (
        run(capsys, "pipeline", "sarcasm", *SMOKE, "--run-dir", str(run_dir), "--until", "sft")[0]
        == 0
    )
    expect(
        "The evaluations' packages are missing",
        output,
        'error: the evaluations need scikit-learn: pip install "opencharacter[eval]"',
    )
