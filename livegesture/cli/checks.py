"""Checks a command runs on its inputs and outputs before any long work: a failure is one line and
exit code 2 (a :class:`LiveGestureError`), never a traceback after minutes of generation. Output
paths: :func:`livegesture.export.check_output_path` and :func:`~livegesture.export.distinct_outputs`."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import AudioError


def speech_long_enough(audio: np.ndarray, path: Path, sample_rate: int = 16000) -> None:
    """At least one motion token of audio (133 ms): shorter speech gives no frame at all."""
    from ..engine import token_end_sample

    need = token_end_sample(0) * sample_rate / 16000
    if len(audio) < need:
        raise AudioError(f"{path}: {1000 * len(audio) / sample_rate:.0f} ms of audio is shorter than one motion "
                         f"token ({1000 * need / sample_rate:.0f} ms); no frame can be generated from it")
