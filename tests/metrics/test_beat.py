"""Beat consistency: hand-made onsets/beats with known scores, and end-to-end on clicks."""

from __future__ import annotations

import numpy as np
import pytest

from livegesture.body.constants import BC_JOINTS
from livegesture.metrics import (audio_onsets, beat_consistency, beat_score_from_times,
                                 joint_speed, motion_beats, sequence_beat_consistency)

SR, FPS = 16000, 30
PERIOD = 0.5                      # s between beats/clicks (15 frames)
PHASE = 0.1                       # first beat/click at 0.1 s (frame 3)


def clicks(seconds: float, times: np.ndarray, seed: int = 0) -> np.ndarray:
    """Near-silence with 30 ms decaying noise bursts starting at `times`."""
    rng = np.random.default_rng(seed)
    y = rng.normal(0, 1e-4, int(seconds * SR)).astype(np.float32)
    n = int(0.03 * SR)
    env = np.exp(-np.arange(n) / (0.008 * SR))
    for t in times:
        i = int(round(t * SR))
        y[i:i + n] += (0.5 * rng.normal(0, 1, n) * env)[:len(y) - i].astype(np.float32)
    return y


def periodic_joints(n_frames: int, shift_s: float = 0.0) -> np.ndarray:
    """Every joint moves along x with speed 1.5 - cos(2π(t - t0)/P): minima at t0 + kP."""
    t = np.arange(n_frames) / FPS
    w = 2 * np.pi / PERIOD
    x = 1.5 * t - np.sin(w * (t - PHASE - shift_s)) / w
    j = np.zeros((n_frames, 55, 3))
    j[:, :, 0] = x[:, None]
    return j


def test_score_from_times_known_cases() -> None:
    onsets = np.array([2.5, 3.1, 4.0, 6.2])
    assert beat_score_from_times(onsets, onsets) == pytest.approx(1.0)
    assert beat_score_from_times(onsets, onsets + 0.3) == pytest.approx(np.exp(-0.5))
    assert beat_score_from_times(onsets, onsets - 0.3) == pytest.approx(np.exp(-0.5))
    # the nearest beat counts: a far beat next to an exact one changes nothing
    assert beat_score_from_times(onsets, np.r_[onsets, onsets + 0.25]) == pytest.approx(1.0)
    # half exact, half 0.6 s away (2σ): (1 + e^-2) / 2
    beats = np.array([2.5, 3.7, 4.0, 6.8])
    assert beat_score_from_times(onsets, beats) == pytest.approx((1 + np.exp(-2)) / 2)
    assert beat_score_from_times(onsets, []) == 0.0
    assert np.isnan(beat_score_from_times([], onsets))


def test_joint_speed_central_differences() -> None:
    x = np.zeros((5, 1, 3))
    x[:, 0, 0] = [0.0, 1.0, 3.0, 6.0, 10.0]     # positions in m; dt = 1/30 s
    np.testing.assert_allclose(joint_speed(x)[:, 0], 30 * np.array([1, 1.5, 2.5, 3.5, 4]))


def test_motion_beats_are_the_speed_minima_inside_the_margins() -> None:
    n = 360
    beats = motion_beats(periodic_joints(n), mean_vel=np.full(55, 1.5))
    expected = np.array([f for f in range(3, n, 15) if 60 <= f < n - 60])
    assert len(beats) == 55
    for b in beats:
        np.testing.assert_array_equal(b, expected)
    # minima at normalised speed 0.5/1.5 = 0.33 > 0.3; with a larger mean speed they drop out
    assert all(len(b) == 0 for b in motion_beats(periodic_joints(n), mean_vel=np.full(55, 2.0)))
    # mean_vel=None uses the clip's own mean speed (1.5 here)
    auto = motion_beats(periodic_joints(n))
    np.testing.assert_array_equal(auto[0], expected)


def test_published_indexing_checks_the_speed_two_seconds_early() -> None:
    """A minimum whose own speed is below 0.3 but whose speed 60 frames earlier is above it."""
    n = 300
    speed = np.full(n, 1.0)
    speed[150] = 0.2                         # a deep minimum at frame 150 (below threshold)
    speed[145:156] = np.minimum(speed[145:156], 0.2 + 0.1 * np.abs(np.arange(-5, 6)))
    x = (np.cumsum(speed) - speed / 2) / FPS   # central differences give (s[t-1]+2s[t]+s[t+1])/4
    j = np.zeros((n, 55, 3))
    j[:, :, 0] = x[:, None]
    mv = np.ones(55)
    assert len(motion_beats(j, mean_vel=mv)[0]) == 0
    assert 150 in motion_beats(j, mean_vel=mv, published_indexing=True)[0]


def test_audio_onsets_on_clicks_are_on_the_clip_time_axis() -> None:
    seconds = 12.0
    times = np.arange(PHASE, seconds, PERIOD)
    on = audio_onsets(clicks(seconds, times))
    assert len(on) >= 15
    assert on.min() >= 2.0 and on.max() <= seconds - 2.0       # cropped to [2 s, end - 2 s]
    d = np.min(np.abs(on[:, None] - times[None]), axis=1)
    assert d.max() < 0.07                                       # within ~2 hops of a click
    assert len(audio_onsets(np.zeros(3 * SR, np.float32))) == 0  # too short after cropping


def test_beat_consistency_end_to_end() -> None:
    seconds = 14.0
    n = int(seconds * FPS)
    audio = clicks(seconds, np.arange(PHASE, seconds, PERIOD))
    mv = np.full(55, 1.5)
    aligned = beat_consistency(periodic_joints(n), audio, mean_vel=mv)
    assert aligned > 0.95
    # motion beats half a period (0.25 s) off the clicks: about exp(-0.25²/0.18) = 0.71
    off = beat_consistency(periodic_joints(n, shift_s=0.25), audio, mean_vel=mv)
    assert 0.6 < off < 0.8
    # no motion beat at all scores 0 (every BC joint contributes 0)
    still = np.zeros((n, 55, 3))
    assert beat_consistency(still, audio, mean_vel=mv) == 0.0


def test_sequences_are_weighted_by_frames_minus_120() -> None:
    mv = np.full(55, 1.5)
    seqs, audios, parts = [], [], []
    for seconds, shift in ((10.0, 0.0), (20.0, 0.25)):
        n = int(seconds * FPS)
        seqs.append(periodic_joints(n, shift))
        audios.append(clicks(seconds, np.arange(PHASE, seconds, PERIOD), seed=int(seconds)))
        r = sequence_beat_consistency(seqs[-1], audios[-1], mean_vel=mv)
        assert r.weight == n - 120 and set(r.per_joint) == set(BC_JOINTS)
        parts.append((r.score, r.weight))
    expected = sum(s * w for s, w in parts) / sum(w for _, w in parts)
    assert beat_consistency(seqs, audios, mean_vel=mv) == pytest.approx(expected)
    # a clip of at most 120 frames is not scored
    short = sequence_beat_consistency(seqs[0][:120], audios[0], mean_vel=mv)
    assert short.weight == 0 and np.isnan(short.score)
    with pytest.raises(ValueError, match="2 joint sequences but 1 audio"):
        beat_consistency(seqs, audios[:1], mean_vel=mv)
