"""Capability tasks of inspect_ai run on our samplers, and their scores come back side by side."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator, Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

pytest.importorskip("inspect_ai")
from inspect_ai import Task
from inspect_ai.dataset import Sample
from inspect_ai.model import (
    ChatMessageAssistant,
    ChatMessageSystem,
    ChatMessageTool,
    ChatMessageUser,
    ContentImage,
    ContentText,
    GenerateConfig,
)
from inspect_ai.scorer import includes
from inspect_ai.solver import generate

from opencharacter.errors import (
    ConfigError,
    MissingDependencyError,
    PermanentBackendError,
)
from opencharacter.eval.capabilities import (
    inspect_model,
    run_capability,
    to_messages,
    to_sampling_params,
)
from opencharacter.protocols import Sampler
from opencharacter.registry import get_backend_spec, load_backend
from opencharacter.types import Completion, GenerationRequest, Purpose, SamplingParams

WORDS = ("apple", "pear", "plum", "fig")
PROMPT = "Reply with the word {}."
SETTINGS = GenerateConfig(max_tokens=7, temperature=0.0, stop_seqs=["\n\n"])


run = run_capability  # it collects the streams inspect_ai leaves unclosed, quietly


def word_task() -> Task:
    """Four samples: reply with a word; a reply that includes it scores 1."""
    return Task(
        dataset=[Sample(input=PROMPT.format(w), target=w, id=w) for w in WORDS],
        solver=generate(),
        scorer=includes(),
        config=SETTINGS,
        name="reply_with_word",
    )


class Spy:
    """A sampler that knows the words in ``right`` (else answers "banana"), and keeps requests.

    With ``inner`` it passes each request on to that sampler instead, still keeping it.
    """

    def __init__(self, right: Sequence[str] = (), inner: Sampler | None = None) -> None:
        self.right = set(right)
        self.inner = inner
        self.requests: list[GenerationRequest] = []

    @property
    def model(self) -> str:
        return "spy" if self.inner is None else self.inner.model

    async def generate(self, requests: Sequence[GenerationRequest]) -> AsyncIterator[Completion]:
        self.requests.extend(requests)
        if self.inner is not None:
            async for completion in self.inner.generate(requests):
                yield completion
            return
        for request in requests:
            word = request.messages[-1].content.split()[-1].rstrip(".")
            for n in range(request.samples):
                yield Completion(
                    request_id=request.id,
                    text=f"It is {word}." if word in self.right else "banana",
                    finish_reason="stop",
                    prompt_tokens=5 if n == 0 else 0,
                    completion_tokens=2,
                    model="spy-model",
                    sample=n,
                )


class Broken:
    """A sampler whose backend refuses every request for good."""

    model = "broken"

    async def generate(self, requests: Sequence[GenerationRequest]) -> AsyncIterator[Completion]:
        for request in requests:
            raise PermanentBackendError("bad credentials (401)", request_id=request.id)
        yield  # pragma: no cover - makes this an async generator


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """The word task on a model that knows three words and one that knows one."""
    base, trained = Spy(right=WORDS[:3]), Spy(right=WORDS[:1])
    log_dir = tmp_path_factory.mktemp("logs")
    result = run(word_task(), {"base": base, "trained": trained}, log_dir=log_dir)
    return result, base, trained, log_dir


def test_scores_are_the_planted_accuracies_side_by_side(planted):
    """Each model's score is the share of words it knows, under its own name."""
    result, _, _, _ = planted
    assert result["task"] == "reply_with_word"
    assert result["metric"] == "accuracy"
    assert result["scores"] == {"base": 0.75, "trained": 0.25}
    assert result["samples"] == 4
    assert set(result["stderr"]) == {"base", "trained"}


def test_each_sampler_receives_the_task_prompts_for_evaluation(planted):
    """Every sample's prompt reaches each sampler once, as a user turn with purpose EVAL."""
    _, base, trained, _ = planted
    for spy in (base, trained):
        prompts = sorted(r.messages[-1].content for r in spy.requests)
        assert prompts == sorted(PROMPT.format(w) for w in WORDS)
        assert all(r.messages[-1].role == "user" for r in spy.requests)
        assert all(r.purpose is Purpose.EVAL and r.samples == 1 for r in spy.requests)


def test_the_task_generation_settings_reach_sampling_params(planted):
    """The task's max_tokens, temperature and stop sequence are what the sampler is asked for."""
    _, base, _, _ = planted
    for request in base.requests:
        assert request.params.max_tokens == 7
        assert request.params.temperature == 0.0
        assert request.params.stop == ("\n\n",)
        assert request.params.top_p == SamplingParams().top_p  # unset by the task: our default


def test_logs_are_written_with_token_usage(planted):
    """Each model gets its own log in log_dir, which counts the tokens its sampler reported."""
    from inspect_ai.log import read_eval_log  # noqa: PLC0415

    result, _, _, log_dir = planted
    assert len({*result["logs"].values()}) == 2
    for name, location in result["logs"].items():
        log = read_eval_log(location)
        assert log.location.startswith(str(log_dir))
        usage = log.stats.model_usage[f"opencharacter/{name}"]
        assert (usage.input_tokens, usage.output_tokens) == (4 * 5, 4 * 2)


def test_simulated_student_runs_with_a_limit(tmp_path):
    """The simulated backend's student is scored in [0, 1] on exactly the limited samples."""
    student = load_backend("simulated").student("Qwen/Qwen3-8B")
    spy = Spy(inner=student)
    result = run(word_task(), {"base": spy}, limit=2, log_dir=tmp_path)
    assert 0.0 <= result["scores"]["base"] <= 1.0
    assert result["samples"] == 2
    assert sorted(r.messages[-1].content for r in spy.requests) == [
        PROMPT.format(w) for w in WORDS[:2]
    ]


def test_tiny_local_model_is_scored(tmp_path, tiny_model_dir):
    """A real model, the tiny local Qwen3 on CPU, goes through the whole task."""
    if not get_backend_spec("local").check().ready:
        pytest.skip("the local backend's dependencies are not installed")
    backend = load_backend("local", {"engine": "transformers", "device": "cpu"})
    student = backend.student(str(tiny_model_dir))
    result = run(word_task(), {"base": student}, log_dir=tmp_path)
    assert 0.0 <= result["scores"]["base"] <= 1.0
    assert result["samples"] == len(WORDS)


def test_a_sampler_failure_surfaces_as_itself(tmp_path):
    """A backend's permanent failure is raised from run_capability, not buried in a log."""
    with pytest.raises(PermanentBackendError, match="401"):
        run(word_task(), {"base": Broken()}, log_dir=tmp_path)


@given(
    temperature=st.none() | st.floats(0.0, 2.0),
    top_p=st.none() | st.floats(0.01, 1.0),
    top_k=st.none() | st.integers(-1, 100),
    max_tokens=st.none() | st.integers(1, 4096),
    seed=st.none() | st.integers(0, 2**31),
    stop=st.none() | st.lists(st.text(max_size=4), max_size=3),
)
def test_generate_config_maps_field_by_field(*, temperature, top_p, top_k, max_tokens, seed, stop):
    """Each setting the config gives replaces ours; each it leaves unset keeps our default."""
    base = SamplingParams(temperature=0.3, top_p=0.5, top_k=7, max_tokens=99, seed=1, stop=["#"])
    config = GenerateConfig(
        temperature=temperature,
        top_p=top_p,
        top_k=top_k,
        max_tokens=max_tokens,
        seed=seed,
        stop_seqs=stop,
    )
    params = to_sampling_params(config, base)
    assert params.temperature == (base.temperature if temperature is None else temperature)
    assert params.top_p == (base.top_p if top_p is None else top_p)
    assert params.max_tokens == (base.max_tokens if max_tokens is None else max_tokens)
    assert params.seed == (base.seed if seed is None else seed)
    expected_k = base.top_k if top_k is None else (top_k if top_k > 0 else None)
    assert params.top_k == expected_k
    assert params.stop == (base.stop if stop is None else tuple(s for s in stop if s))
    assert params.repetition_penalty == base.repetition_penalty


@pytest.mark.parametrize(
    "setting",
    [
        {"logprobs": True},
        {"presence_penalty": 0.5},
        {"response_schema": {"name": "x", "json_schema": {}}},
    ],
)
def test_settings_no_sampler_honours_are_refused(setting):
    """A task asking for log-probabilities, penalties or a schema is refused, naming it."""
    with pytest.raises(ConfigError, match=next(iter(setting))):
        to_sampling_params(GenerateConfig(**setting), SamplingParams())


def test_chat_messages_become_ours_in_order():
    """System, user and assistant turns keep their role and text; reasoning-free text joins."""
    messages = to_messages(
        [
            ChatMessageSystem(content="Be brief."),
            ChatMessageUser(content=[ContentText(text="Two"), ContentText(text="parts")]),
            ChatMessageAssistant(content="Sure."),
            ChatMessageUser(content="Again."),
        ]
    )
    assert [(m.role, m.content) for m in messages] == [
        ("system", "Be brief."),
        ("user", "Two\nparts"),
        ("assistant", "Sure."),
        ("user", "Again."),
    ]


@pytest.mark.parametrize(
    "message",
    [
        ChatMessageTool(content="42", tool_call_id="c1", function="add"),
        ChatMessageUser(content=[ContentImage(image="data:image/png;base64,AAAA")]),
    ],
)
def test_tool_turns_and_images_are_refused(message):
    """A tool result or an image cannot be put to a plain-chat sampler: a ConfigError says so."""
    with pytest.raises(ConfigError, match=r"tools|image"):
        to_messages([ChatMessageUser(content="Hi"), message])


def test_a_task_file_resolves_by_name(tmp_path):
    """`path/to/file.py@task_name` loads that task from the file."""
    source = tmp_path / "mytasks.py"
    source.write_text(
        "from inspect_ai import Task, task\n"
        "from inspect_ai.dataset import Sample\n"
        "from inspect_ai.scorer import includes\n"
        "@task\n"
        "def echo_fig():\n"
        "    return Task(dataset=[Sample(input='Reply with the word fig.', target='fig')],"
        " scorer=includes())\n"
    )
    result = run(f"{source}@echo_fig", {"m": Spy(right=["fig"])}, log_dir=tmp_path)
    assert result["task"] == "echo_fig"
    assert result["scores"] == {"m": 1.0}


@pytest.mark.parametrize("name", ["opencharacter_no_such_pkg/gsm8k", "no/such/file.py@task"])
def test_a_task_that_does_not_resolve_names_the_install(tmp_path, name):
    """An unknown task name is a ConfigError naming it and `pip install inspect-evals`."""
    with pytest.raises(ConfigError, match="pip install inspect-evals") as info:
        run_capability(name, {"m": Spy()}, log_dir=tmp_path)
    assert name in str(info.value)


def test_no_models_is_a_config_error(tmp_path):
    """Nothing to compare is refused before anything runs."""
    with pytest.raises(ConfigError, match="at least one model"):
        run_capability(word_task(), {}, log_dir=tmp_path)


def test_missing_inspect_ai_names_the_extra(tmp_path, monkeypatch):
    """Without inspect_ai installed, the error gives the pip command for the eval extra."""
    monkeypatch.setitem(sys.modules, "inspect_ai", None)
    with pytest.raises(MissingDependencyError, match=r'pip install "opencharacter\[eval\]"'):
        run_capability("inspect_evals/gsm8k", {"m": Spy()}, log_dir=tmp_path)


def test_the_provider_has_no_string_form():
    """get_model("opencharacter/...") cannot find a sampler, and says how to build the model."""
    from inspect_ai.model import get_model  # noqa: PLC0415

    inspect_model(Spy(), "x")  # registers the provider, if no test has yet
    with pytest.raises(ConfigError, match="inspect_model"):
        get_model("opencharacter/x", memoize=False)


def test_importing_the_module_loads_no_inspect_ai():
    """`import opencharacter.eval.capabilities` leaves inspect_ai unimported until it is used."""
    code = (
        "import sys, opencharacter.eval, opencharacter.eval.capabilities\n"
        "print('inspect_ai' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"
