"""Starting a session from given token history (for seed motion): priming with tokens is exactly
having generated them, for everything that follows."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from livegesture import LiveGestureError, Motion
from livegesture.engine import SessionPool, token_end_sample
from livegesture.errors import AudioError
from livegesture.smoothing import SmoothingConfig

from ..test_engine import audio_of, model, model_path, run_stream  # noqa: F401  (fixtures)
from .test_front_ends import assert_identical

T = 6  # tokens of history


@pytest.mark.parametrize("history_audio", ["speech", "silence"])
def test_priming_equals_having_generated_the_tokens(model, history_audio):
    n = token_end_sample(T - 1)
    first = audio_of(n / 16000 + 0.01, seed=1)[:n] if history_audio == "speech" else np.zeros(n, np.float32)
    rest = audio_of(1.5, seed=2)
    smooth = SmoothingConfig(0.1)  # a stateful output stage must end in the same state too
    gen = model.stream(seed=4, smoothing=smooth)
    head = gen.push(first)
    history = gen.last_tokens
    assert history.shape == (model.bundle.model.num_regions, T)
    tail = run_stream(gen, rest, [500])
    primed = model.stream(seed=4, smoothing=smooth)
    got_head = primed.prime(history, audio=first if history_audio == "speech" else None)
    assert primed.frames_emitted == 4 * T
    assert_identical((got_head, history), (head, history))
    assert_identical(run_stream(primed, rest, [1300]), tail)
    # other history changes what follows (the primed state is used)
    other = model.stream(seed=4, smoothing=smooth)
    other.prime((history + 1) % model.bundle.model.codebook_size)
    assert not torch.equal(run_stream(other, rest, [1300])[1], tail[1])


def test_priming_in_a_pool_leaves_the_other_sessions_alone(model):
    a = audio_of(2.0, seed=3)
    ref = run_stream(model.stream(seed=1), a, [700])
    pool = SessionPool(model, capacity=2)
    s1 = pool.open(seed=1)
    pool.push(s1, a[:3000])
    frames = [pool.run()[s1]]
    s2 = pool.open(seed=2)
    pool.prime(s2, torch.zeros(model.bundle.model.num_regions, 3, dtype=torch.long))
    assert pool.frames_emitted(s2) == 12 and pool.frames_emitted(s1) == len(frames[0])
    pool.push(s1, a[3000:])
    pool.push(s2, a[:4000])
    out = pool.run()
    frames.append(out[s1])
    got = Motion.concatenate(frames)
    np.testing.assert_array_equal(got.poses, ref[0].poses)
    assert len(out[s2]) > 0


def test_bad_priming_is_refused(model):
    s = model.stream()
    R = model.bundle.model.num_regions
    with pytest.raises(LiveGestureError, match="regions"):
        s.prime(torch.zeros(R + 1, 2, dtype=torch.long))
    with pytest.raises(LiveGestureError, match="code ids"):
        s.prime(torch.full((R, 2), model.bundle.model.codebook_size, dtype=torch.long))
    with pytest.raises(AudioError, match="need"):
        s.prime(torch.zeros(R, 4, dtype=torch.long), audio=np.zeros(100, np.float32))
    s.push(np.zeros(10, np.float32))
    with pytest.raises(LiveGestureError, match="fresh session"):
        s.prime(torch.zeros(R, 2, dtype=torch.long))
