import numpy as np

from livegesture.body.constants import REGIONS
from livegesture.data import ClipWindows, find_clips, load_clip, training_features, write_synthetic_beat2
from livegesture.train.config import DataConfig
from livegesture.train.data import augment, select_clip_files


def test_mirror_augmentation_adds_mirrored_copies(tmp_path):
    write_synthetic_beat2(tmp_path, n_clips=3, seconds=4, seed=0)
    loaded = [load_clip(c) for c in find_clips(tmp_path)]
    clips = [ClipWindows.from_clip(c) for c in loaded]
    assert augment(clips, DataConfig()) == clips
    aug = augment(clips, DataConfig(mirror=True))
    assert [c.id for c in aug[3:]] == [c.id + "~mirror" for c in clips]
    for c, m, data in zip(clips, aug[3:], loaded):
        assert m.audio is c.audio and m.mirrored
        mirrored = training_features(data.motion.mirrored())   # the mirror image, read per window
        for r in REGIONS:
            np.testing.assert_allclose(m.feature_window(r, 10, 50), mirrored[r][10:50], atol=1e-6)
        for r in REGIONS:
            np.testing.assert_allclose(m.moments.mean[r], mirrored[r].astype(np.float64).mean(0), atol=1e-6)


def test_clip_selection_by_split_and_ids(tmp_path):
    write_synthetic_beat2(tmp_path, n_clips=4, seconds=4, seed=0)
    ids = lambda fs: [f.id for f in fs]  # noqa: E731
    assert ids(select_clip_files(tmp_path, DataConfig(), "train")) == ["2_scott_0_1_1", "2_scott_0_2_2"]
    assert ids(select_clip_files(tmp_path, DataConfig(), "val")) == ["2_scott_0_3_3"]
    cfg = DataConfig(train_ids=("2_scott_0_4_4",), val_ids=("2_scott_0_1_1",))
    assert ids(select_clip_files(tmp_path, cfg, "train")) == ["2_scott_0_4_4"]
    assert ids(select_clip_files(tmp_path, cfg, "val")) == ["2_scott_0_1_1"]


def test_val_tail_splits_each_training_clip_in_time(tmp_path):
    import pytest

    from livegesture.train.data import split_tail, train_val_sources

    write_synthetic_beat2(tmp_path / "d", n_clips=4, seconds=4, seed=0)
    data = load_clip(find_clips(tmp_path / "d", ids=["2_scott_0_1_1"])[0])
    clip = ClipWindows.from_clip(data)
    head, tail = split_tail(clip, 0.25)
    n = len(clip)
    assert len(head) == round(0.75 * n) and len(head) + len(tail) == n
    np.testing.assert_array_equal(tail.region("upper"), clip.region("upper")[len(head):])
    assert len(head.audio) + len(tail.audio) == len(clip.audio)
    assert abs(len(head.audio) / 16000 - len(head) / 30) < 1e-4
    assert tail.id == "2_scott_0_1_1#tail" and head.id == clip.id
    cut = len(head) / 30
    assert all(w.start < cut for w in head.words()) and all(w.end > 0 for w in tail.words())
    assert len(head.words()) + len(tail.words()) >= len(data.words)
    assert tail.words()[-1].end == data.words[-1].end - cut
    cfg = DataConfig(train_ids=("2_scott_0_1_1", "2_scott_0_2_2"), val_tail=0.25, mirror=True)
    ids, train, val = train_val_sources(tmp_path / "d", cfg, tmp_path / "work", progress=False)
    assert ids == ["2_scott_0_1_1", "2_scott_0_2_2"]
    assert [c.id for c in val] == ["2_scott_0_1_1#tail", "2_scott_0_2_2#tail"]
    assert [c.id for c in train] == ["2_scott_0_1_1", "2_scott_0_2_2", "2_scott_0_1_1~mirror",
                                     "2_scott_0_2_2~mirror"]
    assert len(train[0]) == len(head)  # mirrored copies of the heads only
    assert len(train[2]) == len(head)
    assert train[0].cache is not None   # read from the cache prepared under the work folder
    np.testing.assert_array_equal(train[0].region("upper"), head.region("upper"))
    with pytest.raises(ValueError, match="either data.val_ids or data.val_tail"):
        DataConfig(val_ids=("x",), val_tail=0.1)
    with pytest.raises(ValueError, match="val_tail must be in"):
        DataConfig(val_tail=1.0)
