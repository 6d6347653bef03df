"""Sliding-window self- and cross-attention with a fixed-capacity ring-buffer KV cache.

Both layers work the same way for any call length (offline = one call with the
whole sequence): the queries of a call attend over ``[cached slots ; keys of this
call]`` with a boolean mask built from absolute key/query times (window,
causality, slot validity); then the last ``min(Tk, C)`` keys of the call are
written into the ring at slot ``time % C``. Keys are stored already rotated
(RoPE), so a cached key is never recomputed.

State (batch first, all zeros = fresh session):

* ``k``, ``v`` ``(B, heads, C, Dh)``: the ring;
* ``pos`` ``(B, C)`` int64: the time of each slot **plus one** (0 = empty slot);
* offsets ``(B,)`` int64: positions consumed (per session, so sessions of one batch
  may be at different absolute times).
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .base import StreamingModule
from .rope import RotaryEmbedding
from .state import StreamState


class _WindowAttention(StreamingModule):
    """Shared projections, ring cache and masked attention."""

    def __init__(self, dim: int, kv_dim: int, num_heads: int, window: int, capacity: int,
                 rope: bool, dropout: float):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"num_heads={num_heads} does not divide dim={dim}")
        if window < 1:
            raise ValueError("window must be >= 1")
        self.dim = dim
        self.kv_dim = kv_dim
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.window = window
        self.capacity = capacity
        self.dropout = dropout
        self.q_proj = nn.Linear(dim, dim)
        self.k_proj = nn.Linear(kv_dim, dim)
        self.v_proj = nn.Linear(kv_dim, dim)
        self.out_proj = nn.Linear(dim, dim)
        self.rope = RotaryEmbedding(self.head_dim) if rope else None

    def extra_repr(self) -> str:
        return f"heads={self.num_heads}, window={self.window}, capacity={self.capacity}"

    def _cache(self, batch_size: int, device, dtype) -> StreamState:
        device, dtype = self._dd(device, dtype)
        shape = (batch_size, self.num_heads, self.capacity, self.head_dim)
        return {"k": torch.zeros(shape, device=device, dtype=dtype),
                "v": torch.zeros(shape, device=device, dtype=dtype),
                "pos": torch.zeros(batch_size, self.capacity, device=device, dtype=torch.long)}

    def _heads(self, t: torch.Tensor) -> torch.Tensor:
        B, T, _ = t.shape
        return t.view(B, T, self.num_heads, self.head_dim).transpose(1, 2)

    def _keys(self, kv: torch.Tensor, times: torch.Tensor,
              projected: tuple[torch.Tensor, torch.Tensor] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        k_lin, v_lin = projected if projected is not None else (self.k_proj(kv), self.v_proj(kv))
        k, v = self._heads(k_lin), self._heads(v_lin)
        if self.rope is not None:
            k = self.rope(k, times)
        return k, v

    def _attend(self, q: torch.Tensor, q_times: torch.Tensor, state: StreamState, k: torch.Tensor,
                v: torch.Tensor, k_times: torch.Tensor, guard_empty: bool,
                shared: dict | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """q (B,H,Tq,Dh) at q_times (B,Tq) over cache + new keys at k_times (B,Tk).

        Returns the attention output and, with `guard_empty`, a (B, Tq, 1) bool mask of
        the queries that saw at least one key (the others must be zeroed by the caller)."""
        keys = torch.cat([state["k"], k], dim=2)
        vals = torch.cat([state["v"], v], dim=2)
        mask, seen = self._memo(shared, "mask", lambda: self._mask_concat(state, q_times, k_times, guard_empty))
        out = F.scaled_dot_product_attention(q, keys, vals, attn_mask=mask,
                                             dropout_p=self.dropout if self.training else 0.0)
        return out, seen

    def _mask_concat(self, state: StreamState, q_times: torch.Tensor, k_times: torch.Tensor,
                     guard_empty: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        B, Tk = k_times.shape
        cpos = state["pos"]
        kt = torch.cat([cpos - 1, k_times], dim=1)  # (B, C+Tk)
        valid = torch.cat([cpos > 0, torch.ones(B, Tk, dtype=torch.bool, device=cpos.device)], dim=1)
        return self._window_mask(valid, kt, q_times, guard_empty)

    def _window_mask(self, valid: torch.Tensor, kt: torch.Tensor, q_times: torch.Tensor,
                     guard_empty: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(B, 1, Tq, Tk) mask of the keys at times `kt` (B, Tk) (`valid`: filled) each query sees, and
        the guard (B, Tq, 1) of the queries that see any (the others are opened, to be zeroed)."""
        d = q_times[:, :, None] - kt[:, None, :]  # (B, Tq, Tk)
        mask = valid[:, None, :] & (d >= 0) & (d < self.window)
        seen = None
        if guard_empty:  # a row with no visible key would be NaN: open it, zero it afterwards
            seen = mask.any(dim=-1, keepdim=True)
            mask = mask | ~seen
        return mask[:, None], seen

    @staticmethod
    def _memo(shared: dict | None, key: str, make):
        """``make()``, or its value memoised in `shared` (a per-step dict that a caller passes to every
        layer whose ring positions and times are identical, e.g. the same attention kind in every block)."""
        if shared is None:
            return make()
        if key not in shared:
            shared[key] = make()
        return shared[key]

    def _attend_ring(self, q: torch.Tensor, q_times: torch.Tensor, state: StreamState,
                     guard_empty: bool, shared: dict | None = None,
                     attend: Callable | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """:meth:`_attend` after the call's keys were already written into the ring: no concatenation
        of cache and new keys (a copy of the whole ring per call). Equal to :meth:`_attend` (up to the
        order of the softmax sum) when the write evicted no key visible to these queries. `attend`:
        ``(q, k, v, bool mask) -> out`` to run instead of the library's SDPA (the compiled step's
        ring kernel, docs/design.md §6), inference only."""
        def make():
            cpos = state["pos"]
            return self._window_mask(cpos > 0, cpos - 1, q_times, guard_empty)

        mask, seen = self._memo(shared, "mask", make)
        if attend is not None and not self.training:
            return attend(q, state["k"], state["v"], mask), seen
        out = F.scaled_dot_product_attention(q, state["k"], state["v"], attn_mask=mask,
                                             dropout_p=self.dropout if self.training else 0.0)
        return out, seen

    def _attend_and_write(self, q: torch.Tensor, q_times: torch.Tensor, state: StreamState, k: torch.Tensor,
                          v: torch.Tensor, k_times: torch.Tensor, write_first: bool, guard_empty: bool,
                          shared: dict | None = None, attend: Callable | None = None
                          ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Attend over cache + this call's keys and store the keys in the ring. `write_first` (the
        caller knows the write evicts no key these queries see) writes first and attends on the ring
        alone, which avoids concatenating the whole cache with the new keys. `shared`: a per-step memo
        of the mask and write slots for layers with identical ring positions (see :meth:`_memo`)."""
        if write_first:
            self._write(state, k, v, k_times, shared)
            return self._attend_ring(q, q_times, state, guard_empty, shared, attend)
        out = self._attend(q, q_times, state, k, v, k_times, guard_empty, shared)
        self._write(state, k, v, k_times, shared)
        return out

    def _write(self, state: StreamState, k: torch.Tensor, v: torch.Tensor, k_times: torch.Tensor,
               shared: dict | None = None) -> None:
        """Write the last min(Tk, C) keys into the ring at slot time % C."""
        B, H, Tk, Dh = k.shape
        n = min(Tk, self.capacity)
        if n == 0:
            return

        # inside a compiled step, the same writes as index_put_ (n distinct slots per row): inductor
        # makes scatter_ on a state tensor a copy of the whole ring; eager, scatter_ is cheaper
        traced = torch.compiler.is_compiling()

        def make():
            t = k_times[:, Tk - n:]
            slots = torch.remainder(t, self.capacity)
            if traced:
                rows = torch.arange(B, device=slots.device)[:, None]
                heads = torch.arange(H, device=slots.device)[None, :, None]
                return (rows, slots), (rows[:, :, None], heads, slots[:, None, :]), t + 1
            return slots, slots[:, None, :, None].expand(B, H, n, Dh), t + 1

        at, where, stamp = self._memo(shared, "write", make)
        if traced:
            state["k"].index_put_(where, k[:, :, Tk - n:])
            state["v"].index_put_(where, v[:, :, Tk - n:])
            state["pos"].index_put_(at, stamp)
        else:
            state["k"].scatter_(2, where, k[:, :, Tk - n:])
            state["v"].scatter_(2, where, v[:, :, Tk - n:])
            state["pos"].scatter_(1, at, stamp)

    def _merge(self, out: torch.Tensor) -> torch.Tensor:
        B, H, T, Dh = out.shape
        return self.out_proj(out.transpose(1, 2).reshape(B, T, H * Dh))


class StreamingSelfAttention(_WindowAttention):
    """Causal multi-head self-attention over a sliding window of `window` positions.

    The query at absolute position ``p`` sees the keys at positions ``q`` with
    ``0 <= p - q < window`` (itself included). Ring capacity
    ``C = window + max_step - 1``. Because the keys of a call are attended to before
    they are written, any call length works (``max_step`` does not limit it; the
    default ``max_step=1`` gives the minimal ring ``C = window``). Calls longer than
    ``block_size`` are split internally into blocks, which is exactly the streaming path.

    ``step(x (B, T, dim), state) -> (B, T, dim)``; state keys ``k, v, pos, offset``.
    """

    def __init__(self, dim: int, num_heads: int, window: int, max_step: int = 1, rope: bool = True,
                 dropout: float = 0.0):
        if max_step < 1:
            raise ValueError("max_step must be >= 1")
        super().__init__(dim, dim, num_heads, window, window + max_step - 1, rope, dropout)
        self.max_step = max_step

    def init_state(self, batch_size: int, device=None, dtype=None) -> StreamState:
        state = self._cache(batch_size, device, dtype)
        state["offset"] = torch.zeros(batch_size, dtype=torch.long, device=state["pos"].device)
        return state

    #: calls longer than this are processed in blocks of this many positions (same result,
    #: memory O(block * (C + block)) instead of O(T^2) for long offline sequences)
    block_size: int = 1024

    def step(self, x: torch.Tensor, state: StreamState) -> torch.Tensor:
        T = x.shape[1]
        if T > self.block_size:
            return torch.cat([self._step(x[:, a:a + self.block_size], state)
                              for a in range(0, T, self.block_size)], dim=1)
        return self._step(x, state)

    def _step(self, x: torch.Tensor, state: StreamState) -> torch.Tensor:
        B, T, _ = x.shape
        if T == 0:
            return x.new_zeros(B, 0, self.dim)
        offset = state["offset"]
        pos = offset[:, None] + torch.arange(T, device=offset.device)  # (B, T)
        q = self._heads(self.q_proj(x))
        if self.rope is not None:
            q = self.rope(q, pos)
        k, v = self._keys(x, pos)
        # with T <= max_step the write evicts only keys older than every query's window
        out, _ = self._attend_and_write(q, pos, state, k, v, pos, T <= self.max_step, guard_empty=False)
        offset.add_(T)
        return self._merge(out)


class StreamingCrossAttention(_WindowAttention):
    """Attention from a query stream to a key/value stream with its own time axis.

    Query number ``n`` of a session has time ``n*query_stride + query_offset`` in key
    units (default: motion token n covers audio-feature frames 4n..4n+3), key number
    ``m`` has time ``m``; a query at time ``t`` sees keys with ``0 <= t - m < window``.
    RoPE uses these times for both sides. A query that sees no key (the caller has
    not pushed its keys yet) gives zeros.

    ``step(x_q (B, Tq, dim), state, kv (B, Tk, kv_dim)) -> (B, Tq, dim)``: the keys of
    the call are visible to its queries (as if appended first). Either length may be 0.
    Ring capacity ``C = window + max_kv_step - 1``: after a call the key stream may be
    at most ``max_kv_step`` keys ahead of the time of the session's next query
    (``keys pushed - t_next <= max_kv_step``) for that query to keep its full window.
    State keys ``k, v, pos, k_offset, q_offset``.
    """

    def __init__(self, dim: int, kv_dim: int, num_heads: int, window: int, max_kv_step: int,
                 query_stride: int = 4, query_offset: int = 3, rope: bool = True, dropout: float = 0.0):
        if max_kv_step < 1:
            raise ValueError("max_kv_step must be >= 1")
        super().__init__(dim, kv_dim, num_heads, window, window + max_kv_step - 1, rope, dropout)
        self.max_kv_step = max_kv_step
        self.query_stride = query_stride
        self.query_offset = query_offset

    def init_state(self, batch_size: int, device=None, dtype=None) -> StreamState:
        state = self._cache(batch_size, device, dtype)
        dev = state["pos"].device
        state["k_offset"] = torch.zeros(batch_size, dtype=torch.long, device=dev)
        state["q_offset"] = torch.zeros(batch_size, dtype=torch.long, device=dev)
        return state

    def query_times(self, state: StreamState, length: int) -> torch.Tensor:
        """Key-unit times (B, length) of the next `length` queries."""
        n = state["q_offset"][:, None] + torch.arange(length, device=state["q_offset"].device)
        return n * self.query_stride + self.query_offset

    def step(self, x: torch.Tensor, state: StreamState, kv: torch.Tensor | None = None,
             write_first: bool = False, kv_projected: tuple[torch.Tensor, torch.Tensor] | None = None,
             query_groups: int = 1) -> torch.Tensor:
        """`write_first`: the caller guarantees ``k_offset + Tk - t_first_query <= max_kv_step`` (the keys
        of this call evict no key its queries see), so the keys go into the ring before attending and
        no cache + keys concatenation is built (the model's 1-token steps: 4 frames, query at 4 tau + 3).
        `kv_projected`: ``(k_proj(kv), v_proj(kv))`` (B, Tk, dim) computed by the caller instead of `kv`.
        `query_groups` G: `x` (B, G*n, dim) holds G query streams of n positions each (group-major) that
        share this key stream and its ring (e.g. the fuse's 4 region streams of one session): they all
        sit at the session's next n query times, and the query counter advances by n."""
        B, Tq, _ = x.shape
        if Tq % query_groups:
            raise ValueError(f"{Tq} queries do not split into {query_groups} groups")
        n_q = Tq // query_groups
        if kv_projected is not None:
            kv = kv_projected[0]
        if kv is None:
            kv = x.new_zeros(B, 0, self.kv_dim)
        if kv.shape[0] != B:
            raise ValueError(f"kv batch {kv.shape[0]} != query batch {B}")
        Tk = kv.shape[1]
        k_offset = state["k_offset"]
        k_times = k_offset[:, None] + torch.arange(Tk, device=k_offset.device)
        k, v = self._keys(kv, k_times, kv_projected)
        if Tq > 0:
            q_times = self.query_times(state, n_q)
            if query_groups > 1:
                q_times = q_times.repeat(1, query_groups)
            q = self._heads(self.q_proj(x))
            if self.rope is not None:
                q = self.rope(q, q_times)
            att, seen = self._attend_and_write(q, q_times, state, k, v, k_times, write_first, guard_empty=True)
            out = self._merge(att).masked_fill(~seen, 0.0)  # no visible key: exactly 0
        else:
            out = x.new_zeros(B, 0, self.dim)
            self._write(state, k, v, k_times)
        k_offset.add_(Tk)
        state["q_offset"].add_(n_q)
        return out

    def forward(self, x: torch.Tensor, state: StreamState | None = None,
                kv: torch.Tensor | None = None) -> torch.Tensor:
        if state is None:
            state = self.init_state(x.shape[0], x.device, x.dtype)
        return self.step(x, state, kv)
