"""Download routes: a checkpoint's files behind short-lived signed URLs.

``get_external_weights_urls`` answers one URL per file of an external-weights checkpoint (a PEFT
adapter folder); the older ``.../archive`` endpoint redirects to a tar of the same folder. The
URLs point back at this server's ``/files/`` route, which needs no API key, as a storage bucket's
signed URLs need none.
"""

from __future__ import annotations

import email.utils
import secrets
import time
import urllib.parse

from opencharacter_tinker.fake.lora import tar_archive
from opencharacter_tinker.fake.state import CHECKPOINT_PATH, ServiceState, iso
from opencharacter_tinker.fake.transport import HTTPError, Request, Response, Route

_URL_LIFETIME = 3600.0


class DownloadRoutes:
    """Routes that sign download URLs for checkpoints, and the route that serves them."""

    def __init__(self, state: ServiceState) -> None:
        self._state = state
        self._downloads: dict[str, tuple[dict[str, bytes], float]] = {}  # token -> files, expiry

    def routes(self) -> list[Route]:
        """(method, path pattern, endpoint) for each route this group serves."""
        return [
            ("GET", f"{CHECKPOINT_PATH}/external_weights_urls", self._external_weights_urls),
            ("GET", f"{CHECKPOINT_PATH}/archive", self._archive),
            ("GET", r"/files/(?P<token>[^/]+)/(?P<file>[^/]+)", self._download),
        ]

    def _signed_url(self, files: dict[str, bytes], name: str) -> tuple[str, float]:
        token = secrets.token_urlsafe(16)
        expires = time.time() + _URL_LIFETIME
        with self._state.lock:
            self._downloads[token] = (files, expires)
        base_url = self._state.settings.base_url
        return f"{base_url}/files/{token}/{urllib.parse.quote(name)}", expires

    def _external_weights_urls(self, request: Request) -> Response:
        checkpoint = self._state.checkpoint_at(request.match)
        if checkpoint.files is None:
            raise HTTPError(400, f"{checkpoint.path} is not an external weights checkpoint")
        urls: dict[str, str] = {}
        expires = 0.0
        for name in checkpoint.files:
            urls[name], expires = self._signed_url(checkpoint.files, name)
        return Response.json({"urls": urls, "expires": iso(expires)})

    def _archive(self, request: Request) -> Response:
        """The pre-0.38 download endpoint: a 302 to a tar of the PEFT adapter folder."""
        checkpoint = self._state.checkpoint_at(request.match)
        folder = self._state.models[checkpoint.base_model].folder
        files = {"archive.tar": tar_archive(checkpoint.weights.peft_files(folder))}
        url, expires = self._signed_url(files, "archive.tar")
        expires_header = email.utils.formatdate(expires, usegmt=True)
        body = {"url": url, "expires": iso(expires)}
        return Response.json(body, 302, Location=url, Expires=expires_header)

    def _download(self, request: Request) -> Response:
        with self._state.lock:
            entry = self._downloads.get(request.match["token"])
        name = request.match["file"]
        if entry is None or entry[1] < time.time() or name not in entry[0]:
            raise HTTPError(404, "Download link not found or expired")
        return Response(200, entry[0][name], "application/octet-stream")
