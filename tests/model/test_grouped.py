"""The grouped inference path of the experts (model/grouped.py) equals the per-expert modules."""

from __future__ import annotations

import pytest
import torch

from livegesture.model import shift_right

from ._util import audio_for, randomize_pilor, tiny_model

B, T = 2, 9


SCALE = 1.7


def _run(model, grouped: bool, guidance: bool, sizes, tokens, feats):
    """Logits (fused | local) and the state after stepping `sizes` positions. Per-expert with guidance:
    the reference is two unguided streams per session, the second with its condition dropped (what a
    guided pair means), combined with the guidance formula."""
    model.grouped_inference = grouped
    B = tokens.shape[0]
    pairs = guidance and not grouped
    state = model.init_state(2 * B if pairs else B, guidance=guidance and grouped)
    inputs = shift_right(tokens, model.bos_id)
    inputs[-1, 2, min(3, inputs.shape[2] - 1)] = model.mask_id  # the MASK embedding takes its own path
    if pairs:
        inputs, feats = inputs.repeat_interleave(2, dim=0), feats.repeat_interleave(2, dim=0)
        drop = torch.arange(2 * B) % 2 == 1
    out, tau = [], 0
    for n in sizes:
        f, x = feats[:, 4 * tau:4 * (tau + n)], inputs[:, :, tau:tau + n]
        if pairs:
            fused, local = model._run(state, f, x, drop)
            out.append(torch.cat([model._guided(fused, B, SCALE), model._guided(local, B, SCALE)], dim=1))
        else:
            out.append(torch.cat(model.step(state, f, x, guidance_scale=SCALE, return_local=True), dim=1))
        tau += n
    model.grouped_inference = True
    return torch.cat(out, dim=2), state


PAIRS = dict(pair_head_regions=("upper", "hands", "lower", "face"), pair_embedding=True)


@torch.no_grad()
@pytest.mark.parametrize("guidance", [False, True])
@pytest.mark.parametrize("sizes", [[1] * T, [T], [4, 0, 2, 3]], ids=["ones", "whole", "ragged"])
@pytest.mark.parametrize("kw", [{}, PAIRS, {**PAIRS, "fuse_residual": True}], ids=["plain", "pairs", "residual"])
def test_grouped_equals_per_expert(guidance, sizes, kw):
    model = tiny_model(expert_blocks=2, **kw)
    randomize_pilor(model)
    with torch.no_grad():  # distinct per-expert weights everywhere (random init already differs)
        for e in model.experts.values():
            e.mask_emb.mul_(3.0)
    g = torch.Generator().manual_seed(0)
    tokens = torch.randint(model.codebook_size, (B, 4, T), generator=g)
    feats = model.audio_features(audio_for(T, B))
    ref, s_ref = _run(model, False, guidance, sizes, tokens, feats)
    got, s_got = _run(model, True, guidance, sizes, tokens, feats)
    assert (got - ref).abs().max() <= 1e-9
    rings = 0
    for (k, a), (k2, b) in zip(_leaves(s_ref), _leaves(s_got)):
        assert k == k2
        if guidance:  # the reference has 2B sessions of one stream; the guided state B of two
            if k.startswith(("experts.", "fuse.")) and ".cross." in k and k.rsplit(".", 1)[1] in ("k", "v", "pos"):
                a, rings = a[0::2], rings + 1  # audio rings: the conditional stream's only
            elif k.startswith("audio."):
                a = a[0::2]  # (no audio was encoded: both rows are fresh)
            else:
                a = a.reshape(b.shape)
        assert a.shape == b.shape and torch.allclose(a, b, atol=1e-9, rtol=0), k  # the caches too
    if guidance:
        assert rings == 3 * (len(model.experts["upper"].blocks) + len(model.fuse.blocks))


@torch.no_grad()
def test_stacked_weights_follow_parameter_changes():
    model = tiny_model()
    g = torch.Generator().manual_seed(0)
    tokens = torch.randint(model.codebook_size, (1, 4, 3), generator=g)
    feats = model.audio_features(audio_for(3, 1))
    before, _ = _run(model, True, False, [3], tokens, feats)
    w = model.experts["hands"].blocks[0].mlp.fc2.weight
    w.add_(0.5 * torch.randn(w.shape, generator=g, dtype=w.dtype))  # in place: the cache must notice
    after, _ = _run(model, True, False, [3], tokens, feats)
    ref, _ = _run(model, False, False, [3], tokens, feats)
    assert (after - before).abs().max() > 1e-3
    assert (after - ref).abs().max() <= 1e-9


def _leaves(state, prefix=""):
    for k, v in state.items():
        if isinstance(v, dict):
            yield from _leaves(v, f"{prefix}{k}.")
        else:
            yield f"{prefix}{k}", v


@torch.no_grad()
def test_stacked_weights_follow_a_replaced_parameter():
    model = tiny_model()
    g = torch.Generator().manual_seed(0)
    tokens = torch.randint(model.codebook_size, (1, 4, 3), generator=g)
    feats = model.audio_features(audio_for(3, 1))
    before, _ = _run(model, True, False, [3], tokens, feats)
    lin = model.experts["face"].blocks[0].self_attn.q_proj
    lin.weight = torch.nn.Parameter(lin.weight + 0.5 * torch.randn(lin.weight.shape, generator=g, dtype=lin.weight.dtype))
    after, _ = _run(model, True, False, [3], tokens, feats)
    ref, _ = _run(model, False, False, [3], tokens, feats)
    assert (after - before).abs().max() > 1e-3
    assert (after - ref).abs().max() <= 1e-9


def _guided_steps(model, tokens, feats, sizes, fresh: bool = False):
    """The guided grouped step, token block by block; `fresh` drops the null rows' memo before every
    step (they are then rebuilt from the current weights)."""
    state = model.init_state(tokens.shape[0], guidance=True)
    inputs = shift_right(tokens, model.bos_id)
    out, tau = [], 0
    for n in sizes:
        if fresh:
            model._grouped._null = model._grouped_fuse._null = None
        out.append(torch.cat(model.step(state, feats[:, 4 * tau:4 * (tau + n)], inputs[:, :, tau:tau + n],
                                        guidance_scale=SCALE, return_local=True), dim=1))
        tau += n
    return torch.cat(out, dim=2), state


@torch.no_grad()
@pytest.mark.parametrize("rows", [1, 3, 6])
def test_null_rows_memo_has_the_bits_of_the_step_products(rows):
    """Float32: the memoised null values are, bit for bit, what the step's padded audio products give
    a null row in company of conditioned rows (the products are row-invariant)."""
    model = tiny_model(dtype=torch.float32)
    e, f = model._grouped, model._grouped_fuse
    R, nb = model.num_regions, len(model.experts["upper"].blocks)
    H = model.experts["upper"].blocks[0].cross.num_heads
    g = torch.Generator().manual_seed(rows)
    audio = torch.randn(rows, 4, model.null_audio.shape[0], generator=g)
    audio[-1] = model.null_audio  # the last row hears the null audio
    model.step(model.init_state(1, guidance=True), audio[:1], torch.zeros(1, R, 1, dtype=torch.long),
               guidance_scale=SCALE)  # builds the weights and both memos
    kv, _ = e._audio_kv(audio, rows, R, 4, nb * 2 * H, None)  # (rows*R, heads, 4, Dh)
    _, v_null = e._audio_kv(audio[[0, -1]], 2, R, 4, nb * 2 * H, model.null_audio)  # (R, blocks, H, Dh)
    v_rows = kv.unflatten(1, (nb, 2, H))[-R:, :, 1]  # (R, blocks, H, 4, Dh)
    assert torch.equal(v_rows, v_null[:, :, :, None].expand_as(v_rows))
    fb, Hf = len(model.fuse.blocks), model.fuse.blocks[0].cross.num_heads
    kvf, _ = f._audio_kv(audio, fb * 2 * Hf, None)  # (rows, heads, 4, Dh)
    _, vf_null = f._audio_kv(audio[[0, -1]], fb * 2 * Hf, model.null_audio)  # (blocks, H, Dh)
    vf_rows = kvf.unflatten(1, (fb, 2, Hf))[-1, :, 1]  # (blocks, H, 4, Dh)
    assert torch.equal(vf_rows, vf_null[:, :, None].expand_as(vf_rows))


@torch.no_grad()
@pytest.mark.parametrize("batch", [1, 3])
def test_guided_pairs_equal_two_unguided_streams_float32(batch):
    """Float32, grouped path: a guided pair's logits are the guidance formula over two unguided
    sessions (the second hearing the null audio) within float32 rounding: the unconditional
    stream's audio attention is taken as the null values it averages."""
    model = tiny_model(dtype=torch.float32)
    randomize_pilor(model)
    g = torch.Generator().manual_seed(3)
    T = 6
    tokens = torch.randint(model.codebook_size, (batch, 4, T), generator=g)
    feats = model.audio_features(audio_for(T, batch).float())
    got, _ = _guided_steps(model, tokens, feats, [1] * T)
    state = model.init_state(2 * batch)
    inputs = shift_right(tokens, model.bos_id).repeat_interleave(2, dim=0)
    f2 = feats.repeat_interleave(2, dim=0)
    f2[1::2] = model.null_audio
    ref = []
    for tau in range(T):
        fused, local = model._run(state, f2[:, 4 * tau:4 * tau + 4], inputs[:, :, tau:tau + 1])
        ref.append(torch.cat([model._guided(fused, batch, SCALE), model._guided(local, batch, SCALE)], dim=1))
    ref = torch.cat(ref, dim=2)
    assert (got - ref).abs().max() < 1e-4 * ref.abs().max()


@torch.no_grad()
@pytest.mark.parametrize("change", ["null_audio", "expert_kv", "fuse_kv"])
def test_null_rows_memo_follows_the_null_audio_and_the_weights(change):
    model = tiny_model(dtype=torch.float32)
    g = torch.Generator().manual_seed(2)
    tokens = torch.randint(model.codebook_size, (2, 4, 3), generator=g)
    feats = model.audio_features(audio_for(3, 2).float())
    before, _ = _guided_steps(model, tokens, feats, [1, 1, 1])
    p = {"null_audio": model.null_audio,
         "expert_kv": model.experts["upper"].blocks[0].cross.v_proj.weight,
         "fuse_kv": model.fuse.blocks[0].cross.k_proj.weight}[change]
    p.add_(0.5 * torch.randn(p.shape, generator=g))  # in place: the memo must notice
    after, _ = _guided_steps(model, tokens, feats, [1, 1, 1])
    ref, _ = _guided_steps(model, tokens, feats, [1, 1, 1], fresh=True)
    assert (after - before).abs().max() > 1e-4
    assert torch.equal(after, ref)


def test_guided_state_refuses_the_per_expert_path():
    """A guided state keeps no audio rings for its unconditional stream, so a step that would take the
    per-expert path (autograd on, or grouped inference off) is refused, not run on missing rings."""
    model = tiny_model()
    state = model.init_state(1, guidance=True)
    feats, prev = torch.zeros(1, 4, model.config.audio.dim, dtype=model.null_audio.dtype), \
        torch.zeros(1, 4, 1, dtype=torch.long)
    with torch.enable_grad(), pytest.raises(ValueError, match="grouped inference path"):
        model.step(state, feats, prev, guidance_scale=SCALE)
    model.grouped_inference = False
    with torch.no_grad(), pytest.raises(ValueError, match="grouped inference path"):
        model.step(state, feats, prev, guidance_scale=SCALE)
    model.grouped_inference = True
    with torch.no_grad():
        assert model.step(state, feats, prev, guidance_scale=SCALE).shape == (1, 4, 1, model.codebook_size)
