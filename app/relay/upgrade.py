"""gevent-websocket's request handler, with an HTTP answer possible *before* the upgrade.

gevent-websocket answers ``101 Switching Protocols`` before the Flask view runs, so a view can
refuse only with a close code. An endpoint whose refusal must be an HTTP status instead — the
OnDemand agent's key limits (``app.ondemand.throttle``): 429 with ``Retry-After``, before any
upgrade (docs/protocol.md, "Connections") — is registered with :func:`check_before_upgrade`.
For an upgrade request to it, :class:`RelayHandler` first calls the application once with
``environ["tessera.precheck"]`` set: the view's decorators run (Flask-Limiter charges its
counters, or answers 429) and the view itself answers 204 at once. Any other answer than 2xx
goes back as the HTTP response and there is no upgrade; otherwise the upgrade goes ahead and the
real call carries ``environ["tessera.prechecked"]``, which exempts it from the limits
(``app.relay.views``) so that one attempt is counted once.

Used by ``app.server.serve`` (``tessera run``).
"""
from __future__ import annotations

from geventwebsocket.handler import WebSocketHandler

PRECHECK = "tessera.precheck"
PRECHECKED = "tessera.prechecked"

_paths: set[str] = set()


def check_before_upgrade(path: str) -> None:
    """Ask the application about upgrade requests to ``path`` before upgrading them."""
    _paths.add(path)


class RelayHandler(WebSocketHandler):
    def run_application(self):
        environ = self.environ
        if environ.get("PATH_INFO") in _paths and environ.get("HTTP_UPGRADE", "").lower() == "websocket":
            refusal = self._precheck()
            if refusal is not None:
                status, headers, body = refusal
                self.close_connection = True
                self.start_response(status, headers)
                self.result = [body]
                self.process_result()
                return None
            environ[PRECHECKED] = True
        return super().run_application()

    def _precheck(self) -> tuple[str, list, bytes] | None:
        """The application's answer to the upgrade request when it refuses it, else None."""
        environ = dict(self.environ)
        environ[PRECHECK] = True
        answer: dict = {}

        def start_response(status, headers, exc_info=None):
            answer["status"], answer["headers"] = status, headers
            return lambda data: None

        result = self.application(environ, start_response)
        try:
            body = b"".join(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        status = answer.get("status", "500 Internal Server Error")
        if status.startswith("2"):
            return None
        return status, list(answer.get("headers", [])), body
