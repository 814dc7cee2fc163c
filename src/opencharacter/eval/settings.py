"""The evaluation's settings: the ``[evaluation]`` table of a run's configuration.

They live apart from the evaluation code so the configuration can hold them without importing
anything heavy. How many prompts each evaluation uses is a count, set by the ``scale`` preset
with the other counts (:attr:`opencharacter.config.Counts.eval_prompts`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import attrs
from attrs import validators as v

Engine = Literal["tfidf", "encoder"]


def split_names(values: str | Sequence[str]) -> tuple[str, ...]:
    """Accept one name, a comma-separated list (a flag, a variable) or a list (TOML, Python).

    >>> split_names("a, b"), split_names(["a,b", "c"])
    (('a', 'b'), ('a', 'b', 'c'))
    """
    items = [values] if isinstance(values, str) else values
    return tuple(n.strip() for item in items for n in str(item).split(",") if n.strip())


@attrs.frozen(kw_only=True)
class EvalSettings:
    """How a run is evaluated once trained.

    Attributes:
        prompts: where evaluation prompts come from: ``"builtin"`` (our offline set), a text
            or JSONL file, or ``"hf:<dataset>[:split]"`` (the paper used WildChat).
        personas: other constitutions the robustness classifier must tell the run's persona
            from (each answered by the base model prompted with it). Empty: three built-ins.
        classifier: ``"tfidf"`` (TF-IDF and logistic regression, no weights) or ``"encoder"``
            (a transformers encoder fine-tuned as the paper did).
        classifier_model: the encoder to fine-tune. Paper: ModernBERT-base.
        judge_tokens: the judge's token limit per verdict. Paper: 1,024.
        max_parse_failures: the share of judge answers that may fail to parse before an
            evaluation stops instead of reporting numbers.
        bootstrap: order permutations for the Elo confidence intervals (at least 200).
        persistence_turns: follow-up turns of the multi-turn persistence test.
        capabilities: ``inspect_ai`` tasks to run on base and trained models (e.g.
            ``inspect_evals/gsm8k``); none by default.
        capability_limit: samples per capability task; ``None`` for the whole task.
    """

    prompts: str = attrs.field(default="builtin", validator=v.min_len(1))
    personas: tuple[str, ...] = attrs.field(default=(), converter=split_names)
    classifier: Engine = attrs.field(default="tfidf", validator=v.in_(("tfidf", "encoder")))
    classifier_model: str = "answerdotai/ModernBERT-base"
    judge_tokens: int = attrs.field(default=1024, validator=v.ge(1))
    max_parse_failures: float = attrs.field(default=0.2, converter=float,
                                            validator=[v.ge(0.0), v.le(1.0)])  # fmt: skip
    bootstrap: int = attrs.field(default=200, validator=v.ge(200))
    persistence_turns: int = attrs.field(default=4, validator=v.ge(1))
    capabilities: tuple[str, ...] = attrs.field(default=(), converter=split_names)
    capability_limit: int | None = None
