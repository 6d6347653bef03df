"""ChunkBuffer: arbitrary packets in, whole frames out, linear time, save/restore."""

from __future__ import annotations

import time

import numpy as np
import pytest

from livegesture.streaming import ChunkBuffer


@pytest.mark.parametrize("frame_size", [1, 7, 160, 533])
@pytest.mark.parametrize("seed", [0, 1])
def test_frames_are_the_input_prefix(frame_size, seed):
    rng = np.random.default_rng(seed)
    signal = rng.standard_normal(60_000).astype(np.float32)
    sizes = list(rng.choice([0, 1, 2, 5, 159, 160, 161, 1000], size=80)) + [20_000]
    cb = ChunkBuffer(frame_size)
    out, pos = [], 0
    for n in sizes:
        n = min(int(n), len(signal) - pos)
        got = cb.push(signal[pos:pos + n])
        pos += n
        assert got.dtype == np.float32 and got.ndim == 1 and got.size % frame_size == 0
        out.append(got)
        assert cb.pending == pos - sum(o.size for o in out) and 0 <= cb.pending < frame_size
    frames = np.concatenate(out)
    assert frames.size == (pos // frame_size) * frame_size
    np.testing.assert_array_equal(frames, signal[:frames.size])


def test_empty_and_dtype_conversion_and_shape_check():
    cb = ChunkBuffer(4)
    assert cb.push(np.zeros(0)).shape == (0,)
    assert cb.push(np.array([1, 2, 3], dtype=np.int16)).shape == (0,)
    out = cb.push([4.0, 5.0])
    assert out.dtype == np.float32 and out.tolist() == [1, 2, 3, 4]
    assert cb.pending == 1
    with pytest.raises(ValueError):
        cb.push(np.zeros((2, 3)))
    cb64 = ChunkBuffer(3, dtype=np.float64)
    assert cb64.push(np.ones(6, dtype=np.float32)).dtype == np.float64


def test_reset_and_state_roundtrip():
    rng = np.random.default_rng(3)
    x = rng.standard_normal(1000).astype(np.float32)
    cb = ChunkBuffer(160)
    cb.push(x[:250])
    saved = cb.state_dict()
    a = [cb.push(x[250:600]), cb.push(x[600:1000])]
    other = ChunkBuffer(160)
    other.load_state_dict(saved)
    b = [other.push(x[250:600]), other.push(x[600:1000])]
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)
    cb.reset()
    assert cb.pending == 0
    np.testing.assert_array_equal(cb.push(x[:160]), x[:160])
    with pytest.raises(ValueError):
        ChunkBuffer(100).load_state_dict(saved)


def test_huge_packet_and_many_tiny_packets_are_linear():
    cb = ChunkBuffer(160)
    x = np.arange(16_000 * 600, dtype=np.float32)  # ten minutes of 16 kHz in one packet
    t0 = time.perf_counter()
    out = cb.push(x)
    assert out.size == x.size and out[-1] == x[-1]
    out = cb.push(np.ones(1, dtype=np.float32))
    assert out.size == 0 and cb.pending == 1
    cb.reset()
    for i in range(20_000):
        cb.push(x[i:i + 1])
    assert cb.pending == 20_000 % 160
    assert time.perf_counter() - t0 < 10.0
