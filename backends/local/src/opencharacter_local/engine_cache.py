"""The engines loaded on this machine, shared by every sampler that samples the same weights.

Loading an engine takes seconds to minutes and holds a full copy of the weights, so the
teacher, the student and the student at each checkpoint share the engines kept here.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from importlib.util import find_spec

from opencharacter.errors import PermanentBackendError
from opencharacter.types import Completion, GenerationRequest
from opencharacter_local.engines import Engine, EngineFactory, TransformersEngine
from opencharacter_local.vllm_engine import VLLMEngine


def default_engine_factory() -> EngineFactory:
    """Return :class:`VLLMEngine` when vLLM is installed, else :class:`TransformersEngine`."""
    return VLLMEngine if find_spec("vllm") is not None else TransformersEngine


class EngineCache:
    """The engines loaded on this machine, shared by every sampler that uses the same weights.

    A student at its base weights and at each checkpoint needs a different engine; loading
    one takes seconds to minutes and holds a full copy of the weights, so engines are kept
    here by ``(model, base_weights, adapter)`` and the least recently used beyond
    ``capacity`` is closed (vLLM cannot share a GPU with a second copy of itself).

    One batch runs at a time, whichever sampler or thread sends it: the engines share one
    device, and an engine is never closed while it generates.

    Args:
        factory: loads an engine; :func:`default_engine_factory` when ``None``.
        capacity: engines kept loaded at once.
    """

    def __init__(self, factory: EngineFactory | None = None, *, capacity: int = 1) -> None:
        self._factory = factory or default_engine_factory()
        self._capacity = capacity
        self._engines: OrderedDict[tuple[str, str | None, str | None], Engine] = OrderedDict()
        self._lock = threading.Lock()

    def generate(
        self,
        requests: Sequence[GenerationRequest],
        *,
        model: str,
        adapter: str | None = None,
        base_weights: str | None = None,
    ) -> list[Completion]:
        """Complete ``requests`` on the engine for these weights, loading it first if needed.

        Raises:
            PermanentBackendError: the model, weights or adapter cannot be loaded, or the
                engine refused a request.
        """
        with self._lock:
            return self._engine(model, adapter, base_weights).generate(requests)

    def clear(self) -> None:
        """Close every engine, e.g. to give a trainer the GPU; they reload when next needed."""
        with self._lock:
            while self._engines:
                self._engines.popitem()[1].close()

    def _engine(self, model: str, adapter: str | None, base_weights: str | None) -> Engine:
        key = (model, base_weights, adapter)
        if key in self._engines:
            self._engines.move_to_end(key)
            return self._engines[key]
        while len(self._engines) >= self._capacity:
            self._engines.popitem(last=False)[1].close()
        try:
            engine = self._factory(model, adapter=adapter, base_weights=base_weights)
        except (OSError, ValueError) as exc:
            msg = (
                f"cannot load model {model!r} (base weights {base_weights!r}, adapter "
                f"{adapter!r}): {exc}"
            )
            raise PermanentBackendError(msg) from exc
        self._engines[key] = engine
        return engine
