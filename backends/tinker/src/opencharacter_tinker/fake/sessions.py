"""The service's front door: client configuration, sessions, heartbeats and capabilities.

These are the calls the SDK makes before any sampling or training, and the answers shape how
it talks to the fake: the client config turns off JWT exchange, compression and the newer
transports the fake does not speak.
"""

from __future__ import annotations

from opencharacter_tinker.fake.state import ServiceState
from opencharacter_tinker.fake.transport import HTTPError, Request, Response, Route


class SessionRoutes:
    """Routes for configuration, sessions and the served-model listing."""

    def __init__(self, state: ServiceState) -> None:
        self._state = state

    def routes(self) -> list[Route]:
        """(method, path pattern, endpoint) for each route this group serves."""
        return [
            ("POST", "/api/v1/client/config", self._client_config),
            ("POST", "/api/v1/client/dynamic_config", self._dynamic_config),
            ("GET", "/api/v1/healthz", lambda _r: Response.json({"type": "health"})),
            ("POST", "/api/v1/create_session", self._create_session),
            ("POST", "/api/v1/session_heartbeat", self._heartbeat),
            ("POST", r"/api/v1/sessions/(?P<session>[^/]+)/finish", self._finish_session),
            ("POST", "/api/v1/telemetry", lambda _r: Response.json({"status": "accepted"})),
            ("GET", "/api/v1/get_server_capabilities", self._capabilities),
        ]

    def _client_config(self, _request: Request) -> Response:
        return Response.json(
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

    def _dynamic_config(self, _request: Request) -> Response:
        return Response.json({"refresh_interval_sec": 300, "sample_cancel_enabled": False})

    def _create_session(self, _request: Request) -> Response:
        session = self._state.new_session()
        return Response.json({"type": "create_session", "session_id": session.session_id})

    def _heartbeat(self, request: Request) -> Response:
        session = self._state.sessions.get(request.json().get("session_id", ""))
        if session is None:
            raise HTTPError(404, "Session not found")
        if session.finished:
            raise HTTPError(410, "Session has finished")
        return Response.json({"type": "session_heartbeat"})

    def _finish_session(self, request: Request) -> Response:
        session = self._state.sessions.get(request.match["session"])
        if session is None:
            raise HTTPError(404, "Session not found")
        session.finished = True
        return Response.json({})

    def _capabilities(self, _request: Request) -> Response:
        models = [
            {
                "model_name": name,
                "max_context_length": model.max_context_length,
                "trainable": True,
                "sampleable": True,
            }
            for name, model in sorted(self._state.models.items())
        ]
        return Response.json({"supported_models": models})
