"""Pair codebooks (residual / product): one token id from two sqrt(K)-code books."""

import numpy as np
import pytest
import torch

from livegesture.tokenizer import RegionTokenizer, TokenizerConfig
from livegesture.tokenizer.quantizer import EMAQuantizer, PairQuantizer

KINDS = ("residual", "product")


def _cfg(kind: str) -> TokenizerConfig:
    return TokenizerConfig(hidden=32, latent_dim=16, code_dim=8, codebook_size=36, decoder_blocks=3,
                           pair_regions=("hands",), pair_kind=kind)


@pytest.mark.parametrize("kind", KINDS)
def test_ids_cover_k_and_lookup_matches_the_definition(kind):
    torch.manual_seed(0)
    q = PairQuantizer(36, 8, kind)
    q.init_codes(torch.randn(500, 8), torch.Generator().manual_seed(0))
    z = torch.randn(7, 5, 8)
    ids = q.nearest(z)
    assert ids.shape == (7, 5) and int(ids.min()) >= 0 and int(ids.max()) < 36
    i, j = ids // 6, ids % 6
    a, b = q.first.codebook, q.second.codebook
    want = torch.cat([a[i], b[j]], -1) if kind == "product" else a[i] + b[j]
    assert torch.equal(q.lookup(ids), want)
    if kind == "product":  # each half is its own nearest code
        assert torch.equal(i, q.first.nearest(z[..., :4])) and torch.equal(j, q.second.nearest(z[..., 4:]))
    else:  # the second code is the nearest to what the first one left
        assert torch.equal(j, q.second.nearest(z - a[i]))


def test_residual_pair_beats_its_first_book_alone():
    torch.manual_seed(1)
    x = torch.randn(2000, 8)
    q = PairQuantizer(64, 8, "residual")
    q.init_codes(x, torch.Generator().manual_seed(0))
    err_pair = (q.lookup(q.nearest(x)) - x).pow(2).sum(1).mean()
    err_first = (q.first.lookup(q.first.nearest(x)) - x).pow(2).sum(1).mean()
    assert err_pair < 0.8 * err_first


def test_pair_needs_a_square_codebook_and_known_regions():
    with pytest.raises(ValueError, match="square"):
        TokenizerConfig(codebook_size=512, pair_regions=("hands",))
    with pytest.raises(ValueError, match="unknown region"):
        TokenizerConfig(codebook_size=529, pair_regions=("tail",))
    with pytest.raises(ValueError, match="even code_dim"):
        PairQuantizer(16, 7, "product")


@pytest.mark.parametrize("kind", KINDS)
def test_pair_region_streams_like_offline_and_others_stay_flat(kind):
    torch.manual_seed(0)
    tok = RegionTokenizer("hands", _cfg(kind)).double().eval()
    assert isinstance(tok.quantizer, PairQuantizer)
    assert isinstance(RegionTokenizer("upper", _cfg(kind)).quantizer, EMAQuantizer)
    rng = np.random.default_rng(0)
    ids = torch.as_tensor(rng.integers(0, 36, (2, 13)))
    with torch.no_grad():
        offline = tok.decode(ids)
        state = tok.init_decode_state(2, dtype=torch.float64)
        parts = [tok.decode(ids[:, p:p + n], state) for p, n in ((0, 1), (1, 0), (1, 5), (6, 7))]
    assert (torch.cat(parts, 1) - offline).abs().max() <= 1e-10


@pytest.mark.parametrize("kind", KINDS)
def test_pair_stage2_trains_and_uses_both_books(kind):
    torch.manual_seed(0)
    tok = RegionTokenizer("hands", _cfg(kind))
    x = torch.randn(16, 32, tok.dim)
    tok.set_stage(1)
    tok.init_stage2(x)
    tok.set_stage(2)
    opt = torch.optim.Adam([p for p in tok.parameters() if p.requires_grad], lr=3e-3)
    tok.train()
    first = None
    for _ in range(40):
        loss, logs = tok.stage2_loss(x)
        opt.zero_grad()
        loss.backward()
        opt.step()
        first = first if first is not None else float(loss.detach())
    assert float(loss.detach()) < first
    ids = tok.encode(x)
    assert len(torch.unique(ids // 6)) > 1 and len(torch.unique(ids % 6)) > 1
