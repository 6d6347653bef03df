"""Tests on the real BEAT2 sample files (skipped when ../shared/data/beat2 is absent)."""

import numpy as np
import pytest
import soundfile as sf

from livegesture.data import (STANDARD_SPLITS, WindowDataset, audio_samples, find_clips,
                              load_audio, load_clip, read_words)

pytestmark = pytest.mark.realdata

IDS = ["2_scott_0_1_1", "2_scott_0_2_2", "2_scott_0_4_4"]


def test_find_clips_in_the_flat_folder(beat2_dir):
    assert [c.id for c in find_clips(beat2_dir, ids=IDS, require=("audio",))] == IDS
    found = find_clips(beat2_dir, ids=IDS)                # 4_4 has no motion
    assert [c.id for c in found] == IDS[:2]
    assert all(c.split is None and c.speaker == 2 and c.textgrid for c in found)
    # the other files there (npy statistics, README) are no clips
    assert [c.id for c in find_clips(beat2_dir, require=())] == IDS
    assert set(IDS) <= set(STANDARD_SPLITS["test"])


def test_load_clip_crops_longer_wav(beat2_dir):
    clip = find_clips(beat2_dir, ids=["2_scott_0_1_1"])[0]
    assert sf.info(clip.audio).subtype == "FLOAT" and sf.info(clip.audio).duration > 64
    data = load_clip(clip)
    assert len(data.motion) == 1906                        # the motion is the shorter one
    assert len(data.audio) == round(1906 * 16000 / 30)
    assert abs(len(data.audio) / 16000 - data.motion.duration) < 1 / 16000
    assert data.audio.dtype == np.float32 and np.abs(data.audio).max() <= 1.0
    assert data.words[-1].start < 64.1


def test_int16_wav_and_window_alignment(beat2_dir):
    raw, sr = sf.read(beat2_dir / "2_scott_0_2_2.wav", dtype="int16")
    assert sr == 16000 and raw.dtype == np.int16
    x = load_audio(beat2_dir / "2_scott_0_2_2.wav")
    assert x.dtype == np.float32 and len(x) == len(raw) == 62 * 16000
    np.testing.assert_array_equal(x, raw.astype(np.float32) / 32768)
    data = load_clip(find_clips(beat2_dir, ids=["2_scott_0_2_2"])[0])
    assert len(data.motion) == 1804 and len(data.audio) == round(1804 * 16000 / 30)
    short = type(data)(data.id, data.motion[:300], data.audio[:160000], data.words)
    ds = WindowDataset([short], 64, 12, audio_context_frames=12)
    item = ds[5]
    a = (item["start"] - 12) * 16000 // 30
    np.testing.assert_array_equal(item["audio"].numpy(), data.audio[a:a + audio_samples(76)])


@pytest.mark.parametrize("cid,duration", [("2_scott_0_1_1", 64.1), ("2_scott_0_2_2", 62.0),
                                           ("2_scott_0_4_4", 67.0)])
def test_read_words_on_real_textgrids(beat2_dir, cid, duration):
    words = read_words(beat2_dir / f"{cid}.TextGrid")
    assert len(words) > 100                                  # ~3 words per second of speech
    assert all(0 <= w.start < w.end <= duration + 0.01 for w in words)
    assert all(a.end <= b.start + 1e-6 for a, b in zip(words, words[1:]))
    assert all(w.text == w.text.strip().lower() and w.text for w in words)
    assert {"the", "i", "and"} & {w.text for w in words}
    assert np.mean([w.end - w.start for w in words]) < 0.6
    phones = read_words(beat2_dir / f"{cid}.TextGrid", tier="phones")
    assert len(phones) > 2 * len(words)
