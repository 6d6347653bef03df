import shutil

import numpy as np
import pytest

from livegesture.data import (STANDARD_SPLITS, ClipFiles, crop_lengths, find_clips, load_clip,
                              read_words)
from livegesture.errors import DataError

from .conftest import SYNTH_IDS


def test_find_all_with_splits(synth_root):
    clips = find_clips(synth_root)
    assert [c.id for c in clips] == SYNTH_IDS
    assert [c.split for c in clips] == ["train", "train", "val", "test"]
    assert all(c.speaker == 2 for c in clips)
    c = clips[0]
    assert c.motion == synth_root / "smplxflame_30" / f"{c.id}.npz"
    assert c.audio == synth_root / "wave16k" / f"{c.id}.wav"
    assert c.textgrid == synth_root / "textgrid" / f"{c.id}.TextGrid"


@pytest.mark.parametrize("kwargs,ids", [
    ({"split": "train"}, SYNTH_IDS[:2]),
    ({"split": ["val", "test"]}, SYNTH_IDS[2:]),
    ({"speakers": [2]}, SYNTH_IDS),
    ({"ids": [SYNTH_IDS[3], SYNTH_IDS[1], "2_scott_0_99_99"]}, [SYNTH_IDS[1], SYNTH_IDS[3]]),
    ({"split": "train", "ids": [SYNTH_IDS[1], SYNTH_IDS[2]]}, [SYNTH_IDS[1]]),
    ({"require": ("motion", "audio", "textgrid")}, SYNTH_IDS),
    ({"ids": SYNTH_IDS[2], "speakers": 2}, [SYNTH_IDS[2]]),       # single values, not lists
])
def test_filters(synth_root, kwargs, ids):
    assert [c.id for c in find_clips(synth_root, **kwargs)] == ids


@pytest.mark.parametrize("kwargs,match", [
    ({"speakers": [3]}, "0 of speaker"),
    ({"split": "tset"}, r"0 in split tset \(splits present: test, train, val\)"),
    ({"ids": ["1_wayne_0_1_1"]}, "0 with id in"),
])
def test_no_match_says_what_was_looked_for(synth_root, kwargs, match):
    with pytest.raises(DataError, match=match):
        find_clips(synth_root, **kwargs)


def test_require_and_missing_files(synth_root, tmp_path):
    root = tmp_path / "b"
    shutil.copytree(synth_root, root)
    (root / "smplxflame_30" / f"{SYNTH_IDS[0]}.npz").unlink()
    assert SYNTH_IDS[0] not in [c.id for c in find_clips(root)]
    only_audio = find_clips(root, require=("audio",), ids=[SYNTH_IDS[0]])
    assert len(only_audio) == 1 and only_audio[0].motion is None
    data = load_clip(only_audio[0])
    assert data.motion is None and len(data.audio) == 6 * 16000 and data.words
    with pytest.raises(ValueError, match="unknown kind"):
        find_clips(root, require=("video",))


def test_flat_folder(synth_root, tmp_path):
    flat = tmp_path / "flat"
    flat.mkdir()
    for sub in ("smplxflame_30", "wave16k", "textgrid"):
        for p in (synth_root / sub).iterdir():
            shutil.copy(p, flat / p.name)
    (flat / "notes.txt").write_text("ignored")
    clips = find_clips(flat)
    assert [c.id for c in clips] == SYNTH_IDS
    assert all(c.split is None and c.motion.parent == flat for c in clips)
    assert [c.id for c in find_clips(flat, ids=[SYNTH_IDS[2]])] == [SYNTH_IDS[2]]
    with pytest.raises(DataError, match=r"no train_test_split\.csv there; choose clips with ids="):
        find_clips(flat, split="test")


def test_empty_missing_and_bad_csv(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"empty: no BEAT2 clips found \(looked for .*\.npz"):
        find_clips(tmp_path / "empty")
    with pytest.raises(DataError, match="no such data folder"):
        find_clips(tmp_path / "nothing")
    bad = tmp_path / "bad"
    (bad / "wave16k").mkdir(parents=True)
    (bad / "wave16k" / "2_x_0_1_1.wav").write_bytes(b"")
    (bad / "train_test_split.csv").write_text("name,kind\n2_x_0_1_1,train\n")
    with pytest.raises(DataError, match=r"train_test_split\.csv: expected columns 'id,type'"):
        find_clips(bad, require=("audio",))


def test_speaker_property():
    assert ClipFiles("17_itoi_0_1_1", None, None, None, None).speaker == 17
    with pytest.raises(DataError, match="speaker number"):
        ClipFiles("myclip", None, None, None, None).speaker


def test_standard_splits():
    test, val = STANDARD_SPLITS["test"], STANDARD_SPLITS["val"]
    assert len(test) == 15 and len(val) == 8 and not set(test) & set(val)
    assert "2_scott_0_1_1" in test and "2_scott_0_111_111" in test and "2_scott_0_9_9" in val


@pytest.mark.parametrize("n_motion,n_audio,expected", [
    (100, 32100, (60, 32000)),       # audio shorter: motion cropped to floor(32100*30/16000)
    (50, 32100, (50, 26667)),        # motion shorter: audio cropped to round(50*16000/30)
    (180, 96000, (180, 96000)),      # equal
    (10, 533, (0, 0)),               # less than one frame of audio
])
def test_crop_lengths(n_motion, n_audio, expected):
    assert crop_lengths(n_motion, n_audio) == expected


@pytest.mark.parametrize("i,frames", [(1, 180), (2, 180), (3, 177)])
def test_load_clip_crops_to_shorter(synth_root, i, frames):
    clip = find_clips(synth_root, ids=[SYNTH_IDS[i - 1]])[0]
    data = load_clip(clip)
    assert len(data.motion) == frames
    assert len(data.audio) == round(frames * 16000 / 30)
    assert data.audio.dtype == np.float32 and data.sample_rate == 16000
    assert data.words == read_words(clip.textgrid) and data.words
    # the motion on disk for clip 2 has 2 extra frames, clip 3 is 3 frames short of the audio
    with np.load(clip.motion) as npz:
        assert len(npz["poses"]) == {1: 180, 2: 182, 3: 177}[i]
