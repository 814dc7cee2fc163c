"""The echo backend: every completion repeats the request's last message."""

from __future__ import annotations

import attrs

from opencharacter import Capabilities, Completion


@attrs.frozen
class EchoSampler:
    model: str

    async def generate(self, requests):
        for request in requests:
            text = request.messages[-1].content
            for sample in range(request.samples):
                yield Completion(
                    request_id=request.id,
                    text=text,
                    finish_reason="stop",
                    model=self.model,
                    sample=sample,
                )


@attrs.frozen(kw_only=True)
class EchoBackend:
    prefix: str = ""
    name = "echo"
    capabilities = Capabilities(training=False)

    def teacher(self, model):
        return EchoSampler(self.prefix + model)

    def student(self, model, checkpoint=None):
        raise NotImplementedError

    def trainer(self):
        raise NotImplementedError

    def check_models(self, *, sample=(), train=()):
        pass
