"""An in-process fake of the Tinker service that the real ``tinker`` SDK talks to over HTTP.

Tests and benchmarks point ``tinker.ServiceClient(base_url=server.base_url, ...)`` (or
``TINKER_BASE_URL``) at a :class:`FakeTinkerServer` and drive the unmodified SDK end to end:
its sessions, futures, retries, sequencing, protobuf payloads and error mapping are all
exercised, against a real (tiny) torch model instead of the remote service.

What it is faithful to (as the tinker 0.38 SDK sees the service):

- The wire protocol: the JSON endpoints under ``/api/v1``, ``X-API-Key`` auth (401 otherwise),
  client config (httpx transport, no JWT exchange), sessions and heartbeats, futures resolved
  by long-polling ``/retrieve_future`` (``try_again`` while pending), protobuf bodies for
  ``/forward_backward`` and protobuf results for samples and forward/backward outputs.
- Sampling: real generation with ``num_samples``, ``max_tokens``, ``temperature`` (0 is greedy),
  ``top_k``, ``top_p``, ``seed`` (same seed and prompt, same samples), ``stop`` as token ids or
  strings (EOS when ``None``; the stop token is included at the end), raw per-token logprobs,
  prompt logprobs (``compute_logprobs``), top-k logprobs and ``prompt_cache_hit_tokens`` from a
  small LRU of recent prompts. A prompt plus ``max_tokens`` beyond the context window is a 400
  with the real message.
- Training: a LoRA (rank from the request, alpha fixed server-side as on Tinker, dropout 0,
  attention and/or MLP projections) seeded from ``seed``; ``cross_entropy`` (and
  ``importance_sampling``) with summed losses and accumulated gradients, ``forward``,
  ``forward_backward_custom`` (the SDK's two passes), AdamW ``optim_step``; operations on one
  model run strictly in ``seq_id`` order, whatever order they arrive in.
- Checkpoints: ``save_state`` (weights, Adam state, step), ``save_weights_for_sampler``,
  ``save_weights_and_get_sampling_client``, ``save_weights_external``, restoring with or without
  the optimizer, TTLs, listing, deleting, and downloads as a standard PEFT adapter folder
  (``get_external_weights_urls``, and the older ``.../archive`` endpoint that redirects to a tar).
- Failures the SDK must handle: sampling a ``/weights/`` path fails its future
  (``RequestFailedError``), unknown models and non-power-of-two ranks are 400s, and
  ``transient_failure_rate`` answers that share of requests 503 or 429 once, for the SDK's own
  retries to absorb.
- Timing: ``latency`` delays each operation's result without serialising them (concurrent
  operations overlap), and ``cycle`` models the shared training clock: queued training
  operations of a model run together at the next tick.

What it simplifies: no unembedding LoRA (``train_unembed`` is recorded, not applied), only the
``cross_entropy`` and ``importance_sampling`` losses, Adam only, text chunks only, no
``target_prompt_logprobs`` or ``prompt_alt_tokens``, ``max_tokens=None`` means 16 (vLLM's
default), one user who owns every run, everything in memory, compute serialised per base model
(no batching across requests), and no billing. Where the real service's behaviour is unknown it
picks the answer the SDK handles best: conflicts fail the future instead of a retried 409, and a
bug in the fake is a 400, never a 5xx that the SDK would retry for minutes.

Run it standalone (e.g. for a benchmark in another process)::

    python -m opencharacter_tinker.fake_server --model tiny=/path/to/folder --port 8765
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import dataclasses
import email.utils
import hashlib
import itertools
import json
import logging
import os
import re
import secrets
import signal
import socket
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tinker.proto import tinker_public_pb2 as pb

from opencharacter_tinker.fake_model import (
    Datum,
    LoraSpec,
    LoraWeights,
    SampleResult,
    SamplingSettings,
    ServedModel,
    Trainer,
    TrainingCheckpoint,
    tar_archive,
)

__all__ = ["FakeTinkerServer", "main"]

logger = logging.getLogger(__name__)

_POLL_SECONDS = 20.0  # how long one /retrieve_future holds a pending request (SDK timeout: 45)
_MIN_TTL, _MAX_TTL = 3600, 10 * 365 * 24 * 3600
_URL_LIFETIME = 3600.0
_CACHE_PROMPTS = 32  # prompts remembered per sampler for prompt_cache_hit_tokens
_KEEP_RETRIEVED = 120.0  # seconds a delivered result stays retrievable (lost-response retries)
_DEFAULT_MAX_TOKENS = 16  # vLLM's default when a request gives no max_tokens
_PROTO = "application/x-protobuf"
_CHECKPOINT_DIRS = {
    "weights": "training",
    "sampler_weights": "sampler",
    "external_weights": "external",
}


class _HTTPError(Exception):
    """An HTTP error answer, with FastAPI's ``{"detail": ...}`` body as the service sends."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


class _OperationError(Exception):
    """A failure reported through the operation's future (the SDK's ``RequestFailedError``)."""

    def __init__(self, message: str, category: str = "user") -> None:
        super().__init__(message)
        self.category = category


@dataclasses.dataclass
class _Response:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: dict[str, str] = dataclasses.field(default_factory=dict)

    @classmethod
    def json(cls, payload: Any, status: int = 200, **headers: str) -> _Response:
        return cls(status, json.dumps(payload).encode(), headers=headers)


@dataclasses.dataclass
class _Request:
    method: str
    path: str
    headers: Mapping[str, str]
    body: bytes
    match: re.Match[str]

    def json(self) -> dict[str, Any]:
        if not self.body:
            return {}
        try:
            payload = json.loads(self.body)
        except ValueError as exc:
            raise _HTTPError(400, f"request body is not JSON: {exc}") from exc
        if not isinstance(payload, dict):
            raise _HTTPError(400, "request body must be a JSON object")
        return payload


class _Promise:
    """A future's server side: resolved once, readable after ``ready_at`` (injected latency)."""

    def __init__(self, request_id: str) -> None:
        self.request_id = request_id
        self.done = threading.Event()
        self.result: bytes | dict[str, Any] | None = None
        self.error: tuple[str, str] | None = None
        self.ready_at = 0.0
        self.delivered_at: float | None = None
        self.sample_key: tuple[str, int] | None = None  # (sampler, seq_id) for resent samples

    def resolve(self, result: bytes | dict[str, Any], latency: float) -> None:
        self.result = result
        self.ready_at = time.monotonic() + latency
        self.done.set()

    def fail(self, message: str, category: str, latency: float) -> None:
        self.error = (message, category)
        self.ready_at = time.monotonic() + latency
        self.done.set()


@dataclasses.dataclass
class _Session:
    session_id: str
    finished: bool = False


@dataclasses.dataclass
class _Checkpoint:
    path: str
    run_id: str
    kind: str  # "training" | "sampler" | "external"
    checkpoint_id: str  # e.g. "weights/step-3"
    base_model: str
    weights: LoraWeights
    optimizer: dict[str, Any] | None
    step: int
    created: datetime
    expires_at: float | None  # time.time() seconds; None never expires
    user_metadata: dict[str, str] | None
    files: dict[str, bytes] | None = None  # external weights: the PEFT folder

    def listing(self) -> dict[str, Any]:
        return {
            "checkpoint_id": self.checkpoint_id,
            "checkpoint_type": self.kind,
            "time": self.created.isoformat(),
            "tinker_path": self.path,
            "size_bytes": self.weights.nbytes(),
            "public": False,
            "user_metadata": self.user_metadata,
            "expires_at": _iso(self.expires_at),
        }


@dataclasses.dataclass
class _Sampler:
    sampler_id: str
    base_model: str
    model_path: str | None
    weights: LoraWeights | None
    error: str | None = None  # set when the path can be named but not sampled (training state)


class _Sequencer:
    """Runs one training model's operations in ``seq_id`` order, optionally on a clock.

    The SDK numbers a training client's requests and may send them out of order (forward/
    backward chunks go in parallel), so a job waits until every lower ``seq_id`` has run.
    With ``cycle > 0`` the jobs that are ready wait for the next tick of a ``cycle``-second
    clock and then run together, which is how the real service's shared workers behave.
    """

    def __init__(self, name: str, cycle: float, epoch: float, stopping: threading.Event) -> None:
        self._cond = threading.Condition()
        self._pending: dict[int, Callable[[], None]] = {}
        self._next = 1  # seq 0 is the model's creation
        self._cycle = cycle
        self._epoch = epoch
        self._stopping = stopping
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name=f"fake-tinker-{name}", daemon=True)
        self._thread.start()

    def submit(self, seq_id: int, job: Callable[[], None]) -> bool:
        """Queue a job; False if that ``seq_id`` already ran or is queued (a retried request)."""
        with self._cond:
            if seq_id < self._next or seq_id in self._pending:
                return False
            self._pending[seq_id] = job
            self._cond.notify()
            return True

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify()
        self._thread.join()

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._closed and self._next not in self._pending:
                    self._cond.wait()
                if self._closed:
                    return
            if self._cycle > 0:
                elapsed = time.monotonic() - self._epoch
                tick = (int(elapsed / self._cycle) + 1) * self._cycle
                if self._stopping.wait(tick - elapsed):
                    return
            batch: list[Callable[[], None]] = []
            with self._cond:
                while self._next in self._pending:
                    batch.append(self._pending.pop(self._next))
                    self._next += 1
            for job in batch:
                job()


@dataclasses.dataclass
class _Run:
    model_id: str
    session_id: str
    base_model: str
    spec: LoraSpec
    trainer: Trainer
    sequencer: _Sequencer
    user_metadata: dict[str, Any] | None
    requests: dict[int, str] = dataclasses.field(default_factory=dict)  # seq_id -> request id
    last_request: float = dataclasses.field(default_factory=time.time)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _HTTPServer

    def setup(self) -> None:
        super().setup()
        # Small requests and answers: without this, Nagle's algorithm holds each for ~40 ms.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.track(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.untrack(self.connection)

    def do_GET(self) -> None:
        self.server.app._handle(self)

    do_POST = do_PUT = do_DELETE = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s %s", self.address_string(), format % args)


class _HTTPServer(ThreadingHTTPServer):
    """A threaded server whose connection threads :meth:`close_connections` cuts and joins.

    The threads are daemons, so a server someone forgot to stop never holds up interpreter
    exit; ``stop()`` still joins every one of them. A thread blocked reading the next request
    on a client's pooled keep-alive connection would never finish, so sockets are shut down
    first.
    """

    daemon_threads = True
    request_queue_size = 1024  # a stage opens hundreds of connections at once

    def __init__(self, address: tuple[str, int], app: FakeTinkerServer) -> None:
        self.app = app
        self._connections: set[socket.socket] = set()
        self._connection_threads: set[threading.Thread] = set()
        self._connections_lock = threading.Lock()
        self._closing = False
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(
            target=self._serve_connection,
            args=(request, client_address),
            name="fake-tinker-connection",
            daemon=True,
        )
        with self._connections_lock:
            self._connection_threads.add(thread)
        thread.start()

    def _serve_connection(self, request: Any, client_address: Any) -> None:
        try:
            self.process_request_thread(request, client_address)
        finally:
            with self._connections_lock:
                self._connection_threads.discard(threading.current_thread())

    def track(self, connection: socket.socket) -> None:
        with self._connections_lock:
            if not self._closing:
                self._connections.add(connection)
                return
        _cut(connection)  # accepted just as the server stopped

    def untrack(self, connection: socket.socket) -> None:
        with self._connections_lock:
            self._connections.discard(connection)

    def close_connections(self) -> None:
        """Cut every client connection and join its thread (call after ``shutdown()``)."""
        with self._connections_lock:
            self._closing = True
            connections = list(self._connections)
            threads = list(self._connection_threads)
        for connection in connections:
            _cut(connection)
        for thread in threads:
            thread.join()

    def handle_error(self, request: Any, client_address: Any) -> None:
        if self._closing:  # a client cut off by stop(): expected
            return
        logger.exception("fake Tinker server: error serving %s", client_address)


def _cut(connection: socket.socket) -> None:
    with contextlib.suppress(OSError):
        connection.shutdown(socket.SHUT_RDWR)


class FakeTinkerServer:
    """A local Tinker service over real models, for the real SDK to talk to.

    Args:
        models: served model name -> local Hugging Face folder (weights and tokenizer).
        api_key: the only key accepted in ``X-API-Key``; must start with ``tml-`` for the SDK.
        latency: seconds added to every operation before its future resolves.
        cycle: if positive, training operations run at ticks of a clock of this period.
        transient_failure_rate: share of API requests answered 503 or 429 once.
        seed: seeds unseeded sampling and LoRA initialisation, and the failure injection.
        lora_alpha: the fixed LoRA alpha (Tinker does not let clients choose it).
        port: TCP port on 127.0.0.1; 0 picks a free one.

    ``latency`` and ``transient_failure_rate`` are read per request, so a test may change them
    on a running server; ``cycle`` applies to training runs created after it is set.

    Attributes:
        calls: operations served, by kind ("asample", "compute_logprobs", "forward",
            "forward_backward", "optim_step", "save_weights", "save_weights_for_sampler",
            "save_weights_external", "create_model", "load_weights", "create_sampling_session").
            Retried duplicates of one operation count once. ``GET /fake/calls`` answers them
            as JSON, for a server run in another process (``python -m ...fake_server``).
        injected_failures: how many requests ``transient_failure_rate`` has failed so far.
    """

    def __init__(
        self,
        models: Mapping[str, str | os.PathLike[str]],
        *,
        api_key: str = "tml-fake-key",
        latency: float = 0.0,
        cycle: float = 0.0,
        transient_failure_rate: float = 0.0,
        seed: int = 0,
        lora_alpha: float = 32.0,
        port: int = 0,
    ) -> None:
        if not models:
            msg = "FakeTinkerServer needs at least one model"
            raise ValueError(msg)
        for name, folder in models.items():
            if not Path(folder, "config.json").is_file():
                msg = f"model {name!r}: {folder} is not a Hugging Face model folder"
                raise FileNotFoundError(msg)
        self.api_key = api_key
        self.latency = float(latency)
        self.cycle = float(cycle)
        self.transient_failure_rate = float(transient_failure_rate)
        self.seed = seed
        self.lora_alpha = float(lora_alpha)
        self.calls: collections.Counter[str] = collections.Counter()
        self.injected_failures = 0
        self.base_url = ""
        self._folders = {name: str(folder) for name, folder in models.items()}
        self._port = port
        self._models: dict[str, ServedModel] = {}
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._epoch = time.monotonic()
        self._ids = itertools.count(1)
        self._rng = np.random.default_rng(seed)
        self._sessions: dict[str, _Session] = {}
        self._samplers: dict[str, _Sampler] = {}
        self._runs: dict[str, _Run] = {}
        self._checkpoints: dict[str, _Checkpoint] = {}
        self._promises: dict[str, _Promise] = {}
        self._next_sweep = 0.0
        self._sample_requests: dict[tuple[str, int], tuple[str, list[str]]] = {}
        self._prompt_cache: dict[str, collections.OrderedDict[tuple[int, ...], None]] = {}
        self._downloads: dict[str, tuple[dict[str, bytes], float]] = {}
        self._failed_once: set[bytes] = set()
        self._httpd: _HTTPServer | None = None
        self._serve_thread: threading.Thread | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._routes = self._build_routes()

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> FakeTinkerServer:
        """Load the models and start serving on 127.0.0.1; returns self."""
        if self._httpd is not None:
            return self
        if self._stopping.is_set():
            msg = "a stopped FakeTinkerServer cannot be restarted; create a new one"
            raise RuntimeError(msg)
        for name, folder in self._folders.items():
            if name not in self._models:
                self._models[name] = ServedModel(name, folder)
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="fake-tinker-sample")
        self._httpd = _HTTPServer(("127.0.0.1", self._port), self)
        host, port = self._httpd.server_address[:2]
        self.base_url = f"http://{host}:{port}"
        self._serve_thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="fake-tinker-http",
            daemon=True,
        )
        self._serve_thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and join every thread; open client connections are cut."""
        httpd = self._httpd
        if httpd is None:
            return
        self._stopping.set()
        httpd.shutdown()
        httpd.close_connections()
        httpd.server_close()
        if self._serve_thread is not None:
            self._serve_thread.join()
        with self._lock:
            runs = list(self._runs.values())
        for run in runs:
            run.sequencer.close()
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        self._httpd = None
        self._serve_thread = None
        self._pool = None

    def __enter__(self) -> FakeTinkerServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def env(self) -> dict[str, str]:
        """Environment for a subprocess whose SDK should talk to this server."""
        return {
            "TINKER_BASE_URL": self.base_url,
            "TINKER_API_KEY": self.api_key,
            "TINKER_TELEMETRY": "0",
        }

    # -- HTTP plumbing ----------------------------------------------------------------------------

    def _build_routes(self) -> list[tuple[str, re.Pattern[str], Callable[[_Request], _Response]]]:
        run = r"(?P<run>[^/]+)"
        ckpt = r"(?P<kind>weights|sampler_weights|external_weights)/(?P<name>[^/]+)"
        table: list[tuple[str, str, Callable[[_Request], _Response]]] = [
            ("POST", "/api/v1/client/config", self._client_config),
            ("POST", "/api/v1/client/dynamic_config", self._dynamic_config),
            ("GET", "/api/v1/healthz", lambda _r: _Response.json({"type": "health"})),
            ("POST", "/api/v1/create_session", self._create_session),
            ("POST", "/api/v1/session_heartbeat", self._heartbeat),
            ("POST", r"/api/v1/sessions/(?P<session>[^/]+)/finish", self._finish_session),
            ("POST", "/api/v1/telemetry", lambda _r: _Response.json({"status": "accepted"})),
            ("GET", "/api/v1/get_server_capabilities", self._capabilities),
            ("POST", "/api/v1/create_sampling_session", self._create_sampling_session),
            ("GET", r"/api/v1/samplers/(?P<sampler>[^/]+)", self._get_sampler),
            ("POST", "/api/v1/asample", self._asample),
            ("POST", "/api/v1/retrieve_future", self._retrieve_future),
            ("POST", "/api/v1/create_model", self._create_model),
            ("POST", "/api/v1/get_info", self._get_info),
            ("POST", "/api/v1/forward_backward", self._forward_backward),
            ("POST", "/api/v1/optim_step", self._optim_step),
            ("POST", "/api/v1/save_weights", self._save_weights),
            ("POST", "/api/v1/save_weights_for_sampler", self._save_weights_for_sampler),
            ("POST", "/api/v1/save_weights_external", self._save_weights_external),
            ("POST", "/api/v1/load_weights", self._load_weights),
            ("POST", "/api/v1/weights_info", self._weights_info),
            ("GET", f"/api/v1/training_runs/{run}", self._get_training_run),
            ("GET", f"/api/v1/training_runs/{run}/checkpoints", self._list_checkpoints),
            ("DELETE", f"/api/v1/training_runs/{run}/checkpoints/{ckpt}", self._delete_checkpoint),
            ("PUT", f"/api/v1/training_runs/{run}/checkpoints/{ckpt}/ttl", self._set_ttl),
            (
                "GET",
                f"/api/v1/training_runs/{run}/checkpoints/{ckpt}/external_weights_urls",
                self._external_weights_urls,
            ),
            ("GET", f"/api/v1/training_runs/{run}/checkpoints/{ckpt}/archive", self._archive),
            ("GET", r"/files/(?P<token>[^/]+)/(?P<file>[^/]+)", self._download),
            ("GET", "/fake/calls", lambda _r: _Response.json(dict(self.calls))),
        ]
        return [(method, re.compile(pattern + "$"), fn) for method, pattern, fn in table]

    def _handle(self, handler: _Handler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        if handler.headers.get("Content-Encoding") == "zstd":
            import zstandard  # noqa: PLC0415 - only for clients told to compress (we never do)

            body = zstandard.ZstdDecompressor().decompress(body)
        parsed = urllib.parse.urlsplit(handler.path)
        path = urllib.parse.unquote(parsed.path)
        try:
            response = self._dispatch(handler.command, path, handler.headers, body)
        except _HTTPError as exc:
            response = _Response.json({"detail": exc.detail}, exc.status)
        except Exception as exc:
            # A bug in the fake, not a simulated outage: a 5xx would make the SDK retry for
            # minutes, so fail fast and loudly instead.
            logger.exception("fake Tinker server failed on %s %s", handler.command, path)
            detail = f"fake Tinker server bug: {type(exc).__name__}: {exc}"
            response = _Response.json({"detail": detail}, 400)
        if path == "/api/v1/client/config":
            # The SDK fetches its config through a one-off connection pool that it never
            # closes; closing the connection from here keeps that socket from leaking.
            response.headers["Connection"] = "close"
        handler.send_response(response.status)
        handler.send_header("Content-Type", response.content_type)
        handler.send_header("Content-Length", str(len(response.body)))
        for key, value in response.headers.items():
            handler.send_header(key, value)
        handler.end_headers()
        handler.wfile.write(response.body)

    def _dispatch(
        self, method: str, path: str, headers: Mapping[str, str], body: bytes
    ) -> _Response:
        for route_method, pattern, fn in self._routes:
            match = pattern.match(path)
            if match is None or route_method != method:
                continue
            request = _Request(method, path, headers, body, match)
            if path.startswith("/api/"):
                if headers.get("X-API-Key") != self.api_key:
                    raise _HTTPError(401, "Invalid or missing API key")
                failure = self._injected_failure(request)
                if failure is not None:
                    return failure
            return fn(request)
        raise _HTTPError(404, f"Not Found: {method} {path}")

    def _injected_failure(self, request: _Request) -> _Response | None:
        """Answer a share of requests 503 or 429 once each, so the SDK's retries are exercised.

        Whether a request fails is a seeded hash of its content, so a retried request (same
        content) is recognised and goes through, and the same run fails the same requests.
        """
        if self.transient_failure_rate <= 0 or request.path == "/api/v1/telemetry":
            return None
        key = hashlib.sha256(
            f"{self.seed}|{request.method}|{request.path}|".encode() + request.body
        ).digest()
        draw = int.from_bytes(key[:8], "big") / 2**64
        if draw >= self.transient_failure_rate:
            return None
        with self._lock:
            if key in self._failed_once:
                return None
            self._failed_once.add(key)
            self.injected_failures += 1
        if key[8] % 2:
            detail = "Service temporarily unavailable (injected by FakeTinkerServer)"
            return _Response(503, json.dumps({"detail": detail}).encode())
        detail = "Too many requests (injected by FakeTinkerServer)"
        return _Response(
            429, json.dumps({"detail": detail}).encode(), headers={"retry-after-ms": "50"}
        )

    # -- small helpers ------------------------------------------------------------------------

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}-{next(self._ids)}"

    def _count(self, kind: str) -> None:
        with self._lock:
            self.calls[kind] += 1

    def _model(self, name: str | None) -> ServedModel:
        if name is not None and name in self._models:
            return self._models[name]
        available = ", ".join(sorted(self._models))
        raise _HTTPError(
            400, f"Model {name!r} is not supported by this server (available: {available})"
        )

    def _new_promise(self) -> _Promise:
        promise = _Promise(self._new_id("req"))
        with self._lock:
            self._forget_delivered()
            self._promises[promise.request_id] = promise
        return promise

    def _forget_delivered(self) -> None:
        """Drop results delivered a while ago (at most every few seconds: it scans them all)."""
        now = time.monotonic()
        if now < self._next_sweep:
            return
        self._next_sweep = now + _KEEP_RETRIEVED / 10
        cutoff = now - _KEEP_RETRIEVED
        for request_id, promise in list(self._promises.items()):
            if promise.delivered_at is not None and promise.delivered_at < cutoff:
                del self._promises[request_id]
                if promise.sample_key is not None:
                    self._sample_requests.pop(promise.sample_key, None)

    def _settle(self, promise: _Promise, work: Callable[[], bytes | dict[str, Any]]) -> None:
        """Run an operation and resolve its promise, turning errors into failed futures."""
        try:
            result = work()
        except (_OperationError, ValueError) as exc:
            category = exc.category if isinstance(exc, _OperationError) else "user"
            promise.fail(str(exc), category, self.latency)
        except Exception as exc:
            logger.exception("fake Tinker operation %s failed", promise.request_id)
            promise.fail(f"{type(exc).__name__}: {exc}", "server", self.latency)
        else:
            promise.resolve(result, self.latency)

    def _checkpoint(self, path: str) -> _Checkpoint:
        with self._lock:
            checkpoint = self._checkpoints.get(path)
        if checkpoint is None or _expired(checkpoint):
            raise _HTTPError(404, f"Checkpoint not found: {path}")
        return checkpoint

    def _checkpoint_from_match(self, request: _Request) -> _Checkpoint:
        groups = request.match.groupdict()
        return self._checkpoint(f"tinker://{groups['run']}/{groups['kind']}/{groups['name']}")

    def _run(self, model_id: str | None) -> _Run:
        with self._lock:
            run = self._runs.get(model_id or "")
        if run is None:
            raise _HTTPError(404, f"Training run not found: {model_id}")
        return run

    # -- config and sessions --------------------------------------------------------------------

    def _client_config(self, _request: _Request) -> _Response:
        return _Response.json(
            {
                "pjwt_auth_enabled": False,
                "use_pyqwest_transport": False,
                "proto_compress_fwdbwd": False,
                "parallel_fwdbwd_chunks": True,
                "sample_use_retrieve_futures": False,
                "custom_loss_server_side": False,
                "sample_join_sampling_session": False,
            }
        )

    def _dynamic_config(self, _request: _Request) -> _Response:
        return _Response.json({"refresh_interval_sec": 300, "sample_cancel_enabled": False})

    def _create_session(self, _request: _Request) -> _Response:
        with self._lock:  # seeded, so that seeded failure injection hits the same requests
            session = _Session(str(uuid.UUID(bytes=self._rng.bytes(16), version=4)))
            self._sessions[session.session_id] = session
        return _Response.json({"type": "create_session", "session_id": session.session_id})

    def _heartbeat(self, request: _Request) -> _Response:
        session = self._sessions.get(request.json().get("session_id", ""))
        if session is None:
            raise _HTTPError(404, "Session not found")
        if session.finished:
            raise _HTTPError(410, "Session has finished")
        return _Response.json({"type": "session_heartbeat"})

    def _finish_session(self, request: _Request) -> _Response:
        session = self._sessions.get(request.match["session"])
        if session is None:
            raise _HTTPError(404, "Session not found")
        session.finished = True
        return _Response.json({})

    def _capabilities(self, _request: _Request) -> _Response:
        models = [
            {
                "model_name": name,
                "max_context_length": model.max_context_length,
                "trainable": True,
                "sampleable": True,
            }
            for name, model in sorted(self._models.items())
        ]
        return _Response.json({"supported_models": models})

    # -- sampling -----------------------------------------------------------------------------

    def _create_sampling_session(self, request: _Request) -> _Response:
        body = request.json()
        session_id = body.get("session_id", "")
        if session_id not in self._sessions:
            raise _HTTPError(404, f"Session not found: {session_id}")
        sampler_id = f"{session_id}:sample:{body.get('sampling_session_seq_id', 0)}"
        model_path = body.get("model_path")
        if model_path:
            sampler = self._sampler_for_path(sampler_id, model_path)
        else:
            self._model(body.get("base_model"))
            sampler = _Sampler(sampler_id, body["base_model"], None, None)
        with self._lock:
            self._samplers.setdefault(sampler_id, sampler)
        self._count("create_sampling_session")
        return _Response.json(
            {"type": "create_sampling_session", "sampling_session_id": sampler_id}
        )

    def _sampler_for_path(self, sampler_id: str, model_path: str) -> _Sampler:
        if not model_path.startswith("tinker://") or len(model_path[9:].split("/")) != 3:
            raise _HTTPError(400, f"Invalid tinker path: {model_path}")
        checkpoint = self._checkpoint(model_path)
        if checkpoint.kind == "sampler":
            return _Sampler(sampler_id, checkpoint.base_model, model_path, checkpoint.weights)
        # The service accepts the path but cannot serve it: sampling fails in the future.
        error = (
            f"{model_path} is a {checkpoint.kind} checkpoint, not a sampler checkpoint; save "
            "weights with save_weights_for_sampler() to sample from them"
        )
        return _Sampler(sampler_id, checkpoint.base_model, model_path, None, error)

    def _get_sampler(self, request: _Request) -> _Response:
        sampler = self._samplers.get(request.match["sampler"])
        if sampler is None:
            raise _HTTPError(404, f"Sampler not found: {request.match['sampler']}")
        return _Response.json(
            {
                "sampler_id": sampler.sampler_id,
                "base_model": sampler.base_model,
                "model_path": sampler.model_path,
            }
        )

    def _asample(self, request: _Request) -> _Response:
        body = request.json()
        sampler = self._request_sampler(body)
        model = self._model(sampler.base_model)
        prompt = _prompt_tokens(body.get("prompt") or {})
        num_samples = int(body.get("num_samples", 1))
        if num_samples < 1:
            raise _HTTPError(400, f"num_samples must be at least 1, got {num_samples}")
        settings, seed = self._sampling_settings(model, prompt, body)
        last_n = body.get("prompt_logprobs_last_n")
        if last_n is not None and not 1 <= last_n <= len(prompt) - 1:
            raise _HTTPError(400, f"prompt_logprobs_last_n must be in [1, {len(prompt) - 1}]")
        if body.get("target_prompt_logprobs") or body.get("prompt_alt_tokens_k"):
            msg = "target_prompt_logprobs and prompt_alt_tokens_k are not implemented by the fake"
            raise _HTTPError(400, msg)
        seq_key = None if body.get("seq_id") is None else (sampler.sampler_id, body["seq_id"])
        with self._lock:
            known = self._sample_requests.get(seq_key) if seq_key else None
            if known is not None:  # the SDK resent a request we already accepted
                return _Response.json({"request_id": known[0], "sample_sequence_ids": known[1]})
            promise = self._new_promise()
            sequence_ids = [f"{promise.request_id}:{i}" for i in range(num_samples)]
            if seq_key:
                promise.sample_key = seq_key
                self._sample_requests[seq_key] = (promise.request_id, sequence_ids)
        with_prompt_logprobs = bool(body.get("prompt_logprobs"))
        scoring = with_prompt_logprobs and settings.max_tokens == 1
        self._count("compute_logprobs" if scoring else "asample")
        hits = self._prompt_cache_hits(sampler, prompt)  # in arrival order, as a cache sees it

        def work() -> bytes:
            if sampler.error is not None:
                raise _OperationError(sampler.error)
            generator = torch.Generator().manual_seed(seed)
            result = model.sample(prompt, num_samples, settings, sampler.weights, generator)
            return _sample_proto(result, with_prompt_logprobs, last_n, hits).SerializeToString()

        assert self._pool is not None
        self._pool.submit(self._settle, promise, work)
        return _Response.json(
            {"request_id": promise.request_id, "sample_sequence_ids": sequence_ids}
        )

    def _request_sampler(self, body: dict[str, Any]) -> _Sampler:
        sampler_id = body.get("sampling_session_id")
        if sampler_id:
            sampler = self._samplers.get(sampler_id)
            if sampler is None:
                raise _HTTPError(404, f"Sampling session not found: {sampler_id}")
            return sampler
        if body.get("model_path"):  # older clients name the weights on every request
            return self._sampler_for_path("adhoc", body["model_path"])
        self._model(body.get("base_model"))
        return _Sampler("adhoc", body["base_model"], None, None)

    def _sampling_settings(
        self, model: ServedModel, prompt: list[int], body: dict[str, Any]
    ) -> tuple[SamplingSettings, int]:
        params = body.get("sampling_params") or {}
        max_tokens = params.get("max_tokens")
        limit = model.max_context_length
        if max_tokens is None:  # the SDK leaves it optional; assume vLLM's default
            max_tokens = _DEFAULT_MAX_TOKENS
        if max_tokens < 0:
            raise _HTTPError(400, f"max_tokens must be non-negative, got {max_tokens}")
        if len(prompt) + max_tokens > limit:
            msg = (
                "Prompt length plus max_tokens exceeds the model's context window: "
                f"{len(prompt)} + {max_tokens} > {limit}"
            )
            raise _HTTPError(400, msg)
        # None stops at EOS; an explicit list (even empty) replaces EOS, as the SDK documents.
        stop = params.get("stop")
        stop_tokens: frozenset[int] = model.eos_tokens
        stop_strings: tuple[str, ...] = ()
        if isinstance(stop, str):
            stop_tokens, stop_strings = frozenset(), (stop,)
        elif stop is not None:
            stop_tokens = frozenset(s for s in stop if isinstance(s, int))
            stop_strings = tuple(s for s in stop if isinstance(s, str))
        seed = params.get("seed")
        if seed is None:
            with self._lock:
                seed = int(self._rng.integers(2**62))
        settings = SamplingSettings(
            max_tokens=int(max_tokens),
            temperature=float(params.get("temperature", 1.0)),
            top_k=int(params.get("top_k", -1)),
            top_p=float(params.get("top_p", 1.0)),
            stop_tokens=stop_tokens,
            stop_strings=stop_strings,
            topk_prompt=int(body.get("topk_prompt_logprobs") or 0),
            topk_sample=int(body.get("topk_sample_logprobs") or 0),
        )
        return settings, int(seed)

    def _prompt_cache_hits(self, sampler: _Sampler, prompt: list[int]) -> int:
        """Longest prefix shared with a recently seen prompt on the same weights."""
        key = sampler.model_path or (sampler.sampler_id if sampler.weights else sampler.base_model)
        tokens = tuple(prompt)
        with self._lock:
            seen = self._prompt_cache.setdefault(key, collections.OrderedDict())
            best = max((_common_prefix(tokens, old) for old in seen), default=0)
            seen.pop(tokens, None)
            seen[tokens] = None
            while len(seen) > _CACHE_PROMPTS:
                seen.popitem(last=False)
        return best

    def _retrieve_future(self, request: _Request) -> _Response:
        request_id = request.json().get("request_id", "")
        with self._lock:
            promise = self._promises.get(request_id)
        if promise is None:
            raise _HTTPError(404, f"Unknown request_id: {request_id}")
        deadline = time.monotonic() + _POLL_SECONDS
        while not self._stopping.is_set():
            now = time.monotonic()
            if promise.done.is_set() and now >= promise.ready_at:
                break
            if now >= deadline:
                break
            if promise.done.is_set():
                self._stopping.wait(min(promise.ready_at, deadline) - now)
            else:
                promise.done.wait(min(0.25, deadline - now))
        if not promise.done.is_set() or time.monotonic() < promise.ready_at:
            return _Response.json(
                {"type": "try_again", "request_id": request_id, "queue_state": "active"}
            )
        promise.delivered_at = time.monotonic()
        if promise.error is not None:
            return _Response.json({"error": promise.error[0], "category": promise.error[1]})
        if isinstance(promise.result, bytes):
            return _Response(200, promise.result, _PROTO)
        return _Response.json(promise.result)

    # -- training -------------------------------------------------------------------------------

    def _create_model(self, request: _Request) -> _Response:
        body = request.json()
        session_id = body.get("session_id", "")
        if session_id not in self._sessions:
            raise _HTTPError(404, f"Session not found: {session_id}")
        model = self._model(body.get("base_model"))
        model_id = f"{session_id}:train:{body.get('model_seq_id', 0)}"
        with self._lock:
            if model_id in self._runs:
                raise _HTTPError(400, f"Model {model_id} already exists")
        lora = body.get("lora_config") or {}
        spec = self._lora_spec(model, lora)
        optimizer = (body.get("optimizer_config") or {}).get("type", "adamw")
        if optimizer != "adamw":
            raise _HTTPError(400, f"Optimizer {optimizer!r} is not supported (only 'adamw')")
        seed = lora.get("seed")
        if seed is None:
            with self._lock:
                seed = int(self._rng.integers(2**62))
        promise = self._new_promise()
        self._count("create_model")

        def work() -> dict[str, Any]:
            run = self._new_run(
                model_id=model_id,
                session_id=session_id,
                model=model,
                spec=spec,
                seed=int(seed),
                body=body,
            )
            return {"model_id": run.model_id, "type": "create_model"}

        self._settle(promise, work)
        return _Response.json({"request_id": promise.request_id, "model_id": model_id})

    def _lora_spec(self, model: ServedModel, lora: Mapping[str, Any]) -> LoraSpec:
        rank = int(lora.get("rank", 32))
        if rank < 1 or rank & (rank - 1):
            raise _HTTPError(400, f"LoRA rank must be a positive power of 2, got {rank}")
        spec = LoraSpec(
            rank=rank,
            alpha=self.lora_alpha,
            train_attn=bool(lora.get("train_attn", True)),
            train_mlp=bool(lora.get("train_mlp", True)),
            train_unembed=bool(lora.get("train_unembed", True)),
        )
        if not model.has_targets(spec):
            msg = "the fake Tinker server needs train_attn or train_mlp (no unembedding LoRA)"
            raise _HTTPError(400, msg)
        return spec

    def _new_run(
        self,
        *,
        model_id: str,
        session_id: str,
        model: ServedModel,
        spec: LoraSpec,
        seed: int,
        body: Mapping[str, Any],
    ) -> _Run:
        trainer = Trainer(model, spec, seed)
        run = _Run(
            model_id=model_id,
            session_id=session_id,
            base_model=model.name,
            spec=spec,
            trainer=trainer,
            sequencer=_Sequencer(model_id, self.cycle, self._epoch, self._stopping),
            user_metadata=body.get("user_metadata"),
        )
        with self._lock:
            self._runs[model_id] = run
        return run

    def _get_info(self, request: _Request) -> _Response:
        run = self._run(request.json().get("model_id"))
        model = self._models[run.base_model]
        return _Response.json(
            {
                "type": "get_info",
                "model_id": run.model_id,
                "model_data": {
                    "arch": model.arch,
                    "model_name": run.base_model,
                    # A local folder, so TrainingClient.get_tokenizer() works offline.
                    "tokenizer_id": model.folder,
                },
                "optimizer_config": {"type": "adamw"},
                "is_lora": True,
                "lora_rank": run.spec.rank,
                "model_name": run.base_model,
            }
        )

    def _enqueue(
        self,
        run: _Run,
        seq_id: int | None,
        kind: str,
        work: Callable[[], bytes | dict[str, Any]],
    ) -> _Response:
        """Queue an operation on a training run in ``seq_id`` order and answer with its future."""
        if seq_id is None or seq_id < 1:
            raise _HTTPError(400, f"seq_id must be a positive integer, got {seq_id}")
        with self._lock:
            known = run.requests.get(seq_id)
            if known is not None:  # the SDK resent a request we already accepted
                return _Response.json({"request_id": known, "model_id": run.model_id})
            promise = self._new_promise()
            run.requests[seq_id] = promise.request_id
            run.last_request = time.time()
        if not run.sequencer.submit(seq_id, lambda: self._settle(promise, work)):
            raise _HTTPError(400, f"seq_id {seq_id} of {run.model_id} has already run")
        self._count(kind)
        return _Response.json({"request_id": promise.request_id, "model_id": run.model_id})

    def _forward_backward(self, request: _Request) -> _Response:
        message = pb.ForwardBackwardRequest()
        try:
            message.ParseFromString(request.body)
        except Exception as exc:
            raise _HTTPError(400, f"malformed ForwardBackwardRequest: {exc}") from exc
        run = self._run(message.model_id)
        data = [_datum(d, i) for i, d in enumerate(message.data)]
        if not data:
            raise _HTTPError(400, "forward_backward needs at least one datum")
        config = _loss_config(message)
        loss_fn = message.loss_fn
        backward = not message.forward_only

        def work() -> bytes:
            outputs, metrics = run.trainer.forward_backward(
                data, loss_fn, config, backward=backward
            )
            return _forward_backward_proto(outputs, metrics).SerializeToString()

        kind = "forward_backward" if backward else "forward"
        return self._enqueue(run, message.seq_id, kind, work)

    def _optim_step(self, request: _Request) -> _Response:
        body = request.json()
        run = self._run(body.get("model_id"))
        params = body.get("adam_params")
        if params is None:
            raise _HTTPError(400, "only adam_params are supported (the model uses AdamW)")

        def work() -> dict[str, Any]:
            metrics = run.trainer.optim_step(
                learning_rate=float(params.get("learning_rate", 1e-4)),
                beta1=float(params.get("beta1", 0.9)),
                beta2=float(params.get("beta2", 0.95)),
                eps=float(params.get("eps", 1e-12)),
                weight_decay=float(params.get("weight_decay", 0.0)),
                grad_clip_norm=float(params.get("grad_clip_norm", 0.0)),
            )
            return {"metrics": metrics, "type": "optim_step"}

        return self._enqueue(run, body.get("seq_id"), "optim_step", work)

    # -- checkpoints ----------------------------------------------------------------------------

    def _ttl(self, body: Mapping[str, Any]) -> float | None:
        ttl = body.get("ttl_seconds")
        if ttl is None:
            return None
        if not _MIN_TTL <= ttl <= _MAX_TTL:
            raise _HTTPError(
                400, f"ttl_seconds must be between {_MIN_TTL} and {_MAX_TTL}, got {ttl}"
            )
        return time.time() + ttl

    def _store(
        self,
        run: _Run,
        kind: str,
        name: str,
        state: TrainingCheckpoint,
        *,
        expires_at: float | None,
        overwrite: bool,
        user_metadata: dict[str, str] | None,
        files: dict[str, bytes] | None = None,
    ) -> _Checkpoint:
        directory = {v: k for k, v in _CHECKPOINT_DIRS.items()}[kind]
        path = f"tinker://{run.model_id}/{directory}/{name}"
        checkpoint = _Checkpoint(
            path=path,
            run_id=run.model_id,
            kind=kind,
            checkpoint_id=f"{directory}/{name}",
            base_model=run.base_model,
            weights=state.weights,
            optimizer=state.optimizer if kind == "training" else None,
            step=state.step,
            created=datetime.now(UTC),
            expires_at=expires_at,
            user_metadata=user_metadata,
            files=files,
        )
        with self._lock:
            existing = self._checkpoints.get(path)
            if existing is not None and not _expired(existing) and not overwrite:
                msg = f"Checkpoint {path} already exists; pass overwrite=True to replace it"
                raise _OperationError(msg)
            self._checkpoints[path] = checkpoint
        return checkpoint

    def _save_weights(self, request: _Request) -> _Response:
        body = request.json()
        run = self._run(body.get("model_id"))
        name = _checkpoint_name(body.get("path"))
        expires_at = self._ttl(body)

        def work() -> dict[str, Any]:
            checkpoint = self._store(
                run,
                "training",
                name,
                run.trainer.checkpoint(),
                expires_at=expires_at,
                overwrite=bool(body.get("overwrite")),
                user_metadata=body.get("user_metadata"),
            )
            return {"path": checkpoint.path, "type": "save_weights"}

        return self._enqueue(run, body.get("seq_id"), "save_weights", work)

    def _save_weights_for_sampler(self, request: _Request) -> _Response:
        body = request.json()
        run = self._run(body.get("model_id"))
        expires_at = self._ttl(body)
        name = body.get("path")
        if name is None and body.get("sampling_session_seq_id") is None:
            raise _HTTPError(
                400, "save_weights_for_sampler needs a path or sampling_session_seq_id"
            )

        def work() -> dict[str, Any]:
            state = run.trainer.checkpoint()
            if name is None:  # save_weights_and_get_sampling_client: ephemeral, no path
                sampler_id = f"{run.session_id}:sample:{body['sampling_session_seq_id']}"
                sampler = _Sampler(sampler_id, run.base_model, None, state.weights)
                with self._lock:
                    self._samplers[sampler_id] = sampler
                return {
                    "path": None,
                    "sampling_session_id": sampler_id,
                    "type": "save_weights_for_sampler",
                }
            checkpoint = self._store(
                run,
                "sampler",
                _checkpoint_name(name),
                state,
                expires_at=expires_at,
                overwrite=True,
                user_metadata=body.get("user_metadata"),
            )
            return {"path": checkpoint.path, "type": "save_weights_for_sampler"}

        return self._enqueue(run, body.get("seq_id"), "save_weights_for_sampler", work)

    def _save_weights_external(self, request: _Request) -> _Response:
        body = request.json()
        run = self._run(body.get("model_id"))
        name = _checkpoint_name(body.get("path"))
        expires_at = self._ttl(body)
        if body.get("age_encryption_recipients"):
            raise _HTTPError(400, "age encryption is not implemented by the fake Tinker server")
        folder = self._models[run.base_model].folder

        def work() -> dict[str, Any]:
            state = run.trainer.checkpoint()
            files = state.weights.peft_files(folder)
            checkpoint = self._store(
                run,
                "external",
                name,
                state,
                expires_at=expires_at,
                overwrite=True,
                user_metadata=None,
                files=files,
            )
            size = sum(len(data) for data in files.values())
            return {"path": checkpoint.path, "size_bytes": size, "type": "save_weights_external"}

        return self._enqueue(run, body.get("seq_id"), "save_weights_external", work)

    def _load_weights(self, request: _Request) -> _Response:
        body = request.json()
        path = body.get("path", "")
        optimizer = bool(body.get("optimizer"))
        if body.get("model_id"):  # legacy TrainingClient.load_state*: an operation in sequence
            run = self._run(body["model_id"])
            checkpoint = self._training_checkpoint(path, run.spec)

            def load() -> dict[str, Any]:
                run.trainer.restore(_as_state(checkpoint), optimizer=optimizer)
                return {"path": path, "model_id": run.model_id, "type": "load_weights"}

            return self._enqueue(run, body.get("seq_id"), "load_weights", load)
        session_id = body.get("session_id", "")
        if session_id not in self._sessions:
            raise _HTTPError(404, f"Session not found: {session_id}")
        checkpoint = self._training_checkpoint(path, None)
        model = self._model(checkpoint.base_model)
        model_id = f"{session_id}:train:{body.get('model_seq_id', 0)}"
        with self._lock:
            if model_id in self._runs:
                raise _HTTPError(400, f"Model {model_id} already exists")
        promise = self._new_promise()
        self._count("load_weights")

        def create() -> dict[str, Any]:
            run = self._new_run(
                model_id=model_id,
                session_id=session_id,
                model=model,
                spec=checkpoint.weights.spec,
                seed=0,
                body=body,
            )
            run.trainer.restore(_as_state(checkpoint), optimizer=optimizer)
            return {"path": path, "model_id": model_id, "type": "load_weights"}

        self._settle(promise, create)
        return _Response.json({"request_id": promise.request_id, "model_id": model_id})

    def _training_checkpoint(self, path: str, spec: LoraSpec | None) -> _Checkpoint:
        checkpoint = self._checkpoint(path)
        if checkpoint.kind != "training":
            kind = checkpoint.kind
            msg = f"{path} is a {kind} checkpoint; training state is saved with save_state()"
            raise _HTTPError(400, msg)
        if spec is not None and checkpoint.weights.spec != spec:
            raise _HTTPError(400, f"{path} has a different LoRA configuration than this model")
        return checkpoint

    def _weights_info(self, request: _Request) -> _Response:
        checkpoint = self._checkpoint(request.json().get("tinker_path", ""))
        spec = checkpoint.weights.spec
        return _Response.json(
            {
                "base_model": checkpoint.base_model,
                "is_lora": True,
                "lora_rank": spec.rank,
                "train_unembed": spec.train_unembed,
                "train_mlp": spec.train_mlp,
                "train_attn": spec.train_attn,
            }
        )

    def _get_training_run(self, request: _Request) -> _Response:
        run = self._run(request.match["run"])
        checkpoints = self._run_checkpoints(run.model_id)
        last: dict[str, Any] = dict.fromkeys(("training", "sampler"))
        for checkpoint in checkpoints:
            if checkpoint.kind in last:
                last[checkpoint.kind] = checkpoint.listing()
        return _Response.json(
            {
                "training_run_id": run.model_id,
                "base_model": run.base_model,
                "model_owner": "fake-user",
                "is_lora": True,
                "corrupted": False,
                "lora_rank": run.spec.rank,
                "last_request_time": datetime.fromtimestamp(run.last_request, UTC).isoformat(),
                "last_checkpoint": last["training"],
                "last_sampler_checkpoint": last["sampler"],
                "user_metadata": run.user_metadata,
            }
        )

    def _run_checkpoints(self, run_id: str) -> list[_Checkpoint]:
        with self._lock:
            found = [c for c in self._checkpoints.values() if c.run_id == run_id]
        return sorted((c for c in found if not _expired(c)), key=lambda c: c.created)

    def _list_checkpoints(self, request: _Request) -> _Response:
        self._run(request.match["run"])
        listing = [c.listing() for c in self._run_checkpoints(request.match["run"])]
        return _Response.json({"checkpoints": listing, "cursor": None})

    def _delete_checkpoint(self, request: _Request) -> _Response:
        checkpoint = self._checkpoint_from_match(request)
        with self._lock:
            self._checkpoints.pop(checkpoint.path, None)
        return _Response.json({})

    def _set_ttl(self, request: _Request) -> _Response:
        checkpoint = self._checkpoint_from_match(request)
        checkpoint.expires_at = self._ttl(request.json())
        return _Response.json({})

    def _signed_url(self, files: dict[str, bytes], name: str) -> tuple[str, float]:
        token = secrets.token_urlsafe(16)
        expires = time.time() + _URL_LIFETIME
        with self._lock:
            self._downloads[token] = (files, expires)
        return f"{self.base_url}/files/{token}/{urllib.parse.quote(name)}", expires

    def _external_weights_urls(self, request: _Request) -> _Response:
        checkpoint = self._checkpoint_from_match(request)
        if checkpoint.files is None:
            raise _HTTPError(400, f"{checkpoint.path} is not an external weights checkpoint")
        urls: dict[str, str] = {}
        expires = 0.0
        for name in checkpoint.files:
            urls[name], expires = self._signed_url(checkpoint.files, name)
        return _Response.json({"urls": urls, "expires": _iso(expires)})

    def _archive(self, request: _Request) -> _Response:
        """The pre-0.38 download endpoint: a 302 to a tar of the PEFT adapter folder."""
        checkpoint = self._checkpoint_from_match(request)
        folder = self._models[checkpoint.base_model].folder
        files = {"archive.tar": tar_archive(checkpoint.weights.peft_files(folder))}
        url, expires = self._signed_url(files, "archive.tar")
        expires_header = email.utils.formatdate(expires, usegmt=True)
        body = {"url": url, "expires": _iso(expires)}
        return _Response.json(body, 302, Location=url, Expires=expires_header)

    def _download(self, request: _Request) -> _Response:
        with self._lock:
            entry = self._downloads.get(request.match["token"])
        name = request.match["file"]
        if entry is None or entry[1] < time.time() or name not in entry[0]:
            raise _HTTPError(404, "Download link not found or expired")
        return _Response(200, entry[0][name], "application/octet-stream")


# -- protocol conversions ---------------------------------------------------------------------


def _prompt_tokens(prompt: Mapping[str, Any]) -> list[int]:
    tokens: list[int] = []
    for index, chunk in enumerate(prompt.get("chunks") or []):
        if chunk.get("type", "encoded_text") != "encoded_text":
            msg = f"Chunk {index}: {chunk.get('type')} chunks are not supported by the fake server"
            raise _HTTPError(400, msg)
        if not chunk.get("tokens"):
            raise _HTTPError(400, f"Chunk {index} has empty tokens list")
        tokens.extend(int(t) for t in chunk["tokens"])
    if not tokens:
        raise _HTTPError(400, "prompt has no tokens")
    return tokens


def _tensor(message: pb.Tensor) -> np.ndarray:
    dtypes = {pb.DTYPE_FLOAT32: np.float32, pb.DTYPE_INT64: np.int64, pb.DTYPE_INT32: np.int32}
    dtype = dtypes.get(message.dtype)
    if dtype is None:
        raise _HTTPError(400, f"unsupported tensor dtype {message.dtype}")
    shape = tuple(message.shape)
    if message.HasField("sparse_csr"):
        csr = message.sparse_csr
        values = np.frombuffer(csr.values, dtype=dtype)
        crow = np.frombuffer(csr.crow_indices, dtype=np.int64)
        col = np.frombuffer(csr.col_indices, dtype=np.int64)
        dense = np.zeros(shape, dtype=dtype)
        for row in range(len(crow) - 1):
            dense[row, col[crow[row] : crow[row + 1]]] = values[crow[row] : crow[row + 1]]
        return dense
    array = np.frombuffer(message.dense, dtype=dtype).copy()  # writable, for torch
    return array.reshape(shape) if shape else array


def _datum(message: pb.Datum, index: int) -> Datum:
    tokens: list[int] = []
    for chunk in message.model_input:
        if chunk.WhichOneof("chunk") != "encoded_text":
            raise _HTTPError(400, f"datum {index}: only text chunks are supported by the fake")
        tokens.extend(np.frombuffer(chunk.encoded_text.tokens, dtype=np.int32).tolist())
    inputs = {name: _tensor(tensor) for name, tensor in message.loss_fn_inputs.items()}
    return Datum(tokens, inputs)


def _loss_config(message: pb.ForwardBackwardRequest) -> dict[str, float | str]:
    if message.loss_fn_config_v2:
        return {
            key: (value.text if value.WhichOneof("value") == "text" else value.number)
            for key, value in message.loss_fn_config_v2.items()
        }
    return dict(message.loss_fn_config)


def _forward_backward_proto(
    outputs: list[np.ndarray], metrics: Mapping[str, float]
) -> pb.ForwardBackwardOutput:
    """Per-datum logprobs as ArrayRecords, one per run of datums with the same trailing shape."""
    message = pb.ForwardBackwardOutput(loss_fn_output_type="ArrayRecord")
    for key, value in metrics.items():
        message.metrics[key] = value
    start = 0
    while start < len(outputs):
        trailing = outputs[start].shape[1:]
        end = start
        while end < len(outputs) and outputs[end].shape[1:] == trailing:
            end += 1
        group = [np.ascontiguousarray(o, dtype=np.float32) for o in outputs[start:end]]
        offsets = np.cumsum([0] + [o.nbytes for o in group], dtype=np.int64)
        record = message.loss_fn_outputs.add(num_datums=len(group))
        field = record.fields["logprobs"]
        field.dtype = pb.DTYPE_FLOAT32
        field.data = b"".join(o.tobytes() for o in group)
        field.offsets = offsets.tobytes()
        field.trailing_shape.extend(trailing)
        start = end
    return message


def _topk_proto(topk: tuple[np.ndarray, np.ndarray]) -> pb.TopkLogprobs:
    ids, logprobs = topk
    return pb.TopkLogprobs(
        token_ids=ids.astype(np.int32).tobytes(),
        logprobs=logprobs.astype(np.float32).tobytes(),
        k=ids.shape[1] if ids.ndim == 2 else 0,
        length=ids.shape[0],
    )


def _sample_proto(
    result: SampleResult, with_prompt_logprobs: bool, last_n: int | None, cache_hits: int
) -> pb.SampleResponse:
    message = pb.SampleResponse(prompt_cache_hit_tokens=cache_hits)
    for sequence in result.sequences:
        entry = message.sequences.add(
            stop_reason=pb.STOP_REASON_STOP
            if sequence.stop_reason == "stop"
            else pb.STOP_REASON_LENGTH,
            tokens=np.asarray(sequence.tokens, dtype=np.int32).tobytes(),
            logprobs=np.asarray(sequence.logprobs, dtype=np.float32).tobytes(),
        )
        if sequence.topk is not None:
            entry.topk_sampled_logprobs.CopyFrom(_topk_proto(sequence.topk))
    if with_prompt_logprobs:
        logprobs = result.prompt_logprobs.copy()
        if last_n is not None:
            logprobs[: len(logprobs) - last_n] = np.nan
        message.prompt_logprobs = logprobs.astype(np.float32).tobytes()
        if result.prompt_topk is not None:
            message.topk_prompt_logprobs.CopyFrom(_topk_proto(result.prompt_topk))
    return message


def _as_state(checkpoint: _Checkpoint) -> TrainingCheckpoint:
    return TrainingCheckpoint(checkpoint.weights, checkpoint.optimizer, checkpoint.step)


def _checkpoint_name(name: str | None) -> str:
    if not name or "/" in name or name in {".", ".."}:
        raise _HTTPError(400, f"Invalid checkpoint name: {name!r}")
    return name


def _common_prefix(a: tuple[int, ...], b: tuple[int, ...]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def _expired(checkpoint: _Checkpoint) -> bool:
    return checkpoint.expires_at is not None and checkpoint.expires_at < time.time()


def _iso(timestamp: float | None) -> str | None:
    return None if timestamp is None else datetime.fromtimestamp(timestamp, UTC).isoformat()


# -- command line -------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """Serve models until interrupted; prints ``<base_url> <api_key>`` on one line first."""
    parser = argparse.ArgumentParser(prog="python -m opencharacter_tinker.fake_server")
    parser.add_argument("--model", action="append", required=True, metavar="NAME=FOLDER")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--api-key", default="tml-fake-key")
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--cycle", type=float, default=0.0)
    parser.add_argument("--transient-failure-rate", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    models: dict[str, str] = {}
    for spec in args.model:
        name, sep, folder = spec.partition("=")
        if not sep or not name or not folder:
            parser.error(f"--model expects NAME=FOLDER, got {spec!r}")
        models[name] = folder
    server = FakeTinkerServer(
        models,
        api_key=args.api_key,
        latency=args.latency,
        cycle=args.cycle,
        transient_failure_rate=args.transient_failure_rate,
        seed=args.seed,
        port=args.port,
    )
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    with server:
        print(server.base_url, server.api_key, flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            done.wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
