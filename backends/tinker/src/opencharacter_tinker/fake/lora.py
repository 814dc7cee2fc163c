"""LoRA adapters as values: their shape, their tensors, and the PEFT folder they download as.

The numbers are PEFT's (``y = W x + (alpha / r) * B A x``, ``A`` Kaiming-uniform and ``B`` zero
at init, no dropout) and :meth:`LoraWeights.peft_files` writes a standard PEFT adapter folder, so
a downloaded adapter loads with ``peft.PeftModel.from_pretrained`` and gives the same logits.
How an adapter is applied to a model is :mod:`opencharacter_tinker.fake.served`'s business.
"""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass

import torch
from safetensors.torch import save as safetensors_save


@dataclass(frozen=True)
class LoraSpec:
    """The shape of a LoRA, as ``LoraConfig`` gives it plus the server's fixed alpha.

    ``train_unembed`` is recorded (it is reported back) but never applied: the fake adapts only
    attention and MLP projections. Real Tinker also adapts the unembedding; for the tiny models
    this fake serves, leaving it out changes nothing a test can rely on.
    """

    rank: int
    alpha: float
    train_attn: bool = True
    train_mlp: bool = True
    train_unembed: bool = True

    @property
    def scale(self) -> float:
        """PEFT's scaling factor: ``alpha / r`` (no rsLoRA)."""
        return self.alpha / self.rank


@dataclass
class LoraWeights:
    """One adapter: ``(A, B)`` per adapted module path, in PEFT's layout (``A`` is r x in)."""

    spec: LoraSpec
    tensors: dict[str, tuple[torch.Tensor, torch.Tensor]]

    def parameters(self) -> list[torch.Tensor]:
        """The tensors in a fixed order (sorted paths, ``A`` before ``B``): the optimizer's."""
        return [t for path in sorted(self.tensors) for t in self.tensors[path]]

    def snapshot(self) -> LoraWeights:
        """An immutable copy, detached from autograd: what a checkpoint or sampler holds."""
        frozen = {p: (a.detach().clone(), b.detach().clone()) for p, (a, b) in self.tensors.items()}
        return LoraWeights(self.spec, frozen)

    def load_(self, other: LoraWeights) -> None:
        """Copy ``other``'s values into these tensors in place (the optimizer keeps its refs)."""
        with torch.no_grad():
            for path, (a, b) in self.tensors.items():
                a.copy_(other.tensors[path][0])
                b.copy_(other.tensors[path][1])

    def nbytes(self) -> int:
        """The adapter's size, for checkpoint listings."""
        return sum(t.numel() * t.element_size() for t in self.parameters())

    def peft_files(self, base_model: str) -> dict[str, bytes]:
        """The adapter as a PEFT folder: ``adapter_config.json`` and ``adapter_model.safetensors``.

        Keys follow PEFT's saved format (``base_model.model.<module>.lora_A.weight``), which is
        also what the real service's archives hold for dense Qwen3 attention and MLP layers.
        """
        tensors: dict[str, torch.Tensor] = {}
        for path, (a, b) in sorted(self.tensors.items()):
            tensors[f"base_model.model.{path}.lora_A.weight"] = a.detach().contiguous().cpu()
            tensors[f"base_model.model.{path}.lora_B.weight"] = b.detach().contiguous().cpu()
        config = {
            "peft_type": "LORA",
            "task_type": "CAUSAL_LM",
            "base_model_name_or_path": base_model,
            "r": self.spec.rank,
            "lora_alpha": self.spec.alpha,
            "lora_dropout": 0.0,
            "bias": "none",
            "target_modules": sorted({path.rsplit(".", 1)[-1] for path in self.tensors}),
            "fan_in_fan_out": False,
            "inference_mode": True,
            "init_lora_weights": True,
            "use_rslora": False,
            "use_dora": False,
            "modules_to_save": None,
        }
        return {
            "adapter_config.json": json.dumps(config, indent=2).encode(),
            "adapter_model.safetensors": safetensors_save(tensors, metadata={"format": "pt"}),
        }


def tar_archive(files: Mapping[str, bytes]) -> bytes:
    """Pack files at the archive root, as the real service's checkpoint archives are laid out."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()
