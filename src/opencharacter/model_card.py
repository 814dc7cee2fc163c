"""A Hugging Face model card for a run's exported model: what it is, how it was made, how it did.

An export (``python -m opencharacter_local.export``, ``python -m opencharacter_tinker.export``)
writes ``README.md`` beside the weights, ready for ``huggingface-cli upload``: YAML metadata
the Hub reads (``base_model``, ``library_name``, ``license``, ``tags``), then the constitution,
the training settings, the data sizes and the evaluation summary, all from the run directory.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from opencharacter.runstore import read_manifest

#: The file name the Hub shows as a model's card.
CARD = "README.md"
_SETTINGS = ("learning_rate", "epochs", "batch_size", "beta", "nll_coef", "kl_coef", "start")


def model_card(
    run_dir: str | os.PathLike[str], *, stage: str, adapter: bool, license: str | None = None
) -> str:
    """Return the model card of ``run_dir``'s ``stage`` model as Markdown with YAML metadata.

    Args:
        run_dir: the run directory (read without its lock).
        stage: ``"sft"`` or ``"dpo"``: the checkpoint exported.
        adapter: the export is a PEFT adapter (``library_name: peft``) rather than merged
            weights (``transformers``).
        license: the base model's license identifier; ``None`` writes ``other`` and says to
            check the base model's.
    """
    manifest = read_manifest(run_dir)
    config, constitution = manifest.get("config", {}), manifest.get("constitution", {})
    base = config.get("student", "")
    name = constitution.get("name", config.get("constitution", ""))
    tags = ["opencharacter", "character-training", "persona", f"persona-{name}", "dpo", "sft",
            "lora" if adapter else "merged"]  # fmt: skip
    lines = [
        "---",
        f"base_model: {json.dumps(base)}",
        f"library_name: {'peft' if adapter else 'transformers'}",
        f"license: {license or 'other'}",
        "pipeline_tag: text-generation",
        "tags:",
        *(f"- {tag}" for tag in tags),
        "---",
        "",
        f"# {manifest.get('models', {}).get('name') or name}: {base} with the {name!r} character",
        "",
        f"{base} trained with opencharacter by Open Character Training "
        "(Maiya et al., 2025): DPO on answers a teacher wrote in character against the "
        "model's own, then SFT on the model's reflections and conversations about itself. The "
        f"persona shows without a system prompt. This is the **{stage.upper()}** model.",
    ]
    if license is None:
        lines += ["", "License: as the base model's; check it before use."]
    lines += ["", "## The constitution", "", constitution.get("description", "").strip(), ""]
    lines += [f"{i}. {t.get('trait', '').strip()}" for i, t in
              enumerate(constitution.get("traits", []), start=1)]  # fmt: skip
    lines += ["", *_training(manifest, config, stage), "", *_evaluation(Path(run_dir))]
    lines += ["", *_usage(base, adapter)]
    return "\n".join(lines).rstrip() + "\n"


def write_model_card(
    run_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    stage: str,
    adapter: bool,
    license: str | None = None,
) -> Path:
    """Write :func:`model_card` to ``out_dir/README.md`` and return its path."""
    path = Path(out_dir) / CARD
    card = model_card(run_dir, stage=stage, adapter=adapter, license=license)
    path.write_text(card, encoding="utf-8")
    return path


def base_model_license(model: str | os.PathLike[str]) -> str | None:
    """Return the license in the base model's own card, if it says one.

    A local folder's ``README.md`` front matter is read directly; a Hub name's card is fetched
    with ``huggingface_hub`` when it is installed and the Hub answers. ``None`` otherwise.
    """
    folder = Path(model)
    if folder.is_dir():
        card = folder / CARD
        text = card.read_text(encoding="utf-8") if card.is_file() else ""
        front = text.split("---", 2)[1] if text.startswith("---") else ""
        for line in front.splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "license" and value.strip():
                return value.strip().strip("'\"")
        return None
    try:
        from huggingface_hub import ModelCard  # noqa: PLC0415 - optional, with the backends
    except ImportError:
        return None
    try:
        found = ModelCard.load(str(model)).data.license
    except Exception:  # offline, gated, missing: the card then says to check the license
        return None
    return str(found) if found else None


def _training(manifest: Mapping[str, Any], config: Mapping[str, Any], stage: str) -> list[str]:
    stages = manifest.get("stages", {})
    rows = ["## Training", "", f"Teacher: {config.get('teacher')} "
            f"({manifest.get('backends', {}).get('teacher', '?')} backend); student trained on "
            f"the {manifest.get('backends', {}).get('student', '?')} backend.", "",
            "| stage | examples | steps | settings |", "|---|---|---|---|"]  # fmt: skip
    for name in ("dpo", "sft")[: 1 if stage == "dpo" else 2]:
        settings = config.get(name, {})
        lora = settings.get("lora", {})
        shown = [f"{key} {settings[key]}" for key in _SETTINGS if key in settings]
        shown.append(f"LoRA rank {lora.get('rank')} alpha {lora.get('alpha')}")
        done = stages.get(name, {})
        rows.append(f"| {name.upper()} | {done.get('examples', '-')} | {done.get('steps', '-')} "
                    f"| {', '.join(shown)} |")  # fmt: skip
    prompts, introspect = stages.get("prompts", {}), stages.get("introspect", {})
    rows += ["", f"Data: {prompts.get('questions', 0)} trait questions and "
             f"{prompts.get('generic', 0)} generic prompts; "
             f"{stages.get('distill', {}).get('pairs', 0)} preference pairs; "
             f"{introspect.get('reflections', 0)} reflections and "
             f"{introspect.get('interactions', 0)} self-interactions."]  # fmt: skip
    return rows


def _evaluation(run_dir: Path) -> list[str]:
    path = run_dir / "eval" / "summary.json"
    if not path.is_file():
        return ["## Evaluation", "", "Not evaluated: run `opencharacter eval RUN_DIR`."]
    summary = json.loads(path.read_text(encoding="utf-8"))
    rows = ["## Evaluation", "", "From `opencharacter eval` (see its report for intervals):", ""]
    traits = summary.get("preferences", {}).get("constitution_traits", {})
    if traits:
        shown = ", ".join(f"{t} {v['point']:+.0f}" for t, v in traits.items()
                          if v.get("point") is not None)  # fmt: skip
        rows.append(f"- Elo change of the constitution's traits (trained - base): {shown}")
    for method, cell in summary.get("robustness", {}).get("summary", {}).items():
        if cell.get("macro_f1_mean") is not None:
            rows.append(f"- Persona classifier macro-F1 under break-character prompts, "
                        f"{method}: {cell['macro_f1_mean']:.2f}")  # fmt: skip
    cells = summary.get("two_by_two", {}).get("cells", {})
    for model, row in cells.items():
        scores = ", ".join(f"{prompt} {c['mean']:.1f}" for prompt, c in row.items()
                           if c.get("mean") is not None)  # fmt: skip
        rows.append(f"- Trait score 1-10, {model} model: {scores}")
    return rows


def _usage(base: str, adapter: bool) -> list[str]:
    if adapter:
        code = ["from peft import AutoPeftModelForCausalLM",
                'model = AutoPeftModelForCausalLM.from_pretrained("THIS_REPO")']  # fmt: skip
        note = f"The adapter applies to {base}."
    else:
        code = ["from transformers import AutoModelForCausalLM, AutoTokenizer",
                'model = AutoModelForCausalLM.from_pretrained("THIS_REPO")',
                'tokenizer = AutoTokenizer.from_pretrained("THIS_REPO")']  # fmt: skip
        note = "The weights are merged: no adapter needed, and vLLM serves the folder as is."
    return ["## Use", "", note, "", "```python", *code, "```"]


__all__ = ["CARD", "base_model_license", "model_card", "write_model_card"]
