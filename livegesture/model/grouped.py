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

from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.nn.functional as F

from ..streaming.attention import StreamingCrossAttention, StreamingSelfAttention
from ..streaming.rope import RotaryEmbedding, rotate
from ..streaming.rows import MIN_ROWS, baddbmm_rows, rowwise
from ..streaming.state import StreamState
from .expert import RegionExpert
from . import stream_kernel
from .quant import Int8Linear, check_precision, pad_width, quantize_linear


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

    #: while True, :meth:`key` returns the last key without checking (an inference engine that never
    #: changes its weights: the check walks every parameter, ~0.5 ms per base step)
    frozen: bool = False

    def __init__(self, modules: list[torch.nn.Module]):
        self.modules = modules
        self._gen = -1
        self._params: list[torch.Tensor] = []
        self._last: tuple | None = None

    def key(self) -> tuple:
        if self.frozen and self._last is not None:
            return self._last
        self._last = self._key()
        return self._last

    def _key(self) -> tuple:
        if self._gen != _PARAM_GENERATION[0]:
            self._params = [p for m in self.modules for p in m.parameters()]
            self._gen = _PARAM_GENERATION[0]
        return (self._gen, *((p.data_ptr(), p._version, p.dtype) for p in self._params))


class StackedWeights:
    """Inference copies of some modules' weights in the layout a grouped kernel wants (``self.w``),
    built by :meth:`build` and rebuilt only when a parameter changed (:class:`StackedCache`)."""

    #: the products :meth:`quantize` turns into int8 (names of ``self.w`` entries, each with its bias
    #: under ``name + "b"``); subclasses list theirs
    quantizable: tuple[str, ...] = ()

    def __init__(self, modules: list[torch.nn.Module]):
        self._cache = StackedCache(modules)
        self._key: tuple | None = None
        self.w: dict[str, torch.Tensor] = {}
        #: int8 copies of the ``quantizable`` products (one per region of a stacked weight), empty in float32
        self.q: dict[str, list[Int8Linear]] = {}
        self.precision = "float32"
        #: with ``kernel`` on, tile-packed copies of the float32 products (:mod:`.stream_kernel`), made by
        #: the first eager step; only a compiled program calls the kernel on them
        self.kernel = False
        self.packed: dict[str, torch.Tensor] = {}
        #: (key, rows) memo of :meth:`null_rows`
        self._null: tuple[tuple, torch.Tensor] | None = None

    def use_stream_kernel(self, on: bool) -> None:
        """Let compiled programs run the float32 products through the streaming kernel (which must be
        loaded: :func:`.stream_kernel.load`); eager steps keep the library's, bit for bit."""
        self.kernel, self.packed = bool(on), {}

    def set_precision(self, precision: str) -> None:
        """``float32`` (the default, exact) or ``int8`` (weight-only int8 products, :mod:`.quant`);
        the copies are rebuilt at the next step (nothing changes when it is the current one)."""
        if check_precision(precision) != self.precision:
            self.precision = precision
            self._key = None

    @torch.no_grad()
    def refresh(self) -> None:
        key = self._cache.key()
        if key != self._key:
            self.w, self._key, self.packed = self.build(), key, {}
            self.q = self.quantize(self.w) if self.precision == "int8" else {}

    def build(self) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def quantize(self, w: dict[str, torch.Tensor]) -> dict[str, list[Int8Linear]]:
        """Int8 copies of the ``quantizable`` stacked (R, in, out) weights, removed from `w` (the step
        then reads only the int8 bytes)."""
        return {name: [quantize_linear(m.t()) for m in w.pop(name)] for name in self.quantizable if name in w}

    def mm(self, name: str, x: torch.Tensor, pad: bool = False) -> torch.Tensor:
        """``x (R, M, in) @ w[name] + w[name + "b"]`` per region: float32 ``baddbmm`` (rows padded to
        ``MIN_ROWS`` with `pad`, for callers whose rows may be fewer) or the int8 copies."""
        q = self.q.get(name)
        if q is None:
            p = self.packed_weight(name) if self.kernel else None
            if p is not None and torch.compiler.is_compiling():
                return stream_kernel.stream_mm(self.w[name + "b"], x, p)
            bmm = baddbmm_rows if pad else torch.baddbmm
            return bmm(self.w[name + "b"], x, self.w[name])
        xb = pad_width(x.to(torch.bfloat16), q[0].in_features)  # the rows of every region converted at once
        y = torch.stack([torch._weight_int8pack_mm(xb[r], lin.weight, lin.scale) for r, lin in enumerate(q)])
        return y.to(x.dtype).add_(self.w[name + "b"])

    def null_rows(self, null: torch.Tensor, make: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
        """``make(null)``: what this module's step computes from the null audio vector alone (its audio
        keys and values), memoised until the weights or `null` change. Under classifier-free guidance the
        unconditional stream hears the null audio at every frame, so those rows are the same every step
        (docs/design.md §6, "The null stream's audio keys and values"). `make` must be row-invariant
        (padded products), so the memo has the bits the rows would get in the step's own product. Made
        by an eager step; a compiled trace reads the memo (a trace that finds none computes the rows)."""
        if torch.compiler.is_compiling():
            return self._null[1] if self._null is not None else make(null)
        key = (self._key, null.data_ptr(), null._version, null.dtype, null.device)
        if self._null is None or self._null[0] != key:
            self._null = (key, make(null))
        return self._null[1]

    def in_kernel_program(self) -> bool:
        """Whether this call is being traced into a compiled program on the streaming kernels (the
        packed copies exist): what selects the kernel's products, unpadded rows and ring attention."""
        return self.kernel and bool(self.packed) and torch.compiler.is_compiling()

    def rows_free(self) -> bool:
        """Whether this call's products give every row the same bits at any row count, so that rows
        need no padding to ``MIN_ROWS``: the int8 copies, and the streaming kernel inside a compiled
        program (padded rows would double a batch-1 product's arithmetic there)."""
        return bool(self.q) or self.in_kernel_program()

    def packed_weight(self, name: str, transposed: bool = False) -> torch.Tensor | None:
        """The tile-packed copy of float32 product `name` ((G, in, out), or (out, in) when `transposed`),
        made on first use by an eager step; None when the kernel cannot take it. A compiled trace never
        packs (the packing would become part of every call of its program)."""
        p = self.packed.get(name)
        if p is None and not torch.compiler.is_compiling():
            w = self.w[name]
            w = w.t()[None] if transposed else w
            if stream_kernel.packable(w):
                p = self.packed[name] = stream_kernel.pack(w)
        return p

    def weight_nbytes(self) -> int:
        """Bytes of the inference copies a step reads (float32 stacks and int8 copies)."""
        return (sum(v.numel() * v.element_size() for v in self.w.values())
                + sum(lin.nbytes for qs in self.q.values() for lin in qs))


def _t(ws: list[torch.Tensor]) -> torch.Tensor:
    """Stack (out, in) linear weights as (R, in, out) for ``baddbmm``."""
    return torch.stack([w.t() for w in ws]).contiguous()


def _b(bs: list[torch.Tensor]) -> torch.Tensor:
    return torch.stack(bs)[:, None, :].contiguous()


@dataclass
class StepTables:
    """Positions of one model step and their RoPE tables, computed once and used by every attention
    layer of the experts and the fuse (they all advance together, so their counters agree).

    Rows are the experts' state rows (stream, region); ``n`` token positions per row:
    ``pos`` (rows, n) token positions (self-attention), ``q_times`` (rows, n) audio-frame times of the
    queries (4 tau + 3), ``k_times`` (rows, 4n) those of this step's audio frames; ``*_rot`` the
    matching :meth:`RotaryEmbedding.tables` (rows, 1, T, Dh), or None without RoPE. ``memo`` holds, per
    attention kind, the masks and ring-write slots that every layer of that kind shares (their rings
    hold the same positions: the experts' and the fuse's token rings, the experts' audio rings, the
    fuse's audio rings)."""

    pos: torch.Tensor
    q_times: torch.Tensor
    k_times: torch.Tensor
    pos_rot: tuple[torch.Tensor, torch.Tensor] | None
    q_rot: tuple[torch.Tensor, torch.Tensor] | None
    k_rot: tuple[torch.Tensor, torch.Tensor] | None
    memo: dict[str, dict] = field(default_factory=dict)
    #: the ring attention every layer runs instead of the library's SDPA (None: SDPA); set by a
    #: compiled step on the streaming kernel (:meth:`GroupedExperts.tables`)
    attend: Callable | None = None

    @classmethod
    def of(cls, state: StreamState, cross: StreamingCrossAttention, rope: RotaryEmbedding | None,
           n: int, dtype: torch.dtype) -> "StepTables":
        """From an expert block's state (its ``self_attn`` and ``cross`` counters)."""
        off = state["self_attn"]["offset"]  # type: ignore[index]
        pos = off[:, None] + torch.arange(n, device=off.device)
        q_times = cross.query_times(state["cross"], n)  # type: ignore[arg-type]
        k_off = state["cross"]["k_offset"]  # type: ignore[index]
        k_times = k_off[:, None] + torch.arange(cross.query_stride * n, device=off.device)
        if rope is None:
            return cls(pos, q_times, k_times, None, None, None)
        return cls(pos, q_times, k_times, rope.tables(pos, dtype), rope.tables(q_times, dtype),
                   rope.tables(k_times, dtype))

    def shared(self, kind: str) -> dict:
        return self.memo.setdefault(kind, {})


def _rot(x: torch.Tensor, tab: tuple[torch.Tensor, torch.Tensor] | None) -> torch.Tensor:
    return x if tab is None else rotate(x, *tab)


def _pad(x: torch.Tensor, rows: int) -> torch.Tensor:
    """x (G, M, D) with zero rows appended up to `rows` (see :mod:`livegesture.streaming.rows`)."""
    M = x.shape[1]
    return x if M >= rows else torch.cat([x, x.new_zeros(x.shape[0], rows - M, x.shape[2])], dim=1)


class GroupedExperts(StackedWeights):
    """Stacked weights of R identical :class:`RegionExpert` modules and their grouped step."""

    def __init__(self, experts: list[RegionExpert]):
        super().__init__(list(experts))
        self.experts = experts
        n = len(experts[0].blocks)
        self.quantizable = ("in1", "in2", "kv", "head",
                            *(f"{i}.{k}" for i in range(n) for k in ("cq", "co", "qkv", "so", "m1", "m2")))

    def build(self) -> dict[str, torch.Tensor]:
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
        return w

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def _ln(x: torch.Tensor, g: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x, x.shape[-1:]) * g + b

    def _mlp(self, x: torch.Tensor, a: str, b: str) -> torch.Tensor:
        """On rows already padded to >= MIN_ROWS (the step carries them padded)."""
        return self.mm(b, F.gelu(self.mm(a, x)))

    # ------------------------------------------------------------------ the grouped step
    def step(self, inputs: torch.Tensor, state: StreamState, audio: torch.Tensor,
             tables: StepTables | None = None, null: torch.Tensor | None = None) -> torch.Tensor:
        """inputs (N, R, n) ids, state: one expert state of N*R rows (row = i*R + r), audio (N, 4n, da)
        -> hidden states h (R, N*n, dim) (before the heads). `tables`: this step's positions (computed
        from the state when not given). `null`: the null audio vector when the rows are guided pairs
        (row 2b + 1 hears only it): their audio keys and values come from :meth:`null_rows`.

        The token rows are carried padded to at least ``MIN_ROWS`` (zero rows, dropped at the end) so
        that every float32 product is row-invariant without padding each one (int8 products need no
        padding)."""
        self.refresh()
        w, e0 = self.w, self.experts[0]
        N, R, n = inputs.shape
        if tables is None:
            tables = self.tables(state, n, audio.dtype)
        d, K = e0.cfg.dim, e0.codebook_size
        M = N * n
        Mp = M if self.rows_free() else max(M, MIN_ROWS)
        ids = inputs.permute(1, 0, 2).reshape(R, M)
        emb = torch.gather(w["tok"], 1, ids.clamp(max=K)[..., None].expand(R, M, d))
        emb = _pad(torch.where((ids == K + 1)[..., None], w["mask"], emb), Mp)
        x = self._mlp(emb, "in1", "in2")  # (R, Mp, d)
        H, nb = e0.blocks[0].cross.num_heads, len(e0.blocks)
        Tk = audio.shape[1]
        # every block's audio keys and values as rows (N*R, blocks, 2, H, 4n, Dh), or with `null` the
        # conditioned rows' (N/2*R, ...) and the null values (R, blocks, H, Dh); the keys rotated at once
        kvh, v_null = self._audio_kv(audio, N, R, Tk, nb * 2 * H, null)
        kvh = kvh.unflatten(1, (nb, 2, H))
        k_rot = _bcast(tables.k_rot if null is None else _pair_rows(tables.k_rot, R))
        keys = _rot(kvh[:, :, 0], k_rot)
        for i, block in enumerate(e0.blocks):
            st = state[f"blocks.{i}"]
            h = self._ln(x, w[f"{i}.norm_cross.g"], w[f"{i}.norm_cross.b"])
            q = self.mm(f"{i}.cq", h)[:, :M]
            att, seen = _cross(block.cross, st["cross"], q, keys[:, i], kvh[:, i, 1], N, R, n, tables,
                               None if v_null is None else v_null[:, i])  # type: ignore[arg-type]
            o = self.mm(f"{i}.co", _pad(att, Mp))
            x = x + o.masked_fill(~_pad(seen, Mp), 0.0)
            h = self._ln(x, w[f"{i}.norm_self.g"], w[f"{i}.norm_self.b"])
            qkv = self.mm(f"{i}.qkv", h)[:, :M]
            att = _self(block.self_attn, st["self_attn"], qkv, N, R, n, tables)  # type: ignore[arg-type]
            x = x + self.mm(f"{i}.so", _pad(att, Mp))
            h = self._ln(x, w[f"{i}.norm_mlp.g"], w[f"{i}.norm_mlp.b"])
            x = x + self._mlp(h, f"{i}.m1", f"{i}.m2")
        return self._ln(x[:, :M], w["ng"], w["nb"])

    def _audio_norm(self, a: torch.Tensor) -> torch.Tensor:
        """Each region's audio layer norm of rows a (M, da): (R, M, da)."""
        a = F.layer_norm(a, a.shape[-1:])
        return a[None] * self.w["ang"] + self.w["anb"]

    def _audio_kv(self, audio: torch.Tensor, N: int, R: int, Tk: int, heads: int,
                  null: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Every block's audio keys and values as rows (N*R, heads, Tk, Dh) of audio (N, Tk, da), and
        None. With `null` (guided pairs: row 2b + 1 hears only the null audio) the product runs on the
        conditioned rows only, which are returned ((N/2)*R rows), with the memoised null values of every
        block (R, blocks, H, Dh) (:meth:`null_rows`): the unconditional rows keep no audio ring."""
        if null is None:
            return _to_rows(self.mm("kv", self._audio_norm(audio.reshape(N * Tk, -1)), pad=True),
                            N, R, Tk, heads), None
        B = N // 2
        cond = audio.view(B, 2, Tk, -1)[:, 0].reshape(B * Tk, -1).contiguous()
        kv = _to_rows(self.mm("kv", self._audio_norm(cond), pad=True), B, R, Tk, heads)
        kn = self.null_rows(null, lambda v: self.mm("kv", self._audio_norm(v[None].to(audio.dtype)), pad=True))
        nb = len(self.experts[0].blocks)
        return kv, kn.view(R, nb, 2, heads // (2 * nb), -1)[:, :, 1]

    def tables(self, state: StreamState, n: int, dtype: torch.dtype) -> StepTables:
        """The positions and RoPE tables of the next `n` positions of an expert state's rows."""
        b0 = self.experts[0].blocks[0]
        t = StepTables.of(state["blocks.0"], b0.cross, b0.self_attn.rope, n, dtype)  # type: ignore[arg-type]
        if self.in_kernel_program():
            t.attend = stream_kernel.ring_attention
        return t

    def heads(self, h: torch.Tensor) -> torch.Tensor:
        """Logits (R, M, K) of hidden states (R, M, dim), each region through its own head (after a
        :meth:`step`, which refreshed the stacked weights)."""
        if not self.linear_heads:
            return torch.stack([rowwise(e.head, h[i]) for i, e in enumerate(self.experts)])
        return self.mm("head", h, pad=True)


def _to_rows(t: torch.Tensor, N: int, R: int, n: int, heads: int) -> torch.Tensor:
    """(R, N*n, heads*Dh) region-major -> (N*R, heads, n, Dh), rows ordered (session, region)."""
    return t.reshape(R, N, n, heads, -1).permute(1, 0, 3, 2, 4).reshape(N * R, heads, n, -1)


def _from_rows(t: torch.Tensor, N: int, R: int, n: int) -> torch.Tensor:
    """(N*R, heads, n, Dh) -> (R, N*n, heads*Dh)."""
    NR, H, _, Dh = t.shape
    return t.view(N, R, H, n, Dh).permute(1, 0, 3, 2, 4).reshape(R, N * n, H * Dh)


def _bcast(tab: tuple[torch.Tensor, torch.Tensor] | None) -> tuple[torch.Tensor, torch.Tensor] | None:
    """RoPE tables (rows, 1, T, Dh) broadcast over a block axis: (rows, 1, 1, T, Dh)."""
    return None if tab is None else (tab[0][:, None], tab[1][:, None])


def _pair_rows(tab: tuple[torch.Tensor, torch.Tensor] | None, R: int
               ) -> tuple[torch.Tensor, torch.Tensor] | None:
    """The conditioned rows ((N/2)*R, ...) of guided pairs' row tables (N*R, ...)."""
    return None if tab is None else (cond_rows(tab[0], R), cond_rows(tab[1], R))


def cond_rows(t: torch.Tensor, R: int) -> torch.Tensor:
    """Rows (N*R, ...) ordered (session, stream, region) of guided pairs -> the conditional stream's
    ((N/2)*R, ...) (a copy when there is more than one session)."""
    return t.view(t.shape[0] // (2 * R), 2, R, *t.shape[1:])[:, 0].reshape(t.shape[0] // 2, *t.shape[1:])


def null_attention(att_c: torch.Tensor, seen_c: torch.Tensor, v_null: torch.Tensor, R: int
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """Guided pairs' attention rows from the conditioned rows' `att_c` (B*R, H, n, Dh), `seen_c`
    (B*R, n, 1) and the null values `v_null` (R, H, Dh): every key the unconditional stream sees holds
    the null values, so its attention is exactly them (it sees what its pair sees: same times)."""
    BR, H, n, Dh = att_c.shape
    B = BR // R
    att_n = v_null[None, :, :, None, :].to(att_c.dtype).expand(B, R, H, n, Dh)
    att = torch.stack([att_c.view(B, R, H, n, Dh), att_n], dim=1).view(2 * BR, H, n, Dh)
    seen = seen_c.view(B, 1, R, n, 1).expand(B, 2, R, n, 1).reshape(2 * BR, n, 1)
    return att, seen


def _cross(layer: StreamingCrossAttention, st: StreamState, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
           N: int, R: int, n: int, t: StepTables, v_null: torch.Tensor | None = None
           ) -> tuple[torch.Tensor, torch.Tensor]:
    """StreamingCrossAttention.step on projected q (R, N*n, d) and this step's rotated keys and values
    (N*R, H, Tk, Dh); returns the merged attention (R, N*n, d) before out_proj and the seen mask
    (R, N*n, 1). With `v_null` (R, H, Dh) the rows are guided pairs: `k`, `v` and the rings of `st`
    hold the conditioned rows only, and the unconditional rows' attention is the null values."""
    H = layer.num_heads
    Tk = k.shape[2]
    qh = _rot(_to_rows(q, N, R, n, H), t.q_rot)
    q_times, k_times = t.q_times, t.k_times
    if v_null is not None:
        qh, q_times, k_times = cond_rows(qh, R), cond_rows(q_times, R), cond_rows(k_times, R)
    # n == 1: the model's invariant k_offset = 4 q_offset makes the write evict no visible key
    att, seen = layer._attend_and_write(qh, q_times, st, k, v, k_times, n == 1, guard_empty=True,
                                        shared=t.shared("expert_cross"), attend=t.attend)
    if v_null is not None:
        att, seen = null_attention(att, seen, v_null, R)  # type: ignore[arg-type]
    st["k_offset"].add_(Tk)  # type: ignore[union-attr]
    st["q_offset"].add_(n)  # type: ignore[union-attr]
    seen_r = seen.view(N, R, n, 1).permute(1, 0, 2, 3).reshape(R, N * n, 1)  # type: ignore[union-attr]
    return _from_rows(att, N, R, n), seen_r


def _self(layer: StreamingSelfAttention, st: StreamState, qkv: torch.Tensor, N: int, R: int, n: int,
          t: StepTables) -> torch.Tensor:
    """StreamingSelfAttention._step on projected q|k|v (R, N*n, 3d); merged attention (R, N*n, d).
    The token rings of the experts and the fuse share their masks and write slots (``"token"``)."""
    qkvh = _to_rows(qkv, N, R, n, 3 * layer.num_heads)  # (N*R, 3H, n, Dh)
    return _from_rows(self_attend_heads(layer, st, qkvh, t), N, R, n)


def self_attend_heads(layer: StreamingSelfAttention, st: StreamState, qkvh: torch.Tensor,
                      t: StepTables) -> torch.Tensor:
    """One step of `layer`'s token attention on q|k|v heads (rows, 3H, n, Dh): q and k rotated
    together with the step's tables, the token ring written (its masks and write slots shared by
    the experts and the fuse, ``"token"``), the offset advanced; attention heads (rows, H, n, Dh)."""
    H, n = layer.num_heads, qkvh.shape[2]
    qk = _rot(qkvh[:, :2 * H], t.pos_rot)
    q, k, v = qk[:, :H], qk[:, H:], qkvh[:, 2 * H:]
    out, _ = layer._attend_and_write(q, t.pos, st, k, v, t.pos, n <= layer.max_step, guard_empty=False,
                                     shared=t.shared("token"), attend=t.attend)
    st["offset"].add_(n)  # type: ignore[union-attr]
    return out
