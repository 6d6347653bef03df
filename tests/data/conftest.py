"""Fixtures of the data tests: a small synthetic BEAT2 folder written once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from livegesture.data import write_synthetic_beat2

#: clips of the synthetic data set: 6 s each; motion lengths 180, 182, 177, 180 frames
SYNTH_SECONDS = 6.0
SYNTH_IDS = [f"2_scott_0_{i}_{i}" for i in range(1, 5)]


@pytest.fixture(scope="session")
def synth_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A BEAT2-layout folder of 4 synthetic clips (read only: copy before changing it)."""
    root = tmp_path_factory.mktemp("synth_beat2")
    write_synthetic_beat2(root, n_clips=4, seconds=SYNTH_SECONDS, seed=0)
    return root
