"""The ``encoder`` persona classifier: a transformers encoder fine-tuned as the paper did.

The paper fine-tuned ModernBERT-base for one epoch on the suffix-free answers (batch 8 with two
accumulation steps, learning rate 5e-4, cosine schedule with 5% warm-up, weight decay 1e-6,
gradient norm clipped at 1). Those are the defaults here. A plain torch loop does it: the
Trainer would add a datasets dependency, checkpoint folders and logging for no gain at this
size. torch and transformers are imported only when the classifier is fitted.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from typing import Any

import attrs

from opencharacter.errors import ConfigError, EvaluationError, MissingDependencyError
from opencharacter.eval.classifier import check_training_data, positive

DEFAULT_MODEL = "answerdotai/ModernBERT-base"


def _share(_: object, attribute: attrs.Attribute[Any], value: float) -> None:
    if not 0 <= value < 1:
        msg = f"{attribute.name} must be in [0, 1), got {value}"
        raise ConfigError(msg)


@attrs.frozen(kw_only=True)
class EncoderOptions:
    """Options of the ``encoder`` engine; the defaults are the paper's.

    Attributes:
        model: a Hub name or a local folder holding an encoder and its tokenizer.
        epochs: passes over the training answers. Paper: 1.
        learning_rate: peak AdamW learning rate. Paper: 5e-4.
        batch_size: answers per forward pass (also when predicting). Paper: 8.
        accumulation: batches per optimiser step. Paper: 2.
        max_length: tokens kept per answer (the rest is cut). Paper: 8192; 2048 covers
            answers of 1,024 generated tokens at a quarter of the memory.
        warmup: share of the steps spent warming the learning rate up. Paper: 0.05.
        weight_decay: AdamW weight decay. Paper: 1e-6.
        max_grad_norm: gradient norm clip. Paper: 1.0.
        device: ``"auto"`` (CUDA when present, else CPU), or a torch device such as ``"cuda:1"``.
        seed: seeds the new classification head and the order of the answers.
    """

    model: str = DEFAULT_MODEL
    epochs: int = attrs.field(default=1, validator=positive)
    learning_rate: float = attrs.field(default=5e-4, validator=positive)
    batch_size: int = attrs.field(default=8, validator=positive)
    accumulation: int = attrs.field(default=2, validator=positive)
    max_length: int = attrs.field(default=2048, validator=positive)
    warmup: float = attrs.field(default=0.05, validator=_share)
    weight_decay: float = attrs.field(default=1e-6, validator=attrs.validators.ge(0.0))
    max_grad_norm: float = attrs.field(default=1.0, validator=positive)
    device: str = "auto"
    seed: int = 0


class EncoderClassifier:
    """A sequence-classification encoder, one label per persona, trained from its base weights."""

    Options = EncoderOptions
    engine = "encoder"

    def __init__(self, options: EncoderOptions | None = None) -> None:
        self.options = options or EncoderOptions()
        self._model: Any = None
        self._tokenizer: Any = None

    def fit(self, texts: Sequence[str], labels: Sequence[str]) -> None:
        """Fine-tune a fresh copy of the encoder on ``texts``; a second call starts afresh."""
        personas = check_training_data(texts, labels)
        torch, transformers = _imports()
        opts = self.options
        tokenizer = transformers.AutoTokenizer.from_pretrained(opts.model)
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
        with torch.random.fork_rng(devices=[]):  # seed the new head, leave the caller's RNG be
            torch.manual_seed(opts.seed)
            model = transformers.AutoModelForSequenceClassification.from_pretrained(
                opts.model,
                num_labels=len(personas),
                id2label=dict(enumerate(personas)),
                label2id={label: i for i, label in enumerate(personas)},
                ignore_mismatched_sizes=True,  # an already fine-tuned head is replaced
            )
        model.config.pad_token_id = tokenizer.pad_token_id
        model.to(_device(torch, opts.device)).train()
        order = list(range(len(texts)))
        batches = math.ceil(len(order) / opts.batch_size)
        steps = math.ceil(batches / opts.accumulation) * opts.epochs
        optimizer = torch.optim.AdamW(
            model.parameters(), lr=opts.learning_rate, weight_decay=opts.weight_decay
        )
        schedule = transformers.get_cosine_schedule_with_warmup(
            optimizer, math.ceil(opts.warmup * steps), steps
        )
        shuffler = random.Random(opts.seed)
        for _ in range(opts.epochs):
            shuffler.shuffle(order)
            for number in range(batches):
                chosen = order[number * opts.batch_size : (number + 1) * opts.batch_size]
                inputs = self._encode(tokenizer, model, [texts[i] for i in chosen])
                target = torch.tensor([personas.index(labels[i]) for i in chosen])
                with _autocast(torch, model.device):
                    loss = model(**inputs, labels=target.to(model.device)).loss
                (loss / opts.accumulation).backward()
                if (number + 1) % opts.accumulation == 0 or number + 1 == batches:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), opts.max_grad_norm)
                    optimizer.step()
                    schedule.step()
                    optimizer.zero_grad()
        self._model, self._tokenizer = model.eval(), tokenizer

    def predict(self, texts: Sequence[str]) -> list[str]:
        """Return the most likely persona of each text."""
        return [max(row, key=row.__getitem__) for row in self.probabilities(texts)]

    def probabilities(self, texts: Sequence[str]) -> list[dict[str, float]]:
        """Return every persona's probability for each text, batching texts of like length."""
        if self._model is None:
            msg = "the encoder classifier is not fitted yet; call fit() before predicting"
            raise EvaluationError(msg)
        torch, _ = _imports()
        model, size = self._model, self.options.batch_size
        names = [model.config.id2label[i] for i in range(model.config.num_labels)]
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # less padding
        result: list[dict[str, float]] = [{} for _ in texts]
        with torch.inference_mode():
            for start in range(0, len(order), size):
                chosen = order[start : start + size]
                inputs = self._encode(self._tokenizer, model, [texts[i] for i in chosen])
                with _autocast(torch, model.device):
                    logits = model(**inputs).logits
                for i, row in zip(chosen, logits.float().softmax(-1).tolist(), strict=True):
                    result[i] = dict(zip(names, row, strict=True))
        return result

    def _encode(self, tokenizer: Any, model: Any, texts: list[str]) -> Any:
        limit = self.options.max_length
        if isinstance(tokenizer.model_max_length, int) and tokenizer.model_max_length < limit:
            limit = tokenizer.model_max_length  # past its positions the encoder fails
        inputs = tokenizer(
            texts, padding=True, truncation=True, max_length=limit, return_tensors="pt"
        )
        return inputs.to(model.device)


def _imports() -> tuple[Any, Any]:
    """Import torch and transformers lazily, turning their absence into an install hint."""
    try:
        import torch  # noqa: PLC0415 - optional and heavy
        import transformers  # noqa: PLC0415 - optional and heavy
    except ImportError as exc:
        msg = (
            "the encoder persona classifier needs torch and transformers: "
            'pip install "opencharacter[local]" (or pip install torch transformers), '
            "or use the tfidf engine"
        )
        raise MissingDependencyError(msg) from exc
    return torch, transformers


def _device(torch: Any, name: str) -> Any:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(name)
    except RuntimeError as exc:
        msg = f"device {name!r} is not a torch device; use 'auto', 'cpu' or 'cuda[:N]'"
        raise ConfigError(msg) from exc


def _autocast(torch: Any, device: Any) -> Any:
    """bf16 on GPUs that have it, as the paper trained; full precision elsewhere."""
    enabled = device.type == "cuda" and torch.cuda.is_bf16_supported()
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=enabled)
