"""The compiled one-row programs (livegesture/engine/compiled.py: step, decoder, audio encoder): streaming == offline bit for bit
within the mode, one program for every session (no recompile per session or over a long
stream), close to the eager step, and batched cores left eager."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch._dynamo.utils import counters

from livegesture import LiveGesture
from livegesture.engine.compiled import CompiledDecode, CompiledEncode, CompiledStep, compile_available
from livegesture.errors import LiveGestureError
from livegesture.model.config import SamplingConfig
from livegesture.streaming.attention import StreamingCrossAttention, StreamingSelfAttention

from ..test_engine import audio_of, model_path, run_stream  # noqa: F401  (fixtures)

pytestmark = pytest.mark.skipif(compile_available() is not None, reason=str(compile_available()))


def graphs() -> int:
    return counters["stats"]["unique_graphs"]


@pytest.fixture(scope="module")
def compiled(model_path) -> LiveGesture:
    return LiveGesture.load(model_path, compile=True)


@pytest.fixture(scope="module")
def eager(model_path) -> LiveGesture:
    return LiveGesture.load(model_path)


@pytest.mark.parametrize("sizes", [[], [320], [1, 4999, 77], [2134, 2133, 2133]])
def test_streaming_equals_offline_within_the_compiled_mode(compiled, sizes):
    audio = audio_of(4.0)
    off = run_stream(compiled.stream(seed=2), audio, [])
    before = graphs()
    session = compiled.stream(seed=2)
    assert isinstance(session._core._step, CompiledStep)  # the lone stream runs the programs
    assert isinstance(session._core._decode_one, CompiledDecode)
    assert isinstance(session._core._encode_one, CompiledEncode)
    live = run_stream(session, audio, sizes)
    assert graphs() == before  # a new session reuses the program
    assert torch.equal(off[1], live[1])
    assert len(off[0]) == len(live[0]) > 0
    for k in ("poses", "trans", "expressions"):
        np.testing.assert_array_equal(getattr(off[0], k), getattr(live[0], k), err_msg=k)


def test_one_program_over_a_long_stream(compiled):
    """Past the attention window the rings wrap: the program must not be re-traced."""
    window = compiled.bundle.model.config.window_tokens
    seconds = (3 * window + 5) * 4 / 30
    before = graphs()
    m, toks = run_stream(compiled.stream(seed=0), audio_of(seconds, seed=1), [3200])
    assert toks.shape[1] >= 3 * window
    assert graphs() == before
    assert np.isfinite(m.poses).all()


def test_compiled_logits_are_close_to_eager_and_tokens_agree(compiled, eager):
    model = compiled.bundle.model
    step = compiled.compiled_step(compiled.sampling)
    assert step is not None
    scale = compiled.sampling.guidance_scale
    g = torch.Generator().manual_seed(0)
    T = model.config.window_tokens + 8
    feats = torch.randn(1, 4 * T, model.config.audio.dim, generator=g)
    toks = torch.randint(model.codebook_size, (1, model.num_regions, T), generator=g)
    with torch.no_grad():
        a, b = model.init_state(1, guidance=True), model.init_state(1, guidance=True)
        worst = 0.0
        for t in range(T):
            la = model.step(a, feats[:, 4 * t:4 * t + 4], toks[:, :, t:t + 1], scale)
            lb = step(b, feats[:, 4 * t:4 * t + 4], toks[:, :, t:t + 1], scale)
            worst = max(worst, float((la - lb).abs().max()))
    assert worst < 1e-4, worst
    # sampled end to end: the tokens of the two modes agree on nearly every draw
    audio = audio_of(6.0, seed=3)
    ta = run_stream(eager.stream(seed=4), audio, [])[1]
    tb = run_stream(compiled.stream(seed=4), audio, [])[1]
    assert ta.shape == tb.shape and float((ta == tb).float().mean()) >= 0.95


def test_batched_cores_stay_eager_and_bit_equal(compiled, eager):
    audio = [audio_of(3.0, seed=s) for s in (7, 8)]
    outs = []
    for lg in (compiled, eager):
        batch = lg.stream_batch(2, seeds=[5, 6])
        assert not isinstance(batch._core._step, CompiledStep)
        assert not isinstance(batch._core._decode_one, CompiledDecode)
        assert not isinstance(batch._core._encode_one, CompiledEncode)
        parts = [batch.push([a[:16000] for a in audio]), batch.push([a[16000:] for a in audio]), batch.close()]
        outs.append([np.concatenate([p[i].poses for p in parts]) for i in range(2)])
    for x, y in zip(*outs):
        np.testing.assert_array_equal(x, y)


def test_other_guidance_compiles_its_own_program(compiled):
    s = SamplingConfig(guidance_scale=compiled.sampling.guidance_scale + 0.5)
    m, toks = run_stream(compiled.stream(seed=1, sampling=s), audio_of(2.0), [800])
    assert toks.shape[1] > 0 and np.isfinite(m.poses).all()
    assert compiled.compiled_step(s) is not compiled.compiled_step(compiled.sampling)


def test_wrong_calls_are_refused(compiled):
    step = compiled.compiled_step(compiled.sampling)
    model = compiled.bundle.model
    state = model.init_state(2, guidance=True)
    feats = torch.zeros(2, 4, model.config.audio.dim)
    prev = torch.full((2, model.num_regions, 1), model.bos_id)
    with pytest.raises(LiveGestureError, match=r"1 token\(s\) of 1 session"):
        step(state, feats, prev, compiled.sampling.guidance_scale)
    one = model.init_state(1, guidance=True)
    with pytest.raises(LiveGestureError, match="guidance scale"):
        step(one, feats[:1], prev[:1], 9.0)


def test_no_compiler_is_one_clear_line(monkeypatch, model_path):
    import shutil

    import livegesture.engine.compiled as comp

    monkeypatch.delenv("CXX", raising=False)
    monkeypatch.setattr(shutil, "which", lambda name: None)
    assert "C++ compiler" in comp.compile_available()
    with pytest.raises(LiveGestureError, match="C\\+\\+ compiler"):
        LiveGesture.load(model_path, compile=True)
    with pytest.raises(LiveGestureError, match="C\\+\\+ compiler"):
        CompiledStep(LiveGesture.load(model_path).bundle.model)


def kernel_calls(fn, op: str = "livegesture::stream_mm") -> int:
    """How many times kernel `op` ran during fn()."""
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        fn()
    return sum(e.count for e in prof.key_averages() if e.key == op)


def test_compiled_products_run_on_the_streaming_kernel_and_eager_ones_do_not(compiled):
    step = compiled.compiled_step(compiled.sampling)
    assert step.kernel and step.kernel_note is None
    model = compiled.bundle.model
    packed = len(model._grouped.packed) + len(model._grouped_fuse.packed)
    assert packed > 0
    state = model.init_state(1, guidance=True)
    feats = torch.zeros(1, 4, model.config.audio.dim)
    prev = torch.full((1, model.num_regions, 1), model.bos_id)
    scale = compiled.sampling.guidance_scale
    with torch.no_grad():
        assert kernel_calls(lambda: step(state, feats, prev, scale)) >= packed  # every packed product, once or more
        assert kernel_calls(lambda: model.step(state, feats, prev, scale)) == 0
        # every ring attention layer (one grouped call per expert block, one per fuse layer) on the ring
        # kernel too; eager ones on SDPA
        kinds = (StreamingCrossAttention, StreamingSelfAttention)
        expert = next(iter(model.experts.values()))
        rings = sum(isinstance(m, kinds) for m in (*expert.modules(), *model.fuse.modules()))
        assert kernel_calls(lambda: step(state, feats, prev, scale), "livegesture::ring_attn") == rings > 0
        assert kernel_calls(lambda: model.step(state, feats, prev, scale), "livegesture::ring_attn") == 0


def test_a_kernel_that_does_not_build_leaves_the_library_products(monkeypatch, model_path, eager):
    import livegesture.engine.compiled as comp

    monkeypatch.setattr(comp.stream_kernel, "load", lambda: "the streaming product kernel did not build: test")
    model = LiveGesture.load(model_path).bundle.model
    scale = eager.sampling.guidance_scale
    with pytest.warns(UserWarning, match="did not build: test; the compiled step keeps the library's products"):
        step = CompiledStep(model, 1, True, scale)
    assert not step.kernel and not model._grouped.packed
    state = model.init_state(1, guidance=True)
    feats = torch.randn(1, 4, model.config.audio.dim, generator=torch.Generator().manual_seed(4))
    prev = torch.full((1, model.num_regions, 1), model.bos_id)
    with torch.no_grad():
        assert kernel_calls(lambda: step(state, feats, prev, scale)) == 0
        ref = eager.bundle.model.step(eager.bundle.model.init_state(1, guidance=True), feats, prev, scale)
        assert float((step(model.init_state(1, guidance=True), feats, prev, scale) - ref).abs().max()) < 1e-4


def test_bench_reports_the_compiled_step_and_its_kernel(compiled):
    from livegesture.bench import BenchResult, bench_step, format_report

    step = compiled.compiled_step(compiled.sampling)
    res = BenchResult("bundled", torch.get_num_threads(), True, compiled=True)
    res.step = bench_step(compiled.bundle.model, batch=1, iters=3, guidance=True, step=step, bandwidth=False)
    assert res.step.compiled and res.step.kernel and not res.step.recompute_compiled
    assert "KV-cached (compiled, streaming product kernel)" in format_report(res)
    assert "window (eager)" in format_report(res)
    assert res.to_dict()["step"]["kernel"] is True


@pytest.fixture(scope="module")
def window(compiled) -> CompiledStep:
    m, s = compiled.bundle.model, compiled.sampling
    return CompiledStep(m, 1, s.guided, s.guidance_scale, tokens=m.config.window_tokens)


def test_compiled_window_recompute_is_its_own_program_close_to_eager(compiled, window):
    """The window recompute that bench compares a compiled step with: H positions in one compiled call,
    close to the eager call, its own program (the one-token step is not re-traced after it), and
    refusing any other number of positions."""
    model, scale = compiled.bundle.model, compiled.sampling.guidance_scale
    H = model.config.window_tokens
    g = torch.Generator().manual_seed(5)
    feats = torch.randn(1, 4 * H, model.config.audio.dim, generator=g)
    toks = torch.randint(model.codebook_size, (1, model.num_regions, H), generator=g)
    with torch.no_grad():
        got = window(model.init_state(1, guidance=True), feats, toks, scale)
        want = model.step(model.init_state(1, guidance=True), feats, toks, scale)
    assert got.shape == want.shape == (1, model.num_regions, H, model.codebook_size)
    assert (got - want).abs().max() < 1e-4 * want.abs().max()
    before = graphs()
    run_stream(compiled.stream(seed=3), audio_of(1.0), [640])
    assert graphs() == before
    with pytest.raises(LiveGestureError, match=rf"{H} token\(s\) of 1 session"):
        window(model.init_state(1, guidance=True), feats[:, :4], toks[:, :, :1], scale)
    from livegesture.bench import BenchResult, bench_step, format_report

    res = BenchResult("bundled", torch.get_num_threads(), True, compiled=True)
    res.step = bench_step(model, batch=1, iters=3, guidance=True, step=compiled.compiled_step(compiled.sampling),
                          window=window, bandwidth=False)
    assert res.step.recompute_compiled and "window (compiled)" in format_report(res)
    assert res.to_dict()["step"]["recompute_compiled"] is True


def test_compiled_decoder_is_close_to_eager_on_the_kernel_and_refuses_other_shapes(compiled):
    dec = compiled.compiled_decode
    assert isinstance(dec, CompiledDecode) and dec.kernel and dec.kernel_note is None
    grouped = compiled._decoder
    assert len(grouped.packed) > 0
    K = compiled.bundle.model.codebook_size
    ids = torch.randint(K, (24, 1, dec.regions, 1), generator=torch.Generator().manual_seed(3))
    a, b = grouped.init_state(1), grouped.init_state(1)
    worst = 0.0
    with torch.no_grad():
        for t in range(len(ids)):  # histories fill and roll: the states must advance alike
            ya, yb = grouped.decode(ids[t], a), dec(ids[t], b)
            assert [y.shape for y in ya] == [y.shape for y in yb]
            worst = max(worst, max(float((x - y).abs().max()) for x, y in zip(ya, yb)))
        assert kernel_calls(lambda: dec(ids[0], b)) >= len(grouped.packed)
        assert kernel_calls(lambda: grouped.decode(ids[0], a)) == 0  # eager decodes keep the library's
    assert worst < 1e-4, worst
    with pytest.raises(LiveGestureError, match="one token of one session"):
        dec(torch.zeros(2, dec.regions, 1, dtype=torch.long), grouped.init_state(2))


def test_compiled_encoder_is_close_to_eager_one_program_per_phase(compiled):
    from livegesture.audio.encoder import frames_end_sample

    enc = compiled.compiled_encode
    assert isinstance(enc, CompiledEncode)
    model = compiled.bundle.model
    ends = [frames_end_sample(4 * k) for k in range(13)]
    g = torch.Generator().manual_seed(5)
    a, b = model.audio_encoder.init_state(1), model.audio_encoder.init_state(1)
    before = graphs()
    with torch.no_grad():
        for lo, hi in zip(ends, ends[1:]):  # 12 tokens: every phase four times
            x = 0.1 * torch.randn(1, hi - lo, generator=g)
            ya, yb = model.audio_encoder.step(x, a), enc(x, b)
            assert ya.shape == yb.shape == (1, 4, model.config.audio.dim)
            assert float((ya - yb).abs().max()) < 1e-4
    assert graphs() == before  # the three programs of the warm-up, reused
    with pytest.raises(LiveGestureError, match="one session's samples"):
        enc(torch.zeros(2, 2134), model.audio_encoder.init_state(2))


def test_compiling_a_complex_op_shows_no_inductor_warning():
    """The mel's rfft has a complex result, which inductor leaves to the library's op; its warning
    that this may be "worse than eager" is filtered while the engine compiles (the graph cache is
    off here, so the lowering that warns does run)."""
    import warnings

    import torch._inductor.config as inductor_config

    from livegesture.engine.compiled import COMPLEX_WARNING, _compile

    def power(x):
        return torch.fft.rfft(x, dim=-1).abs().square()

    x = torch.randn(2, 64, generator=torch.Generator().manual_seed(0))
    with warnings.catch_warnings(record=True) as seen, inductor_config.patch(fx_graph_cache=False):
        warnings.simplefilter("always")
        prog = _compile(power, lambda p: p(x), "test function")
    assert not [w for w in seen if COMPLEX_WARNING in str(w.message)]
    torch.testing.assert_close(prog(x), power(x))
