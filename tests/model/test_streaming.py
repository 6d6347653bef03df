"""One code path: teacher forcing == KV-cached stepping, zero look-ahead, constant state, session ops."""

from __future__ import annotations

import math

import pytest
import torch

from livegesture.model import shift_right
from livegesture.streaming import state_assign_, state_clone, state_nbytes, state_reset_, state_select

from ._util import audio_for, randomize_pilor, tiny_model

B, T = 3, 14


@pytest.fixture(scope="module")
def model():
    m = tiny_model()
    randomize_pilor(m)
    return m


@pytest.fixture(scope="module")
def data(model):
    g = torch.Generator().manual_seed(3)
    tokens = torch.randint(model.codebook_size, (B, 4, T), generator=g)
    audio = audio_for(T, B)
    return tokens, audio, model.audio_features(audio)


def _stepped(model, state, feats, inputs, sizes, **kw):
    fused, local, tau = [], [], 0
    for n in sizes:
        f, l = model.step(state, feats[:, 4 * tau:4 * (tau + n)], inputs[:, :, tau:tau + n], return_local=True, **kw)
        fused.append(f)
        local.append(l)
        tau += n
    assert tau == inputs.shape[2]
    return torch.cat(fused, 2), torch.cat(local, 2)


@torch.no_grad()
@pytest.mark.parametrize("sizes", [[1] * T, [3, 1, 0, 5, 2, 3], [T]], ids=["ones", "ragged", "whole"])
def test_teacher_forced_equals_stepped(model, data, sizes):
    tokens, audio, feats = data
    ref = model.teacher_forced(tokens, audio)
    assert ref["fused"].shape == (B, 4, T, model.codebook_size)
    state = model.init_state(B)
    fused, local = _stepped(model, state, feats, shift_right(tokens, model.bos_id), sizes)
    assert (fused - ref["fused"]).abs().max() <= 1e-9
    assert (local - ref["local"]).abs().max() <= 1e-9


@torch.no_grad()
def test_masked_inputs_stream_too(model, data):
    tokens, _, feats = data
    inputs = shift_right(tokens, model.bos_id)
    inputs[0, 1, 3:7] = model.mask_id
    inputs[2, :, 5] = model.mask_id
    ref = model.teacher_forced(tokens, feats=feats, inputs=inputs)["fused"]
    fused, _ = _stepped(model, model.init_state(B), feats, inputs, [2, 5, 7])
    assert (fused - ref).abs().max() <= 1e-9


@torch.no_grad()
def test_zero_lookahead_features(model, data):
    tokens, _, feats = data
    ref = model.teacher_forced(tokens, feats=feats)["fused"]
    for tau in (0, 4, 9):
        f2 = feats.clone()
        f2[:, 4 * tau + 4:] += torch.randn_like(f2[:, 4 * tau + 4:])
        out = model.teacher_forced(tokens, feats=f2)["fused"]
        assert torch.equal(out[:, :, :tau + 1], ref[:, :, :tau + 1]), tau
        assert (out[:, :, tau + 1] - ref[:, :, tau + 1]).abs().max() > 1e-6  # later audio does matter


@torch.no_grad()
def test_zero_lookahead_raw_audio(model, data):
    tokens, audio, _ = data
    ref = model.teacher_forced(tokens, audio)
    for tau in (0, 5, 10):
        first = math.ceil((4 * tau + 4) * 1600 / 3)  # first sample after the end of token tau
        a2 = audio.clone()
        a2[:, first:] = torch.randn_like(a2[:, first:])
        out = model.teacher_forced(tokens, a2)
        for key in ("fused", "local"):
            assert torch.equal(out[key][:, :, :tau + 1], ref[key][:, :, :tau + 1]), (tau, key)
        assert (out["fused"][:, :, tau + 1:] - ref["fused"][:, :, tau + 1:]).abs().max() > 1e-6


@torch.no_grad()
def test_future_tokens_do_not_leak(model, data):
    """Logits at tau depend on tokens < tau only, of every region (the fuse mixes regions)."""
    tokens, _, feats = data
    ref = model.teacher_forced(tokens, feats=feats)["fused"]
    t2 = tokens.clone()
    t2[:, 2, 6] = (t2[:, 2, 6] + 1) % model.codebook_size  # token 6 of one region
    out = model.teacher_forced(t2, feats=feats)["fused"]
    assert torch.equal(out[:, :, :7], ref[:, :, :7])
    assert (out[:, :, 7] - ref[:, :, 7]).abs().max() > 1e-6  # and every region sees it at tau = 7
    assert all((out[:, r, 7] - ref[:, r, 7]).abs().max() > 1e-9 for r in range(4))


@torch.no_grad()
def test_constant_state_over_long_stream(model):
    H = model.config.window_tokens
    n_tok = 20 * H + 3
    g = torch.Generator().manual_seed(5)
    tokens = torch.randint(model.codebook_size, (2, 4, n_tok), generator=g)
    feats = torch.randn(2, 4 * n_tok, model.config.audio.dim, generator=g, dtype=torch.float64)
    state = model.init_state(2, guidance=True)
    shapes = {k: v.shape for k, v in _leaves(state)}
    nbytes = state_nbytes(state)
    inputs = shift_right(tokens, model.bos_id)
    outs = []
    for tau in range(n_tok):
        outs.append(model.step(state, feats[:, 4 * tau:4 * tau + 4], inputs[:, :, tau:tau + 1], guidance_scale=1.0))
        assert state_nbytes(state) == nbytes
    assert {k: v.shape for k, v in _leaves(state)} == shapes
    # the sliding windows stay exact far beyond the window: equal to teacher forcing the whole stream
    ref = model.teacher_forced(tokens, feats=feats)["fused"]
    assert (torch.cat(outs, 2) - ref).abs().max() <= 1e-9


def _leaves(state, prefix=""):
    for k, v in state.items():
        if isinstance(v, dict):
            yield from _leaves(v, prefix + k + ".")
        else:
            yield prefix + k, v


@torch.no_grad()
@pytest.mark.parametrize("guidance", [False, True])
def test_generic_session_ops(model, data, guidance):
    """Every state tensor is batch-first over sessions: select / assign / reset work on the model state."""
    tokens, _, feats = data
    inputs = shift_right(tokens, model.bos_id)
    state = model.init_state(B, guidance=guidance)
    for leaf, v in _leaves(state):
        assert v.shape[0] == B, leaf
    full = _stepped(model, state_clone(state), feats, inputs, [5, 9], guidance_scale=2.0)[0]
    # advance, keep session 1 only, continue: same as the batch
    _stepped(model, state, feats[:, :20], inputs[:, :, :5], [5], guidance_scale=2.0)
    sub = state_select(state, [1])
    part = _stepped(model, sub, feats[1:2, 20:], inputs[1:2, :, 5:], [9], guidance_scale=2.0)[0]
    assert (part - full[1:2, :, 5:]).abs().max() <= 1e-9
    # reset session 0 and restart it from scratch while the others continue
    state_reset_(state, torch.tensor([True, False, False]))
    sub0 = state_select(state, [0])
    again = _stepped(model, sub0, feats[:1], inputs[:1], [14], guidance_scale=2.0)[0]
    assert (again - full[:1]).abs().max() <= 1e-9
    state_assign_(state, [0], sub0)
    assert torch.equal(state_select(state, [0])["fuse"]["blocks.0"]["temporal"]["k"],
                       sub0["fuse"]["blocks.0"]["temporal"]["k"])


def test_step_checks_shapes(model, data):
    tokens, _, feats = data
    state = model.init_state(B)
    with pytest.raises(ValueError):
        model.step(state, feats[:, :3], tokens[:, :, :1])
    with pytest.raises(ValueError):
        model.step(model.init_state(2), feats[:, :4], tokens[:, :, :1])
    out = model.step(state, feats[:, :0], tokens[:, :, :0])
    assert out.shape == (B, 4, 0, model.codebook_size)


def test_step_runs_on_meta_device():
    """The model step reads no device data (no .item(), no value-dependent Python): it runs on meta."""
    m = tiny_model(dtype=torch.float32).to("meta")
    # unguided: the per-expert path (autograd on) and the grouped one; guided: the grouped path only
    for guidance, grad in ((False, True), (False, False), (True, False)):
        state = m.init_state(2, guidance=guidance, device="meta")
        for n in (1, 0, 3):
            feats = torch.empty(2, 4 * n, m.config.audio.dim, device="meta")
            prev = torch.empty(2, 4, n, dtype=torch.long, device="meta")
            with torch.set_grad_enabled(grad):
                out = m.step(state, feats, prev, guidance_scale=2.0)
            assert out.device.type == "meta" and out.shape == (2, 4, n, m.codebook_size)
