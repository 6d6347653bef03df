"""Shared fixtures. Real-data tests use ../shared/data/beat2 and skip when it is absent."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
BEAT2_DIR = Path(os.environ.get("LIVEGESTURE_BEAT2", REPO.parent / "shared" / "data" / "beat2"))


def pytest_configure(config: pytest.Config) -> None:
    """Tests use one torch thread unless LIVEGESTURE_TEST_THREADS says otherwise: on a small
    shared CPU, oversubscribed threads made the tiny models here 10-20x slower."""
    import torch

    torch.set_num_threads(int(os.environ.get("LIVEGESTURE_TEST_THREADS", "1")))


@pytest.fixture(scope="session")
def beat2_dir() -> Path:
    """Folder of real BEAT2 sample files; skips the test when it is absent."""
    if not (BEAT2_DIR / "2_scott_0_1_1.npz").is_file():
        pytest.skip(f"real BEAT2 samples not found at {BEAT2_DIR}")
    return BEAT2_DIR


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


@pytest.fixture
def cli(capsys):
    """``cli(*args)`` runs ``livegesture ARGS`` in this process as the console script does and
    returns (exit code, stdout, stderr): user mistakes must give code 2 and one line."""
    from livegesture.cli import main

    def run(*args) -> tuple[int, str, str]:
        capsys.readouterr()
        with pytest.raises(SystemExit) as exc:
            main([str(a) for a in args])
        out = capsys.readouterr()
        return exc.value.code or 0, out.out, out.err

    return run
