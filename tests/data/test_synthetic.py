import csv

import numpy as np
import pytest
import soundfile as sf
from praatio import textgrid

from livegesture import Motion
from livegesture.data import (WindowDataset, find_clips, load_clip, read_words,
                              synthetic_audio, synthetic_motion, write_synthetic_beat2)

from .conftest import SYNTH_IDS, SYNTH_SECONDS


def test_audio_basic_properties():
    x, onsets = synthetic_audio(10.0, seed=3)
    assert x.dtype == np.float32 and x.shape == (160000,)
    assert 0.4 < np.abs(x).max() <= 0.5 + 1e-6
    assert np.all(np.diff(onsets) > 0.08) and 0 < onsets[0] and onsets[-1] < 10.0
    assert 2.5 <= len(onsets) / 10.0 <= 5.0                 # syllables per second, pauses included
    y, on2 = synthetic_audio(10.0, seed=3)
    np.testing.assert_array_equal(x, y)
    np.testing.assert_array_equal(onsets, on2)
    assert not np.array_equal(synthetic_audio(10.0, seed=4)[1][:5], onsets[:5])
    # silence between syllables and pauses: a good share of 20 ms frames is near-silent
    rms = np.sqrt((x[: len(x) // 320 * 320].reshape(-1, 320) ** 2).mean(1))
    assert 0.15 < (rms < 0.01).mean() < 0.7


def test_audio_pitch_in_speech_range():
    x, onsets = synthetic_audio(5.0, seed=0)
    f0s = []
    for on in onsets:
        seg = x[int((on + 0.03) * 16000): int((on + 0.07) * 16000)].astype(np.float64)
        ac = np.correlate(seg, seg, "full")[len(seg) - 1:]
        lo, hi = 16000 // 240, 16000 // 90               # lags of 240 Hz .. 90 Hz
        f0s.append(16000 / (lo + ac[lo:hi].argmax()))
    assert 100 <= np.median(f0s) <= 220 and np.ptp(f0s) > 10      # pitch wanders


def test_librosa_finds_the_onsets():
    import librosa

    x, onsets = synthetic_audio(12.0, seed=1)
    found = librosa.onset.onset_detect(y=x, sr=16000, hop_length=512, units="time")
    dist = np.abs(onsets[:, None] - found[None, :]).min(axis=1)
    assert (dist < 0.1).mean() >= 0.85
    # nearly every detection is near a true onset (no onsets in silence)
    assert (np.abs(found[:, None] - onsets[None, :]).min(axis=1) < 0.1).mean() >= 0.85


def test_motion_shapes_and_rest_pose():
    m = synthetic_motion(90, seed=0)
    assert m.poses.shape == (90, 55, 3) and m.poses.dtype == np.float32
    assert m.trans.dtype == np.float32 and m.expressions.shape == (90, 100)
    assert m.betas.shape == (300,) and m.betas.dtype == np.float32 and not m.betas.any()
    assert not m.poses[:, 23:25].any()
    np.testing.assert_allclose(m.trans.mean(0), [0, 1.3, 0], atol=0.1)
    assert np.abs(np.diff(m.trans, axis=0)).max() < 0.01              # slow drift
    assert np.abs(m.expressions).max() < 1.5
    j = m.joints()
    # arms hang down: wrists well below the shoulders and closer to the body than a T-pose
    for shoulder, wrist in ((16, 20), (17, 21)):
        assert (j[:, shoulder, 1] - j[:, wrist, 1] > 0.3).all()
        assert (np.abs(j[:, wrist, 0]) < 0.5).all()
    assert (j[:, 15, 1] > j[:, 0, 1] + 0.4).all()                   # head above the pelvis
    assert (j[:, [10, 11], 1] < 0.2).all()                           # feet near the ground
    np.testing.assert_array_equal(synthetic_motion(90, seed=0).poses, m.poses)


def test_motion_follows_onsets():
    from scipy.signal import find_peaks

    fps, n = 30, 360
    onsets = np.array([1.0, 2.5, 4.0, 5.5, 7.0, 8.5, 10.0])        # isolated syllables
    calm = synthetic_motion(n, seed=5)
    talk = synthetic_motion(n, seed=5, onsets=onsets)
    t = np.arange(n) / fps
    far = np.abs(t[:, None] - onsets[None, :]).min(axis=1) > 0.7
    # arm strokes: the deviation from the idle motion peaks at onsets and is ~0 far from them
    arm = np.abs(talk.poses[:, 16:22] - calm.poses[:, 16:22]).sum(axis=(1, 2))
    peaks, _ = find_peaks(arm, prominence=0.2 * arm.max())
    assert len(peaks) >= 3
    assert (np.abs(peaks[:, None] / fps - onsets[None, :]).min(axis=1) <= 2 / fps).all()
    assert arm[far].max() < 0.05 * arm.max()
    # the jaw opens right after each syllable onset and stays closed in between
    jaw = talk.poses[:, 22, 0] - calm.poses[:, 22, 0]
    assert (jaw[np.round((onsets + 0.08) * fps).astype(int)] > 0.15).all()
    assert np.abs(jaw[far]).max() < 0.01
    assert np.corrcoef(jaw, talk.expressions[:, 0])[0, 1] > 0.8


def test_written_dataset_layout(synth_root):
    with open(synth_root / "train_test_split.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["id"], r["type"]) for r in rows] == list(zip(SYNTH_IDS, ["train", "train", "val", "test"]))
    wav = synth_root / "wave16k" / f"{SYNTH_IDS[0]}.wav"
    info = sf.info(wav)
    assert info.samplerate == 16000 and info.channels == 1 and info.subtype == "PCM_16"
    assert info.frames == int(SYNTH_SECONDS * 16000)
    tg = textgrid.openTextgrid(str(synth_root / "textgrid" / f"{SYNTH_IDS[0]}.TextGrid"),
                               includeEmptyIntervals=False)
    assert tg.tierNames == ("words", "phones")
    words = read_words(synth_root / "textgrid" / f"{SYNTH_IDS[0]}.TextGrid")
    phones = read_words(synth_root / "textgrid" / f"{SYNTH_IDS[0]}.TextGrid", tier="phones")
    assert len(phones) >= len(words) >= 8 and all(w.text.isalpha() for w in words)
    assert all(0 <= w.start < w.end <= SYNTH_SECONDS for w in words)
    m = Motion.load(synth_root / "smplxflame_30" / f"{SYNTH_IDS[0]}.npz")
    assert len(m) == 180 and m.fps == 30


def test_synthetic_loads_into_windows(synth_root):
    clips = [load_clip(c) for c in find_clips(synth_root, split="train")]
    ds = WindowDataset(clips, 64, 24)
    assert len(ds) == 2 * (1 + (180 - 64) // 24)
    assert all(np.isfinite(ds[i]["upper"].numpy()).all() for i in range(len(ds)))


def test_write_small_and_split_rules(tmp_path):
    paths = write_synthetic_beat2(tmp_path / "two", n_clips=2, seconds=2.0, seed=1)
    assert [p.name for p in paths] == ["2_scott_0_1_1.npz", "2_scott_0_2_2.npz"]
    assert [c.split for c in find_clips(tmp_path / "two")] == ["train", "test"]
    with pytest.raises(ValueError):
        write_synthetic_beat2(tmp_path / "none", n_clips=0)
