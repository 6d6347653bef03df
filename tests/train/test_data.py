import numpy as np

from livegesture.data import find_clips, load_clip, write_synthetic_beat2
from livegesture.train.config import DataConfig
from livegesture.train.data import augment, select_clip_files


def test_mirror_augmentation_adds_mirrored_copies(tmp_path):
    write_synthetic_beat2(tmp_path, n_clips=3, seconds=4, seed=0)
    clips = [load_clip(c) for c in find_clips(tmp_path)]
    assert augment(clips, DataConfig()) == clips
    aug = augment(clips, DataConfig(mirror=True))
    assert [c.id for c in aug[3:]] == [c.id + "~mirror" for c in clips]
    for c, m in zip(clips, aug[3:]):
        assert m.audio is c.audio
        np.testing.assert_allclose(m.motion.mirrored().poses, c.motion.poses, atol=1e-6)


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

    from livegesture.train.data import split_tail, train_val_clips

    write_synthetic_beat2(tmp_path, n_clips=4, seconds=4, seed=0)
    clip = load_clip(find_clips(tmp_path, ids=["2_scott_0_1_1"])[0])
    head, tail = split_tail(clip, 0.25)
    n = len(clip.motion)
    assert len(head.motion) == round(0.75 * n) and len(head.motion) + len(tail.motion) == n
    np.testing.assert_array_equal(tail.motion.poses, clip.motion.poses[len(head.motion):])
    assert len(head.audio) + len(tail.audio) == len(clip.audio)
    assert abs(len(head.audio) / 16000 - len(head.motion) / 30) < 1e-4
    assert tail.id == "2_scott_0_1_1#tail" and head.id == clip.id
    cut = len(head.motion) / 30
    assert all(w.start < cut for w in head.words) and all(w.end > 0 for w in tail.words)
    assert len(head.words) + len(tail.words) >= len(clip.words)
    cfg = DataConfig(train_ids=("2_scott_0_1_1", "2_scott_0_2_2"), val_tail=0.25, mirror=True)
    files, train, val = train_val_clips(tmp_path, cfg, progress=False)
    assert [f.id for f in files] == ["2_scott_0_1_1", "2_scott_0_2_2"]
    assert [c.id for c in val] == ["2_scott_0_1_1#tail", "2_scott_0_2_2#tail"]
    assert [c.id for c in train] == ["2_scott_0_1_1", "2_scott_0_2_2", "2_scott_0_1_1~mirror",
                                     "2_scott_0_2_2~mirror"]
    assert len(train[0].motion) == len(head.motion)  # mirrored copies of the heads only
    assert len(train[2].motion) == len(head.motion)
    with pytest.raises(ValueError, match="either data.val_ids or data.val_tail"):
        DataConfig(val_ids=("x",), val_tail=0.1)
    with pytest.raises(ValueError, match="val_tail must be in"):
        DataConfig(val_tail=1.0)
