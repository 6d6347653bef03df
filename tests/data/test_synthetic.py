import csv

import numpy as np
import pytest
import soundfile as sf
from praatio import textgrid

from livegesture import Motion
from livegesture.data import (WindowDataset, find_clips, load_clip, read_words,
                              synthetic_audio, synthetic_motion, write_synthetic_beat2)
from livegesture.data.synthetic import (LAW, Syllables, render_speech, speech_activity,
                                        synthetic_syllables)

from .conftest import SYNTH_IDS, SYNTH_SECONDS


def test_audio_basic_properties():
    x, onsets = synthetic_audio(10.0, seed=3)
    assert x.dtype == np.float32 and x.shape == (160000,)
    assert np.abs(x).max() <= 0.5 + 1e-3
    assert np.all(np.diff(onsets) > 0.2) and 0 < onsets[0] and onsets[-1] < 10.0
    assert 0.8 <= len(onsets) / 10.0 <= 3.0                 # syllables per second, pauses included
    y, on2 = synthetic_audio(10.0, seed=3)
    np.testing.assert_array_equal(x, y)
    np.testing.assert_array_equal(onsets, on2)
    assert not np.array_equal(synthetic_audio(10.0, seed=4)[1][:5], onsets[:5])
    # silence between syllables and pauses: a good share of 20 ms frames is near-silent
    rms = np.sqrt((x[: len(x) // 320 * 320].reshape(-1, 320) ** 2).mean(1))
    assert 0.3 < (rms < 0.01).mean() < 0.85


def test_syllable_peaks_are_their_loudness():
    syl = synthetic_syllables(20.0, seed=2)
    assert ((syl.loudness >= 0.25) & (syl.loudness <= 1.0)).all() and np.ptp(syl.loudness) > 0.3
    x = render_speech(syl, 20.0, seed=2)
    for on, end, g in zip(syl.onsets, syl.ends, syl.loudness):
        peak = np.abs(x[int(on * 16000):int(end * 16000)]).max()
        assert abs(peak - 0.5 * g) < 5e-3               # + the faint background noise
    cut = syl.without(5.0, 9.0)
    assert not ((cut.onsets < 9.0) & (cut.ends > 5.0)).any() and len(cut.onsets) < len(syl.onsets)


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


def _wrist_speed(m):
    j = m.joints()
    return np.linalg.norm(np.diff(j[:, [20, 21]], axis=0), axis=-1).mean(-1) * 30


def test_motion_follows_the_law():
    fps, n = 30, 360
    on = np.array([1.0, 2.5, 4.0, 5.5, 7.0])                    # isolated syllables ...
    g = np.array([1.0, 0.3, 0.6, 1.0, 0.3])                    # ... of several loudnesses
    syl = Syllables(on, on + 0.15, g, np.arange(5))
    calm = synthetic_motion(n, seed=5)
    talk = synthetic_motion(n, seed=5, syllables=syl)
    t = np.arange(n) / fps
    # a stroke peaks stroke_tau after its onset, and its size follows the loudness
    elbow = talk.poses[:, 19, 1] - calm.poses[:, 19, 1]
    act = speech_activity(t, syl)
    stroke = elbow - LAW.bend * act
    peaks = [int(np.round((o + LAW.stroke_tau) * fps)) for o in on]
    sizes = np.array([stroke[p] for p in peaks])
    np.testing.assert_allclose(sizes / sizes[0], g / g[0], rtol=0.15)
    assert all(stroke[p] >= stroke[p - 3:p + 4].max() - 1e-6 for p in peaks)
    # causal: a syllable changes nothing before its onset
    before = synthetic_motion(n, seed=5, syllables=Syllables(on[:2], on[:2] + 0.15, g[:2], np.arange(2)))
    first = int(np.ceil(on[2] * fps))
    np.testing.assert_array_equal(before.poses[:first], talk.poses[:first])
    # the hands go to rest in silence: after a long pause the arms are back at the idle pose
    long = Syllables(np.array([1.0, 1.3, 1.6]), np.array([1.15, 1.45, 1.75]), np.ones(3), np.zeros(3, int))
    m = synthetic_motion(n, seed=5, syllables=long)
    speed = _wrist_speed(m)
    assert speed[int(4 * fps):].mean() < 0.1 * speed[int(1.0 * fps):int(2.0 * fps)].mean()
    np.testing.assert_allclose(m.poses[-1, 16:22], calm.poses[-1, 16:22], atol=0.01)
    # the jaw opens right after each syllable onset (by its loudness) and stays closed in between
    jaw = talk.poses[:, 22, 0] - calm.poses[:, 22, 0]
    at = np.round((on + LAW.jaw_tau) * fps).astype(int)
    np.testing.assert_allclose(jaw[at], LAW.jaw_open * g, rtol=0.1)
    far = np.abs(t[:, None] - on[None, :]).min(axis=1) > 0.7
    assert np.abs(jaw[far]).max() < 0.01
    assert np.corrcoef(jaw, talk.expressions[:, 0])[0, 1] > 0.8


def test_generated_clips_obey_the_law(synth_root):
    """Written clips: wrists move in speech and rest in silence (what the AR model must learn)."""
    clip = load_clip(find_clips(synth_root, ids=[SYNTH_IDS[0]])[0])
    words = clip.words
    speed = _wrist_speed(clip.motion)
    t = np.arange(1, len(clip.motion)) / 30
    speaking = np.zeros(len(t), bool)
    for w in words:
        speaking |= (t >= w.start) & (t < w.end + 0.3)
    assert speaking.any() and (~speaking).any()
    assert speed[~speaking].mean() < 0.5 * speed[speaking].mean()


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
    assert len(phones) >= len(words) >= 4 and all(w.text.isalpha() for w in words)
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


@pytest.mark.parametrize("seed", [0, 7])
def test_long_pauses_lengthen_some_pauses_and_change_nothing_when_off(seed):
    from livegesture.data.synthetic import LONG_PAUSE_S, synthetic_syllables

    plain = synthetic_syllables(120.0, seed)
    off = synthetic_syllables(120.0, seed, long_pauses=0.0)
    np.testing.assert_array_equal(plain.onsets, off.onsets)  # the same draws as before the option

    def pauses(s):  # silence between the last syllable of a phrase and the next phrase
        first = np.flatnonzero(np.diff(s.phrase) > 0) + 1
        return s.onsets[first] - s.ends[first - 1]

    assert pauses(plain).max() < 2.0 + 0.3
    long = pauses(synthetic_syllables(120.0, seed, long_pauses=0.5))
    share = np.mean(long >= LONG_PAUSE_S[0])
    assert 0.2 < share < 0.8 and long.max() <= LONG_PAUSE_S[1] + 0.3
    with pytest.raises(ValueError, match="long_pauses"):
        synthetic_syllables(10.0, seed, long_pauses=1.5)
