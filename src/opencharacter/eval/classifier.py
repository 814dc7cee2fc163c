"""Persona classifiers and the robustness score: does the character survive being told to drop it?

The paper trains a classifier to tell its personas apart from answers written *without* any
break-character suffix, then scores answers written *with* each suffix: if a suffix makes a
persona's answers unrecognisable, the character did not hold. Two engines share one protocol:

- ``tfidf``: word 1-2 gram TF-IDF and logistic regression (scikit-learn). It needs no weights,
  trains in seconds on a CPU, and is the default.
- ``encoder``: a transformers encoder fine-tuned as the paper did (ModernBERT-base); see
  :mod:`opencharacter.eval.encoder`.

Unlike the paper, which trained on all suffix-free answers and so also scored the "default"
answers it had learned from, :func:`robustness` holds out whole prompts: the classifier never
scores an answer to a prompt it was trained on. scikit-learn and torch are imported only when a
classifier is fitted, so ``import opencharacter.eval`` stays light.
"""

from __future__ import annotations

import hashlib
import importlib
import math
from collections import Counter, defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import attrs

from opencharacter.convert import build
from opencharacter.errors import (
    ConfigError,
    DataError,
    EvaluationError,
    MissingDependencyError,
)
from opencharacter.eval.stats import mean_sem

NO_SUFFIX = "none"
"""The ``variant`` of an answer written without a break-character suffix."""

# Engine name -> the dotted path of its classifier class, imported only when asked for.
_ENGINES = {
    "encoder": "opencharacter.eval.encoder:EncoderClassifier",
    "tfidf": "opencharacter.eval.classifier:TfidfClassifier",
}

_ROW_KEYS = ("text", "persona", "method", "variant", "prompt_id")


@runtime_checkable
class PersonaClassifier(Protocol):
    """Protocol: a model that learns which persona wrote a text."""

    def fit(self, texts: Sequence[str], labels: Sequence[str]) -> None:
        """Learn from ``texts``, each written by the persona named in ``labels``."""

    def predict(self, texts: Sequence[str]) -> list[str]:
        """Return the most likely persona of each text (always a label seen by ``fit``)."""

    def probabilities(self, texts: Sequence[str]) -> list[dict[str, float]]:
        """Return, for each text, every trained persona's probability (summing to one)."""


def make_classifier(engine: str = "tfidf", **options: Any) -> PersonaClassifier:
    """Return an unfitted classifier of ``engine``, configured with ``options``.

    Args:
        engine: ``"tfidf"`` (options: see :class:`TfidfOptions`) or ``"encoder"`` (options:
            see :class:`opencharacter.eval.encoder.EncoderOptions`).
        **options: the engine's options; strings such as ``"8"`` are converted as on the
            command line.

    Raises:
        ConfigError: an unknown engine or option (the message lists the valid ones), or a
            value of the wrong type.
    """
    path = _ENGINES.get(engine)
    if path is None:
        msg = f"unknown classifier engine {engine!r}; choose from: {', '.join(sorted(_ENGINES))}"
        raise ConfigError(msg)
    module, _, name = path.partition(":")
    cls = getattr(importlib.import_module(module), name)
    classifier: PersonaClassifier = cls(build(cls.Options, options, source=f"{engine} classifier"))
    return classifier


def check_training_data(texts: Sequence[str], labels: Sequence[str]) -> list[str]:
    """Return the sorted distinct labels, after checking the data can train a classifier.

    Raises:
        EvaluationError: lengths differ, or fewer than two personas are present.
    """
    if len(texts) != len(labels):
        msg = f"a classifier got {len(texts)} texts but {len(labels)} labels; pass one per text"
        raise EvaluationError(msg)
    distinct = sorted(set(labels))
    if len(distinct) < 2:
        msg = (
            f"a persona classifier needs answers from at least two personas, got "
            f"{distinct or 'none'}; add another persona's answers"
        )
        raise EvaluationError(msg)
    return distinct


def positive(_: object, attribute: attrs.Attribute[Any], value: float | None) -> None:
    """An attrs validator: the option, when set, must be above zero."""
    if value is not None and value <= 0:
        msg = f"{attribute.name} must be positive, got {value}"
        raise ConfigError(msg)


@attrs.frozen(kw_only=True)
class TfidfOptions:
    """Options of the ``tfidf`` engine.

    Attributes:
        seed: seeds the logistic regression, so equal data gives equal predictions.
        c: inverse regularisation strength (scikit-learn's ``C``); larger fits the training
            answers more closely.
        max_features: keep only this many most frequent n-grams; ``None`` keeps all.
    """

    seed: int = 0
    c: float = attrs.field(default=10.0, validator=positive)
    max_features: int | None = attrs.field(default=None, validator=positive)


class TfidfClassifier:
    """Word 1-2 gram TF-IDF (sublinear term frequency) and multinomial logistic regression.

    Style shows in word choice and stock phrases, which n-gram counts catch well; it needs no
    download and trains on thousands of answers in seconds on one CPU.
    """

    Options = TfidfOptions
    engine = "tfidf"

    def __init__(self, options: TfidfOptions | None = None) -> None:
        self.options = options or TfidfOptions()
        self._pipeline: Any = None

    def fit(self, texts: Sequence[str], labels: Sequence[str]) -> None:
        """Learn which persona wrote which text; a second call starts afresh."""
        check_training_data(texts, labels)
        linear_model, pipeline, text = _sklearn()
        self._pipeline = pipeline.make_pipeline(
            text.TfidfVectorizer(
                ngram_range=(1, 2), sublinear_tf=True, max_features=self.options.max_features
            ),
            linear_model.LogisticRegression(
                C=self.options.c, max_iter=2000, random_state=self.options.seed
            ),
        )
        self._pipeline.fit(list(texts), list(labels))

    def predict(self, texts: Sequence[str]) -> list[str]:
        """Return the most likely persona of each text."""
        return [str(label) for label in self._fitted().predict(list(texts))]

    def probabilities(self, texts: Sequence[str]) -> list[dict[str, float]]:
        """Return every persona's probability for each text."""
        pipeline = self._fitted()
        classes = [str(label) for label in pipeline.classes_]
        rows = pipeline.predict_proba(list(texts))
        return [dict(zip(classes, map(float, row), strict=True)) for row in rows]

    def _fitted(self) -> Any:
        if self._pipeline is None:
            msg = "the tfidf classifier is not fitted yet; call fit() before predicting"
            raise EvaluationError(msg)
        return self._pipeline


def _sklearn() -> tuple[Any, Any, Any]:
    """Import scikit-learn's parts lazily, turning its absence into an install hint."""
    try:
        # Optional and heavy, so imported here; untyped, and absent from the typing session.
        from sklearn import (  # type: ignore[import-untyped,import-not-found,unused-ignore]  # noqa: PLC0415
            linear_model,
            pipeline,
        )
        from sklearn.feature_extraction import (  # type: ignore[import-untyped,import-not-found,unused-ignore]  # noqa: PLC0415
            text,
        )
    except ImportError as exc:
        msg = 'the tfidf persona classifier needs scikit-learn: pip install "opencharacter[eval]"'
        raise MissingDependencyError(msg) from exc
    return linear_model, pipeline, text


def macro_f1(truth: Sequence[str], predicted: Sequence[str]) -> float:
    """Return the F1 score averaged over the personas present in ``truth``.

    A persona only ever predicted (never true) is not averaged over: its wrong predictions
    already cost the true personas their recall. Undefined (``nan``) for no rows.
    """
    counts: Counter[tuple[str, str]] = Counter(zip(truth, predicted, strict=True))
    scores = []
    for persona in sorted(set(truth)):
        hits = counts[(persona, persona)]
        false_pos = sum(n for (t, p), n in counts.items() if p == persona and t != persona)
        false_neg = sum(n for (t, p), n in counts.items() if t == persona and p != persona)
        scores.append(2 * hits / (2 * hits + false_pos + false_neg))
    return math.fsum(scores) / len(scores) if scores else math.nan


def accuracy(truth: Sequence[str], predicted: Sequence[str]) -> float:
    """Return the share of rows predicted correctly (``nan`` for no rows)."""
    hits = sum(t == p for t, p in zip(truth, predicted, strict=True))
    return hits / len(truth) if truth else math.nan


def held_out(prompt_ids: Iterable[object], *, seed: int, holdout: float) -> set[object]:
    """Return the prompts held out for scoring: ``holdout`` of them, by a seeded hash order.

    Ranking by hash rather than thresholding each hash keeps both sides non-empty with as few
    as two prompts, and a prompt's side depends only on the seed and the set of prompts.
    """
    ranked = sorted(
        set(prompt_ids), key=lambda p: hashlib.sha256(f"{seed}\x00{p}".encode()).digest()
    )
    count = min(max(round(holdout * len(ranked)), 1), len(ranked) - 1)
    return set(ranked[:count]) if len(ranked) > 1 else set()


def robustness(
    rows: Sequence[Mapping[str, Any]],
    *,
    classifier: PersonaClassifier,
    target: str | None = None,
    seed: int = 0,
    holdout: float = 0.5,
    train_methods: Collection[str] | None = None,
) -> dict[str, Any]:
    """Train ``classifier`` on suffix-free answers and score how well personas survive suffixes.

    Prompts are split by :func:`held_out`: the classifier trains on the ``"none"`` rows of the
    training prompts of every method (or of ``train_methods``), and is scored only on rows of
    the held-out prompts.

    Args:
        rows: answers, each with ``text``, ``persona`` (the label), ``method`` (``"prompted"``,
            ``"dpo"``, ...), ``variant`` (``"none"`` or a suffix key such as ``"v0"``) and
            ``prompt_id``.
        classifier: an unfitted :class:`PersonaClassifier`; it is fitted here.
        target: the run's own persona; adds its "in persona" rate, the share of its held-out
            answers classified as itself.
        seed: seeds the prompt split.
        holdout: the share of prompts held out for scoring, in (0, 1).
        train_methods: the methods whose answers teach the classifier the personas; default
            all. A run has one trained persona, so training on its answers would teach the
            classifier "whatever the trained model writes is the persona": the eval stage
            trains on the prompted personas and the unprompted base model instead, and asks
            whether the trained model's answers land on its persona.

    Returns:
        JSON-ready data (undefined numbers are ``None``)::

            {"engine": str, "personas": [...], "target": str | None, "seed": int,
             "holdout": float,
             "train": {"rows": int, "prompts": int}, "test": {"rows": int, "prompts": int},
             "scores": {method: {variant: {"n", "macro_f1", "accuracy",
                                           "in_persona" (with a target)}}},
             "summary": {method: {"variants" (suffix variants scored),
                                  "macro_f1_mean", "macro_f1_sem",
                                  "accuracy_mean", "accuracy_sem",
                                  "pooled_macro_f1", "pooled_accuracy" (suffix rows pooled),
                                  "in_persona_mean", "in_persona_sem" (with a target)}}}

        ``engine`` is the classifier's ``engine`` attribute (its class name if it has none).
        Methods are sorted; within one, ``"none"`` comes first, then the suffixes in order.
        ``in_persona`` is ``None`` where a cell has no answers of the target. The summary's
        means and SEMs are over the suffix variants only, as in the paper's figure.

    Raises:
        DataError: a row lacks one of the keys.
        ConfigError: ``holdout`` is outside (0, 1), or ``target`` is not among the personas.
        EvaluationError: fewer than two personas, or no rows to train on or to score.
    """
    if not 0 < holdout < 1:
        msg = f"holdout must be between 0 and 1 (exclusive), got {holdout}"
        raise ConfigError(msg)
    _check_rows(rows)
    personas = sorted({str(row["persona"]) for row in rows})
    if len(personas) < 2:
        msg = f"robustness needs answers from at least two personas, got {personas or 'none'}"
        raise EvaluationError(msg)
    if target is not None and target not in personas:
        msg = f"target persona {target!r} has no answers; personas: {', '.join(personas)}"
        raise ConfigError(msg)
    held = held_out((row["prompt_id"] for row in rows), seed=seed, holdout=holdout)
    teaching = [row for row in rows if train_methods is None or row["method"] in train_methods]
    train = [
        row for row in teaching if row["prompt_id"] not in held and row["variant"] == NO_SUFFIX
    ]
    test = [row for row in rows if row["prompt_id"] in held]
    if not train or not test:
        msg = (
            f"the prompt split (seed {seed}, holdout {holdout}) left {len(train)} suffix-free "
            f"rows to train on and {len(test)} to score; use more prompts or another holdout"
        )
        raise EvaluationError(msg)
    classifier.fit([str(row["text"]) for row in train], [str(row["persona"]) for row in train])
    predicted = classifier.predict([str(row["text"]) for row in test])
    groups: dict[tuple[str, str], list[tuple[str, str]]] = defaultdict(list)
    for row, guess in zip(test, predicted, strict=True):
        groups[(str(row["method"]), str(row["variant"]))].append((str(row["persona"]), guess))
    methods = sorted({method for method, _ in groups})
    scores = {
        method: {
            variant: _cell(groups[(method, variant)], target)
            for variant in sorted(
                (v for m, v in groups if m == method), key=lambda v: (v != NO_SUFFIX, v)
            )
        }
        for method in methods
    }
    return {
        "engine": str(getattr(classifier, "engine", type(classifier).__name__)),
        "personas": personas,
        "target": target,
        "seed": seed,
        "holdout": holdout,
        "train": {"rows": len(train), "prompts": len({row["prompt_id"] for row in train})},
        "test": {"rows": len(test), "prompts": len({row["prompt_id"] for row in test})},
        "scores": scores,
        "summary": {m: _method_summary(m, scores[m], groups, target) for m in methods},
    }


def _check_rows(rows: Sequence[Mapping[str, Any]]) -> None:
    for index, row in enumerate(rows):
        missing = [key for key in _ROW_KEYS if key not in row]
        if missing:
            msg = f"robustness row {index} lacks {', '.join(missing)}; each needs {_ROW_KEYS}"
            raise DataError(msg)


def _cell(pairs: list[tuple[str, str]], target: str | None) -> dict[str, Any]:
    truth, guesses = [t for t, _ in pairs], [p for _, p in pairs]
    cell: dict[str, Any] = {
        "n": len(pairs),
        "macro_f1": _json(macro_f1(truth, guesses)),
        "accuracy": _json(accuracy(truth, guesses)),
    }
    if target is not None:
        cell["in_persona"] = _json(_in_persona(pairs, target))
    return cell


def _in_persona(pairs: list[tuple[str, str]], target: str) -> float:
    own = [guess for truth, guess in pairs if truth == target]
    return sum(guess == target for guess in own) / len(own) if own else math.nan


def _method_summary(
    method: str,
    by_variant: Mapping[str, Mapping[str, Any]],
    groups: Mapping[tuple[str, str], list[tuple[str, str]]],
    target: str | None,
) -> dict[str, Any]:
    suffixes = [variant for variant in by_variant if variant != NO_SUFFIX]
    summary: dict[str, Any] = {"variants": len(suffixes)}
    keys = (
        ("macro_f1", "accuracy", "in_persona") if target is not None else ("macro_f1", "accuracy")
    )
    for key in keys:
        values = [by_variant[v][key] for v in suffixes if by_variant[v][key] is not None]
        mean, sem = mean_sem(values)
        summary[f"{key}_mean"], summary[f"{key}_sem"] = _json(mean), _json(sem)
    pooled = [pair for variant in suffixes for pair in groups[(method, variant)]]
    truth, guesses = [t for t, _ in pooled], [p for _, p in pooled]
    summary["pooled_macro_f1"] = _json(macro_f1(truth, guesses))
    summary["pooled_accuracy"] = _json(accuracy(truth, guesses))
    return summary


def _json(value: float) -> float | None:
    """``nan`` (no data) as ``None``, which JSON can hold."""
    return None if math.isnan(value) else value
