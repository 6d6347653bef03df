"""AudioEncoder: offline == streamed, zero look-ahead, sessions, constant state, text, real speech."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from livegesture.audio import AudioEncoder, AudioEncoderConfig, frames_available, last_mel_index
from livegesture.streaming import (state_assign_, state_clone, state_copy_, state_nbytes, state_reset_,
                                   state_select)

from .test_mel import _ragged, _schedule, _speechlike, _stream


def _encoder(dtype=torch.float64, seed: int = 0, **kw) -> AudioEncoder:
    torch.manual_seed(seed)
    return AudioEncoder(AudioEncoderConfig(**kw)).to(dtype).eval()


@pytest.fixture(scope="module")
def enc64() -> AudioEncoder:
    return _encoder()


@pytest.fixture(scope="module")
def audio3() -> torch.Tensor:
    """3 sessions of different speech-like audio, 2.5 s + a ragged tail."""
    return torch.from_numpy(_speechlike(np.random.default_rng(1), 40000 + 123, batch=3))


def _max_err(a: torch.Tensor, b: torch.Tensor) -> float:
    assert a.shape == b.shape
    return (a - b).abs().max().item()


def test_geometry():
    assert [frames_available(n) for n in (0, 533, 534, 1066, 1067, 1600, 16000)] == [0, 0, 1, 1, 2, 3, 30]
    # last usable mel frame of motion frame t ends at or before the end of t, and it is the latest such
    for t in range(100):
        m = last_mel_index(t)
        assert (m + 1) * 160 * 3 <= (t + 1) * 1600 < (m + 2) * 160 * 3
    enc = AudioEncoder()
    # proj k=3 -> 2, pyramid 2*(1+2+4+8) = 30 -> 32 mel frames; + 3 alignment frames, 400-sample
    # window and the worst-phase gap of 106.7 samples between the last mel frame and the frame end
    assert enc.mel_context == 32
    assert enc.receptive_field_samples == pytest.approx(3200 / 3 - 6 * 160 + 35 * 160 + 400)
    assert enc.receptive_field_seconds == pytest.approx(0.38167, abs=1e-5)


def test_offline_equals_streamed(enc64, audio3):
    total = audio3.shape[1]
    full = enc64(audio3)
    assert full.shape == (3, frames_available(total), 128)
    rng = np.random.default_rng(2)
    for name, sizes in {"17ms": _schedule(total, 272), "200ms": _schedule(total, 3200),
                        "ragged": _ragged(rng, total), "whole": [total], "0-whole-0": [0, total, 0],
                        "odd": _schedule(total, 533)}.items():
        assert _max_err(_stream(enc64, audio3, sizes), full) <= 1e-9, name


def test_single_samples(enc64, audio3):
    x = audio3[:, :4800]  # 0.3 s, one sample per call
    state = enc64.init_state(3, dtype=torch.float64)
    outs = []
    for i in range(x.shape[1]):
        y = enc64.step(x[:, i:i + 1], state)
        assert y.shape[1] == frames_available(i + 1) - frames_available(i)
        outs.append(y)
    assert _max_err(torch.cat(outs, 1), enc64(x)) <= 1e-9


def test_audio_dtype_follows_the_module(enc64, audio3):
    x = audio3[:1, :4000]
    assert enc64(x.float()).dtype == torch.float64
    assert torch.equal(enc64(x.float()), enc64(x.float().double()))


def test_batch_equals_single_sessions(enc64, audio3):
    full = enc64(audio3)
    for b in range(3):
        assert _max_err(enc64(audio3[b:b + 1]), full[b:b + 1]) <= 1e-12


def test_zero_lookahead(enc64, audio3):
    rng = np.random.default_rng(3)
    x = audio3[:1, :16000]
    full = enc64(x)
    cuts = list(rng.integers(1, 16000, size=10)) + [533, 534, 1067, 1600, 480, 481, 4800]
    for s in cuts:
        s = int(s)
        y = x.clone()
        y[:, s:] += torch.from_numpy(rng.standard_normal((1, 16000 - s)) * 0.1)
        other = enc64(y)
        k = frames_available(s)  # frames t with (t+1)*1600/3 <= s
        assert all((t + 1) * 1600 <= 3 * s for t in range(k)) and (k + 1) * 1600 > 3 * s
        assert torch.equal(full[:, :k], other[:, :k]), s  # contract: bit-identical
        # exact dependency: frame t uses samples < 160 * (m_t + 1), i.e. up to 106.7 samples before
        # its end; so frame k (the first frame not yet complete at s) changes unless s falls in
        # that gap, and every later frame changes
        if 160 * (last_mel_index(k) + 1) > s:
            assert (full[:, k] - other[:, k]).abs().max() > 1e-6, s
        else:
            assert torch.equal(full[:, k], other[:, k]), s
        assert ((full[:, k + 1:] - other[:, k + 1:]).abs().amax(-1) > 1e-6).all(), s


def test_zero_lookahead_at_frame_boundaries(enc64, audio3):
    x = audio3[:1, :8000]
    full = enc64(x)
    for t in range(0, 14):
        s = -(-(t + 1) * 1600 // 3)  # first sample after the end of frame t
        y = x.clone()
        y[:, s:] = 0.3
        other = enc64(y)
        assert torch.equal(full[:, :t + 1], other[:, :t + 1])
        assert (full[:, t + 1] - other[:, t + 1]).abs().max() > 1e-6  # the next frame sees it


def test_receptive_field(enc64, audio3):
    x = audio3[:1, :16000]
    full = enc64(x)
    rf = enc64.receptive_field_samples
    for t in (20, 21, 22):  # the three phases of the 3-frame cycle
        first = 160 * (last_mel_index(t) - 3 - enc64.mel_context + 1) - 400  # earliest sample used
        assert first == enc64.first_sample(t)
        assert (t + 1) * 1600 / 3 - first <= rf + 1e-9
        y = x.clone()
        # everything before the receptive field, and its first sample, whose Hann weight is exactly 0
        y[:, :first + 1] += 0.5
        assert torch.equal(enc64(y)[:, t], full[:, t])
        y = x.clone()
        y[:, first + 1] += 0.5  # the earliest sample with a nonzero weight
        assert (enc64(y)[:, t] - full[:, t]).abs().max() > 1e-9


def test_encode_window(enc64, audio3):
    x = audio3[:2, :32000]
    full = enc64(x)
    rng = np.random.default_rng(4)
    for first in [0, 1, 5, 11, 12, 13, 14] + list(rng.integers(0, 50, size=5)):
        first = int(first)
        n = int(rng.integers(0, 60 - first))
        s0 = enc64.window_start(first)
        assert s0 % 1600 == 0 and 0 <= s0 <= max(0, enc64.first_sample(first))
        got = enc64.encode_window(x, first, n)
        assert _max_err(got, full[:, first:first + n]) <= 1e-9, (first, n)
    with pytest.raises(ValueError):
        enc64.encode_window(x, 55, 10)


def test_reset_save_restore(enc64, audio3):
    x = audio3[:, :16000]
    full = enc64(x)
    state = enc64.init_state(3, dtype=torch.float64)
    head = enc64.step(x[:, :5000], state)
    saved = state_clone(state)
    a = enc64.step(x[:, 5000:], state)
    state_copy_(state, saved)
    b = enc64.step(x[:, 5000:], state)
    assert torch.equal(a, b)
    assert _max_err(torch.cat([head, a], 1), full) <= 1e-9

    # reset one session at a cycle boundary (3200 samples pushed: all still in phase)
    state_reset_(state)
    first = enc64.step(x[:, :3200], state)
    state_reset_(state, torch.tensor([False, True, False]))
    new = audio3[1:2, 20000:30000]
    rest = enc64.step(torch.cat([x[:1, 3200:13200], new, x[2:, 3200:13200]]), state)
    assert _max_err(rest[1:2], enc64(new)) <= 1e-9  # the reset session starts afresh
    cont = torch.cat([first, rest], 1)[[0, 2]]
    assert _max_err(cont, full[[0, 2], :cont.shape[1]]) <= 1e-9  # the others are unaffected

    # reset mid-cycle: sessions are out of phase, so the batch refuses; step them apart, then merge
    state_reset_(state)
    enc64.step(x[:, :1000], state)
    state_reset_(state, torch.tensor([False, True, False]))
    with pytest.raises(ValueError, match="in phase"):
        enc64.step(x[:, 1000:1100], state)
    sub = state_select(state, [1])
    y1 = enc64.step(new[:, :1000], sub)  # bring the fresh session to the others' phase (1000 mod 1600)
    state_assign_(state, [1], sub)
    rest = enc64.step(torch.cat([x[:1, 1000:6000], new[:, 1000:6000], x[2:, 1000:6000]]), state)
    assert _max_err(torch.cat([y1, rest[1:2]], 1), enc64(new[:, :6000])) <= 1e-9
    assert _max_err(rest[[0, 2]], full[[0, 2], frames_available(1000):frames_available(6000)]) <= 1e-9


def test_constant_state_size(audio3):
    enc = _encoder(torch.float32, dim=32)
    state = enc.init_state(2)
    nbytes, shapes = state_nbytes(state), {k: v.shape for k, v in state.items() if torch.is_tensor(v)}
    x = audio3[:2].float()
    emitted = pushed = 0
    for i in range(300):  # 60 s in 200 ms packets
        chunk = x[:, (i * 3200) % 36800:(i * 3200) % 36800 + 3200 + (i % 3)]
        emitted += enc.step(chunk, state).shape[1]
        pushed += chunk.shape[1]
        assert state_nbytes(state) == nbytes
    assert emitted == frames_available(pushed)
    assert {k: v.shape for k, v in state.items() if torch.is_tensor(v)} == shapes


def test_text_embedding(enc64, audio3):
    assert enc64.word_emb is None
    with pytest.raises(ValueError):
        enc64.embed_words(torch.zeros(1, 2, 128, dtype=torch.float64), torch.zeros(1, 2, dtype=torch.long))
    enc = _encoder(vocab_size=50)
    feats = enc(audio3[:, :8000])
    ids = torch.randint(0, 50, feats.shape[:2])
    ids[:, ::3] = 0
    out = enc.embed_words(feats, ids)
    assert out.shape == feats.shape
    none = ids == 0
    assert torch.equal(out[none], feats[none])  # id 0 = no word = zero vector
    assert ((out - feats).abs().amax(-1)[~none] > 0).all()
    out.sum().backward()
    assert torch.count_nonzero(enc.word_emb.weight.grad[0]) == 0  # padding row is never trained
    with pytest.raises(ValueError):
        enc.embed_words(feats, ids[:, :-1])


def test_train_mode_gradients(audio3):
    enc = _encoder(torch.float32, dropout=0.1).train()
    y = enc(audio3[:2, :8000].float())
    y.square().mean().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in enc.parameters())


@pytest.mark.realdata
@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-4), (torch.float64, 1e-9)])
def test_real_speech_streamed(beat2_dir, dtype, tol):
    import soundfile as sf

    wav, sr = sf.read(beat2_dir / "2_scott_0_4_4.wav", dtype="int16", frames=160000 + 77)
    assert sr == 16000
    x = torch.from_numpy(wav.astype(np.float64) / 32768.0).to(dtype)[None]
    enc = _encoder(dtype)
    full = enc(x)
    assert full.shape == (1, frames_available(x.shape[1]), 128)
    assert torch.isfinite(full).all()
    for size in (3200, 272):
        assert _max_err(_stream(enc, x, _schedule(x.shape[1], size)), full) <= tol, size
