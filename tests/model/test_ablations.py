"""The paper's ablation rows, one config switch each: without temporal attention, without spatial
attention, without PILOR, without UGM masking, without text cues. Each removes exactly its part
(parameter names and counts; every other part computes the same outputs from the same weights),
trains, and still streams equal to offline."""

from __future__ import annotations

import dataclasses
import re

import pytest
import torch

from livegesture.config import from_dict, to_dict
from livegesture.model import LiveGestureModel, MaskingConfig, SamplingConfig, shift_right
from livegesture.train.config import ExperimentConfig, load_experiment

from ._util import DT, audio_for, randomize_pilor, tiny_config

B, T, VOCAB = 2, 10, 12
FULL = dict(text_vocab_size=VOCAB)  # the full model has every part, text cues included
#: switch name -> (model overrides, masking overrides, regex of the parameter names it removes)
SWITCHES = {
    "no_temporal": ({"fuse_temporal": False}, {}, r"fuse\.blocks\.\d+\.(norm_time|temporal)\."),
    "no_spatial": ({"fuse_spatial": False}, {}, r"fuse\.blocks\.\d+\.(norm_space|spatial)\."),
    "no_pilor": ({"pilor": False}, {}, r"fuse\.pilor\."),
    "no_ugm": ({}, {"ugm": False}, None),
    "no_text": ({"text_vocab_size": 0}, {}, r"audio_encoder\.word_emb\."),
}
#: the experiment-config key a user sets for each row (docs/reproduce.md)
CONFIG_KEYS = {"no_temporal": "model.fuse_temporal", "no_spatial": "model.fuse_spatial", "no_pilor": "model.pilor",
               "no_ugm": "masking.ugm", "no_text": "data.use_text"}


def build(switch: str | None, seed: int = 0, **masking) -> LiveGestureModel:
    model_kw, mask_kw, _ = SWITCHES[switch] if switch else ({}, {}, None)
    torch.manual_seed(seed)
    m = LiveGestureModel(tiny_config(**{**FULL, **model_kw}), MaskingConfig(**{**mask_kw, **masking}))
    return m.to(DT).eval()


def pair(switch: str) -> tuple[LiveGestureModel, LiveGestureModel]:
    """The full model (PILOR randomised so that it matters) and the ablated one holding the same
    weights for every part they share."""
    full = build(None)
    randomize_pilor(full)
    abl = build(switch, seed=1)
    missing, unexpected = abl.load_state_dict(full.state_dict(), strict=False)
    assert missing == []
    pattern = SWITCHES[switch][2]
    assert all(re.match(pattern, k) for k in unexpected) if pattern else unexpected == []
    return full, abl


def inputs(seed: int = 3):
    g = torch.Generator().manual_seed(seed)
    tokens = torch.randint(16, (B, 4, T), generator=g)
    words = torch.randint(0, VOCAB, (B, 4 * T), generator=g)
    return tokens, audio_for(T, B, seed), words


@pytest.mark.parametrize("switch", SWITCHES)
def test_the_switch_removes_exactly_its_parameters(switch: str) -> None:
    full, abl = build(None), build(switch)
    fp, ap = dict(full.named_parameters()), dict(abl.named_parameters())
    removed = set(fp) - set(ap)
    assert set(ap) <= set(fp), "an ablation adds no parameter"
    assert all(ap[k].shape == fp[k].shape for k in ap)
    pattern = SWITCHES[switch][2]
    if pattern is None:
        assert removed == set()
    else:
        assert removed and removed == {k for k in fp if re.match(pattern, k)}
    assert sum(p.numel() for p in fp.values()) - sum(p.numel() for p in ap.values()) == \
        sum(fp[k].numel() for k in removed)


@torch.no_grad()
@pytest.mark.parametrize("switch", [s for s in SWITCHES if s != "no_ugm"])
def test_the_other_parts_compute_the_same(switch: str) -> None:
    full, abl = pair(switch)
    tokens, audio, words = inputs()
    w = None if switch == "no_text" else words
    fa, fb = full.audio_features(audio, w), abl.audio_features(audio, w)
    assert torch.equal(fa, fb)  # audio encoder (without the words for the text ablation)
    x = shift_right(tokens, full.bos_id)
    for i, r in enumerate(full.regions):  # every expert, hidden states and logits
        ha = full.experts[r].step(x[:, i], full.experts[r].init_state(B, dtype=DT), fa)
        hb = abl.experts[r].step(x[:, i], abl.experts[r].init_state(B, dtype=DT), fb)
        assert torch.equal(ha, hb)
        assert torch.equal(full.experts[r].head(ha), abl.experts[r].head(hb))
    oa, ob = full.teacher_forced(tokens, feats=fa), abl.teacher_forced(tokens, feats=fb)
    if switch == "no_text":
        assert torch.equal(oa["fused"], ob["fused"]) and torch.equal(oa["local"], ob["local"])
        assert not torch.allclose(full.audio_features(audio, words), fa)  # with words the full model differs
    else:
        assert not torch.allclose(oa["fused"], ob["fused"], atol=1e-6)  # the removed part mattered
        if switch == "no_pilor":
            assert not torch.allclose(oa["local"], ob["local"], atol=1e-6)
        else:
            assert torch.equal(oa["local"], ob["local"])  # PILOR and the local heads untouched


def test_without_ugm_only_region_masking_is_left() -> None:
    tokens, audio, _ = inputs()
    batch = {"tokens": tokens, "audio": audio}
    for region_prob in (0.0, 0.9):
        m_full = build(None, ramp_steps=10, region_prob=region_prob).train()
        m_abl = build("no_ugm", ramp_steps=10, region_prob=region_prob).train()
        late, early = [m_full.loss(batch, step=s, generator=torch.Generator().manual_seed(5))[1]
                       for s in (100, 0)]
        abl = m_abl.loss(batch, step=100, generator=torch.Generator().manual_seed(5))[1]
        assert m_abl.masking.num_masked(100, T) == 0 < m_full.masking.num_masked(100, T)
        assert abl["masked_frac"] == pytest.approx(early["masked_frac"])  # RM alone, the same draws
        assert late["masked_frac"] > abl["masked_frac"]
        if region_prob == 0:
            assert abl["masked_frac"] == 0.0


@pytest.mark.parametrize("switch", SWITCHES)
def test_the_ablated_model_trains(switch: str) -> None:
    m = build(switch, ramp_steps=4)
    tokens, audio, words = inputs()
    batch = {"tokens": tokens, "audio": audio, "words": words}
    for stage in (1, 2):
        m.set_stage(stage)
        m.train()
        params = [p for p in m.parameters() if p.requires_grad]
        before = [p.detach().clone() for p in params]
        opt = torch.optim.Adam(params, lr=1e-2)
        losses = []
        for step in range(3):
            loss, _ = m(batch, stage=stage, step=step + 4, generator=torch.Generator().manual_seed(step))
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
        assert all(torch.isfinite(torch.tensor(losses)))
        moved = [not torch.equal(a, p) for a, p in zip(before, params)
                 if p.grad is not None and p.grad.abs().sum() > 0]  # (MASK / null vectors unused in a batch: no grad)
        assert len(moved) > 0.8 * len(params) and all(moved)


@torch.no_grad()
@pytest.mark.parametrize("sizes", [[1] * T, [3, 1, 0, 4, 2]], ids=["ones", "ragged"])
@pytest.mark.parametrize("switch", SWITCHES)
def test_the_ablated_model_streams_equal_to_offline(switch: str, sizes: list[int]) -> None:
    m = build(switch)
    randomize_pilor(m) if m.fuse.pilor is not None else None
    tokens, audio, words = inputs()
    feats = m.audio_features(audio, words if m.config.text_vocab_size else None)
    ref = m.teacher_forced(tokens, feats=feats)
    state, x, tau, out = m.init_state(B), shift_right(tokens, m.bos_id), 0, []
    for n in sizes:
        out.append(m.step(state, feats[:, 4 * tau:4 * (tau + n)], x[:, :, tau:tau + n]))
        tau += n
    assert (torch.cat(out, 2) - ref["fused"]).abs().max() <= 1e-9
    # and whole-clip generation is the token-by-token streaming loop (same tokens)
    sampling = SamplingConfig(temperature=0.9, top_p=0.95)
    a = m.generate_tokens(audio, seed=4, sampling=sampling)
    assert torch.equal(a, m.generate_tokens(audio, seed=4, sampling=sampling)) and a.shape == (B, 4, T)


@pytest.mark.parametrize("switch", SWITCHES)
def test_one_config_key_per_row(switch: str) -> None:
    key = CONFIG_KEYS[switch]
    cfg = load_experiment("demo", {key: False})
    section, name = key.split(".")
    assert getattr(getattr(cfg, section), name) is False
    assert dataclasses.replace(cfg) == from_dict(ExperimentConfig, to_dict(cfg))  # survives a model file
