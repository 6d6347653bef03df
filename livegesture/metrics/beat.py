"""Beat consistency (BC) between speech onsets and motion beats, BEAT2 convention (docs/design.md §8).

Pieces, each usable alone:

- :func:`audio_onsets`: ``librosa.onset.onset_detect`` (hop 512, defaults otherwise) on
  the audio cropped to [2 s, end − 2 s], times shifted back to the clip's time axis;
- :func:`joint_speed` / :func:`motion_beats`: per-joint speed (central differences at
  30 fps, one-sided at the ends) divided by a mean speed per joint; beats are local
  minima (order 7) in frames [60, n − 60] whose normalised speed is above 0.3;
- :func:`beat_score_from_times`: mean over onsets of exp(−d²/(2·0.3²)), d the distance in
  seconds from the onset to the nearest beat (0 when a joint has no beat);
- :func:`sequence_beat_consistency`: one clip, averaged over the 13 upper-body joints;
- :func:`beat_consistency`: several clips, weighted by (n − 120).

Differences from the public BEAT2/EMAGE evaluation code: these functions default to the
corrected (``strict``) definition, where a minimum's speed is checked at the minimum itself. That code finds minima in the
cropped range [60, n-60] but tests ``index in mask`` with the index *relative to the crop*
against a mask over the full clip, so it checks the speed 60 frames (2 s) *before* the
minimum; it keeps many more beats and gives clearly higher BC (0.68 instead of 0.40 on the
two real sample clips, approximate skeleton). ``published_indexing=True`` reproduces that
behaviour; ``livegesture evaluate`` uses it by default (``--protocol beat2``). A clip
without any onset is left out instead of giving NaN.

:func:`protocol_onsets` and :func:`protocol_sequence_bc` compute one clip's BC under a named
protocol (:mod:`livegesture.metrics.protocol`): the published ones also cut the audio their
own way and use their own speed threshold.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy.signal import argrelextrema

from ..body.constants import BC_JOINTS, FPS
from .protocol import BEAT2, EVALTOOLS, Protocol

SAMPLE_RATE = 16000
HOP_LENGTH = 512
AUDIO_CROP_S = 2.0          # seconds dropped at each end of the audio
MARGIN_FRAMES = 60          # frames dropped at each end of the motion (2 s at 30 fps)
ORDER = 7                   # local-minimum neighbourhood (frames each side)
SPEED_THRESHOLD = 0.3       # normalised speed a beat must exceed
SIGMA_S = 0.3               # Gaussian width of the score, seconds


def audio_onsets(audio: np.ndarray, sample_rate: int = SAMPLE_RATE, crop_s: float = AUDIO_CROP_S,
                 hop_length: int = HOP_LENGTH) -> np.ndarray:
    """Onset times (s, on the uncropped clip's axis) of mono audio cropped to
    [crop_s, end - crop_s]."""
    import librosa

    y = np.asarray(audio, dtype=np.float32)
    if y.ndim != 1:
        raise ValueError(f"audio_onsets: audio must be 1-D mono, got shape {y.shape}")
    start = int(round(crop_s * sample_rate))
    cropped = y[start:len(y) - start]
    if len(cropped) < 2 * hop_length:
        return np.zeros(0)
    times = librosa.onset.onset_detect(y=cropped, sr=sample_rate, hop_length=hop_length,
                                       units="time")
    return np.asarray(times, dtype=np.float64) + start / sample_rate


def joint_speed(joints: np.ndarray, fps: float = FPS) -> np.ndarray:
    """Speed (T, J) of joint positions (T, J, 3): central differences, one-sided at the ends."""
    j = np.asarray(joints, dtype=np.float64)
    if j.ndim != 3 or j.shape[-1] != 3:
        raise ValueError(f"joint_speed: joints must be (T, J, 3), got shape {j.shape}")
    if len(j) < 2:
        return np.zeros(j.shape[:2])
    return np.linalg.norm(np.gradient(j, 1.0 / fps, axis=0), axis=-1)


def normalise_speed(speed: np.ndarray, mean_vel: np.ndarray) -> np.ndarray:
    """speed / mean_vel per joint; joints whose mean speed is 0 get 0 (they never beat)."""
    mv = np.asarray(mean_vel, dtype=np.float64).reshape(-1)
    if mv.shape[0] != speed.shape[1]:
        raise ValueError(f"mean_vel has {mv.shape[0]} joints, the speeds {speed.shape[1]}")
    return np.divide(speed, mv, out=np.zeros_like(speed), where=mv > 0)


def motion_beats(joints: np.ndarray, mean_vel: np.ndarray | None = None, fps: float = FPS,
                 margin: int = MARGIN_FRAMES, order: int = ORDER,
                 threshold: float = SPEED_THRESHOLD,
                 published_indexing: bool = False) -> list[np.ndarray]:
    """Beat frames per joint (absolute frame indices) of joint positions (T, J, 3).

    A beat is a local minimum (``argrelextrema(np.less, order)``) of the joint's
    normalised speed within frames [margin, T - margin] whose normalised speed is
    above `threshold`. `mean_vel` (J,) defaults to this clip's mean speed per joint.
    With `published_indexing`, the speed is checked `margin` frames before the
    minimum, as the public BEAT2 evaluation code does (see the module doc).
    """
    speed = joint_speed(joints, fps)
    if mean_vel is None:
        mean_vel = speed.mean(0) if len(speed) else np.ones(speed.shape[1])
    vel = normalise_speed(speed, mean_vel)
    n = len(vel)
    lo, hi = margin, n - margin
    beats = []
    for j in range(vel.shape[1]):
        if hi - lo <= 2 * order:
            beats.append(np.zeros(0, np.int64))
            continue
        seg = vel[lo:hi, j]
        minima = argrelextrema(seg, np.less, order=order)[0]
        checked = vel[minima, j] if published_indexing else seg[minima]
        minima = minima[checked > threshold]
        beats.append((minima + lo).astype(np.int64))
    return beats


def beat_score_from_times(onsets: np.ndarray, beats: np.ndarray, sigma: float = SIGMA_S) -> float:
    """Mean over onsets of exp(-d²/(2σ²)), d = seconds to the nearest beat; 0 without beats.

    NaN when there are no onsets (nothing to score).
    """
    onsets = np.asarray(onsets, dtype=np.float64).reshape(-1)
    beats = np.asarray(beats, dtype=np.float64).reshape(-1)
    if len(onsets) == 0:
        return float("nan")
    if len(beats) == 0:
        return 0.0
    d = np.min(np.abs(onsets[:, None] - beats[None, :]), axis=1)
    return float(np.mean(np.exp(-d ** 2 / (2 * sigma ** 2))))


@dataclass(frozen=True)
class SequenceBC:
    score: float          # NaN when the clip has no onset or is too short
    weight: int           # n - 2*margin frames (0 when not scored)
    n_onsets: int
    per_joint: dict[int, float]


def sequence_beat_consistency(joints: np.ndarray, audio: np.ndarray,
                              sample_rate: int = SAMPLE_RATE, mean_vel: np.ndarray | None = None,
                              fps: float = FPS, joint_ids: Sequence[int] = BC_JOINTS,
                              margin: int = MARGIN_FRAMES, sigma: float = SIGMA_S,
                              onsets: np.ndarray | None = None,
                              published_indexing: bool = False) -> SequenceBC:
    """BC of one clip: joints (T, 55, 3) and its audio (cropped to the motion's duration here)."""
    joints = np.asarray(joints)
    n = len(joints)
    audio = np.asarray(audio).reshape(-1)[:int(round(n / fps * sample_rate))]
    if onsets is None:
        onsets = audio_onsets(audio, sample_rate, crop_s=margin / fps)
    beats = motion_beats(joints, mean_vel, fps=fps, margin=margin,
                         published_indexing=published_indexing)
    per_joint = {j: beat_score_from_times(onsets, beats[j] / fps, sigma) for j in joint_ids}
    if n <= 2 * margin or len(onsets) == 0:
        return SequenceBC(float("nan"), 0, len(onsets), per_joint)
    return SequenceBC(float(np.mean(list(per_joint.values()))), n - 2 * margin, len(onsets),
                      per_joint)


def beat_consistency(joints: np.ndarray | Sequence[np.ndarray],
                     audio: np.ndarray | Sequence[np.ndarray], sample_rate: int = SAMPLE_RATE,
                     mean_vel: np.ndarray | None = None, fps: float = FPS,
                     joint_ids: Sequence[int] = BC_JOINTS, margin: int = MARGIN_FRAMES,
                     sigma: float = SIGMA_S, published_indexing: bool = False) -> float:
    """Beat consistency of clips: joints (T, 55, 3) each (or one array) with their audio.

    `mean_vel` (55,) is the dataset's mean speed per joint (BEAT2 ships
    ``mean_vel_smplxflame_30.npy``). When it is None, the mean speed per joint over
    all the given clips is used instead, so the value is then *not* comparable with
    published numbers. Clips are weighted by (n − 120); clips without onsets or of at
    most 120 frames are left out. NaN when no clip can be scored. `published_indexing`:
    see :func:`motion_beats`.
    """
    if isinstance(joints, np.ndarray) and joints.ndim == 3:
        joints, audio = [joints], [np.asarray(audio)]
    joints, audio = list(joints), list(audio)
    if len(joints) != len(audio):
        raise ValueError(f"beat_consistency: {len(joints)} joint sequences but {len(audio)} audio")
    if mean_vel is None:
        speeds = [joint_speed(j, fps) for j in joints if len(j) > 1]
        mean_vel = np.concatenate(speeds).mean(0) if speeds else None
    total, weight = 0.0, 0
    for j, a in zip(joints, audio):
        r = sequence_beat_consistency(j, a, sample_rate, mean_vel, fps, joint_ids, margin, sigma,
                                      published_indexing=published_indexing)
        if r.weight:
            total += r.score * r.weight
            weight += r.weight
    return total / weight if weight else float("nan")


def protocol_onsets(audio: np.ndarray, n_frames: int, protocol: Protocol,
                    sample_rate: int = SAMPLE_RATE, fps: int = FPS, margin: int = MARGIN_FRAMES,
                    hop_length: int = HOP_LENGTH) -> np.ndarray:
    """Onset times (s) of a clip scored over `n_frames`, from its whole audio file at 16 kHz
    (read as the protocol reads it).

    ``beat2``: the audio cut to ``int(sr / fps * n)`` samples, then from ``int(margin * sr / fps)``
    to that many samples before the end *of the whole file*; ``evaltools``: samples
    ``[2 s, int((n - margin) / fps * sr))``. Both give times from the start of the cut (their
    beats are counted from frame `margin`, which is the same instant). ``strict``: the audio cut
    to the motion's duration, then [2 s, end - 2 s], times on the clip's axis.
    """
    y = np.asarray(audio, dtype=np.float32).reshape(-1)
    if protocol.onset_crop == BEAT2:
        offset = int(margin * (sample_rate / fps))
        seg = y[:int(sample_rate / fps * n_frames)][offset:len(y) - offset]
    elif protocol.onset_crop == EVALTOOLS:
        seg = y[margin * sample_rate // fps:int((n_frames - margin) / fps * sample_rate)]
    else:
        return audio_onsets(y[:int(round(n_frames / fps * sample_rate))], sample_rate,
                            crop_s=margin / fps, hop_length=hop_length)
    if len(seg) < 2 * hop_length:
        return np.zeros(0)
    import librosa

    return np.asarray(librosa.onset.onset_detect(y=seg, sr=sample_rate, hop_length=hop_length,
                                                 units="time"), dtype=np.float64)


def protocol_sequence_bc(joints: np.ndarray, onsets: np.ndarray, mean_vel: np.ndarray | None,
                         protocol: Protocol, fps: float = FPS, joint_ids: Sequence[int] = BC_JOINTS,
                         margin: int = MARGIN_FRAMES, sigma: float = SIGMA_S) -> SequenceBC:
    """One clip's BC under `protocol` from its joints (n, 55, 3) and :func:`protocol_onsets`.

    Published protocols count beat times from frame `margin` (as their onsets count from the
    cut) and test the speed threshold at the minimum's index relative to that frame; a joint
    without beats scores 0. Weight n - 2·margin; NaN and weight 0 without onsets (the published
    code divides by zero there) or when n <= 2·margin.
    """
    joints = np.asarray(joints)
    n = len(joints)
    beats = motion_beats(joints, mean_vel, fps=fps, margin=margin, threshold=protocol.bc_threshold,
                         published_indexing=protocol.published_indexing)
    shift = margin if protocol.onset_crop in (BEAT2, EVALTOOLS) else 0
    per_joint = {j: beat_score_from_times(onsets, (beats[j] - shift) / fps, sigma) for j in joint_ids}
    if n <= 2 * margin or len(onsets) == 0:
        return SequenceBC(float("nan"), 0, len(onsets), per_joint)
    return SequenceBC(float(np.mean(list(per_joint.values()))), n - 2 * margin, len(onsets), per_joint)
