"""UGM cosine schedule and lowest-probability masking, RM, and the masked training inputs."""

from __future__ import annotations

import math

import pytest
import torch

from livegesture.model import MaskingConfig, masked_inputs, region_token_mask, shift_right, ugm_token_mask

from ._util import audio_for, tiny_model


def test_cosine_ratio_follows_definition():
    cfg = MaskingConfig(max_ratio=0.4, ramp_steps=1000)
    for s in (0, 1, 10, 250, 500, 999, 1000, 1001, 10**6):
        expected = 0.4 * (1 - math.cos(math.pi * min(s / 1000, 1))) / 2
        assert cfg.ratio(s) == pytest.approx(expected, abs=1e-15)
    assert cfg.ratio(0) == 0 and cfg.ratio(500) == pytest.approx(0.2) and cfg.ratio(5000) == pytest.approx(0.4)
    ratios = [cfg.ratio(s) for s in range(0, 1200, 7)]
    assert all(a <= b for a, b in zip(ratios, ratios[1:]))  # monotone ramp
    for s, T in ((0, 16), (300, 16), (500, 16), (1000, 16), (1000, 33), (800, 7)):
        assert cfg.num_masked(s, T) == min(math.floor(cfg.ratio(s) * T + 1e-9), T - 1)
    assert MaskingConfig(max_ratio=1.0, ramp_steps=0).num_masked(0, 8) == 7  # never more than the history
    assert MaskingConfig(ramp_steps=0).ratio(0) == MaskingConfig().max_ratio


def test_ugm_masks_exactly_the_lowest_history_tokens():
    g = torch.Generator().manual_seed(0)
    probs = torch.rand(3, 4, 12, generator=g, dtype=torch.float64)
    probs[0, 0, -1] = -1.0  # the last token is the lowest but never an input: must not be chosen
    for k in (0, 1, 5, 11, 20):
        mask = ugm_token_mask(probs, k)
        kk = min(k, 11)
        assert mask.shape == probs.shape and not mask[..., -1].any()
        assert (mask.sum(-1) == kk).all()
        if 0 < kk < 11:
            hist = probs[..., :-1]
            worst_masked = torch.where(mask[..., :-1], hist, torch.full_like(hist, -math.inf)).amax(-1)
            best_unmasked = torch.where(mask[..., :-1], torch.full_like(hist, math.inf), hist).amin(-1)
            assert (worst_masked <= best_unmasked).all()
    ties = torch.tensor([[0.5, 0.1, 0.1, 0.1, 0.9]])
    assert ugm_token_mask(ties, 2).tolist() == [[False, True, True, False, False]]  # earlier first on ties


def test_region_mask_one_whole_region():
    g = torch.Generator().manual_seed(0)
    m = region_token_mask(400, 4, 10, 0.3, generator=g)
    per_seq = m.flatten(1).any(1)
    assert 0.2 < per_seq.float().mean() < 0.4
    for b in torch.nonzero(per_seq).flatten().tolist():
        rows = m[b].any(-1)
        assert int(rows.sum()) == 1  # exactly one region
        r = int(rows.nonzero())
        assert m[b, r, :-1].all() and not m[b, r, -1]  # its whole history
    assert set(m.flatten(1).any(1).nonzero().flatten().tolist()) == set(per_seq.nonzero().flatten().tolist())
    assert not region_token_mask(10, 4, 10, 0.0).any() and region_token_mask(10, 4, 10, 1.0).flatten(1).any(1).all()


def test_masked_inputs_keep_bos_and_targets():
    tokens = torch.arange(12).view(1, 2, 6)
    mask = torch.zeros(1, 2, 6, dtype=torch.bool)
    mask[0, 0, 2] = mask[0, 1, 5] = mask[0, 1, 0] = True
    inp = masked_inputs(tokens, mask, bos_id=100, mask_id=101)
    assert inp.tolist() == [[[100, 0, 1, 101, 3, 4], [100, 101, 7, 8, 9, 10]]]
    assert tokens.tolist() == torch.arange(12).view(1, 2, 6).tolist()  # targets untouched
    assert torch.equal(masked_inputs(tokens, torch.zeros_like(mask), 100, 101), shift_right(tokens, 100))


def test_loss_masks_lowest_probability_inputs(monkeypatch):
    """In `loss`, UGM uses the model's own no-grad teacher-forced probabilities; targets stay clean."""
    model = tiny_model(cond_drop_prob=0.0)
    model.masking = MaskingConfig(max_ratio=0.5, ramp_steps=100, region_prob=0.0)
    model.train()
    T = 8
    g = torch.Generator().manual_seed(0)
    batch = {"tokens": torch.randint(model.codebook_size, (2, 4, T), generator=g), "audio": audio_for(T, 2)}
    seen = {}
    orig = model.teacher_forced

    def spy(tokens, *a, **kw):
        out = orig(tokens, *a, **kw)
        if kw.get("inputs") is None:
            seen["clean"] = out["fused"].detach()
        else:
            seen["inputs"], seen["targets"] = kw["inputs"], tokens
        return out

    monkeypatch.setattr(model, "teacher_forced", spy)
    _, metrics = model.loss(batch, step=100)
    n = model.masking.num_masked(100, T)
    assert n == 4
    tokens = batch["tokens"]
    assert torch.equal(seen["targets"], tokens)
    logp = seen["clean"].log_softmax(-1).gather(-1, tokens[..., None]).squeeze(-1)
    expect = masked_inputs(tokens, ugm_token_mask(logp, n), model.bos_id, model.mask_id)
    assert torch.equal(seen["inputs"], expect)
    assert metrics["masked_frac"] == pytest.approx(n / T)
    model.eval()
    seen.clear()
    model.loss(batch, step=100)  # no masking outside training
    assert "clean" not in seen and torch.equal(seen["inputs"], shift_right(tokens, model.bos_id))
