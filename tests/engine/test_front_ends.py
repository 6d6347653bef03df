"""One stepping core under every front end: StreamSession, SessionBatch and SessionPool give
bit-identical tokens and frames for the same seeds and audio, whatever the packet sizes and
whoever shares the batched calls (docs/design.md §1, §6)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from livegesture import LiveGesture, Motion
from livegesture.engine import SessionPool
from livegesture.model.config import SamplingConfig

from ..test_engine import audio_of, model, model_path, run_stream  # noqa: F401  (fixtures)


def alone(model: LiveGesture, audio: np.ndarray, seed: int, sizes, **kw) -> tuple[Motion, torch.Tensor]:
    return run_stream(model.stream(seed=seed, **kw), audio, sizes)


def assert_identical(a: tuple[Motion, torch.Tensor], b: tuple[Motion, torch.Tensor]) -> None:
    (ma, ta), (mb, tb) = a, b
    assert torch.equal(ta, tb)
    assert len(ma) == len(mb) > 0
    for k in ("poses", "trans", "expressions"):
        np.testing.assert_array_equal(getattr(ma, k), getattr(mb, k), err_msg=k)


def drive_pool(pool: SessionPool, plans: list[dict]) -> list[tuple[Motion, torch.Tensor]]:
    """Sessions that open at round `start`, push their audio in their own cycled `sizes`, finish and
    close on their own; the pool runs after every round (some rounds with a session held)."""
    state = [dict(sid=None, pos=0, frames=[], toks=[], done=False) for _ in plans]
    rnd = 0
    while not all(s["done"] for s in state):
        for p, s in zip(plans, state):
            if s["done"] or rnd < p["start"]:
                continue
            if s["sid"] is None:
                s["sid"] = pool.open(seed=p["seed"], sample_rate=p.get("rate", 16000))
            a = p["audio"]
            if s["pos"] < len(a):
                n = p["sizes"][rnd % len(p["sizes"])]
                pool.push(s["sid"], a[s["pos"]:s["pos"] + n])
                s["pos"] += n
            elif not pool.finished(s["sid"]):
                pool.finish(s["sid"])
        hold = {s["sid"] for p, s in zip(plans, state) if s["sid"] is not None and not s["done"]
                and rnd % p.get("hold_every", 10 ** 9) == 1}
        out = pool.run(hold=hold)
        for s in state:
            sid = s["sid"]
            if sid is None or s["done"]:
                continue
            if sid in out:
                s["frames"].append(out[sid])
            s["toks"].append(pool.last_tokens(sid))
            if pool.finished(sid) and sid not in hold and pool.ready_tokens(sid) == 0:
                s["done"] = True
                pool.close(sid)
        rnd += 1
    return [(Motion.concatenate(s["frames"]), torch.cat(s["toks"], dim=-1)) for s in state]


def test_pool_sessions_are_bit_identical_to_each_alone(model):
    plans = [  # three in step (batched steps and decodes of >= 4 rows), the others on their own time
        dict(seed=3, audio=audio_of(2.6, seed=0), sizes=[320], start=0),
        dict(seed=3, audio=audio_of(1.9, seed=1), sizes=[320], start=0),
        dict(seed=9, audio=audio_of(2.0, seed=5), sizes=[320], start=0, hold_every=4),
        dict(seed=11, audio=audio_of(3.1, seed=2), sizes=[16000], start=2),
        dict(seed=5, audio=audio_of(2.2, seed=3), sizes=[1, 333, 2048, 0], start=1),
        dict(seed=7, audio=audio_of(1.2, seed=4), sizes=[2134], start=5),
        dict(seed=8, audio=audio_of(1.5, seed=6)[:22050], sizes=[441, 900], start=0, rate=22050),
    ]
    pool = SessionPool(model, capacity=6)
    got = drive_pool(pool, plans[:6])
    assert pool.model_calls < pool.tokens_stepped  # steps were shared by several sessions
    assert 0 < pool.view_steps < pool.model_calls  # both row paths ran: contiguous views, gathered copies
    for (m, t), p in zip(got, plans):
        assert_identical((m, t), alone(model, p["audio"], p["seed"], [777]))
    assert len(pool) == 0
    # a resampled session among others
    pool = SessionPool(model, capacity=3)
    got = drive_pool(pool, [plans[6], plans[0], plans[4]])
    for (m, t), p in zip(got, [plans[6], plans[0], plans[4]]):
        assert_identical((m, t), alone(model, p["audio"], p["seed"], [5000], sample_rate=p.get("rate", 16000)))


@pytest.mark.parametrize("sizes", [[320], [1, 2133, 4000]], ids=["20ms", "ragged"])
def test_lockstep_batch_equals_each_session_alone(model, sizes):
    seeds = [4, 5, 4, 9]
    audios = [audio_of(1.5, seed=k) for k in range(len(seeds))]
    batch = model.stream_batch(len(seeds), seeds)
    parts: list[list[Motion]] = [[] for _ in seeds]
    toks, i, k = [], 0, 0
    n = len(audios[0])
    while i < n:
        c = sizes[k % len(sizes)]
        for p, m in zip(parts, batch.push([a[i:i + c] for a in audios])):
            p.append(m)
        toks.append(batch.last_tokens)
        i, k = i + c, k + 1
    for p, m in zip(parts, batch.close()):
        p.append(m)
    toks = torch.cat(toks, dim=-1)
    for j, (a, s) in enumerate(zip(audios, seeds)):
        assert_identical((Motion.concatenate(parts[j]), toks[j]), alone(model, a, s, [1000]))


def test_every_front_end_without_guidance(model):
    greedy = SamplingConfig(guidance_scale=1.0, greedy=True)  # no guidance stream: other row counts
    audios = [audio_of(1.6, seed=k) for k in range(3)]
    refs = [alone(model, a, k, [555], sampling=greedy) for k, a in enumerate(audios)]
    batch = model.stream_batch(3, [0, 1, 2], sampling=greedy)
    outs = [Motion.concatenate([m, e]) for m, e in zip(batch.push(audios), batch.close())]
    for k in range(3):
        assert_identical((outs[k], batch.last_tokens[k][:, :0]), (refs[k][0], refs[k][1][:, :0]))
    pool = SessionPool(model, capacity=3, sampling=greedy)
    plans = [dict(seed=k, audio=a, sizes=[700 + 300 * k], start=k) for k, a in enumerate(audios)]
    for got, ref in zip(drive_pool(pool, plans), refs):
        assert_identical(got, ref)


@pytest.fixture(scope="module")
def model_int8(model_path) -> LiveGesture:
    m = LiveGesture.load(model_path, precision="int8")
    assert m.precision == "int8"
    return m


def test_every_front_end_agrees_in_int8_too(model, model_int8):
    """Where this CPU's int8 kernel is row-wise (the probe; the AVX2 kernel is), lone sessions, a
    lockstep batch and the pool give the same frames in int8 too; and they are not the float32 frames
    (the int8 path really ran)."""
    from livegesture.model.quant import int8_rows_independent

    if not int8_rows_independent():
        pytest.skip("this CPU's int8 kernel takes another code path for more rows: int8 front ends agree to "
                    "bfloat16 rounding only (tests/model/test_quant.py checks that bound)")
    seeds = [4, 5, 4]
    audios = [audio_of(1.5, seed=k) for k in range(3)]
    refs = [alone(model_int8, a, s, [1000]) for a, s in zip(audios, seeds)]
    batch = model_int8.stream_batch(3, seeds)
    outs = [Motion.concatenate([m, e]) for m, e in zip(batch.push(audios), batch.close())]
    for k in range(3):
        np.testing.assert_array_equal(outs[k].poses, refs[k][0].poses)
    pool = SessionPool(model_int8, capacity=3)
    plans = [dict(seed=s, audio=a, sizes=[320 + 700 * k], start=k) for k, (a, s) in enumerate(zip(audios, seeds))]
    for got, ref in zip(drive_pool(pool, plans), refs):
        assert_identical(got, ref)
    f32 = alone(model, audios[0], seeds[0], [1000])
    assert not np.array_equal(f32[0].poses, refs[0][0].poses)
