"""The fake service's HTTP transport: request and response values, errors, and the server.

Routes see a :class:`Request` and answer a :class:`Response` (or raise :class:`HTTPError`);
everything about sockets stays here: reading bodies, mapping errors to FastAPI-style answers as
the real service sends them, and a threaded server that ``stop()`` can shut down even while
clients hold pooled keep-alive connections open.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import re
import socket
import threading
import urllib.parse
from collections.abc import Callable
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

logger = logging.getLogger(__name__)

PROTOBUF = "application/x-protobuf"
_CLIENT_CONFIG = "/api/v1/client/config"


class HTTPError(Exception):
    """An HTTP error answer, with FastAPI's ``{"detail": ...}`` body as the service sends."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


@dataclasses.dataclass
class Response:
    """An answer: status, body and content type, plus any extra headers."""

    status: int
    body: bytes
    content_type: str = "application/json"
    headers: dict[str, str] = dataclasses.field(default_factory=dict)

    @classmethod
    def json(cls, payload: Any, status: int = 200, **headers: str) -> Response:
        """A JSON answer."""
        return cls(status, json.dumps(payload).encode(), headers=headers)


@dataclasses.dataclass
class Request:
    """A routed request; ``match`` holds the path parameters of its route."""

    method: str
    path: str
    headers: Message[str, str]  # http.server's: names match case-insensitively
    body: bytes
    match: re.Match[str]

    def json(self) -> dict[str, Any]:
        """The body as a JSON object (empty body: ``{}``); 400 if it is not one."""
        if not self.body:
            return {}
        try:
            payload = json.loads(self.body)
        except ValueError as exc:
            raise HTTPError(400, f"request body is not JSON: {exc}") from exc
        if not isinstance(payload, dict):
            raise HTTPError(400, "request body must be a JSON object")
        return payload


Endpoint = Callable[[Request], Response]
Route = tuple[str, str, Endpoint]  # (method, path pattern, endpoint)
# (method, unquoted path, headers, body) -> the answer; raises HTTPError for error answers.
Dispatch = Callable[[str, str, "Message[str, str]", bytes], Response]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: HTTPServer

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
        self.server.respond(self)

    do_POST = do_PUT = do_DELETE = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s %s", self.address_string(), format % args)


class HTTPServer(ThreadingHTTPServer):
    """A threaded server whose connection threads :meth:`close_connections` cuts and joins.

    The threads are daemons, so a server someone forgot to stop never holds up interpreter
    exit; ``stop()`` still joins every one of them. A thread blocked reading the next request
    on a client's pooled keep-alive connection would never finish, so sockets are shut down
    first.
    """

    daemon_threads = True
    request_queue_size = 1024  # a stage opens hundreds of connections at once

    def __init__(self, address: tuple[str, int], dispatch: Dispatch) -> None:
        self.dispatch = dispatch
        self._connections: set[socket.socket] = set()
        self._connection_threads: set[threading.Thread] = set()
        self._connections_lock = threading.Lock()
        self._closing = False
        super().__init__(address, _Handler)

    def respond(self, handler: _Handler) -> None:
        """Read one request from ``handler``, dispatch it, and write the answer."""
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        if handler.headers.get("Content-Encoding") == "zstd":
            import zstandard  # noqa: PLC0415 - only for clients told to compress (we never do)

            body = zstandard.ZstdDecompressor().decompress(body)
        parsed = urllib.parse.urlsplit(handler.path)
        path = urllib.parse.unquote(parsed.path)
        try:
            response = self.dispatch(handler.command, path, handler.headers, body)
        except HTTPError as exc:
            response = Response.json({"detail": exc.detail}, exc.status)
        except Exception as exc:
            # A bug in the fake, not a simulated outage: a 5xx would make the SDK retry for
            # minutes, so fail fast and loudly instead.
            logger.exception("fake Tinker server failed on %s %s", handler.command, path)
            detail = f"fake Tinker server bug: {type(exc).__name__}: {exc}"
            response = Response.json({"detail": detail}, 400)
        if path == _CLIENT_CONFIG:
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

    def process_request(self, request: Any, client_address: Any) -> None:
        """Serve the connection on a thread that :meth:`close_connections` can join."""
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
        """Remember an open connection, or cut it if the server is already closing."""
        with self._connections_lock:
            if not self._closing:
                self._connections.add(connection)
                return
        _cut(connection)  # accepted just as the server stopped

    def untrack(self, connection: socket.socket) -> None:
        """Forget a connection its thread has finished with."""
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
        """Log a connection's error, unless ``stop()`` caused it by cutting it."""
        if self._closing:  # a client cut off by stop(): expected
            return
        logger.exception("fake Tinker server: error serving %s", client_address)


def _cut(connection: socket.socket) -> None:
    with contextlib.suppress(OSError):
        connection.shutdown(socket.SHUT_RDWR)
