"""Run configuration resolves flag > file > environment > preset, and refuses bad input clearly."""

from __future__ import annotations

import pytest

from opencharacter.config import SCALES, RunConfig, family_name, resolve_config
from opencharacter.errors import ConfigError
from opencharacter.registry import get_backend_spec


def test_presets_fill_counts_and_paper_is_the_papers():
    """The paper preset holds the paper's counts; smoke is tiny."""
    paper = SCALES["paper"]
    assert (paper.questions_per_trait, paper.generic_prompts, paper.samples_per_prompt) == (
        50, 1330, 5,
    )  # fmt: skip
    assert (paper.reflections_per_prompt, paper.interactions_per_variant) == (1000, 1000)
    assert paper.interaction_turns == 10
    config, layers = resolve_config(flags={"constitution": "pirate", "scale": "smoke"}, environ={})
    assert config.counts == SCALES["smoke"]
    assert layers["scale"] == "smoke"


def test_flag_beats_file_beats_environment_beats_preset(tmp_path):
    """Each layer overrides the ones below it, key by key, nested tables included."""
    path = tmp_path / "run.toml"
    path.write_text(
        'constitution = "pirate"\nseed = 3\nconcurrency = 5\n'
        "[counts]\nsamples_per_prompt = 4\n[dpo]\nbeta = 0.2\n[dpo.lora]\nrank = 8\n",
        encoding="utf-8",
    )
    env = {"OPENCHARACTER_SEED": "9", "OPENCHARACTER_CONCURRENCY": "7",
           "OPENCHARACTER_TEACHER": "env-teacher"}  # fmt: skip
    config, layers = resolve_config(flags={"concurrency": 11, "scale": "smoke"}, file=path,
                                    environ=env)  # fmt: skip
    assert config.concurrency == 11  # flag
    assert config.seed == 3  # file over environment
    assert config.teacher == "env-teacher"  # environment over default
    assert config.counts.samples_per_prompt == 4  # file over preset
    assert config.counts.questions_per_trait == SCALES["smoke"].questions_per_trait  # preset
    assert (config.dpo.beta, config.dpo.lora.rank, config.dpo.nll_coef) == (0.2, 8, 0.1)
    assert layers["file"]["path"] == str(path)
    assert layers["environment"]["seed"] == 9


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ('constitution = "x"\nsed = 3\n', "unknown setting(s) sed"),
        ('constitution = "x"\n[counts]\nsamples = 3\n', "[counts]"),
        ('constitution = "x"\nconcurrency = 0\n', "concurrency"),
        ("constitution = \n", "invalid TOML"),
    ],
)
def test_bad_config_files_name_the_file_and_the_problem(tmp_path, text, fragment):
    """A typo, a bad value or broken TOML is a ConfigError naming the file."""
    path = tmp_path / "bad.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=r"bad\.toml") as info:
        resolve_config(file=path, environ={})
    assert fragment in str(info.value)


def test_environment_numbers_are_checked():
    """A non-numeric environment value for a number names the variable."""
    with pytest.raises(ConfigError, match="OPENCHARACTER_SEED"):
        resolve_config(flags={"constitution": "x"}, environ={"OPENCHARACTER_SEED": "seven"})


def test_constitution_is_required_and_scale_must_exist():
    """Without a constitution, or with an unknown scale, resolution fails clearly."""
    with pytest.raises(ConfigError, match="no constitution"):
        resolve_config(environ={})
    with pytest.raises(ConfigError, match="unknown scale"):
        resolve_config(flags={"constitution": "x", "scale": "huge"}, environ={})


def test_config_round_trips_through_its_dict():
    """The manifest form of a config resolves back to the same config."""
    config, _ = resolve_config(flags={"constitution": "pirate", "scale": "half"}, environ={})
    again, _ = resolve_config(flags=config.to_dict(), environ={})
    assert again == config


def test_persona_name_defaults_to_the_student_family():
    """The persona is named after the student's family unless set."""
    models = {"teacher": "zai-org/GLM-4.5-Air", "student": "Qwen/Qwen3-8B"}
    assert RunConfig(constitution="x", **models).name == "Qwen"
    assert RunConfig(constitution="x", assistant_name="Nova", **models).name == "Nova"
    assert family_name("google/gemma-3-4b-it") == "gemma"


def test_the_backend_plugin_sets_the_window_unless_the_run_does():
    """Tinker wants 256 requests in flight; a run's own number wins; mixed runs take the larger."""
    base = {"constitution": "pirate"}
    tinker, _ = resolve_config(flags=base, environ={})
    assert tinker.concurrency == get_backend_spec("tinker").default_concurrency == 256
    own, _ = resolve_config(flags={**base, "concurrency": 8}, environ={})
    assert own.concurrency == 8
    simulated, _ = resolve_config(flags={**base, "backend": "simulated"}, environ={})
    assert simulated.concurrency == RunConfig.__attrs_attrs__.concurrency.default
    mixed, _ = resolve_config(
        flags={**base, "backend": "simulated", "teacher_backend": "tinker"}, environ={}
    )
    assert mixed.concurrency == 256


# One converter: the same input gives the same value, or the same error, on every path.
SETTINGS = [  # (setting, text as typed, the value it means, a wrong text)
    ("concurrency", "8", 8, "eight"),
    ("filters", "false", False, "maybe"),
    ("retry_base_delay", "0.5", 0.5, "soon"),
    ("teacher_backend", "none", None, None),
    ("assistant_name", "Ada", "Ada", None),
    ("until", "dpo", "dpo", "evaluate"),
]


def _through(path, setting, text, tmp_path):
    base = {"constitution": "pirate", "backend": "simulated"}
    if path == "flag":
        return resolve_config(flags={**base, setting: text}, environ={})[0]
    if path == "environment":
        variable = f"OPENCHARACTER_{setting.upper()}"
        return resolve_config(flags=base, environ={variable: text})[0]
    file = tmp_path / "run.toml"
    file.write_text(f"{setting} = {text!r}\n".replace("'", '"'), encoding="utf-8")
    return resolve_config(flags=base, file=file, environ={})[0]


@pytest.mark.parametrize("path", ["flag", "environment", "file"])
@pytest.mark.parametrize("case", SETTINGS, ids=[case[0] for case in SETTINGS])
def test_every_path_converts_a_setting_alike(path, case, tmp_path):
    """A string from a flag, a variable or a file gives the value Python would pass."""
    setting, text, value, wrong = case
    assert getattr(_through(path, setting, text, tmp_path), setting) == value
    python, _ = resolve_config(flags={"constitution": "pirate", "backend": "simulated",
                                      setting: value}, environ={})  # fmt: skip
    assert getattr(python, setting) == value
    if wrong is None:
        return
    with pytest.raises(ConfigError) as error:
        _through(path, setting, wrong, tmp_path)
    assert f"{setting}={wrong!r} is not " in str(error.value)


def test_a_wrong_type_from_python_names_the_setting_not_attrs_internals():
    with pytest.raises(ConfigError, match=r"command line: concurrency=\[8\] is not a whole number"):
        resolve_config(flags={"constitution": "pirate", "concurrency": [8]}, environ={})
