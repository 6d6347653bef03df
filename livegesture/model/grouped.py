"""Inference path that runs the region experts as one grouped computation.

Why: at batch 1 a streamed token step is dominated by per-op overhead (hundreds of tiny
matmuls and tensor ops, 4 times over: one set per region expert). The experts have identical
shapes, so their weights are stacked along a region axis and every projection of the 4
experts becomes one ``baddbmm``; the attention caches of the 4 experts live in one state
(rows ordered session, guidance stream, region), so masking, RoPE, SDPA and the ring writes
run once for all regions. The audio keys/values of every block are projected in one matmul.

Same parameters and state-dict keys as the per-expert modules: the stacked copies are a
cache rebuilt whenever a parameter changes (storage or in-place version), and the math is
the per-expert forward (checked against it in tests/model/test_grouped.py). Used only without
autograd, in eval mode and without embedding noise; training keeps the per-expert path.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..streaming.attention import StreamingCrossAttention, StreamingSelfAttention
from ..streaming.rows import baddbmm_rows, rowwise
from ..streaming.state import StreamState
from .expert import RegionExpert


#: bumped whenever any module registers a parameter (construction, ``module.weight = Parameter(...)``,
#: ``load_state_dict(assign=True)``): stacked-weight caches then collect their parameter objects again
_PARAM_GENERATION = [0]


def _bump_generation(module, name, param):  # noqa: ANN001 (torch hook signature)
    _PARAM_GENERATION[0] += 1


torch.nn.modules.module.register_module_parameter_registration_hook(_bump_generation)


class StackedCache:
    """Key of a set of modules' parameters that changes when any of them changes: storage moved
    (``.to()``), in-place update (version counter: ``load_state_dict``, optimisers) or a parameter
    object replaced (registration generation). Walking the module tree happens only after a
    registration, because doing it every step cost more than a tiny model's step."""

    def __init__(self, modules: list[torch.nn.Module]):
        self.modules = modules
        self._gen = -1
        self._params: list[torch.Tensor] = []

    def key(self) -> tuple:
        if self._gen != _PARAM_GENERATION[0]:
            self._params = [p for m in self.modules for p in m.parameters()]
            self._gen = _PARAM_GENERATION[0]
        return (self._gen, *((p.data_ptr(), p._version, p.dtype) for p in self._params))


def _t(ws: list[torch.Tensor]) -> torch.Tensor:
    """Stack (out, in) linear weights as (R, in, out) for ``baddbmm``."""
    return torch.stack([w.t() for w in ws]).contiguous()


def _b(bs: list[torch.Tensor]) -> torch.Tensor:
    return torch.stack(bs)[:, None, :].contiguous()


class GroupedExperts:
    """Stacked weights of R identical :class:`RegionExpert` modules and their grouped step."""

    def __init__(self, experts: list[RegionExpert]):
        self.experts = experts
        self._cache = StackedCache(list(experts))
        self._key: tuple | None = None
        self.w: dict[str, torch.Tensor] = {}

    def _params_key(self) -> tuple:
        return self._cache.key()

    @torch.no_grad()
    def refresh(self) -> None:
        key = self._params_key()
        if key == self._key:
            return
        E = self.experts
        w: dict[str, torch.Tensor] = {
            "tok": torch.stack([e.tok_emb.weight for e in E]),
            "mask": torch.stack([e.mask_emb for e in E])[:, None, :],
            "in1": _t([e.in_proj.fc1.weight for e in E]), "in1b": _b([e.in_proj.fc1.bias for e in E]),
            "in2": _t([e.in_proj.fc2.weight for e in E]), "in2b": _b([e.in_proj.fc2.bias for e in E]),
            "ang": _b([e.audio_norm.weight for e in E]), "anb": _b([e.audio_norm.bias for e in E]),
            "ng": _b([e.norm.weight for e in E]), "nb": _b([e.norm.bias for e in E]),
        }
        # linear heads are stacked; other heads (e.g. the pair heads of pair codebooks) run per region
        self.linear_heads = all(type(e.head) is torch.nn.Linear for e in E)
        if self.linear_heads:
            w["head"], w["headb"] = _t([e.head.weight for e in E]), _b([e.head.bias for e in E])
        kv_w, kv_b = [], []
        for i in range(len(E[0].blocks)):
            bl = [e.blocks[i] for e in E]
            for name in ("norm_cross", "norm_self", "norm_mlp"):
                w[f"{i}.{name}.g"] = _b([getattr(b, name).weight for b in bl])
                w[f"{i}.{name}.b"] = _b([getattr(b, name).bias for b in bl])
            w[f"{i}.cq"] = _t([b.cross.q_proj.weight for b in bl])
            w[f"{i}.cqb"] = _b([b.cross.q_proj.bias for b in bl])
            w[f"{i}.co"] = _t([b.cross.out_proj.weight for b in bl])
            w[f"{i}.cob"] = _b([b.cross.out_proj.bias for b in bl])
            kv_w.append(torch.stack([torch.cat([b.cross.k_proj.weight, b.cross.v_proj.weight]).t() for b in bl]))
            kv_b.append(torch.stack([torch.cat([b.cross.k_proj.bias, b.cross.v_proj.bias]) for b in bl]))
            sa = [b.self_attn for b in bl]
            w[f"{i}.qkv"] = torch.stack([torch.cat([a.q_proj.weight, a.k_proj.weight, a.v_proj.weight]).t()
                                         for a in sa]).contiguous()
            w[f"{i}.qkvb"] = _b([torch.cat([a.q_proj.bias, a.k_proj.bias, a.v_proj.bias]) for a in sa])
            w[f"{i}.so"] = _t([a.out_proj.weight for a in sa])
            w[f"{i}.sob"] = _b([a.out_proj.bias for a in sa])
            w[f"{i}.m1"] = _t([b.mlp.fc1.weight for b in bl])
            w[f"{i}.m1b"] = _b([b.mlp.fc1.bias for b in bl])
            w[f"{i}.m2"] = _t([b.mlp.fc2.weight for b in bl])
            w[f"{i}.m2b"] = _b([b.mlp.fc2.bias for b in bl])
        w["kv"] = torch.cat(kv_w, dim=2).contiguous()  # (R, d_audio, blocks * 2d)
        w["kvb"] = torch.cat(kv_b, dim=1)[:, None, :].contiguous()
        self.w, self._key = w, key

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def _ln(x: torch.Tensor, g: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x, x.shape[-1:]) * g + b

    def _mlp(self, x: torch.Tensor, a: str, b: str) -> torch.Tensor:
        w = self.w
        return baddbmm_rows(w[b + "b"], F.gelu(baddbmm_rows(w[a + "b"], x, w[a])), w[b])

    # ------------------------------------------------------------------ the grouped step
    def step(self, inputs: torch.Tensor, state: StreamState, audio: torch.Tensor) -> torch.Tensor:
        """inputs (N, R, n) ids, state: one expert state of N*R rows (row = i*R + r), audio (N, 4n, da)
        -> hidden states h (R, N*n, dim) (before the heads)."""
        self.refresh()
        w, e0 = self.w, self.experts[0]
        N, R, n = inputs.shape
        d, K = e0.cfg.dim, e0.codebook_size
        M = N * n
        ids = inputs.permute(1, 0, 2).reshape(R, M)
        emb = torch.gather(w["tok"], 1, ids.clamp(max=K)[..., None].expand(R, M, d))
        emb = torch.where((ids == K + 1)[..., None], w["mask"], emb)
        x = self._mlp(emb, "in1", "in2")  # (R, M, d)
        a = F.layer_norm(audio.reshape(N * audio.shape[1], -1), audio.shape[-1:])
        a = a[None] * w["ang"] + w["anb"]  # (R, N*4n, da)
        kv_all = baddbmm_rows(w["kvb"], a, w["kv"])  # (R, N*4n, blocks*2d)
        for i, block in enumerate(e0.blocks):
            st = state[f"blocks.{i}"]
            h = self._ln(x, w[f"{i}.norm_cross.g"], w[f"{i}.norm_cross.b"])
            q = baddbmm_rows(w[f"{i}.cqb"], h, w[f"{i}.cq"])
            kv = kv_all[..., 2 * d * i:2 * d * (i + 1)]
            att, seen = _cross(block.cross, st["cross"], q, kv, N, R, n)  # type: ignore[arg-type]
            o = baddbmm_rows(w[f"{i}.cob"], att, w[f"{i}.co"])
            x = x + o.masked_fill(~seen, 0.0)
            h = self._ln(x, w[f"{i}.norm_self.g"], w[f"{i}.norm_self.b"])
            qkv = baddbmm_rows(w[f"{i}.qkvb"], h, w[f"{i}.qkv"])
            att = _self(block.self_attn, st["self_attn"], qkv, N, R, n)  # type: ignore[arg-type]
            x = x + baddbmm_rows(w[f"{i}.sob"], att, w[f"{i}.so"])
            h = self._ln(x, w[f"{i}.norm_mlp.g"], w[f"{i}.norm_mlp.b"])
            x = x + self._mlp(h, f"{i}.m1", f"{i}.m2")
        return self._ln(x, w["ng"], w["nb"])

    def heads(self, h: torch.Tensor) -> torch.Tensor:
        """Logits (R, M, K) of hidden states (R, M, dim), each region through its own head (after a
        :meth:`step`, which refreshed the stacked weights)."""
        if not self.linear_heads:
            return torch.stack([rowwise(e.head, h[i]) for i, e in enumerate(self.experts)])
        return baddbmm_rows(self.w["headb"], h, self.w["head"])


def _to_rows(t: torch.Tensor, N: int, R: int, n: int, heads: int) -> torch.Tensor:
    """(R, N*n, heads*Dh) region-major -> (N*R, heads, n, Dh), rows ordered (session, region)."""
    return t.reshape(R, N, n, heads, -1).permute(1, 0, 3, 2, 4).reshape(N * R, heads, n, -1)


def _from_rows(t: torch.Tensor, N: int, R: int, n: int) -> torch.Tensor:
    """(N*R, heads, n, Dh) -> (R, N*n, heads*Dh)."""
    NR, H, _, Dh = t.shape
    return t.view(N, R, H, n, Dh).permute(1, 0, 3, 2, 4).reshape(R, N * n, H * Dh)


def _cross(layer: StreamingCrossAttention, st: StreamState, q: torch.Tensor, kv: torch.Tensor,
           N: int, R: int, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """StreamingCrossAttention.step on projected q (R, N*n, d) and k|v (R, N*Tk, 2d); returns the merged
    attention (R, N*n, d) before out_proj and the seen mask (R, N*n, 1)."""
    H, d = layer.num_heads, layer.dim
    Tk = kv.shape[1] // N
    k = _to_rows(kv[..., :d], N, R, Tk, H)
    v = _to_rows(kv[..., d:], N, R, Tk, H)
    k_offset = st["k_offset"]
    k_times = k_offset[:, None] + torch.arange(Tk, device=k_offset.device)
    if layer.rope is not None:
        k = layer.rope(k, k_times)
    q_times = layer.query_times(st, n)
    qh = _to_rows(q, N, R, n, H)
    if layer.rope is not None:
        qh = layer.rope(qh, q_times)
    # n == 1: the model's invariant k_offset = 4 q_offset makes the write evict no visible key
    att, seen = layer._attend_and_write(qh, q_times, st, k, v, k_times, n == 1, guard_empty=True)
    k_offset.add_(Tk)
    st["q_offset"].add_(n)  # type: ignore[union-attr]
    seen_r = seen.view(N, R, n, 1).permute(1, 0, 2, 3).reshape(R, N * n, 1)  # type: ignore[union-attr]
    return _from_rows(att, N, R, n), seen_r


def _self(layer: StreamingSelfAttention, st: StreamState, qkv: torch.Tensor, N: int, R: int, n: int) -> torch.Tensor:
    """StreamingSelfAttention._step on projected q|k|v (R, N*n, 3d); merged attention (R, N*n, d)."""
    H, d = layer.num_heads, layer.dim
    q, k, v = (_to_rows(qkv[..., j * d:(j + 1) * d], N, R, n, H) for j in range(3))
    offset = st["offset"]
    pos = offset[:, None] + torch.arange(n, device=offset.device)
    if layer.rope is not None:
        q, k = layer.rope(q, pos), layer.rope(k, pos)
    out, _ = layer._attend_and_write(q, pos, st, k, v, pos, n <= layer.max_step, guard_empty=False)
    offset.add_(n)
    return _from_rows(out, N, R, n)
