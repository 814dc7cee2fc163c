"""Merging: a trained adapter and the weights it applies to, saved as one full model.

The trainer merges a checkpoint before training a new LoRA on it (so the DPO reference is the
student being trained), and ``python -m opencharacter_local.export`` merges a run's final
adapter for ``from_pretrained`` or vLLM.
"""

from __future__ import annotations

from pathlib import Path

import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM, AutoTokenizer

from opencharacter.types import Checkpoint
from opencharacter_local.tiny import resolve_model


def merge_adapter(
    checkpoint: Checkpoint, out_dir: Path, *, dtype: torch.dtype | str = "auto"
) -> Path:
    """Export a checkpoint as one full model: its adapter merged into the weights it applies to.

    The weights are ``meta["base_weights"]`` when the adapter was stacked on merged weights,
    else the checkpoint's base model. The tokenizer is saved alongside, so ``out_dir`` loads
    with ``from_pretrained`` (and serves in vLLM) without the adapter.

    Args:
        checkpoint: a local checkpoint whose ``uri`` is a PEFT adapter folder.
        out_dir: where the merged model and tokenizer are written.
        dtype: the dtype to merge and save in; ``"auto"`` keeps the base weights' own dtype.

    Returns:
        ``out_dir``.
    """
    weights = checkpoint.meta.get("base_weights") or resolve_model(checkpoint.base_model)
    base = AutoModelForCausalLM.from_pretrained(weights, dtype=dtype)
    merged = PeftModel.from_pretrained(base, checkpoint.uri).merge_and_unload()
    out_dir = Path(out_dir)
    merged.save_pretrained(out_dir)
    has_tokenizer = (Path(checkpoint.uri) / "tokenizer_config.json").is_file()
    AutoTokenizer.from_pretrained(checkpoint.uri if has_tokenizer else weights).save_pretrained(
        out_dir
    )
    return out_dir


__all__ = ["merge_adapter"]
