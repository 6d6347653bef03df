"""Optional text cues at run time: words pushed with timestamps (docs/design.md §4).

A word takes effect on the frames whose centre it covers if it was pushed before those frames'
token was computed; frames are never revised. The model here is an untrained TINY bundle with a
6-word vocabulary: its random word embeddings change the motion, which is all these contracts need.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from livegesture import LiveGesture, LiveGestureError, Motion
from livegesture.body.constants import REGION_DIMS, REGIONS
from livegesture.bundle import ModelBundle
from livegesture.data import Vocabulary, Word
from livegesture.data.features import RegionStats
from livegesture.errors import DataError
from livegesture.tokenizer import MotionTokenizer
from livegesture.train.config import load_experiment

from .test_engine import assert_same_motion, audio_of, run_stream
from .train.test_ar_stage import TINY

WORDS = [Word(0.20, 0.55, "hello"), (0.60, 1.10, "world"), {"word": "Yes", "start": 1.30, "end": 1.70},
         (2.0, 2.4, "zebra")]  # "zebra" is not in the vocabulary: <unk>


@pytest.fixture(scope="module")
def text_model_path(tmp_path_factory):
    vocab = Vocabulary(["<pad>", "<unk>", "hello", "world", "yes", "no"])
    cfg = load_experiment("demo", {**TINY, "model.text_vocab_size": len(vocab)})
    rng = np.random.default_rng(0)
    stats = RegionStats({r: (0.1 * rng.standard_normal(REGION_DIMS[r])).astype(np.float32) for r in REGIONS},
                        {r: np.full(REGION_DIMS[r], 0.5, np.float32) for r in REGIONS})
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("words") / "tiny_text.safetensors"
    ModelBundle.create(cfg, MotionTokenizer(cfg.tokenizer), stats, vocab=vocab).save(path)
    return path


@pytest.fixture(scope="module")
def text_model(text_model_path) -> LiveGesture:
    m = LiveGesture.load(text_model_path)
    assert m.has_text
    return m


def test_words_change_the_motion_only_from_their_frames_on(text_model):
    audio = audio_of(3.0)
    plain = text_model.generate(audio, seed=1)
    worded = text_model.generate(audio, seed=1, words=WORDS)
    assert len(plain) == len(worded) == 88  # 3 s -> 22 whole tokens
    # the first word starts at 0.20 s: frame 5 (centre 0.183 s) is its last untouched frame,
    # so token 0 (frames 0..3) cannot differ, and the motion must differ somewhere after it
    np.testing.assert_array_equal(plain.poses[:4], worded.poses[:4])
    assert np.abs(plain.poses - worded.poses).max() > 1e-4


@pytest.mark.parametrize("sizes", [[1601], [7, 3000, 160, 1], [320] * 3])
def test_streaming_with_words_equals_generate(text_model, sizes):
    audio = audio_of(3.0)
    ref = text_model.generate(audio, seed=2, words=WORDS)
    s = text_model.stream(seed=2)
    assert s.push_words(WORDS) == len(WORDS)
    got, _ = run_stream(s, audio, sizes)
    assert_same_motion(ref, got)


def test_words_pushed_just_in_time_equal_words_pushed_up_front(text_model):
    """An ASR front end delivers each word as it ends; our pushes get each word before the audio
    that completes any token it covers, so the frames equal the all-words-first run."""
    audio = audio_of(3.0)
    ref = text_model.generate(audio, seed=3, words=WORDS)
    s = text_model.stream(seed=3)
    parts, pos = [], 0
    for w in WORDS:
        start = w.start if isinstance(w, Word) else (w["start"] if isinstance(w, dict) else w[0])
        upto = int(start * 16000)  # audio up to the word's start: its frames are not computed yet
        parts.append(s.push(audio[pos:upto]))
        pos = upto
        assert s.push_words([w]) == 1
    parts += [s.push(audio[pos:]), s.close()]
    assert_same_motion(ref, Motion.concatenate(parts))


def test_late_words_are_ignored_and_never_revise_frames(text_model):
    audio = audio_of(3.0)
    plain = text_model.generate(audio, seed=4)
    s = text_model.stream(seed=4)
    first = s.push(audio[:16000 * 2])  # 2 s: every frame of the first 1.6 s is final
    assert s.push_words([(0.2, 0.6, "hello")]) == 0  # its frames are already out
    rest = Motion.concatenate([s.push(audio[16000 * 2:]), s.close()])
    assert_same_motion(plain, Motion.concatenate([first, rest]))


def test_bad_words_and_models_without_text(text_model):
    s = text_model.stream()
    with pytest.raises(DataError, match="word 0"):
        s.push_words([(1.0, 0.5, "hello")])  # end before start
    with pytest.raises(DataError, match="word 1"):
        s.push_words([(0.1, 0.2, "a"), ("x", 0.2)])
    with pytest.raises(DataError, match="finite"):
        s.push_words([(float("nan"), 0.2, "a")])
    assert len(s.push(audio_of(1.0))) > 0  # still usable


def test_a_model_without_text_says_so(tmp_path):
    cfg = load_experiment("demo", TINY)
    rng = np.random.default_rng(0)
    stats = RegionStats({r: rng.standard_normal(REGION_DIMS[r]).astype(np.float32) for r in REGIONS},
                        {r: np.ones(REGION_DIMS[r], np.float32) for r in REGIONS})
    path = tmp_path / "plain.safetensors"
    ModelBundle.create(cfg, MotionTokenizer(cfg.tokenizer), stats).save(path)
    m = LiveGesture.load(path)
    assert not m.has_text
    with pytest.raises(LiveGestureError, match="no text input"):
        m.stream().push_words([(0.0, 0.5, "hello")])
    with pytest.raises(LiveGestureError, match="no text input"):
        m.generate(audio_of(0.5), words=[(0.0, 0.5, "hello")])
