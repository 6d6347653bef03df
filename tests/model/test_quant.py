"""Weight-only int8 products (livegesture/model/quant.py): rows independent of their company (so the
engine's front ends stay bit-identical in int8 too), rounding within half a step, the int8 step close
to float32, and float32 untouched by it (docs/design.md §6)."""

from __future__ import annotations

import pytest
import torch

from livegesture.errors import LiveGestureError
from livegesture.model.quant import int8_available, int8_rows_independent, quantize_linear

from ._util import audio_for, randomize_pilor, tiny_model

pytestmark = pytest.mark.skipif(not int8_available(), reason="this torch has no torch._weight_int8pack_mm")


@pytest.mark.parametrize("shape", [(64, 32), (96, 256), (512, 64), (48, 24)])
def test_int8_rows_do_not_depend_on_the_other_rows(shape):
    """Bit for bit where the probe says this CPU's kernel is row-wise (the AVX2 kernel is); otherwise
    (a kernel that switches code path with the row count) to bfloat16 rounding."""
    out, inp = shape
    g = torch.Generator().manual_seed(0)
    lin = quantize_linear(torch.randn(out, inp, generator=g))
    row = torch.randn(1, inp, generator=g)
    alone = lin(row)[0]
    for m in (1, 2, 3, 4, 5, 8, 13):
        company = torch.randn(m, inp, generator=g)
        for at in (0, m):
            x = torch.cat([company[:at], row, company[at:]])
            if int8_rows_independent():
                assert torch.equal(lin(x)[at], alone), f"{m} other rows, row at {at}"
            else:
                torch.testing.assert_close(lin(x)[at], alone, rtol=2 ** -7, atol=1e-3 * float(alone.abs().max()))


def test_quantised_weights_are_within_half_a_step():
    g = torch.Generator().manual_seed(1)
    w = torch.randn(40, 24, generator=g) * torch.logspace(-3, 1, 40)[:, None]  # rows of very different scale
    lin = quantize_linear(w)
    assert lin.weight.dtype == torch.int8 and lin.scale.dtype == torch.bfloat16
    s = lin.scale.float()[:, None]
    assert lin.in_features == 32 and not lin.weight[:, 24:].any()  # width padded with zeros to 16k
    err = (w - lin.weight[:, :24].float() * s).abs()
    # half a step, plus what a bfloat16 scale a little below max|w| / 127 clips off the largest entry
    assert (err <= 0.5 * s + w.abs().amax(1, keepdim=True) * 2 ** -8).all()
    assert int(lin.weight.abs().max()) == 127
    x = torch.randn(5, 24, generator=g)
    ref = x @ w.t()
    assert torch.allclose(lin(x), ref, rtol=0.05, atol=0.02 * float(ref.abs().max()))


@pytest.mark.parametrize("width", [8, 24, 40, 120, 136, 264])
@pytest.mark.parametrize("rows", [1, 2, 5, 17, 40])
def test_int8_products_of_any_input_width(width, rows):
    """The kernel itself needs widths of 16k (other widths gave wrong sums or a segmentation fault on an
    AVX-512 CPU); the padded weights give the product of the unpadded ones for every width."""
    g = torch.Generator().manual_seed(width * 100 + rows)
    w = torch.randn(17, width, generator=g)
    lin = quantize_linear(w)
    assert lin.in_features % 16 == 0 and lin.in_features - width < 16
    x = torch.randn(rows, width, generator=g)
    ref = x.to(torch.bfloat16).float() @ (lin.weight[:, :width].float() * lin.scale.float()[:, None]).t()
    torch.testing.assert_close(lin(x), ref, rtol=2 ** -7, atol=2 ** -7 * float(ref.abs().max()))


def _step_logits(model, tokens: int = 10, batch: int = 2) -> torch.Tensor:
    feats_audio = audio_for(tokens, batch).to(torch.float32)
    g = torch.Generator().manual_seed(3)
    toks = torch.randint(model.codebook_size, (batch, model.num_regions, tokens), generator=g)
    state = model.init_state(batch, guidance=True)
    out = []
    with torch.inference_mode():
        feats = model.encode_audio(feats_audio, state)
        for t in range(tokens):
            out.append(model.step(state, feats[:, 4 * t:4 * t + 4], toks[:, :, t:t + 1], 1.5))
    return torch.cat(out, dim=2)


def test_int8_step_is_close_to_float32_and_float32_is_untouched():
    model = tiny_model(dtype=torch.float32, codebook_size=64)
    randomize_pilor(model)
    ref = _step_logits(model)
    full = model.inference_weight_nbytes()
    model.set_inference_precision("int8")
    assert model.inference_precision == "int8"
    q = _step_logits(model)
    assert model.inference_weight_nbytes() < 0.5 * full  # the products read int8 bytes
    assert not torch.equal(q, ref)  # it is not the float32 path
    scale = float(ref.abs().max())
    assert float((q - ref).abs().max()) < 0.05 * scale
    assert (q.argmax(-1) == ref.argmax(-1)).float().mean() > 0.9
    model.set_inference_precision("float32")
    assert torch.equal(_step_logits(model), ref)  # switching back rebuilds the exact float32 copies


def test_unknown_precision_is_refused():
    model = tiny_model(dtype=torch.float32)
    with pytest.raises(LiveGestureError, match="unknown precision 'fp8'"):
        model.set_inference_precision("fp8")
