"""Grouped streaming decode of the 4 region tokenizers equals decoding each region alone."""

from __future__ import annotations

import pytest
import torch

from livegesture.body.constants import REGION_DIMS, REGIONS
from livegesture.tokenizer import MotionTokenizer
from livegesture.tokenizer.config import TokenizerConfig
from livegesture.tokenizer.grouped import GroupedDecoder


@torch.no_grad()
@pytest.mark.parametrize("sizes", [[1] * 6, [6], [2, 0, 3, 1]], ids=["ones", "whole", "ragged"])
def test_grouped_decode_equals_per_region(sizes):
    torch.manual_seed(0)
    tok = MotionTokenizer(TokenizerConfig(hidden=16, latent_dim=8, code_dim=4, codebook_size=10)).double().eval()
    for p in tok.parameters():  # zero-initialised layers (post's last) get values too
        p.add_(0.1 * torch.randn_like(p))
    B = 2
    ids = torch.randint(10, (B, 4, sum(sizes)), generator=torch.Generator().manual_seed(1))
    gd = GroupedDecoder(tok)
    gstate = gd.init_state(B)
    states = {r: tok[r].init_decode_state(B) for r in REGIONS}
    t = 0
    for n in sizes:
        got = gd.decode(ids[:, :, t:t + n], gstate)
        for i, r in enumerate(REGIONS):
            ref = tok[r].decode(ids[:, i, t:t + n], states[r])
            assert got[i].shape == (B, 4 * n, REGION_DIMS[r])
            assert torch.allclose(got[i], ref, atol=1e-10, rtol=0), r
        t += n


@torch.no_grad()
@pytest.mark.skipif(not hasattr(torch, "_weight_int8pack_mm"), reason="this torch has no int8 kernel")
def test_int8_grouped_decode_is_close_to_float32():
    """``set_precision("int8")``: every product of the decoders in weight-only int8 (docs/design.md §6):
    not the float32 frames, but within a few per cent of their spread; back to float32 is exact again."""
    torch.manual_seed(0)
    tok = MotionTokenizer(TokenizerConfig(hidden=32, latent_dim=16, code_dim=8, codebook_size=12)).eval()
    for p in tok.parameters():
        p.add_(0.1 * torch.randn_like(p))
    ids = torch.randint(12, (2, 4, 8), generator=torch.Generator().manual_seed(1))
    gd = GroupedDecoder(tok)

    def frames():
        st = gd.init_state(2)
        return [torch.cat(v, dim=1) for v in zip(*(gd.decode(ids[:, :, t:t + 1], st) for t in range(8)))]

    ref = frames()
    gd.set_precision("int8")
    got = frames()
    gd.set_precision("float32")
    again = frames()
    for r, a, b, c in zip(REGIONS, ref, got, again):
        assert not torch.equal(a, b), r
        assert float((a - b).abs().max()) < 0.05 * float(a.std()) + 1e-6, r
        assert torch.equal(a, c), r
