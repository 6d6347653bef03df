"""Inference path of xAR-Fuse with fused weights (the fuse's counterpart of :mod:`.grouped`).

Why: at batch 1 the fuse step is a few hundred small ops, each paying Python and dispatch
cost. Here the 4 PILOR adapters and the 4 linear classifiers become one ``baddbmm`` each, the
temporal and spatial attention project q|k|v in one matmul, the audio keys/values of every
block are projected in one matmul, and the RoPE tables of the step come from the experts'
:class:`~.grouped.StepTables` (the fuse's counters advance with the experts'). Same
parameters and state as :class:`~.fuse.XARFuse` (fused copies are a cache rebuilt when a
parameter changes); the same math (``tests/model/test_grouped.py`` checks the whole grouped
step against the module path). Inference only: no autograd, eval mode.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..streaming.rows import rowwise
from ..streaming.state import StreamState
from .fuse import XARFuse
from . import stream_kernel
from .grouped import StackedWeights, StepTables, _rot, cond_rows, null_attention, self_attend_heads
from .quant import Int8Linear, quantize_linear


def _cat_t(ws: list[torch.Tensor]) -> torch.Tensor:
    """(out_i, in) weights concatenated along out: one F.linear weight."""
    return torch.cat(ws).contiguous()


class GroupedFuse(StackedWeights):
    """Fused weights of an :class:`XARFuse` and its step."""

    def __init__(self, fuse: XARFuse):
        super().__init__([fuse])
        self.fuse = fuse
        self.quantizable = ("pilor", "head")  # stacked (R, in, out); the single linears are `self.linears`

    def build(self) -> dict[str, torch.Tensor]:
        f = self.fuse
        # the single (out, in) linears of the step, under their names (bias under name + "b")
        lin = {"in": f.in_proj,
               "kv": (_cat_t([t for b in f.blocks for t in (b.cross.k_proj.weight, b.cross.v_proj.weight)]),
                      torch.cat([t for b in f.blocks for t in (b.cross.k_proj.bias, b.cross.v_proj.bias)]))}
        for i, b in enumerate(f.blocks):
            lin[f"{i}.cq"], lin[f"{i}.co"] = b.cross.q_proj, b.cross.out_proj
            lin[f"{i}.m1"], lin[f"{i}.m2"] = b.mlp.fc1, b.mlp.fc2
            if b.temporal is not None:  # "without temporal attention" has none
                t = b.temporal
                lin[f"{i}.tqkv"] = (_cat_t([t.q_proj.weight, t.k_proj.weight, t.v_proj.weight]),
                                    torch.cat([t.q_proj.bias, t.k_proj.bias, t.v_proj.bias]))
                lin[f"{i}.to"] = t.out_proj
            if b.spatial is not None:  # "without spatial attention"
                lin[f"{i}.sqkv"], lin[f"{i}.so"] = b.spatial.qkv, b.spatial.out_proj
        w: dict[str, torch.Tensor] = {}
        for name, m in lin.items():
            w[name], w[name + "b"] = (m.weight, m.bias) if isinstance(m, torch.nn.Linear) else m
        self.linears = tuple(lin)
        if f.pilor is not None:  # the "without PILOR" ablation has none
            w["pilor"] = torch.stack([p.weight.t() for p in f.pilor]).contiguous()  # (R, d, d)
            w["pilorb"] = torch.zeros(len(f.pilor), 1, f.pilor[0].out_features, dtype=f.pilor[0].weight.dtype,
                                      device=f.pilor[0].weight.device)
        self.linear_heads = all(type(c) is torch.nn.Linear for c in f.classifiers)
        if self.linear_heads:
            w["head"] = torch.stack([c.weight.t() for c in f.classifiers]).contiguous()  # (R, d, K)
            w["headb"] = torch.stack([c.bias for c in f.classifiers])[:, None, :].contiguous()
        return w

    def quantize(self, w: dict[str, torch.Tensor]) -> dict[str, list[Int8Linear]]:
        """Int8 copies of every linear of the step (a list of one) and of the stacked PILOR adapters and
        heads (one per region); removed from `w`."""
        return {**{name: [quantize_linear(w.pop(name))] for name in self.linears}, **super().quantize(w)}

    def linear(self, name: str, x: torch.Tensor) -> torch.Tensor:
        """``F.linear`` of the step's linear `name` on x (..., in), float32 or int8."""
        q = self.q.get(name)
        if q is None:
            p = self.packed_weight(name, transposed=True) if self.kernel else None
            if p is not None and torch.compiler.is_compiling():
                y = stream_kernel.stream_mm(self.w[name + "b"], x.reshape(1, -1, x.shape[-1]), p)
                return y.view(*x.shape[:-1], -1)
            return F.linear(x, self.w[name], self.w[name + "b"])
        return q[0](x).add_(self.w[name + "b"])

    def apply_pilor(self, h: torch.Tensor) -> torch.Tensor:
        """h~ = h + W_r h for h (B, R, n, dim), the 4 adapters in one batched product."""
        self.refresh()
        if self.fuse.pilor is None:
            return h
        B, R, n, d = h.shape
        hr = h.transpose(0, 1).reshape(R, B * n, d)
        adapted = self.mm("pilor", hr, pad=True).view(R, B, n, d).transpose(0, 1)
        return h + adapted

    def step(self, h: torch.Tensor, state: StreamState, audio: torch.Tensor, tables: StepTables,
             null: torch.Tensor | None = None) -> torch.Tensor:
        """Logits (B, R, n, K) of PILOR outputs h (B, R, n, dim) (B = sessions x guidance streams);
        `state` the fuse's flat state, `audio` (B, 4n, d_audio), `tables` the experts' step tables;
        `null`: the null audio vector when the rows are guided pairs (see ``GroupedExperts.step``)."""
        self.refresh()
        f = self.fuse
        B, R, n, d = h.shape
        x = (self.linear("in", h) + f.region_emb[:, None, :].to(h.dtype)).reshape(B * R, n, d)
        H, nb = f.blocks[0].cross.num_heads, len(f.blocks)
        Tk = audio.shape[1]
        # every block's audio keys and values (B, blocks, 2, H, 4n, Dh), or with `null` the conditioned
        # rows' (B/2, ...) and the null values (blocks, H, Dh); the keys rotated at once with the experts'
        # tables of each stream (its region-0 row)
        kvh, v_null = self._audio_kv(audio, nb * 2 * H, null)
        kvh = kvh.unflatten(1, (nb, 2, H))
        keys = kvh[:, :, 0]
        if tables.k_rot is not None:
            keys = _rot(keys, tuple(_stream_rows(c.view(B, R, 1, 1, Tk, -1)[:, 0], null)  # type: ignore[arg-type]
                                    for c in tables.k_rot))
        for i, block in enumerate(f.blocks):
            st = state[f"blocks.{i}"]
            x = x + self._cross(i, block, st["cross"], block.norm_cross(x), keys[:, i], kvh[:, i, 1], R, n,
                                tables, None if v_null is None else v_null[i])  # type: ignore[arg-type]
            if block.temporal is not None:
                x = x + self._temporal(i, block, st["temporal"], block.norm_time(x), tables)  # type: ignore[arg-type]
            if block.spatial is not None:
                s = block.norm_space(x).view(B, R, n, d).transpose(1, 2).reshape(B * n, R, d)
                s = self._spatial(i, block.spatial, s).view(B, n, R, d).transpose(1, 2).reshape(B * R, n, d)
                x = x + s
            x = x + self.linear(f"{i}.m2", F.gelu(self.linear(f"{i}.m1", block.norm_mlp(x))))
        x = f.norm(x).view(B, R, n, d)
        if self.linear_heads:
            xr = x.transpose(0, 1).reshape(R, B * n, d)
            return self.mm("head", xr, pad=True).view(R, B, n, -1).transpose(0, 1)
        return torch.stack([rowwise(c, x[:, i]) for i, c in enumerate(f.classifiers)], dim=1)

    def _audio_kv(self, audio: torch.Tensor, heads: int, null: torch.Tensor | None
                  ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Every block's audio keys and values (B, heads, Tk, Dh) of audio (B, Tk, da), and None. With
        `null` (guided pairs) the product runs on the conditioned rows, which are returned (B/2 rows),
        with the memoised null values of every block (blocks, H, Dh): the unconditional rows keep no
        audio ring."""
        norm = self.fuse.audio_norm
        if null is None:
            return _heads(self.linear("kv", norm(audio)), heads), None
        B, Tk = audio.shape[:2]
        kv = _heads(self.linear("kv", norm(audio.view(B // 2, 2, Tk, -1)[:, 0].contiguous())), heads)
        # one null row, padded to MIN_ROWS as a product of the step's rows would be
        kn = self.null_rows(null, lambda v: rowwise(lambda t: self.linear("kv", t), norm(v[None].to(audio.dtype))))
        nb = len(self.fuse.blocks)
        return kv, kn.view(nb, 2, heads // (2 * nb), -1)[:, 1]

    def _cross(self, i: int, block, st: StreamState, xn: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
               R: int, n: int, t: StepTables, v_null: torch.Tensor | None = None) -> torch.Tensor:
        """The block's audio cross-attention: the R region streams of a session (rows of `xn` (B*R, n, d))
        are R query groups over the session's one ring; `k` (rotated), `v` (B, H, 4n, Dh) this step's keys.
        With `v_null` (H, Dh) the rows are guided pairs: `k`, `v` and the rings of `st` hold the
        conditioned rows only, and the unconditional rows' attention is the null values."""
        layer = block.cross
        H, d = layer.num_heads, layer.dim
        BR = xn.shape[0]
        B = BR // R
        q = _heads(self.linear(f"{i}.cq", xn.reshape(B, R * n, d)), H)
        Tk = k.shape[2]
        # the experts' rows are (stream, region): region 0's rows give each stream's key times
        k_times = t.k_times.view(B, R, Tk)[:, 0]
        q_times = t.q_times.reshape(B, R * n)
        if t.q_rot is not None:
            q = _rot(q, tuple(c.reshape(B, 1, R * n, -1) for c in t.q_rot))  # type: ignore[arg-type]
        if v_null is not None:
            q, q_times, k_times = cond_rows(q, 1), cond_rows(q_times, 1), cond_rows(k_times, 1)
        att, seen = layer._attend_and_write(q, q_times, st, k, v, k_times, n == 1, guard_empty=True,
                                            shared=t.shared("fuse_cross"), attend=t.attend)
        if v_null is not None:
            att, seen = null_attention(att, seen, v_null[None], 1)  # type: ignore[arg-type]
        st["k_offset"].add_(Tk)  # type: ignore[union-attr]
        st["q_offset"].add_(n)  # type: ignore[union-attr]
        out = self.linear(f"{i}.co", _merge(att)).masked_fill(~seen, 0.0)
        return out.view(BR, n, d)

    def _temporal(self, i: int, block, st: StreamState, xn: torch.Tensor, t: StepTables) -> torch.Tensor:
        """The block's per-region temporal self-attention on rows (B*R, n, d) (the experts' row order, so
        it shares the experts' token-ring masks and write slots)."""
        layer = block.temporal
        qkvh = _heads(self.linear(f"{i}.tqkv", xn), 3 * layer.num_heads)  # (B*R, 3H, n, Dh)
        out = self_attend_heads(layer, st, qkvh, t)
        return self.linear(f"{i}.to", _merge(out))

    def _spatial(self, i: int, layer, x: torch.Tensor) -> torch.Tensor:
        """:class:`~.layers.RegionAttention` of block `i` on x (N, R, d) with the step's linears."""
        return layer.attend(x, lambda t: self.linear(f"{i}.sqkv", t), lambda t: self.linear(f"{i}.so", t))


def _stream_rows(t: torch.Tensor, null: torch.Tensor | None) -> torch.Tensor:
    """With `null` (guided pairs), the conditioned rows (B/2, ...) of rows (B, ...); else `t`."""
    return t if null is None else cond_rows(t, 1)


def _heads(t: torch.Tensor, H: int) -> torch.Tensor:
    B, T, D = t.shape
    return t.view(B, T, H, D // H).transpose(1, 2)


def _merge(t: torch.Tensor) -> torch.Tensor:
    B, H, T, Dh = t.shape
    return t.transpose(1, 2).reshape(B, T, H * Dh)
