import numpy as np
import pytest
import torch

from livegesture.body.constants import REGION_DIMS, REGIONS
from livegesture.streaming import state_clone, state_copy_, state_nbytes
from livegesture.tokenizer import RegionTokenizer, TokenizerConfig

CFG = TokenizerConfig(hidden=32, latent_dim=16, code_dim=8, codebook_size=32, decoder_blocks=3)

SCHEDULES = {
    "ones": lambda n, rng: [1] * n,
    "ragged": lambda n, rng: _ragged(n, rng),
    "whole": lambda n, rng: [n],
    "with_zeros": lambda n, rng: [0, 2, 0, 1, n - 3, 0],
}


def _ragged(n, rng):
    out = []
    while sum(out) < n:
        out.append(int(min(rng.integers(0, 5), n - sum(out))))
    return out


def _tok(region: str, seed: int = 0) -> RegionTokenizer:
    torch.manual_seed(seed)
    return RegionTokenizer(region, CFG).double().eval()


@pytest.mark.parametrize("region", REGIONS)
@pytest.mark.parametrize("schedule", SCHEDULES)
def test_streamed_decode_equals_offline(region, schedule):
    tok = _tok(region)
    rng = np.random.default_rng(1)
    ids = torch.as_tensor(rng.integers(0, CFG.codebook_size, (3, 15)))
    with torch.no_grad():
        offline = tok.decode(ids)
        state = tok.init_decode_state(3, dtype=torch.float64)
        parts, pos = [], 0
        for n in SCHEDULES[schedule](15, rng):
            parts.append(tok.decode(ids[:, pos:pos + n], state))
            pos += n
    assert offline.shape == (3, 60, REGION_DIMS[region])
    assert (torch.cat(parts, 1) - offline).abs().max() <= 1e-10


@pytest.mark.parametrize("tau", [0, 3, 9])
def test_decoder_is_causal_in_tokens(tau):
    """Frame 4*tau+k depends on tokens <= tau only."""
    tok = _tok("upper")
    ids = torch.randint(0, CFG.codebook_size, (2, 12), generator=torch.Generator().manual_seed(0))
    changed = ids.clone()
    changed[:, tau + 1:] = (changed[:, tau + 1:] + 7) % CFG.codebook_size
    with torch.no_grad():
        a, b = tok.decode(ids), tok.decode(changed)
    assert torch.equal(a[:, : 4 * tau + 4], b[:, : 4 * tau + 4])
    if tau + 1 < 12:
        assert not torch.equal(a[:, 4 * tau + 4:], b[:, 4 * tau + 4:])


def test_decoder_state_save_restore_and_constant_memory():
    tok = _tok("hands")
    ids = torch.randint(0, CFG.codebook_size, (1, 400))
    with torch.no_grad():
        state = tok.init_decode_state(1, dtype=torch.float64)
        size0 = state_nbytes(state)
        tok.decode(ids[:, :200], state)
        saved = state_clone(state)
        a = tok.decode(ids[:, 200:], state)
        state_copy_(state, saved)
        b = tok.decode(ids[:, 200:], state)
        assert state_nbytes(state) == size0
    assert torch.equal(a, b)


def _smooth_batch(region: str, n: int = 8, t: int = 64, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    freq = torch.rand(1, 1, REGION_DIMS[region], generator=g) * 0.3
    phase = torch.rand(n, 1, REGION_DIMS[region], generator=g) * 6.28
    time = torch.arange(t, dtype=torch.float32)[None, :, None]
    return torch.sin(time * freq + phase)


def test_both_stages_learn():
    torch.manual_seed(0)
    tok = RegionTokenizer("upper", CFG)
    x = _smooth_batch("upper")
    opt = torch.optim.Adam(tok.stage1_parameters(), lr=3e-3)
    losses = []
    for _ in range(150):
        loss, _ = tok.stage1_loss(x)
        opt.zero_grad(); loss.backward(); opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.5 * losses[0]
    tok.freeze_autoencoder()
    frozen = [p.detach().clone() for p in tok.stage1_parameters()]
    tok.init_stage2(x)
    opt2 = torch.optim.Adam(tok.stage2_parameters(), lr=1e-3)
    logs = []
    for _ in range(100):
        loss, log = tok.stage2_loss(x)
        opt2.zero_grad(); loss.backward(); opt2.step()
        logs.append(log)
    assert logs[-1]["rec_l1"] < logs[0]["rec_l1"]
    assert logs[-1]["codes_used"] > 0.2
    # run-time path (ids -> streaming decoder) reproduces the training path
    tok.eval()
    with torch.no_grad():
        ids = tok.encode(x)
        _, latent, _ = tok.quantize(x)
        torch.testing.assert_close(tok.decode(ids), tok.decoder(latent))
    # stage 2 leaves the stage-1 encoder and decoder untouched
    assert all(torch.equal(a, b) for a, b in zip(frozen, tok.stage1_parameters()))


def test_boundary_loss_sees_jumps_at_token_boundaries_only():
    from livegesture.tokenizer.svq import boundary_loss

    t = torch.linspace(0, 1, 32)[None, :, None].repeat(2, 1, 3)
    assert float(boundary_loss(t, t)) == 0.0
    at, inside = t.clone(), t.clone()
    at[:, 8:] += 0.5       # a jump from frame 7 to 8: a token boundary
    inside[:, 6:] += 0.5   # from frame 5 to 6: inside a token
    assert float(boundary_loss(at, t)) > 0.0
    assert float(boundary_loss(inside, t)) < 1e-6  # float rounding of the shifted values only
