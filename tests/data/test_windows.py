import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from livegesture.body.constants import REGION_DIMS, REGIONS
from livegesture.data import (ClipData, RegionStats, Vocabulary, WindowDataset, Word,
                              audio_samples, synthetic_motion, training_features,
                              word_ids_per_frame)
from livegesture.errors import DataError


def _clip(cid: str, frames: int, seed: int, words=None) -> ClipData:
    rng = np.random.default_rng(seed)
    audio = rng.uniform(-1, 1, round(frames * 16000 / 30)).astype(np.float32)
    return ClipData(cid, synthetic_motion(frames, seed=seed), audio, words)


@pytest.fixture(scope="module")
def clips() -> list[ClipData]:
    words = [Word(0.2, 0.6, "hello"), Word(1.0, 1.4, "world"), Word(2.0, 2.2, "unseen")]
    return [_clip("2_a_0_1_1", 100, 0, words), _clip("2_a_0_2_2", 151, 1), _clip("2_a_0_3_3", 40, 2)]


def test_audio_samples():
    assert audio_samples(64) == 34134           # ceil(64 * 1600 / 3)
    assert audio_samples(12) == 6400 and audio_samples(0) == 0
    assert audio_samples(30, 44100) == 44100


@pytest.mark.parametrize("window,stride,ctx", [(64, 12, 0), (32, 24, 24), (4, 12, 12)])
def test_shapes_count_and_alignment(clips, window, stride, ctx):
    stats = RegionStats.compute(training_features(c.motion) for c in clips)
    vocab = Vocabulary.build(["hello", "world"])
    ds = WindowDataset(clips, window, stride, stats=stats, vocab=vocab, audio_context_frames=ctx)
    expected = [(ci, s) for ci, c in enumerate(clips)
                for s in range(0, len(c.motion) - window + 1, stride)]
    assert ds.index == expected and len(ds) == len(expected)
    n_audio = audio_samples(window + ctx)
    for i in range(len(ds)):
        item = ds[i]
        ci, s = expected[i]
        clip = clips[ci]
        assert item["clip"] == clip.id and item["start"] == s and s % 12 == 0
        feats = training_features(clip.motion)
        for r in REGIONS:
            assert item[r].shape == (window, REGION_DIMS[r]) and item[r].dtype == torch.float32
            np.testing.assert_allclose(item[r].numpy(), stats.normalize(r, feats[r][s:s + window]),
                                       rtol=1e-6, atol=1e-6)
        # audio: samples from frame (s - ctx) on, zero before the clip start and past its end
        assert item["audio"].shape == (n_audio,) and item["audio"].dtype == torch.float32
        a = (s - ctx) * 16000 // 30
        padded = np.concatenate([np.zeros(max(0, -a), np.float32), clip.audio[max(a, 0):],
                                 np.zeros(n_audio, np.float32)])[:n_audio]
        np.testing.assert_array_equal(item["audio"].numpy(), padded)
        words = item["words"]
        assert words.dtype == torch.int64 and words.shape == (window,)
        full = (word_ids_per_frame(clip.words, len(clip.motion), vocab) if clip.words
                else np.zeros(len(clip.motion), np.int64))
        np.testing.assert_array_equal(words.numpy(), full[s:s + window])


def test_audio_window_edges(clips):
    ds = WindowDataset(clips[:1], 64, 12, audio_context_frames=24)
    first = ds[0]["audio"].numpy()
    lead = 24 * 16000 // 30                                # 12800 samples of context padding
    assert not first[:lead].any() and first[lead] == clips[0].audio[0]
    np.testing.assert_array_equal(first[lead:lead + 100], clips[0].audio[:100])
    last = ds[len(ds) - 1]
    # the last window ends at frame 96 of 100: all samples are real audio
    assert last["start"] == 36 and np.count_nonzero(last["audio"].numpy()) > 0.99 * len(first)


def test_words_present_and_absent(clips):
    vocab = Vocabulary.build(["hello", "world"])
    item = WindowDataset(clips[:1], 64, 12, vocab=vocab)[0]
    w = item["words"].numpy()
    assert set(np.unique(w)) == {0, 1, vocab.encode("hello"), vocab.encode("world")}
    assert w[6:18].tolist() == [vocab.encode("hello")] * 12     # centres 0.217 .. 0.583 s
    assert not WindowDataset(clips[:1], 64, 12)[0]["words"].any()


def test_unnormalised_without_stats(clips):
    item = WindowDataset(clips[1:2], 16, 12)[1]
    np.testing.assert_array_equal(item["lower"].numpy(),
                                  training_features(clips[1].motion)["lower"][12:28])


def test_dataloader_batch(clips):
    ds = WindowDataset(clips, 32, 12, audio_context_frames=12)
    batch = next(iter(DataLoader(ds, batch_size=4, shuffle=False)))
    assert batch["upper"].shape == (4, 32, 78) and batch["face"].shape == (4, 32, 106)
    assert batch["audio"].shape == (4, audio_samples(44))
    assert batch["words"].shape == (4, 32) and batch["words"].dtype == torch.int64
    assert batch["clip"] == [clips[0].id] * 4 and batch["start"].tolist() == [0, 12, 24, 36]
    same = WindowDataset.collate([ds[0], ds[1]])
    torch.testing.assert_close(same["hands"], batch["hands"][:2])


@pytest.mark.parametrize("kwargs,match", [
    ({"window_frames": 30}, "multiple of 4"),
    ({"stride_frames": 8}, "multiple of 12"),
    ({"audio_context_frames": 10}, "multiple of 12"),
])
def test_bad_parameters(clips, kwargs, match):
    with pytest.raises(ValueError, match=match):
        WindowDataset(clips, **kwargs)


def test_bad_clips(clips):
    no_audio = ClipData("2_x_0_9_9", clips[0].motion, None, None)
    with pytest.raises(DataError, match="2_x_0_9_9: has no audio"):
        WindowDataset([clips[0], no_audio])
    with pytest.raises(DataError, match="longest 151 frames"):
        WindowDataset(clips, window_frames=160)
    other_rate = ClipData("2_x_0_8_8", clips[0].motion, clips[0].audio, None, sample_rate=8000)
    with pytest.raises(DataError, match="8000 Hz"):
        WindowDataset([other_rate])


def test_motion_only_windows_may_start_at_any_frame(clips):
    with pytest.raises(ValueError, match="multiple of 12"):
        WindowDataset(clips, 16, 5)
    with pytest.raises(ValueError, match="start_grid"):
        WindowDataset(clips, 16, 4, start_grid=4)
    grid = WindowDataset(clips, 16, 12)
    ds = WindowDataset(clips, 16, 1, start_grid=1)
    n0 = len(clips[0].motion)
    starts = [s for ci, s in ds.index if ci == 0]
    assert starts == list(range(n0 - 16 + 1))
    assert len(ds) > 4 * len(grid)
    i = starts.index(7)
    feats = ds[i]
    np.testing.assert_array_equal(feats["upper"].numpy(), ds.sources[0].region("upper")[7:23])
