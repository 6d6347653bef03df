"""Fixtures of the server tests: the TINY random model of tests/test_engine.py and a live uvicorn
server on a free loopback port (one per module)."""

from __future__ import annotations

import numpy as np
import pytest

from livegesture.serve.config import ServerConfig
from livegesture.serve.runner import ServerThread

from ..test_engine import model, model_path  # noqa: F401  (fixtures)


def pcm16_exact(audio: np.ndarray) -> np.ndarray:
    """Audio as it arrives after a pcm16 round trip (what the server feeds the model)."""
    return (np.clip(np.round(audio.astype(np.float64) * 32768), -32768, 32767) / 32768).astype(np.float32)


@pytest.fixture(scope="module")
def server(model):  # noqa: F811
    with ServerThread(model, ServerConfig(max_sessions=16)) as srv:
        yield srv
