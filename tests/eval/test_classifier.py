"""Tests of the persona classifiers and robustness scoring, on planted-truth synthetic personas."""

from __future__ import annotations

import json
import math
import random
import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from opencharacter.errors import ConfigError, DataError, EvaluationError
from opencharacter.eval.classifier import (
    PersonaClassifier,
    TfidfClassifier,
    accuracy,
    held_out,
    macro_f1,
    make_classifier,
    robustness,
)

pytest.importorskip("sklearn")

# Each persona's own words; every text also draws on the shared filler, so no single filler
# word gives a persona away.
VOCABULARY = {
    "stoic": [
        "endure",
        "calm",
        "duty",
        "virtue",
        "accept",
        "steady",
        "reason",
        "patience",
        "order",
        "discipline",
    ],
    "jester": [
        "haha",
        "silly",
        "joke",
        "prank",
        "giggle",
        "wacky",
        "banana",
        "tickle",
        "goofy",
        "pun",
    ],
    "poet": [
        "moonlight",
        "whisper",
        "petals",
        "longing",
        "silver",
        "tide",
        "ember",
        "velvet",
        "dusk",
        "sorrow",
    ],
}
FILLER = [
    "the",
    "a",
    "of",
    "and",
    "to",
    "is",
    "it",
    "that",
    "in",
    "you",
    "this",
    "answer",
    "question",
    "think",
    "about",
]


def persona_text(rng: random.Random, persona: str, *, signal: int = 4, noise: int = 12) -> str:
    """Return a text with ``signal`` of the persona's words among ``noise`` filler words."""
    words = rng.choices(VOCABULARY[persona], k=signal) + rng.choices(FILLER, k=noise)
    rng.shuffle(words)
    return " ".join(words)


def neutral_text(rng: random.Random) -> str:
    """Return filler only: a persona that broke character and left no trace of itself."""
    return " ".join(rng.choices(FILLER, k=16))


def corpus(rng: random.Random, per_persona: int) -> tuple[list[str], list[str]]:
    """Return separable texts and their personas."""
    texts, labels = [], []
    for persona in VOCABULARY:
        for _ in range(per_persona):
            texts.append(persona_text(rng, persona))
            labels.append(persona)
    return texts, labels


def robustness_rows(prompts: int = 60, seed: int = 0) -> list[dict[str, object]]:
    """Rows where "dpo" keeps its persona under every suffix and "prompted" loses it under v1."""
    rng = random.Random(seed)
    rows: list[dict[str, object]] = []
    for prompt in range(prompts):
        for persona in VOCABULARY:
            for method in ("dpo", "prompted"):
                for variant in ("none", "v0", "v1"):
                    broken = method == "prompted" and variant == "v1"
                    text = neutral_text(rng) if broken else persona_text(rng, persona)
                    rows.append(
                        {
                            "text": f"{text} p{prompt}id",
                            "persona": persona,
                            "method": method,
                            "variant": variant,
                            "prompt_id": f"p{prompt}",
                        }
                    )
    return rows


class Spy:
    """A classifier that records what it was fitted on and asked about, and guesses the first."""

    def __init__(self) -> None:
        self.fitted: list[str] = []
        self.asked: list[str] = []

    def fit(self, texts, labels) -> None:
        self.fitted, self.labels = list(texts), sorted(set(labels))

    def predict(self, texts) -> list[str]:
        self.asked = list(texts)
        return [self.labels[0] for _ in texts]

    def probabilities(self, texts) -> list[dict[str, float]]:
        return [{label: 1 / len(self.labels) for label in self.labels} for _ in texts]


def prompt_of(text: str) -> str:
    return text.rsplit(" ", 1)[1].removesuffix("id")


def test_tfidf_separates_planted_personas():
    """TF-IDF with logistic regression tells separable personas apart on unseen texts."""
    rng = random.Random(1)
    train, test = corpus(rng, 60), corpus(rng, 60)
    classifier = make_classifier("tfidf")
    classifier.fit(*train)
    score = macro_f1(test[1], classifier.predict(test[0]))
    print(f"tfidf planted macro-F1: {score:.3f}")
    assert score >= 0.9


def test_tfidf_falls_to_chance_on_shuffled_labels():
    """Labels shuffled at random carry no signal, and the classifier scores near chance (1/3)."""
    rng = random.Random(2)
    texts, labels = corpus(rng, 100)
    rng.shuffle(labels)
    classifier = make_classifier("tfidf", seed=3)
    classifier.fit(texts, labels)
    test = corpus(rng, 100)
    score = macro_f1(test[1], classifier.predict(test[0]))
    print(f"tfidf shuffled-label macro-F1: {score:.3f}")
    assert score < 0.6


def test_tfidf_probabilities_cover_every_persona_and_agree_with_predict():
    """Each text gets a probability per trained persona, summing to one, the top one predicted."""
    texts, labels = corpus(random.Random(4), 20)
    classifier = make_classifier("tfidf", c="5")
    classifier.fit(texts, labels)
    probabilities = classifier.probabilities(texts[:10])
    assert all(set(p) == set(VOCABULARY) for p in probabilities)
    assert all(math.isclose(sum(p.values()), 1.0) for p in probabilities)
    assert [max(p, key=p.__getitem__) for p in probabilities] == classifier.predict(texts[:10])
    assert isinstance(classifier, PersonaClassifier)


def test_robustness_finds_the_planted_break_and_keeps_the_planted_persona():
    """A method whose answers lose the persona under one suffix scores low only there."""
    result = robustness(robustness_rows(), classifier=make_classifier(), target="poet")
    json.dumps(result, allow_nan=False)
    scores = result["scores"]
    print({m: {v: round(c["macro_f1"], 3) for v, c in by.items()} for m, by in scores.items()})
    assert result["engine"] == "tfidf"
    assert list(scores) == ["dpo", "prompted"]
    assert list(scores["dpo"]) == ["none", "v0", "v1"]
    for method, variant in [("dpo", "none"), ("dpo", "v0"), ("dpo", "v1"), ("prompted", "v0")]:
        assert scores[method][variant]["macro_f1"] >= 0.9
        assert scores[method][variant]["in_persona"] >= 0.9
    assert scores["prompted"]["v1"]["macro_f1"] < 0.6
    summary = result["summary"]
    assert summary["dpo"]["variants"] == 2
    assert summary["dpo"]["macro_f1_mean"] > summary["prompted"]["macro_f1_mean"]
    assert summary["prompted"]["macro_f1_sem"] > summary["dpo"]["macro_f1_sem"]
    assert summary["prompted"]["pooled_macro_f1"] < summary["dpo"]["pooled_macro_f1"]
    cells = [c for by_variant in scores.values() for c in by_variant.values()]
    assert sum(c["n"] for c in cells) == result["test"]["rows"]


def test_robustness_never_scores_training_rows():
    """The classifier is fitted on suffix-free rows of some prompts and scored on all the others."""
    rows = robustness_rows(prompts=30)
    spy = Spy()
    result = robustness(rows, classifier=spy, seed=7, holdout=0.4)
    fitted = {prompt_of(text) for text in spy.fitted}
    asked = {prompt_of(text) for text in spy.asked}
    assert fitted
    assert asked
    assert fitted.isdisjoint(asked)
    assert fitted | asked == {row["prompt_id"] for row in rows}
    suffix_free = {row["text"] for row in rows if row["variant"] == "none"}
    assert set(spy.fitted) <= suffix_free
    cells = [c for by_variant in result["scores"].values() for c in by_variant.values()]
    assert len(spy.asked) == result["test"]["rows"] == sum(c["n"] for c in cells)
    assert result["engine"] == "Spy"
    assert result["train"]["prompts"] == len(fitted)


@given(
    seed=st.integers(0, 2**32),
    holdout=st.floats(0.01, 0.99),
    prompts=st.lists(st.one_of(st.integers(), st.text()), min_size=2, unique=True),
)
def test_split_keeps_both_sides_and_depends_only_on_seed_and_prompts(seed, holdout, prompts):
    """Both sides non-empty; the prompts' order does not matter; more holdout holds more."""
    held = held_out(prompts, seed=seed, holdout=holdout)
    assert 0 < len(held) < len(prompts)
    assert held == held_out(reversed(prompts), seed=seed, holdout=holdout)
    assert held <= held_out(prompts, seed=seed, holdout=min(0.99, holdout + 0.1))


labels = st.sampled_from("abcd")


@given(st.lists(st.tuples(labels, labels), min_size=1, max_size=60))
def test_metrics_match_scikit_learn(pairs):
    """Macro-F1 over the true personas and accuracy equal scikit-learn's."""
    from sklearn.metrics import accuracy_score, f1_score  # noqa: PLC0415

    truth, predicted = [t for t, _ in pairs], [p for _, p in pairs]
    expected = f1_score(truth, predicted, labels=sorted(set(truth)), average="macro")
    assert math.isclose(macro_f1(truth, predicted), expected, abs_tol=1e-12)
    assert math.isclose(accuracy(truth, predicted), accuracy_score(truth, predicted))


def test_unknown_engine_and_option_name_the_choices():
    """A wrong engine or option is a ConfigError that lists what is valid."""
    with pytest.raises(ConfigError, match="encoder, tfidf"):
        make_classifier("bert")
    with pytest.raises(ConfigError, match="max_features"):
        make_classifier("tfidf", max_feature=10)
    with pytest.raises(ConfigError, match="learning_rate"):
        make_classifier("encoder", learning_rate=-1.0)


def test_robustness_refuses_data_that_cannot_give_numbers():
    """One persona, a missing key, an unknown target or an empty split each raise clearly."""
    rows = robustness_rows(prompts=4)
    with pytest.raises(EvaluationError, match="two personas"):
        robustness([r for r in rows if r["persona"] == "poet"], classifier=Spy())
    with pytest.raises(DataError, match="prompt_id"):
        robustness(
            [{"text": "x", "persona": "a", "method": "m", "variant": "none"}], classifier=Spy()
        )
    with pytest.raises(ConfigError, match="target"):
        robustness(rows, classifier=Spy(), target="pirate")
    with pytest.raises(ConfigError, match="holdout"):
        robustness(rows, classifier=Spy(), holdout=1.0)
    one_prompt = [r for r in rows if r["prompt_id"] == "p0"]
    with pytest.raises(EvaluationError, match="prompt split"):
        robustness(one_prompt, classifier=Spy())
    with pytest.raises(EvaluationError, match="fit"):
        TfidfClassifier().predict(["hello"])


def test_import_stays_light():
    """Importing the classifier module pulls in neither scikit-learn nor torch."""
    code = (
        "import sys, opencharacter.eval.classifier, opencharacter.eval.encoder\n"
        "print([m for m in ('sklearn', 'torch', 'transformers') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.fixture(scope="module")
def tiny_encoder(tmp_path_factory):
    """A random two-layer ModernBERT and a WordPiece tokenizer, built offline in a second."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    from tokenizers import (  # noqa: PLC0415 - comes with transformers
        Tokenizer,
        models,
        normalizers,
        pre_tokenizers,
        processors,
        trainers,
    )

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    wordpiece = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    wordpiece.normalizer = normalizers.Lowercase()
    wordpiece.pre_tokenizer = pre_tokenizers.Whitespace()
    words = [w for vocabulary in VOCABULARY.values() for w in vocabulary] + FILLER
    trainer = trainers.WordPieceTrainer(
        vocab_size=300, special_tokens=specials, show_progress=False
    )
    wordpiece.train_from_iterator([" ".join(words)] * 3, trainer=trainer)
    ids = {name: wordpiece.token_to_id(name) for name in specials}
    wordpiece.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", ids["[CLS]"]), ("[SEP]", ids["[SEP]"])]
    )
    tokenizer = transformers.PreTrainedTokenizerFast(
        tokenizer_object=wordpiece,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_max_length=64,
    )
    config = transformers.ModernBertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        max_position_embeddings=64,
        pad_token_id=ids["[PAD]"],
        cls_token_id=ids["[CLS]"],
        sep_token_id=ids["[SEP]"],
        bos_token_id=ids["[CLS]"],
        eos_token_id=ids["[SEP]"],
    )
    folder = tmp_path_factory.mktemp("tiny-encoder")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        transformers.ModernBertModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: more threads only contend on a shared CPU
    yield folder
    torch.set_num_threads(threads)


def test_encoder_learns_planted_personas_offline(tiny_encoder):
    """The encoder engine fine-tunes a local encoder, predicts only trained personas, and learns."""
    rng = random.Random(5)
    texts, labels = corpus(rng, 16)
    test = corpus(rng, 8)
    options = {"model": str(tiny_encoder), "device": "cpu", "learning_rate": 5e-3, "epochs": 8}
    classifier = make_classifier("encoder", **options, accumulation=1, max_length=32)
    classifier.fit(texts, labels)
    predicted = classifier.predict(test[0])
    score = macro_f1(test[1], predicted)
    print(f"tiny encoder planted macro-F1: {score:.3f}")
    assert set(predicted) <= set(VOCABULARY)
    assert score >= 0.8
    probabilities = classifier.probabilities(test[0][:4])
    assert all(set(p) == set(VOCABULARY) for p in probabilities)
    assert all(math.isclose(sum(p.values()), 1.0, rel_tol=1e-5) for p in probabilities)
    again = make_classifier("encoder", **options, accumulation=1, max_length=32)
    again.fit(texts, labels)
    assert again.predict(test[0]) == predicted
