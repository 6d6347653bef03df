"""Streaming decode of all region tokenizers as one grouped computation (inference only).

Why: the engine decodes every token of every region; the 4 causal decoders have identical
shapes up to their read-out, so at batch 1 a decode was ~40 tiny ops per region. Here the
weights are stacked along a region axis (every linear and causal conv becomes one
``baddbmm``; the read-outs are zero-padded to the widest region and sliced), and the conv
histories of all regions live in one state. Same math as
:meth:`RegionTokenizer.decode` with a decoder state (tests/tokenizer/test_grouped_decode.py);
the stacked copies are rebuilt whenever a parameter changes. With ``set_precision("int8")`` every
product is weight-only int8, as in the model step (:mod:`livegesture.model.quant`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..body.constants import REGIONS
from ..model.grouped import StackedWeights, _b, _t
from ..streaming.conv import CausalConv1d
from ..streaming.state import StreamState
from .svq import MotionTokenizer


def _conv_w(convs: list[CausalConv1d]) -> torch.Tensor:
    """(R, Cin*k, Cout) im2col weights (the layout of CausalConv1d's matmul path)."""
    return torch.stack([c.conv.weight.reshape(c.out_channels, -1).t() for c in convs]).contiguous()


class GroupedDecoder(StackedWeights):
    """``decode(ids (B, R, n), state) -> list of R arrays' tensors (B, 4n, D_r)``, streaming."""

    def __init__(self, tokenizer: MotionTokenizer, regions: tuple[str, ...] = REGIONS):
        self.tok = [tokenizer[r] for r in regions]
        self.dims = [t.dim for t in self.tok]
        d0 = self.tok[0].decoder
        self.convs = [b.conv for b in d0.blocks] + [d0.frame_block.conv]
        for c in self.convs:
            if c.stride != 1 or c.conv.groups != 1:
                raise ValueError("grouped decoding needs stride-1, groups-1 causal convs")
        super().__init__(list(self.tok))
        self.quantizable = ("post1", "post2", "skip", "inp", "unfold", "out",
                            *(f"{i}.{k}" for i in range(len(self.convs)) for k in ("conv", "proj")))

    def build(self) -> dict[str, torch.Tensor]:
        T, D = self.tok, [t.decoder for t in self.tok]
        w = {"post1": _t([t.post[0].weight for t in T]), "post1b": _b([t.post[0].bias for t in T]),
             "post2": _t([t.post[2].weight for t in T]), "post2b": _b([t.post[2].bias for t in T]),
             "skip": _t([t.skip.weight for t in T]), "skipb": _b([t.skip.bias for t in T]),
             "inp": _t([d.inp.weight for d in D]), "inpb": _b([d.inp.bias for d in D]),
             "unfold": _t([d.unfold.proj.weight for d in D]), "unfoldb": _b([d.unfold.proj.bias for d in D])}
        blocks = [[*d.blocks, d.frame_block] for d in D]
        for i in range(len(blocks[0])):
            bl = [b[i] for b in blocks]
            w[f"{i}.conv"] = _conv_w([b.conv for b in bl])
            w[f"{i}.convb"] = _b([b.conv.conv.bias for b in bl])
            w[f"{i}.proj"] = _t([b.proj.weight for b in bl])
            w[f"{i}.projb"] = _b([b.proj.bias for b in bl])
        width = max(self.dims)
        h = D[0].inp.out_features
        out = torch.zeros(len(T), h, width, dtype=D[0].inp.weight.dtype, device=D[0].inp.weight.device)
        outb = torch.zeros(len(T), 1, width, dtype=out.dtype, device=out.device)
        for r, d in enumerate(D):
            lin = d.out[1]
            out[r, :, :lin.out_features] = lin.weight.t()
            outb[r, 0, :lin.out_features] = lin.bias
        w["out"], w["outb"] = out, outb
        return w

    def init_state(self, batch_size: int, device=None, dtype=None) -> StreamState:
        """Conv histories (B, R, Cin, context) of every causal conv, batch-first over sessions."""
        p = self.tok[0].decoder.inp.weight
        device = device if device is not None else p.device
        dtype = dtype or p.dtype
        R = len(self.tok)
        return {f"{i}": torch.zeros(batch_size, R, c.in_channels, c.context, device=device, dtype=dtype)
                for i, c in enumerate(self.convs)}

    def _res(self, i: int, x: torch.Tensor, buf: torch.Tensor) -> torch.Tensor:
        """CausalResBlock on (R, B, n, h) with history buf (B, R, h, P): x + proj(gelu(conv(gelu(x))))."""
        R, B, n, h = x.shape
        c = self.convs[i]
        P, d, k = c.context, c.dilation, c.kernel_size
        z = torch.cat([buf.permute(1, 0, 3, 2), F.gelu(x)], dim=2)  # (R, B, P+n, h)
        taps = z.unfold(2, P + 1, 1)  # (R, B, n, h, P+1)
        if d > 1:
            taps = taps[..., ::d]
        cols = taps.reshape(R, B * n, h * k)
        y = self.mm(f"{i}.conv", cols, pad=True)
        buf.copy_(z[:, :, z.shape[2] - P:].permute(1, 0, 3, 2))
        y = self.mm(f"{i}.proj", F.gelu(y), pad=True)
        return x + y.view(R, B, n, h)

    def decode(self, ids: torch.Tensor, state: StreamState) -> list[torch.Tensor]:
        """Frames of token ids (B, R, n): one tensor (B, 4n, D_r) per region."""
        self.refresh()
        return self.decode_flat(ids, state)

    def decode_flat(self, ids: torch.Tensor, state: StreamState) -> list[torch.Tensor]:
        """:meth:`decode` on the copies already built (no Python-side cache check): what
        ``torch.compile`` traces for the one-row cores (:class:`livegesture.engine.compiled.CompiledDecode`)."""
        w = self.w
        B, R, n = ids.shape
        if n == 0:
            return [w["inpb"].new_zeros(B, 0, dim) for dim in self.dims]
        idx = ids.permute(1, 0, 2).reshape(R, B * n)
        # code vectors through each region's own quantizer (flat or pair codebooks look up differently)
        c = torch.stack([t.quantizer.lookup(idx[r]) for r, t in enumerate(self.tok)])
        z = self.mm("post2", F.gelu(self.mm("post1", c, pad=True)), pad=True) + self.mm("skip", c, pad=True)
        x = self.mm("inp", z, pad=True)
        h = x.shape[-1]
        x = x.view(R, B, n, h)
        nb = len(self.convs) - 1
        for i in range(nb):
            x = self._res(i, x, state[f"{i}"])
        x = self.mm("unfold", x.reshape(R, B * n, h), pad=True).view(R, B, 4 * n, h)
        x = self._res(nb, x, state[f"{nb}"])
        y = self.mm("out", F.gelu(x.reshape(R, B * 4 * n, h)), pad=True).view(R, B, 4 * n, -1)
        return [y[r, :, :, :dim] for r, dim in enumerate(self.dims)]
