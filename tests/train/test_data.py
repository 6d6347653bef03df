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
