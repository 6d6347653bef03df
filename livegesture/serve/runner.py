"""Run a LiveGesture server under uvicorn: in the foreground (``livegesture serve``) or in a
background thread on a free loopback port (tests, ``bench-server``)."""

from __future__ import annotations

import errno
import gc
import socket
import threading
import time

from ..engine import LiveGesture
from ..errors import LiveGestureError
from .config import ServerConfig
from .security import RedactTokens

__all__ = ["ServerThread", "listen_socket", "serve", "serve_workers"]


def _uvicorn_options(config: ServerConfig) -> dict:
    # uvicorn refuses WebSocket messages above ws_max_size at the protocol level (close 1009);
    # our own, clearer check (max_packet_bytes) runs first for anything up to twice the limit
    return dict(lifespan="on", ws="websockets-sansio", ws_max_size=2 * max(config.max_packet_bytes, config.max_text_bytes),
                ws_ping_interval=20.0, ws_ping_timeout=20.0, timeout_graceful_shutdown=5)


def listen_socket(host: str, port: int) -> socket.socket:
    """A socket bound to host:port, made before the model loads: a busy port or an unknown host is
    one clear error instead of uvicorn's after the start-up banner."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)  # as uvicorn binds
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn: restart at once after a stop
    try:
        sock.bind((host, port))
    except (socket.gaierror, UnicodeError) as exc:
        sock.close()
        raise LiveGestureError(f"--host {host}: not an address of this machine ({exc})") from None
    except OSError as exc:
        sock.close()
        hint = "; another program is listening there (choose another --port)" if exc.errno == errno.EADDRINUSE else ""
        raise LiveGestureError(f"cannot listen on {host}:{port}: {exc.strerror}{hint}") from None
    return sock


def _uvicorn_config(app, config: ServerConfig, host: str, port: int, log_level: str):
    import uvicorn

    cfg = uvicorn.Config(app, host=host, port=port, log_level=log_level, **_uvicorn_options(config))
    RedactTokens.install()  # after uvicorn configured its loggers: no ?token= in the logs
    return cfg


def serve(engine: LiveGesture, host: str = "127.0.0.1", port: int = 8000, config: ServerConfig | None = None,
          log_level: str = "info", sock: socket.socket | None = None) -> None:
    """Serve until interrupted (on `sock` when given: see :func:`listen_socket`)."""
    import uvicorn

    from .app import create_app

    config = config or ServerConfig()
    sock = sock or listen_socket(host, port)
    server = uvicorn.Server(_uvicorn_config(create_app(engine, config), config, host, port, log_level))
    # the model, torch and the imports are ~400k long-lived objects: Python's full collections wait
    # until a quarter as many again have survived, so the reference cycles that ended connections
    # leave (each holding its socket state and queued frames) piled up between them (RSS +2 MiB
    # per 50 hostile connections). Frozen, they are skipped: full collections come often and are
    # short (docs/deploy.md §5).
    gc.collect()
    gc.freeze()
    server.run(sockets=[sock])


def serve_workers(model, workers: int, host: str = "127.0.0.1", port: int = 8000,
                  config: ServerConfig | None = None, threads: int = 1, log_level: str = "info",
                  precision: str = "float32") -> None:
    """Serve until interrupted with `workers` processes on one port (uvicorn's multiprocess supervisor),
    each loading `model` (None: the bundled one) at `precision` with `threads` torch threads and its own
    pool of ``config.max_sessions`` sessions."""
    import os

    import uvicorn

    from .workers import worker_env

    config = config or ServerConfig()
    os.environ.update(worker_env(model, config, threads, precision))  # the workers inherit it
    # a worker's event loop may wait for its model thread (which holds the GIL for small ops) longer than
    # uvicorn's default 5 s health check, which would restart it: allow a minute
    uvicorn.run("livegesture.serve.workers:app_from_env", factory=True, workers=workers, host=host, port=port,
                log_level=log_level, timeout_worker_healthcheck=60, **_uvicorn_options(config))


class ServerThread:
    """``with ServerThread(engine) as srv: srv.url`` -- a server on a free 127.0.0.1 port in a thread."""

    def __init__(self, engine: LiveGesture, config: ServerConfig | None = None, warmup: bool = True,
                 log_level: str = "warning"):
        import uvicorn

        from .app import create_app

        self.config = config or ServerConfig()
        self.app = create_app(engine, self.config, warmup=warmup)
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        self.server = uvicorn.Server(_uvicorn_config(self.app, self.config, "127.0.0.1", self.port, log_level))
        self._thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self._sock]},
                                        name="livegesture-server", daemon=True)

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> "ServerThread":
        self._thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self._thread.join(timeout=30)
        self._sock.close()
