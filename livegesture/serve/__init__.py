"""The live server: WebSocket protocol, batched scheduler, FastAPI app, Python client, web viewer.

``livegesture serve`` runs :func:`create_app` under uvicorn; :mod:`.protocol` documents the wire
format; :mod:`.client` streams audio files to a server.
"""

from .app import create_app
from .config import ServerConfig

__all__ = ["ServerConfig", "create_app"]
