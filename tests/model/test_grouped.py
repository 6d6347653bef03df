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
