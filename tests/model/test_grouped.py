"""The grouped inference path of the experts (model/grouped.py) equals the per-expert modules."""

from __future__ import annotations

import pytest
import torch

from livegesture.model import shift_right

from ._util import audio_for, randomize_pilor, tiny_model

B, T = 2, 9


def _run(model, grouped: bool, guidance: bool, sizes, tokens, feats):
    model.grouped_inference = grouped
    state = model.init_state(tokens.shape[0], guidance=guidance)
    inputs = shift_right(tokens, model.bos_id)
    inputs[-1, 2, min(3, inputs.shape[2] - 1)] = model.mask_id  # the MASK embedding takes its own path
    out, tau = [], 0
    for n in sizes:
        out.append(torch.cat(model.step(state, feats[:, 4 * tau:4 * (tau + n)], inputs[:, :, tau:tau + n],
                                        guidance_scale=1.7, return_local=True), dim=1))
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
    for (k, a), b in zip(_leaves(s_ref), [v for _, v in _leaves(s_got)]):
        assert torch.allclose(a, b, atol=1e-9, rtol=0), k  # the caches too


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


def _guided_steps(model, tokens, feats, sizes, memo: bool):
    """The guided grouped step, token block by block; `memo` False computes the unconditional rows'
    audio keys and values inside the step's products, as the step did before the memo."""
    state = model.init_state(tokens.shape[0], guidance=True)
    inputs = shift_right(tokens, model.bos_id)
    out, tau = [], 0
    for n in sizes:
        f, x = model._conditioned(feats[:, 4 * tau:4 * (tau + n)], inputs[:, :, tau:tau + n], 2)
        est, fst = model.flat_views(state)
        fused, local = model._run_grouped(est, fst, f, x, model.null_audio if memo else None)
        out.append(torch.cat([fused, local], dim=1))
        tau += n
    return torch.cat(out, dim=2), state


@torch.no_grad()
@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("sizes", [[1] * 5, [2, 1, 2]], ids=["ones", "ragged"])
def test_null_rows_memo_is_bit_equal_to_the_step_products(batch, sizes):
    """Float32: the memoised null audio keys and values give the step the same bits as computing
    them with the conditioned rows (the products are row-invariant), caches included."""
    model = tiny_model(dtype=torch.float32)
    randomize_pilor(model)
    g = torch.Generator().manual_seed(1)
    tokens = torch.randint(model.codebook_size, (batch, 4, sum(sizes)), generator=g)
    feats = model.audio_features(audio_for(sum(sizes), batch).float())
    ref, s_ref = _guided_steps(model, tokens, feats, sizes, memo=False)
    got, s_got = _guided_steps(model, tokens, feats, sizes, memo=True)
    assert torch.equal(got, ref)
    for (k, a), (_, b) in zip(_leaves(s_ref), _leaves(s_got)):
        assert torch.equal(a, b), k
    assert model._grouped._null is not None and model._grouped_fuse._null is not None  # the memo was used


@torch.no_grad()
@pytest.mark.parametrize("change", ["null_audio", "expert_kv", "fuse_kv"])
def test_null_rows_memo_follows_the_null_audio_and_the_weights(change):
    model = tiny_model(dtype=torch.float32)
    g = torch.Generator().manual_seed(2)
    tokens = torch.randint(model.codebook_size, (2, 4, 3), generator=g)
    feats = model.audio_features(audio_for(3, 2).float())
    before, _ = _guided_steps(model, tokens, feats, [1, 1, 1], memo=True)
    p = {"null_audio": model.null_audio,
         "expert_kv": model.experts["upper"].blocks[0].cross.v_proj.weight,
         "fuse_kv": model.fuse.blocks[0].cross.k_proj.weight}[change]
    p.add_(0.5 * torch.randn(p.shape, generator=g))  # in place: the memo must notice
    after, _ = _guided_steps(model, tokens, feats, [1, 1, 1], memo=True)
    ref, _ = _guided_steps(model, tokens, feats, [1, 1, 1], memo=False)
    assert (after - before).abs().max() > 1e-4
    assert torch.equal(after, ref)
