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

This module assembles the service from the parts in :mod:`opencharacter_tinker.fake` (see
its docstring for the map) and holds what is the server's own: its lifecycle, API-key checks and
injected failures, and the command line.

Run it standalone (e.g. for a benchmark in another process)::

    python -m opencharacter_tinker.fake_server --model tiny=/path/to/folder --port 8765
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import re
import signal
import threading
from collections.abc import Mapping
from email.message import Message
from pathlib import Path

from opencharacter_tinker.fake.checkpoints import CheckpointRoutes
from opencharacter_tinker.fake.downloads import DownloadRoutes
from opencharacter_tinker.fake.futures import Futures
from opencharacter_tinker.fake.sampling import SamplingRoutes
from opencharacter_tinker.fake.served import ServedModel
from opencharacter_tinker.fake.sessions import SessionRoutes
from opencharacter_tinker.fake.state import ServiceState
from opencharacter_tinker.fake.training import TrainingRoutes
from opencharacter_tinker.fake.transport import HTTPError, HTTPServer, Request, Response, Route

__all__ = ["FakeTinkerServer", "main"]

_HOST = "127.0.0.1"


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
        self.injected_failures = 0
        self.base_url = ""
        self._folders = {name: str(folder) for name, folder in models.items()}
        self._port = port
        self._state = ServiceState(self, seed)  # reads the knobs above while it serves
        self.calls = self._state.calls
        self._failed_once: set[bytes] = set()
        self._httpd: HTTPServer | None = None
        self._serve_thread: threading.Thread | None = None
        futures = Futures(self._state)
        training = TrainingRoutes(self._state, futures)
        self._sampling = SamplingRoutes(self._state, futures)
        table: list[Route] = [
            *SessionRoutes(self._state).routes(),
            *self._sampling.routes(),
            *futures.routes(),
            *training.routes(),
            *CheckpointRoutes(self._state, futures, training).routes(),
            *DownloadRoutes(self._state).routes(),
            ("GET", "/fake/calls", lambda _r: Response.json(dict(self.calls))),
        ]
        self._routes = [(method, re.compile(pattern + "$"), fn) for method, pattern, fn in table]

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> FakeTinkerServer:
        """Load the models and start serving on 127.0.0.1; returns self."""
        if self._httpd is not None:
            return self
        if self._state.stopping.is_set():
            msg = "a stopped FakeTinkerServer cannot be restarted; create a new one"
            raise RuntimeError(msg)
        for name, folder in self._folders.items():
            if name not in self._state.models:
                self._state.models[name] = ServedModel(name, folder)
        self._sampling.start()
        self._httpd = HTTPServer((_HOST, self._port), self._dispatch)
        self.base_url = f"http://{_HOST}:{self._httpd.server_port}"
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
        self._state.stopping.set()
        httpd.shutdown()
        httpd.close_connections()
        httpd.server_close()
        if self._serve_thread is not None:
            self._serve_thread.join()
        with self._state.lock:
            runs = list(self._state.runs.values())
        for run in runs:
            run.sequencer.close()
        self._sampling.stop()
        self._httpd = None
        self._serve_thread = None

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

    # -- dispatch -------------------------------------------------------------------------------

    def _dispatch(
        self, method: str, path: str, headers: Message[str, str], body: bytes
    ) -> Response:
        for route_method, pattern, fn in self._routes:
            match = pattern.match(path)
            if match is None or route_method != method:
                continue
            request = Request(method, path, headers, body, match)
            if path.startswith("/api/"):
                if headers.get("X-API-Key") != self.api_key:
                    raise HTTPError(401, "Invalid or missing API key")
                failure = self._injected_failure(request)
                if failure is not None:
                    return failure
            return fn(request)
        raise HTTPError(404, f"Not Found: {method} {path}")

    def _injected_failure(self, request: Request) -> Response | None:
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
        with self._state.lock:
            if key in self._failed_once:
                return None
            self._failed_once.add(key)
            self.injected_failures += 1
        if key[8] % 2:
            detail = "Service temporarily unavailable (injected by FakeTinkerServer)"
            return Response(503, json.dumps({"detail": detail}).encode())
        detail = "Too many requests (injected by FakeTinkerServer)"
        return Response(
            429, json.dumps({"detail": detail}).encode(), headers={"retry-after-ms": "50"}
        )


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
