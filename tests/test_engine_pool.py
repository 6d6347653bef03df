"""SessionPool: independent sessions with their own packet schedules, batched through one model,
each getting exactly what LiveGesture.generate gives for its audio and seed."""

from __future__ import annotations

import numpy as np
import pytest

from livegesture import LiveGestureError, Motion
from livegesture.engine import PoolFullError, SessionPool, token_audio_time
from livegesture.errors import AudioError

from .test_engine import assert_same_motion, audio_of, model, model_path  # noqa: F401  (fixtures)
from .test_engine_words import text_model, text_model_path  # noqa: F401  (fixtures)


def drive(pool: SessionPool, sids, audios, sizes, finish=True) -> list[Motion]:
    """Push each session's audio in its own chunk sizes, interleaved, running the pool after every round."""
    pos = [0] * len(sids)
    outs: list[list[Motion]] = [[] for _ in sids]
    k = 0
    while any(p < len(a) for p, a in zip(pos, audios)):
        for i, sid in enumerate(sids):
            n = sizes[i][k % len(sizes[i])]
            if pos[i] < len(audios[i]):
                pool.push(sid, audios[i][pos[i]:pos[i] + n])
                pos[i] += n
        k += 1
        for sid, m in pool.run().items():
            outs[sids.index(sid)].append(m)
    if finish:
        for sid in sids:
            pool.finish(sid)
        for sid, m in pool.run().items():
            outs[sids.index(sid)].append(m)
    return [Motion.concatenate(o) for o in outs]


def test_pool_sessions_equal_generate_with_any_packet_schedule(model):
    audios = [audio_of(2.0 + 0.7 * i, seed=i) for i in range(4)]
    seeds = [3, 3, 11, 5]
    pool = SessionPool(model, capacity=6)
    sids = [pool.open(seed=s) for s in seeds]
    sizes = [[320], [641, 17, 5000], [16000], [1, 333, 2048]]
    got = drive(pool, sids, audios, sizes)
    for g, a, s in zip(got, audios, seeds):
        ref = model.generate(a, seed=s)
        assert len(ref) > 0
        assert_same_motion(g, ref, tol=1e-4)
    assert pool.model_calls < pool.tokens_stepped  # some steps were shared by several sessions
    # both ways of reaching the sessions' rows ran: slices of contiguous rows, gathered copies
    assert 0 < pool.view_steps < pool.model_calls
    for sid in sids:
        pool.close(sid)
    assert len(pool) == 0


def test_pool_resampled_session_equals_generate_at_that_rate(model):
    from livegesture.data.audio import prepare_audio

    a = prepare_audio(audio_of(2.0, seed=9), 16000, target_rate=22050)
    pool = SessionPool(model, capacity=2)
    sid = pool.open(seed=1, sample_rate=22050)
    (got,) = drive(pool, [sid], [a], [[441]])
    assert_same_motion(got, model.generate(a, sample_rate=22050, seed=1), tol=1e-4)


def test_rows_are_reused_fresh_and_capacity_is_enforced(model):
    pool = SessionPool(model, capacity=2)
    a = audio_of(1.5, seed=2)
    s1 = pool.open(seed=0)
    s2 = pool.open(seed=4)
    with pytest.raises(PoolFullError, match="full"):
        pool.open()
    drive(pool, [s1, s2], [a, a], [[1000], [700]])
    pool.close(s1)
    pool.close(s1)  # idempotent
    s3 = pool.open(seed=0)  # takes s1's row, which must be fresh again
    (got,) = drive(pool, [s3], [a], [[500]])
    assert_same_motion(got, model.generate(a, seed=0), tol=1e-4)


def test_bad_input_is_refused_without_changing_the_session(model):
    pool = SessionPool(model, capacity=1)
    sid = pool.open()
    with pytest.raises(AudioError, match="NaN"):
        pool.push(sid, np.array([0.0, np.nan], np.float32))
    with pytest.raises(AudioError, match="sample type"):
        pool.push(sid, np.zeros(10, np.int16))
    with pytest.raises(AudioError, match="sample rate"):
        pool.open(sample_rate=0)
    with pytest.raises(LiveGestureError, match="no open session"):
        pool.push(sid + 100, np.zeros(10, np.float32))
    assert pool.pending_samples(sid) == 0
    pool.finish(sid)
    with pytest.raises(LiveGestureError, match="ended"):
        pool.push(sid, np.zeros(10, np.float32))


def test_held_sessions_wait_and_then_catch_up(model):
    a = audio_of(1.5, seed=4)
    pool = SessionPool(model, capacity=1)
    sid = pool.open(seed=2)
    pool.push(sid, a)
    assert pool.run(hold={sid}) == {}
    assert pool.ready_tokens(sid) > 0
    got = pool.run()[sid]
    assert_same_motion(got, model.generate(a, seed=2), tol=1e-4)


def test_audio_time_is_the_end_of_the_token():
    # token tau needs ceil((4 tau + 4) * 1600 / 3) samples at 16 kHz (the engine's emission rule)
    assert token_audio_time(0) == token_audio_time(3) == 2134 / 16000
    assert token_audio_time(4) == 4267 / 16000


def test_pool_words_equal_generate_with_words(text_model):
    from .test_engine_words import WORDS

    a = audio_of(3.0)
    pool = SessionPool(text_model, capacity=3)
    s1, s2 = pool.open(seed=2), pool.open(seed=2)
    assert pool.push_words(s1, WORDS) == len(WORDS)
    g1, g2 = drive(pool, [s1, s2], [a, a], [[320], [1601, 7]])
    assert_same_motion(g1, text_model.generate(a, seed=2, words=WORDS), tol=1e-4)
    assert_same_motion(g2, text_model.generate(a, seed=2), tol=1e-4)  # the other session has no words


def test_pool_words_need_a_text_model(model):
    pool = SessionPool(model, capacity=1)
    with pytest.raises(LiveGestureError, match="no text input"):
        pool.push_words(pool.open(), [(0.0, 0.5, "hello")])


def test_equal_chunks_out_of_phase_are_encoded_apart(model):
    """The audio encoder batches only sessions in phase (same samples mod 1600): sessions that
    push equal chunks at different phases must still each equal generate."""
    a = audio_of(1.5, seed=12)
    pool = SessionPool(model, capacity=3)
    sids = [pool.open(seed=i) for i in range(3)]
    for sid, lead in zip(sids, (0, 100, 1700)):
        pool.push(sid, a[:lead])
    pool.run()
    outs = {sid: [] for sid in sids}
    pos = {sid: lead for sid, lead in zip(sids, (0, 100, 1700))}
    while any(p < len(a) for p in pos.values()):
        for sid in sids:
            pool.push(sid, a[pos[sid]:pos[sid] + 320])
            pos[sid] += 320
        for sid, m in pool.run().items():
            outs[sid].append(m)
    for i, sid in enumerate(sids):
        assert_same_motion(Motion.concatenate(outs[sid]), model.generate(a, seed=i), tol=1e-4)
