"""Config presets and validation; stage-1 loss bookkeeping; forward dispatch."""

from __future__ import annotations

import pytest
import torch

from livegesture.config import from_dict, to_dict
from livegesture.errors import ConfigError
from livegesture.model import LiveGestureModel, ModelConfig, SamplingConfig

from ._util import audio_for, tiny_model


def test_presets():
    d, b = ModelConfig.demo(), ModelConfig.base()
    assert (d.dim, d.heads, d.expert_blocks, d.fuse_blocks, d.codebook_size, d.window_tokens, d.audio.dim) == \
        (128, 4, 2, 2, 256, 32, 128)
    assert (b.dim, b.heads, b.expert_blocks, b.fuse_blocks, b.codebook_size, b.window_tokens) == (256, 4, 4, 4, 512, 32)
    assert b.audio_window_frames == 128 and 0 < b.cond_drop_prob <= 0.2 and b.lambda_local == 0.3
    assert ModelConfig.demo(text_vocab_size=50).audio.vocab_size == 50  # the encoder follows the model's vocab


def test_config_roundtrip_and_validation():
    cfg = ModelConfig.demo(dropout=0.2)
    assert from_dict(ModelConfig, to_dict(cfg)) == cfg
    with pytest.raises(ConfigError):
        from_dict(ModelConfig, {"dims": 3})
    with pytest.raises(ValueError):
        ModelConfig(dim=30, heads=4)
    with pytest.raises(ValueError):
        ModelConfig(cond_drop_prob=1.0)
    with pytest.raises(ValueError):
        SamplingConfig(top_p=0.0)
    assert not SamplingConfig(guidance_scale=1.0).guided and SamplingConfig(temperature=0).is_greedy


@torch.no_grad()
def test_experts_loss_is_mean_of_independent_losses():
    model = tiny_model()
    g = torch.Generator().manual_seed(0)
    batch = {"tokens": torch.randint(model.codebook_size, (2, 4, 6), generator=g), "audio": audio_for(6, 2)}
    each = [model.expert_loss(r, batch)[0] for r in model.regions]
    both, metrics = model(batch, stage=1)
    assert torch.allclose(both, torch.stack(each).mean(), atol=1e-12)
    assert set(metrics) == {"loss", *(f"ce_{r}" for r in model.regions)}
    # an expert's loss only depends on its own region's tokens
    t2 = batch["tokens"].clone()
    t2[:, 1:] = (t2[:, 1:] + 1) % model.codebook_size
    assert torch.equal(model.expert_loss("upper", {**batch, "tokens": t2})[0], each[0])
    single = model.expert_loss("upper", {**batch, "tokens": batch["tokens"][:, 0]})[0]
    assert torch.equal(single, each[0])
    loss2, m2 = model(batch, stage=2)
    assert set(m2) >= {"loss", "ce_local", "ce_fuse"}
    assert loss2 == pytest.approx(0.3 * m2["ce_local"] + m2["ce_fuse"], rel=1e-6)
    with pytest.raises(ValueError):
        model(batch, stage=3)


def test_audio_context_frames_are_dropped():
    model = tiny_model()
    a = audio_for(3 + 6, 2)  # 12 context frames (3 tokens) + 6 tokens
    with torch.no_grad():
        full = model.audio_features(a)
        win = model.audio_features(a, context_frames=12)
    assert win.shape[1] == 24 and torch.equal(win, full[:, 12:])


def test_gradients_reach_stage_parameters():
    model = LiveGestureModel(tiny_model().config)
    g = torch.Generator().manual_seed(0)
    batch = {"tokens": torch.randint(model.codebook_size, (2, 4, 6), generator=g), "audio": audio_for(6, 2)}
    for stage in (1, 2):
        model.set_stage(stage)
        model.train()
        model.zero_grad(set_to_none=True)
        model(batch, stage=stage, step=10**6)[0].backward()
        trained = model.stage_parameters(stage)
        assert all(p.grad is not None for p in trained if p is not model.null_audio)
        assert all(p.grad is None for p in model.parameters() if not p.requires_grad)


def test_window_dataset_batch_through_tokenizers_and_losses():
    """The training data path: WindowDataset batch -> tokenizers' encode -> stage-1 and stage-2 losses."""
    import numpy as np
    from torch.utils.data import DataLoader

    from livegesture.data import ClipData, WindowDataset, synthetic_motion
    from livegesture.model import batch_tokens
    from livegesture.tokenizer import MotionTokenizer, TokenizerConfig

    rng = np.random.default_rng(0)
    clip = ClipData("2_a_0_1_1", synthetic_motion(100, seed=0),
                    rng.uniform(-0.1, 0.1, round(100 * 16000 / 30)).astype(np.float32), None)
    ds = WindowDataset([clip], window_frames=32, stride_frames=12, audio_context_frames=12)
    batch = next(iter(DataLoader(ds, batch_size=3, collate_fn=ds.collate)))
    torch.manual_seed(0)
    tok = MotionTokenizer(TokenizerConfig(hidden=16, latent_dim=8, code_dim=4, codebook_size=16,
                                          encoder_blocks=1, decoder_blocks=1)).eval()
    tokens = batch_tokens(tok, batch)
    assert tokens.shape == (3, 4, 8) and tokens.dtype == torch.long
    model = LiveGestureModel(tiny_model().config).float()
    model.train()
    b = {"tokens": tokens, "audio": batch["audio"], "audio_context_frames": 12}
    l1, _ = model(b, stage=1)
    l2, _ = model(b, stage=2, step=1000)
    assert torch.isfinite(l1) and torch.isfinite(l2)
    with pytest.raises(ValueError, match="context"):  # context frames not declared: misaligned, refused
        model({"tokens": tokens, "audio": batch["audio"]}, stage=1)


def test_audio_corruption_and_label_smoothing_act_in_training_only():
    tokens = torch.randint(0, 16, (3, 4, 6), generator=torch.Generator().manual_seed(0))
    batch = {"tokens": tokens, "audio": audio_for(6, 3)}
    plain = tiny_model(cond_drop_prob=0.0)
    reg = tiny_model(audio_feat_dropout=0.5, audio_noise_std=1.0, label_smoothing=0.2, cond_drop_prob=0.0,
                     audio_gain_db=6.0)
    with torch.no_grad():  # eval: identical weights give identical losses (nothing corrupted, no smoothing)
        assert torch.equal(plain.experts_loss(batch)[0], reg.experts_loss(batch)[0])
        assert torch.equal(plain.loss(batch)[0], reg.loss(batch)[0])
        plain.train(), reg.train()
        g = lambda: torch.Generator().manual_seed(3)  # noqa: E731
        feats = reg.audio_features(batch["audio"])
        corrupted = reg._corrupt_audio(feats, g())
        dropped = (corrupted - feats).abs() > 0
        assert 0.9 < float(dropped.double().mean()) <= 1.0  # noise touches every element
        assert not torch.equal(plain.experts_loss(batch, generator=g())[0], reg.experts_loss(batch, generator=g())[0])
    for bad in ({"audio_feat_dropout": 1.0}, {"label_smoothing": -0.1}, {"audio_noise_std": -1.0},
                {"audio_gain_db": -3.0}):
        with pytest.raises(ValueError):
            tiny_model(**bad)


def test_pair_head_factorises_the_token_distribution():
    from livegesture.model.layers import PairHead

    head = PairHead(8, 36)
    x = torch.randn(3, 5, 8)
    logits = head(x)
    assert logits.shape == (3, 5, 36)
    a, b = head.first(x), head.second(x)
    assert torch.allclose(logits[..., 2 * 6 + 5], a[..., 2] + b[..., 5])
    p = logits.softmax(-1).view(3, 5, 6, 6)
    torch.testing.assert_close(p, a.softmax(-1)[..., :, None] * b.softmax(-1)[..., None, :])
    model = tiny_model(pair_head_regions=("hands",))
    assert isinstance(model.experts["hands"].head, PairHead)
    assert isinstance(model.fuse.classifiers[1], PairHead) and isinstance(model.fuse.classifiers[0], torch.nn.Linear)
    with pytest.raises(ValueError, match="square"):
        tiny_model(codebook_size=32, pair_head_regions=("hands",))
    from livegesture.train.config import load_experiment

    with pytest.raises(ConfigError, match="need pair codebooks"):
        load_experiment("demo", {"tokenizer.codebook_size": 529, "model.codebook_size": 529,
                                 "tokenizer.pair_regions": ["upper"], "model.pair_head_regions": ["hands"]})


@torch.no_grad()
def test_audio_gain_augmentation_scales_each_window_in_training_only():
    batch = {"tokens": torch.zeros(3, 4, 6, dtype=torch.long), "audio": audio_for(6, 3)}
    model = tiny_model(audio_gain_db=10.0, cond_drop_prob=0.0)
    feats_eval, _ = model._condition(batch, torch.Generator().manual_seed(0))
    assert torch.equal(feats_eval, model.audio_features(batch["audio"]))  # eval: the audio as given
    model.train()
    g = torch.Generator().manual_seed(0)
    db = (2 * torch.rand(3, 1, generator=g) - 1) * 10.0  # the draw _condition makes first
    model.eval()
    want = model.audio_features(batch["audio"] * torch.pow(10.0, db / 20))
    model.train()
    model.audio_encoder.eval()  # no dropout, so that only the gain differs
    got, _ = model._condition(batch, torch.Generator().manual_seed(0))
    assert float(db.max() - db.min()) > 1.0  # a different gain per window
    torch.testing.assert_close(got, want)


def test_pair_embedding_shares_sub_code_vectors():
    from livegesture.model.layers import PairEmbedding

    emb = PairEmbedding(36, 8)
    ids = torch.tensor([[0, 5, 6 * 2 + 5, 35, 36]])
    out = emb(ids)
    assert out.shape == (1, 5, 8)
    torch.testing.assert_close(out[0, 2], emb.first[2] + emb.second[5])
    torch.testing.assert_close(out[0, 4], emb.bos)  # id K is BOS
    torch.testing.assert_close(emb(torch.arange(37)), emb.weight)  # the full table agrees
    with pytest.raises(ValueError, match="square"):
        PairEmbedding(32, 8)
    model = tiny_model(pair_head_regions=("hands",), pair_embedding=True)
    assert isinstance(model.experts["hands"].tok_emb, PairEmbedding)
    assert isinstance(model.experts["upper"].tok_emb, torch.nn.Embedding)  # linear-head regions keep a table
    assert isinstance(tiny_model(pair_head_regions=("hands",)).experts["hands"].tok_emb, torch.nn.Embedding)
    # one gradient step on a token moves every token that shares a sub-code with it
    model.train()
    e = model.experts["hands"].tok_emb
    before = e.weight.detach().clone()
    e(torch.tensor([2 * 4 + 1])).sum().backward()
    with torch.no_grad():
        for p in e.parameters():
            if p.grad is not None:
                p -= p.grad
    moved = (e.weight.detach() - before).abs().sum(-1) > 0
    assert moved.view(-1)[:16].view(4, 4)[2].all() and moved.view(-1)[:16].view(4, 4)[:, 1].all()
    assert not moved[0] and not moved[16]  # (0, 0) shares nothing with (2, 1); BOS is its own
