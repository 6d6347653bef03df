"""Audio loading: any file or array -> mono float32 at 16 kHz (docs/design.md §1)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from ..errors import AudioError

SAMPLE_RATE = 16000

#: array dtypes accepted by :func:`prepare_audio`; integers are scaled to [-1, 1)
_INT_SCALE = {np.dtype(np.int16): 2.0 ** 15, np.dtype(np.int32): 2.0 ** 31}
_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
#: a 2-D array with more "channels" than this is almost surely (channels, frames)
_MAX_CHANNELS = 16


def _convert(x: np.ndarray, sample_rate: int, target_rate: int, what: str) -> np.ndarray:
    """Shared conversion; `what` prefixes every error message (a file name or 'audio')."""
    check_sample_rate(sample_rate, f"{what}: sample rate")
    if not isinstance(target_rate, (int, np.integer)) or target_rate <= 0:
        raise AudioError(f"{what}: target rate must be a positive integer, got {target_rate!r}")
    if x.ndim not in (1, 2):
        raise AudioError(f"{what}: expected a 1-D (samples,) or 2-D (samples, channels) array, "
                         f"got shape {x.shape}")
    if x.dtype in _INT_SCALE:
        x = x.astype(np.float32) / np.float32(_INT_SCALE[x.dtype])
    elif x.dtype in _FLOATS:
        if x.size and not np.isfinite(x).all():
            raise AudioError(f"{what}: contains NaN or Inf samples")
    else:
        raise AudioError(f"{what}: unsupported sample type {x.dtype} "
                         "(use float32, float64, int16 or int32)")
    if x.ndim == 2:
        if x.shape[1] == 0:
            raise AudioError(f"{what}: array has shape {x.shape}: zero channels")
        if x.shape[1] > _MAX_CHANNELS and x.shape[0] <= _MAX_CHANNELS:
            raise AudioError(f"{what}: array has shape {x.shape}, which looks like "
                             "(channels, samples); pass (samples, channels)")
        x = x.mean(axis=1) if x.shape[1] > 1 else x[:, 0]
    x = np.asarray(x, dtype=np.float32)
    if sample_rate != target_rate and len(x):
        x = soxr.resample(x, int(sample_rate), int(target_rate), quality="VHQ")
    return np.ascontiguousarray(x, dtype=np.float32)


def check_sample_rate(sample_rate: object, what: str = "sample rate") -> int:
    """`sample_rate` as an int; :class:`AudioError` unless it is a positive integer."""
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, np.integer)) or sample_rate <= 0:
        raise AudioError(f"{what} must be a positive integer, got {sample_rate!r}")
    return int(sample_rate)


def streaming_resampler(sample_rate: int):
    """A soxr ``ResampleStream`` (VHQ, mono float32) from `sample_rate` to 16 kHz, or None at 16 kHz."""
    if check_sample_rate(sample_rate) == SAMPLE_RATE:
        return None
    import soxr

    return soxr.ResampleStream(int(sample_rate), SAMPLE_RATE, 1, dtype="float32", quality="VHQ")


def prepare_audio(x: np.ndarray, sample_rate: int, target_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Convert an in-memory array to mono float32 at `target_rate` (1-D, contiguous).

    Accepts (samples,) or (samples, channels) arrays of float32/float64/int16/int32;
    integers are scaled to [-1, 1), channels are averaged, the rate is converted with
    soxr (VHQ). Raises :class:`AudioError` for other dtypes/shapes, NaN/Inf or a bad rate.
    An empty array gives an empty result.
    """
    return _convert(np.asarray(x), sample_rate, target_rate, "audio")


def load_audio(path: str | os.PathLike, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Read an audio file (any rate, channel count and sample type soundfile reads) as
    mono float32 at `sample_rate`. Errors name the file and the problem."""
    path = Path(path)
    if not path.is_file():
        raise AudioError(f"{path}: no such audio file")
    try:
        x, sr = sf.read(path, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        raise AudioError(f"{path}: not an audio file or unreadable ({exc})") from None
    if len(x) == 0:
        raise AudioError(f"{path}: audio file has zero samples")
    return _convert(x, int(sr), sample_rate, str(path))


#: readers of a clip's audio for the published metric code (see :mod:`livegesture.metrics.protocol`)
AUDIO_READERS = ("project", "librosa-22050-to-16k", "librosa-16k")


def load_audio_as(path: str | os.PathLike, reader: str = "project") -> np.ndarray:
    """A file's audio, mono float32 at 16 kHz, read the way `reader` names.

    ``project`` is :func:`load_audio` (soundfile + soxr VHQ). The two others repeat what the
    published BEAT2 evaluation code does, because its onsets move with the samples:
    ``librosa-22050-to-16k`` reads with ``librosa.load`` at its default rate (22050 Hz), then
    resamples with ``librosa.resample`` to 16 kHz (EMAGE 2024 test loop); ``librosa-16k`` is
    ``librosa.load(path, sr=16000)`` (emage_evaltools). librosa's default resampler (soxr
    "HQ") is used in both, as there.
    """
    if reader == "project":
        return load_audio(path, SAMPLE_RATE)
    if reader not in AUDIO_READERS:
        raise ValueError(f"unknown audio reader {reader!r}; use one of {', '.join(AUDIO_READERS)}")
    import librosa

    path = Path(path)
    if not path.is_file():
        raise AudioError(f"{path}: no such audio file")
    try:
        if reader == "librosa-16k":
            y, _ = librosa.load(path, sr=SAMPLE_RATE)
        else:
            y, sr = librosa.load(path)
            y = librosa.resample(y, orig_sr=sr, target_sr=SAMPLE_RATE)
    except Exception as exc:  # noqa: BLE001 - any decoder failure is a bad file for the user
        raise AudioError(f"{path}: not an audio file or unreadable ({exc.__class__.__name__}: {exc})") from None
    if len(y) == 0:
        raise AudioError(f"{path}: audio file has zero samples")
    return np.ascontiguousarray(y, dtype=np.float32)
