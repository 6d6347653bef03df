"""Who may use a server: the access token, the Origin allow-list for WebSocket upgrades and the
per-client session count (docs/deploy.md says what each protects).

* **Token** (``ServerConfig.token``): a client presents it as ``Authorization: Bearer TOKEN`` or as
  the ``token`` query parameter (browsers cannot set headers on a WebSocket). Without it, ``/ws``
  is refused at the handshake (HTTP 403, the WebSocket never opens) and ``/metrics`` answers 403
  unless ``public_metrics``. ``/health`` and the viewer page stay open (they hold no secret).
* **Origin** (cross-site WebSocket hijacking: any web page a user visits can open a WebSocket to a
  server the user's browser reaches): an upgrade whose ``Origin`` header is not allowed is refused
  at the handshake. Allowed: the origins listed in ``allowed_origins`` (``"*"``: any); with no list,
  the server's own origin only (Origin host = Host header) when no token is set, and any origin
  when a token is set (a foreign page cannot know the token). Requests without an Origin header
  are not from a browser page and pass this check (the token is what guards them).
* **Sessions per client** (``max_sessions_per_client``): one address may hold at most that many
  sessions at once, so one client cannot take every row of the model pool.
"""

from __future__ import annotations

import hmac
import logging
import re
from collections import Counter
from urllib.parse import urlsplit

from starlette.requests import HTTPConnection
from starlette.responses import PlainTextResponse
from starlette.websockets import WebSocket

from .config import ServerConfig

log = logging.getLogger("livegesture.serve")

__all__ = ["AccessPolicy", "RedactTokens", "normalise_origin"]

_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


def normalise_origin(origin: str) -> str:
    """``scheme://host[:port]`` in lower case without the scheme's default port ('' when malformed)."""
    parts = urlsplit(origin.strip())
    try:
        port = parts.port
    except ValueError:
        return ""
    if not parts.scheme or not parts.hostname:
        return ""
    host = parts.hostname.lower()
    host = f"[{host}]" if ":" in host else host
    keep = port is not None and port != _DEFAULT_PORTS.get(parts.scheme.lower())
    return f"{parts.scheme.lower()}://{host}{f':{port}' if keep else ''}"


def _host_of(netloc: str, scheme: str) -> str:
    """'host:port' of a Host header value, the default port of `scheme` dropped."""
    return normalise_origin(f"{scheme}://{netloc}").split("://", 1)[-1]


class AccessPolicy:
    """The checks of one app; holds the live per-client session counts."""

    def __init__(self, config: ServerConfig) -> None:
        self.token = config.token.get_secret_value().encode() if config.token is not None else None
        self.origins = None if config.allowed_origins is None else \
            {o if o == "*" else normalise_origin(o) for o in config.allowed_origins}
        self.public_metrics = config.public_metrics
        self.per_client = config.max_sessions_per_client
        self.sessions: Counter[str] = Counter()

    # ------------------------------------------------------------------ token
    def presented(self, conn: HTTPConnection) -> str | None:
        auth = conn.headers.get("authorization", "")
        if auth[:7].lower() == "bearer ":
            return auth[7:].strip()
        return conn.query_params.get("token")

    def authorised(self, conn: HTTPConnection) -> bool:
        if self.token is None:
            return True
        given = self.presented(conn)
        return given is not None and hmac.compare_digest(given.encode(), self.token)

    def metrics_refusal(self, conn: HTTPConnection) -> PlainTextResponse | None:
        """The 403 answer to a /metrics request without the token (None: serve it)."""
        if self.public_metrics or self.authorised(conn):
            return None
        return PlainTextResponse("a valid token is required (Authorization: Bearer TOKEN)", 403)

    # ------------------------------------------------------------------ origin
    def origin_allowed(self, conn: HTTPConnection) -> bool:
        origin = conn.headers.get("origin")
        if origin is None:
            return True
        if self.origins is not None:
            return "*" in self.origins or normalise_origin(origin) in self.origins
        if self.token is not None:
            return True
        o = normalise_origin(origin)
        if not o:
            return False  # 'null' (sandboxed or file:// pages) and malformed values
        scheme = o.split("://", 1)[0]
        return o.split("://", 1)[1] == _host_of(conn.headers.get("host", ""), scheme)

    # ------------------------------------------------------------------ the WebSocket handshake
    def handshake_refusal(self, websocket: WebSocket) -> tuple[str, str] | None:
        """(metrics kind, reason) when this upgrade must be refused before it is accepted."""
        if not self.authorised(websocket):
            return "unauthorized", "a valid token is required (Authorization: Bearer TOKEN or ?token=TOKEN)"
        if not self.origin_allowed(websocket):
            return "origin", f"origin {websocket.headers.get('origin')!r} is not allowed (see --allow-origin)"
        return None

    @staticmethod
    async def refuse(websocket: WebSocket, reason: str) -> None:
        """A close before accept: the server answers the upgrade with a bare HTTP 403 (the
        WebSocket never opens). The reason goes to the server log only: uvicorn's denial-response
        path (a 403 with a body) logs a spurious 'returned without completing handshake' error for
        every refusal."""
        log.info("refused a WebSocket from %s: %s", AccessPolicy.client_of(websocket), reason)
        await websocket.close(1008)

    # ------------------------------------------------------------------ sessions per client
    @staticmethod
    def client_of(conn: HTTPConnection) -> str:
        """The client's address (uvicorn puts the X-Forwarded-For address here for trusted proxies)."""
        return conn.client.host if conn.client is not None else "?"

    def claim(self, client: str) -> str | None:
        """Count one more session for `client`; the refusal message when it already has its share."""
        if self.per_client is not None and self.sessions[client] >= self.per_client:
            return (f"this client already has {self.sessions[client]} sessions open (the limit per client is "
                    f"{self.per_client}); close one first")
        self.sessions[client] += 1
        return None

    def release(self, client: str) -> None:
        self.sessions[client] -= 1
        if self.sessions[client] <= 0:
            del self.sessions[client]


class RedactTokens(logging.Filter):
    """Replaces ``token=...`` in log records (uvicorn logs request paths with their query string)."""

    _PATTERN = re.compile(r"(token=)[^&\s\"']+")

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and record.args:
            record.args = tuple(self._PATTERN.sub(r"\1<redacted>", a) if isinstance(a, str) else a
                                for a in record.args)
        if isinstance(record.msg, str) and "token=" in record.msg:
            record.msg = self._PATTERN.sub(r"\1<redacted>", record.msg)
        return True

    @classmethod
    def install(cls) -> None:
        """On uvicorn's loggers (once)."""
        for name in ("uvicorn.access", "uvicorn.error"):
            logger = logging.getLogger(name)
            if not any(isinstance(f, cls) for f in logger.filters):
                logger.addFilter(cls())
