"""PILOR starts as the identity; classifier-free guidance in one batched call; stages; text."""

from __future__ import annotations

import pytest
import torch

from livegesture.model import LiveGestureModel, guide, shift_right

from ._util import audio_for, randomize_pilor, tiny_config, tiny_model

B, T = 2, 9


@torch.no_grad()
def test_pilor_starts_as_identity():
    model = tiny_model()
    for w in model.fuse.pilor:
        assert torch.count_nonzero(w.weight) == 0
    g = torch.Generator().manual_seed(0)
    tokens = torch.randint(model.codebook_size, (B, 4, T), generator=g)
    feats = model.audio_features(audio_for(T, B))
    local = model.teacher_forced(tokens, feats=feats)["local"]
    inputs = shift_right(tokens, model.bos_id)
    for i, r in enumerate(model.regions):
        expert_logits = model.experts[r](inputs[:, i], feats)  # the expert alone
        assert (local[:, i] - expert_logits).abs().max() <= 1e-12, r  # (matmul layouts differ)
    h = torch.randn(B, 4, T, model.config.dim, dtype=torch.float64)
    assert torch.equal(model.fuse.apply_pilor(h), h)
    randomize_pilor(model)
    local2 = model.teacher_forced(tokens, feats=feats)["local"]
    assert (local2 - local).abs().max() > 1e-6


@torch.no_grad()
@pytest.mark.parametrize("pairs", [False, True])
def test_residual_fuse_starts_as_the_experts(pairs):
    kw = dict(pair_head_regions=("upper", "hands", "lower", "face"), pair_embedding=True) if pairs else {}
    model = tiny_model(fuse_residual=True, **kw)
    g = torch.Generator().manual_seed(0)
    tokens = torch.randint(model.codebook_size, (B, 4, T), generator=g)
    feats = model.audio_features(audio_for(T, B))
    out = model.teacher_forced(tokens, feats=feats)
    assert torch.equal(out["fused"], out["local"])  # zero-initialised classifiers: fused = experts exactly
    assert not torch.equal(tiny_model(**kw).teacher_forced(tokens, feats=feats)["fused"], out["local"])
    for c in model.fuse.classifiers:  # trained classifiers add a correction to the experts' logits
        for p in c.parameters():
            p.normal_(0, 0.1, generator=g)
    out2 = model.teacher_forced(tokens, feats=feats)
    torch.testing.assert_close(out2["local"], out["local"], rtol=0, atol=0)
    assert (out2["fused"] - out2["local"]).abs().max() > 1e-3


@torch.no_grad()
@pytest.mark.parametrize("scale", [0.0, 1.0, 2.5])
def test_guidance_combines_cond_and_uncond(scale):
    model = tiny_model()
    randomize_pilor(model)
    g = torch.Generator().manual_seed(1)
    tokens = torch.randint(model.codebook_size, (B, 4, T), generator=g)
    feats = model.audio_features(audio_for(T, B))
    cond = model.teacher_forced(tokens, feats=feats)
    uncond = model.teacher_forced(tokens, feats=feats, drop=torch.ones(B, dtype=torch.bool))
    state = model.init_state(B, guidance=True)
    assert state["streams"].shape == (B, 2)
    inputs = shift_right(tokens, model.bos_id)
    fused, local, tau = [], [], 0
    for n in (1, 4, 4):  # one batched call of 2B rows per step
        f, l = model.step(state, feats[:, 4 * tau:4 * (tau + n)], inputs[:, :, tau:tau + n],
                          guidance_scale=scale, return_local=True)
        fused.append(f)
        local.append(l)
        tau += n
    fused, local = torch.cat(fused, 2), torch.cat(local, 2)
    assert (fused - guide(cond["fused"], uncond["fused"], scale)).abs().max() <= 1e-9
    assert (local - guide(cond["local"], uncond["local"], scale)).abs().max() <= 1e-9
    if scale == 1.0:
        assert (fused - cond["fused"]).abs().max() <= 1e-12
    if scale == 0.0:
        assert (fused - uncond["fused"]).abs().max() <= 1e-12
    # the unconditional stream really ignores the audio
    other = model.teacher_forced(tokens, feats=torch.randn_like(feats), drop=torch.ones(B, dtype=torch.bool))
    assert torch.equal(other["fused"], uncond["fused"])


def test_cfg_dropout_in_training_only():
    model = tiny_model(cond_drop_prob=0.5)
    g = torch.Generator().manual_seed(0)
    batch = {"tokens": torch.randint(model.codebook_size, (8, 4, 5), generator=g), "audio": audio_for(5, 8)}
    model.train()
    feats, drop = model._condition(batch, torch.Generator().manual_seed(3))
    assert drop is not None and drop.dtype == torch.bool and drop.shape == (8,) and 0 < int(drop.sum()) < 8
    model.eval()
    assert model._condition(batch, None)[1] is None


def test_text_is_added_and_dropped():
    model = tiny_model(text_vocab_size=10, text_drop_prob=0.5)
    assert model.audio_encoder.config.vocab_size == 10
    audio = audio_for(4, 8)
    words = torch.randint(1, 10, (8, 16))
    with torch.no_grad():
        plain = model.audio_features(audio)
        with_text = model.audio_features(audio, words)
    assert (with_text - plain).abs().min() > 0
    model.train()
    feats, _ = model._condition({"tokens": torch.zeros(8, 4, 4, dtype=torch.long), "audio": audio, "words": words}, torch.Generator().manual_seed(0))
    kept = [(feats[i] - plain[i]).abs().max() > 1e-9 for i in range(8)]
    assert 0 < sum(kept) < 8  # per sequence: some keep their words, some lose them


def test_stage_parameters_and_modes():
    model = LiveGestureModel(tiny_config(dropout=0.1))
    p1 = {id(p) for p in model.stage_parameters(1)}
    p2 = {id(p) for p in model.stage_parameters(2)}
    assert not p1 & p2 and p1 | p2 == {id(p) for p in model.parameters()}
    model.set_stage(2)
    model.train()
    assert model.fuse.training and not model.experts.training and not model.audio_encoder.training
    assert all(p.requires_grad == (id(p) in p2) for p in model.parameters())
    model.set_stage(1)
    model.train()
    assert model.experts.training and model.audio_encoder.training
    assert not any(p.requires_grad for p in model.fuse.parameters())
