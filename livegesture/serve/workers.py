"""``livegesture serve --workers N``: N server processes on one port (uvicorn's worker model).

uvicorn's supervisor binds the port once and starts N worker processes that accept on the same
socket, so the kernel spreads connections over them; each worker imports this module's
:func:`app_from_env` (uvicorn needs an import string, not an object) and serves its own
:class:`~livegesture.engine.SessionPool` with its own model copy and torch threads. Settings
travel in environment variables, since the workers are fresh processes.
"""

from __future__ import annotations

import os

import json

from .config import ServerConfig

__all__ = ["ENV_MODEL", "ENV_CONFIG", "ENV_PRECISION", "ENV_THREADS", "app_from_env", "worker_env"]

ENV_MODEL = "LIVEGESTURE_SERVE_MODEL"      # model file ("" = the bundled demo model)
ENV_CONFIG = "LIVEGESTURE_SERVE_CONFIG"    # the ServerConfig as JSON (max_sessions is per worker)
ENV_THREADS = "LIVEGESTURE_SERVE_THREADS"  # torch intra-op threads per worker (0 = torch's default)
ENV_PRECISION = "LIVEGESTURE_SERVE_PRECISION"  # the model step's matrix products (float32 / int8)


def worker_env(model: str | os.PathLike | None, config: ServerConfig, threads: int,
               precision: str = "float32") -> dict[str, str]:
    """The environment variables :func:`app_from_env` reads (the token travels in the clear, in the
    environment of the server's own processes only)."""
    data = config.model_dump(mode="json")
    data["token"] = None if config.token is None else config.token.get_secret_value()
    return {ENV_MODEL: "" if model is None else os.fspath(model), ENV_CONFIG: json.dumps(data),
            ENV_THREADS: str(int(threads)), ENV_PRECISION: precision}


def app_from_env():
    """The ASGI app of one worker, configured by :func:`worker_env`'s variables."""
    import torch

    from ..engine import LiveGesture
    from .app import create_app
    from .security import RedactTokens

    threads = int(os.environ.get(ENV_THREADS, "0"))
    if threads > 0:
        torch.set_num_threads(threads)
    model = os.environ.get(ENV_MODEL, "")
    engine = LiveGesture.load(model or None, precision=os.environ.get(ENV_PRECISION, "float32"))
    RedactTokens.install()  # uvicorn has configured this worker's loggers: no ?token= in its logs
    return create_app(engine, ServerConfig.model_validate_json(os.environ.get(ENV_CONFIG, "{}")))
