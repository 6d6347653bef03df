"""The public API: LiveGesture.load / stream / push / close / generate / stream_batch.

The model file is an untrained TINY bundle (the config of tests/train/test_ar_stage.py) saved
to disk: the engine's contracts (streaming == offline, zero look-ahead, constant memory,
batching) hold for any weights, and building it takes a second instead of a training run.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from livegesture import LiveGesture, LiveGestureError, Motion
from livegesture.body.constants import REGION_DIMS, REGIONS
from livegesture.bundle import ModelBundle
from livegesture.data import synthetic_audio
from livegesture.data.features import RegionStats
from livegesture.errors import AudioError
from livegesture.model.config import SamplingConfig
from livegesture.tokenizer import MotionTokenizer
from livegesture.train.config import load_experiment

from .train.test_ar_stage import TINY


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    cfg = load_experiment("demo", TINY)
    rng = np.random.default_rng(0)
    stats = RegionStats({r: (0.1 * rng.standard_normal(REGION_DIMS[r])).astype(np.float32) for r in REGIONS},
                        {r: np.full(REGION_DIMS[r], 0.5, np.float32) for r in REGIONS})
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("engine") / "tiny.safetensors"
    ModelBundle.create(cfg, MotionTokenizer(cfg.tokenizer), stats).save(path)
    return path


@pytest.fixture(scope="module")
def model(model_path) -> LiveGesture:
    m = LiveGesture.load(model_path)
    assert m.sampling.guided  # the demo config samples with classifier-free guidance
    return m


def audio_of(seconds: float, seed: int = 5) -> np.ndarray:
    return synthetic_audio(seconds, seed=seed)[0].astype(np.float32)


def run_stream(session, audio: np.ndarray, sizes) -> tuple[Motion, torch.Tensor]:
    """Push `audio` in chunks of `sizes` (cycled; the rest in one go), then close."""
    parts, toks, i = [], [], 0
    sizes = list(sizes)
    k = 0
    while i < len(audio):
        n = sizes[k % len(sizes)] if sizes else len(audio)
        k += 1
        parts.append(session.push(audio[i:i + n]))
        toks.append(session.last_tokens)
        i += n
    parts.append(session.close())
    toks.append(session.last_tokens)
    return Motion.concatenate(parts), torch.cat(toks, dim=-1)


def generate_with_tokens(model, audio, seed=0, sample_rate=16000, sampling=None):
    s = model.stream(seed, sample_rate, sampling)
    return run_stream(s, audio, [])


def assert_same_motion(a: Motion, b: Motion, tol: float = 1e-5) -> None:
    assert len(a) == len(b)
    for k in ("poses", "trans", "expressions"):
        np.testing.assert_allclose(getattr(a, k), getattr(b, k), atol=tol, rtol=0, err_msg=k)


@pytest.mark.parametrize("sizes", [[272], [3200], [0, 1, 999, 5000, 0, 37, 2134]], ids=["17ms", "200ms", "ragged"])
def test_streaming_equals_generate(model, sizes):
    audio = audio_of(2.0)
    ref = model.generate(audio, seed=3)
    assert len(ref) == 60  # 2 s -> 60 frames = 15 whole tokens
    ref_m, ref_t = generate_with_tokens(model, audio, seed=3)
    assert_same_motion(ref, ref_m, 0.0)
    m, t = run_stream(model.stream(seed=3), audio, sizes)
    assert torch.equal(t, ref_t)
    # bit-identical, not just close: the encoder and decoder run once per token on exactly that token's
    # audio and codes whatever the push sizes (a near-tie token would otherwise differ now and then)
    assert_same_motion(m, ref, 0.0)
    assert np.abs(ref.trans[:, [0, 2]]).max() > 0  # translation is integrated, and continues across pushes


def test_one_sample_chunks_and_random_sizes(model):
    audio = audio_of(0.3)
    ref, ref_t = generate_with_tokens(model, audio, seed=1)
    assert len(ref) == 8  # 9 frames: the final partial token is not emitted
    m, t = run_stream(model.stream(seed=1), audio, [1])
    assert torch.equal(t, ref_t)
    assert_same_motion(m, ref, 0.0)
    audio = audio_of(1.5, seed=7)
    ref, ref_t = generate_with_tokens(model, audio, seed=1)
    sizes = np.random.default_rng(0).integers(0, 1500, 200).tolist()
    m, t = run_stream(model.stream(seed=1), audio, sizes)
    assert torch.equal(t, ref_t)
    assert_same_motion(m, ref)


def test_tokens_are_emitted_as_soon_as_their_audio_has_arrived(model):
    audio = audio_of(1.0)
    s = model.stream(seed=0)
    pushed = 0
    for tau in range(5):
        need = math.ceil((4 * tau + 4) * 1600 / 3)  # samples up to the end of token tau
        assert len(s.push(audio[pushed:need - 1])) == 0
        out = s.push(audio[need - 1:need])
        pushed = need
        assert len(out) == 4 and s.frames_emitted == 4 * tau + 4
    assert len(s.close()) == 0 and s.closed
    with pytest.raises(LiveGestureError, match="closed"):
        s.push(audio[:10])


def test_zero_look_ahead(model):
    audio = audio_of(2.0)
    S = 1.0  # seconds; tokens 0..6 end at or before S ((4*6+4)/30 = 0.933 s), token 7 ends at 1.067 s
    other = audio.copy()
    cut = int(S * 16000)
    other[cut:] = np.random.default_rng(1).uniform(-0.5, 0.5, len(audio) - cut).astype(np.float32)
    a, ta = generate_with_tokens(model, audio)
    b, tb = generate_with_tokens(model, other)
    n_tok = int(S * 30) // 4
    assert torch.equal(ta[:, :n_tok], tb[:, :n_tok])
    assert not torch.equal(ta[:, n_tok:], tb[:, n_tok:])  # the later audio does matter
    assert_same_motion(a[:4 * n_tok], b[:4 * n_tok], 1e-6)


def test_bad_chunks_raise_and_leave_the_session_usable(model):
    audio = audio_of(1.0)
    ref = model.generate(audio, seed=2)
    s = model.stream(seed=2)
    parts = [s.push(audio[:3000])]
    bad = {"int16": ((audio[:100] * 3000).astype(np.int16), "int16"),
           "2-D": (np.stack([audio[:100]] * 2, axis=1), "shape"),
           "NaN": (np.full(100, np.nan, np.float32), "NaN"),
           "Inf": (np.array([0.0, np.inf], np.float32), "Inf"),
           "list": ([0.0] * 10, "numpy array")}
    for name, (chunk, msg) in bad.items():
        with pytest.raises(AudioError, match=msg):
            s.push(chunk)
    assert s.samples_pushed == 3000
    parts.append(s.push(audio[3000:].astype(np.float64)))  # float64 is converted
    parts.append(s.close())
    assert_same_motion(Motion.concatenate(parts), ref)


def test_memory_is_constant_over_a_long_stream(model):
    s = model.stream(seed=0)
    audio = audio_of(10.0)
    sizes = set()
    for i in range(0, len(audio), 3200):
        s.push(audio[i:i + 3200])
        sizes.add(s.state_nbytes())
    assert s.frames_emitted == 300 and len(sizes) == 1


def test_batched_sessions_equal_each_alone(model):
    audios = [audio_of(1.2, seed=k) for k in range(3)]
    seeds = [4, 5, 4]
    batch = model.stream_batch(3, seeds)
    parts: list[list[Motion]] = [[], [], []]
    toks = []
    for i in range(0, len(audios[0]), 2500):
        for p, m in zip(parts, batch.push([a[i:i + 2500] for a in audios])):
            p.append(m)
        toks.append(batch.last_tokens)
    for p, m in zip(parts, batch.close()):
        p.append(m)
    toks = torch.cat(toks, dim=-1)
    for k in range(3):
        ref, ref_t = generate_with_tokens(model, audios[k], seed=seeds[k])
        assert torch.equal(toks[k], ref_t)
        # the tokens are identical (above); the batched float32 decode may differ from batch 1 by ~2e-5 rad
        assert_same_motion(Motion.concatenate(parts[k]), ref, tol=1e-4)
    with pytest.raises(AudioError, match="equal lengths"):
        model.stream_batch(2).push([audios[0][:10], audios[1][:11]])


def test_unguided_sampling_and_other_rates(model):
    audio = audio_of(1.0)
    greedy = SamplingConfig(guidance_scale=1.0, greedy=True)
    ref, ref_t = generate_with_tokens(model, audio, sampling=greedy)
    m, t = run_stream(model.stream(sampling=greedy), audio, [700])
    assert torch.equal(t, ref_t)
    assert_same_motion(m, ref)
    # 24 kHz: resampled in streaming fashion; chunking does not change the result
    x24 = audio_of(1.0, seed=9)
    import soxr

    x24 = soxr.resample(x24, 16000, 24000)
    ref = model.generate(x24, sample_rate=24000, seed=0)
    assert len(ref) == 28  # 1 s -> 30 frames, 7 whole tokens
    m, _ = run_stream(model.stream(seed=0, sample_rate=24000), x24, [480, 1, 3000])
    assert_same_motion(m, ref, 1e-4)
    with pytest.raises(AudioError, match="sample rate"):
        model.stream(sample_rate=0)
