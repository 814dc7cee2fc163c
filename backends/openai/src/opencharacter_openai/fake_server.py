"""An OpenAI-compatible server on loopback, for tests and benchmarks without a real one.

It speaks what the official client sends and reads: ``GET /v1/models`` and
``POST /v1/chat/completions`` (``n`` choices, ``seed``, ``max_completion_tokens``, ``stop``,
usage with cached prompt tokens) and the OpenAI error body. It rejects a wrong key (401) and
an unknown model (404), refuses a prompt over its context (400, in vLLM's words), and fails on
demand: :meth:`FakeOpenAIServer.fail_next` queues 429s (with ``Retry-After``) or 5xx answers.
Every request waits ``latency`` seconds, each on its own thread, as a server batching many
requests would. Answers are deterministic in the messages, the seed and the choice index.

Run one for a manual test: ``python -m opencharacter_openai.fake_server --model my-teacher``.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import attrs

#: A status, a JSON body and extra headers.
_Reply = tuple[int, dict[str, Any], dict[str, str]]
#: Writes choice ``index`` of an answer to ``messages`` (the request body's list).
Writer = Callable[[Sequence[Mapping[str, Any]], int, int | None], str]

_WORDS = ("well", "honestly", "the", "answer", "is", "that", "it", "depends", "on", "what",
          "you", "mean", "and", "why", "it", "matters", "to", "you", "today")  # fmt: skip


def default_writer(messages: Sequence[Mapping[str, Any]], index: int, seed: int | None) -> str:
    """Return a plain, deterministic answer of 12 to 30 words."""
    digest = hashlib.sha256(json.dumps([messages, index, seed]).encode()).digest()
    return " ".join(_WORDS[b % len(_WORDS)] for b in digest[: 12 + digest[0] % 19]) + "."


@attrs.frozen
class Failure:
    """A scripted failure: an HTTP status, and ``Retry-After`` seconds for a 429."""

    status: int
    retry_after: float | None = None


class FakeOpenAIServer:
    """A chat-completions server on ``127.0.0.1``, used as a context manager.

    Args:
        models: the served model names, each with its ``owned_by`` (``"vllm"``, ``"openai"``).
        api_key: the key to require; ``None`` accepts any (as a plain ``vllm serve``).
        latency: seconds every request waits before its answer.
        context_tokens: the longest prompt (4 characters a token) before a 400.
        writer: writes the answers.
    """

    def __init__(
        self,
        models: Mapping[str, str] | Sequence[str] = ("fake-model",),
        *,
        api_key: str | None = None,
        latency: float = 0.0,
        context_tokens: int = 32_768,
        writer: Writer = default_writer,
    ) -> None:
        owners = models if isinstance(models, Mapping) else dict.fromkeys(models, "vllm")
        self.models = dict(owners)
        self.api_key = api_key
        self.latency = latency
        self.context_tokens = context_tokens
        self.writer = writer
        self.calls: Counter[str] = Counter()
        self.bodies: list[dict[str, Any]] = []
        self.in_flight = self.peak_in_flight = 0
        self._failures: deque[Failure] = deque()
        self._lock = threading.Lock()
        self._http = _Server(("127.0.0.1", 0), _handler(self))
        self._thread = threading.Thread(target=self._http.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        """The address clients use, ending in ``/v1``."""
        host, port = self._http.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    def fail_next(self, status: int, times: int = 1, *, retry_after: float | None = None) -> None:
        """Answer the next ``times`` chat requests with ``status`` instead of an answer."""
        with self._lock:
            self._failures.extend(Failure(status, retry_after) for _ in range(times))

    def __enter__(self) -> FakeOpenAIServer:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._http.shutdown()
        self._http.server_close()
        self._thread.join()

    # The handler's side ---------------------------------------------------------------------

    def answer(self, path: str, headers: Mapping[str, str], body: bytes) -> _Reply:
        """Return the status, JSON body and extra headers for one request."""
        self.calls[path] += 1
        if self.api_key is not None and headers.get("authorization") != f"Bearer {self.api_key}":
            return _error(401, "Incorrect API key provided.", "invalid_api_key")
        if path == "/v1/models":
            data = [{"id": m, "object": "model", "created": 0, "owned_by": owner}
                    for m, owner in self.models.items()]  # fmt: skip
            return 200, {"object": "list", "data": data}, {}
        if path != "/v1/chat/completions":
            return _error(404, f"no route {path}", "not_found")
        request = json.loads(body)
        with self._lock:
            self.bodies.append(request)
            failure = self._failures.popleft() if self._failures else None
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            time.sleep(self.latency)
            return self._complete(request, failure)
        finally:
            with self._lock:
                self.in_flight -= 1

    def _complete(self, request: dict[str, Any], failure: Failure | None) -> _Reply:
        if failure is not None:
            wait = failure.retry_after
            headers = {} if wait is None else {"retry-after": f"{wait:g}"}
            status, body, _ = _error(failure.status, "scripted failure", "server_error")
            return status, body, headers
        model = request.get("model")
        if model not in self.models:
            return _error(404, f"The model `{model}` does not exist.", "model_not_found")
        messages = request["messages"]
        prompt = sum(len(str(m.get("content", ""))) for m in messages) // 4 + 1
        if prompt > self.context_tokens:
            return _error(400, f"This model's maximum context length is {self.context_tokens} "
                          f"tokens. However, you requested {prompt} tokens in the messages.",
                          "BadRequestError")  # fmt: skip
        limit = request.get("max_completion_tokens") or request.get("max_tokens") or 1024
        choices, written = [], 0
        for index in range(int(request.get("n") or 1)):
            words = self.writer(messages, index, request.get("seed")).split(" ")
            finish = "length" if len(words) > limit else "stop"
            text = " ".join(words[:limit])
            for stop in request.get("stop") or ():
                if stop in text:
                    text, finish = text[: text.index(stop)], "stop"
            written += min(len(words), limit)
            choices.append({"index": index, "finish_reason": finish, "logprobs": None,
                            "message": {"role": "assistant", "content": text}})  # fmt: skip
        usage = {"prompt_tokens": prompt, "completion_tokens": written,
                 "total_tokens": prompt + written,
                 "prompt_tokens_details": {"cached_tokens": prompt // 2}}  # fmt: skip
        answer = {"id": f"chatcmpl-{self.calls[_CHAT]}", "object": "chat.completion",
                  "created": 0, "model": model, "choices": choices, "usage": usage}  # fmt: skip
        return 200, answer, {}


_CHAT = "/v1/chat/completions"


class _Server(ThreadingHTTPServer):
    """A thread a connection, and room for hundreds of connections arriving at once."""

    daemon_threads = True
    request_queue_size = 1024  # the listen backlog; socketserver's 5 drops a burst of 256


def _error(status: int, message: str, code: str) -> _Reply:
    return status, {"error": {"message": message, "type": code, "param": None, "code": code}}, {}


def _handler(server: FakeOpenAIServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: the client reuses its connections

        def do_GET(self) -> None:
            self._reply(b"")

        def do_POST(self) -> None:
            self._reply(self.rfile.read(int(self.headers.get("content-length") or 0)))

        def _reply(self, body: bytes) -> None:
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, payload, extra = server.answer(self.path, headers, body)
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            for key, value in extra.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *_args: Any) -> None:
            """Quiet: tests and benchmarks read the counters instead."""

    return Handler


def main(argv: Sequence[str] | None = None) -> None:
    """Serve until interrupted, printing the address to pass as ``base_url``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", default=[], help="a served model (repeat)")
    parser.add_argument("--api-key", help="the key to require (default: any)")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds a request waits")
    args = parser.parse_args(argv)
    with FakeOpenAIServer(args.model or ["fake-model"], api_key=args.api_key,
                          latency=args.latency) as server:  # fmt: skip
        print(f"base_url={server.base_url}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()


if __name__ == "__main__":
    main()

__all__ = ["Failure", "FakeOpenAIServer", "Writer", "default_writer"]
