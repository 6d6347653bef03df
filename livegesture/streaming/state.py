"""Explicit streaming state: nested dicts of preallocated tensors, batch dimension first.

A state holds everything a streaming module remembers between calls, for a batch
of independent sessions. Every tensor's first dimension is the session index and
every tensor's all-zero value means "fresh session", so resetting sessions,
saving, restoring and selecting sessions are the same few generic operations.
"""

from __future__ import annotations

from typing import Union

import torch

StreamState = dict[str, Union[torch.Tensor, "StreamState"]]


def state_clone(state: StreamState) -> StreamState:
    """A deep copy (save)."""
    return {k: state_clone(v) if isinstance(v, dict) else v.clone() for k, v in state.items()}


def state_copy_(dst: StreamState, src: StreamState) -> None:
    """Copy `src` into the preallocated `dst` in place (restore)."""
    if dst.keys() != src.keys():
        raise ValueError(f"state keys differ: {sorted(dst)} vs {sorted(src)}")
    for k, v in dst.items():
        if isinstance(v, dict):
            state_copy_(v, src[k])  # type: ignore[arg-type]
        else:
            v.copy_(src[k])  # type: ignore[arg-type]


def state_reset_(state: StreamState, mask: torch.Tensor | None = None) -> None:
    """Return the sessions where `mask` (B,) is True (all if None) to the fresh state, in place."""
    for v in state.values():
        if isinstance(v, dict):
            state_reset_(v, mask)
        elif mask is None:
            v.zero_()
        else:
            m = mask.to(device=v.device, dtype=torch.bool).view(-1, *([1] * (v.dim() - 1)))
            v.masked_fill_(m, 0)


def state_select(state: StreamState, index: torch.Tensor | list[int]) -> StreamState:
    """The sessions at `index` as a new state (gather along the batch dimension)."""
    idx = torch.as_tensor(index, dtype=torch.long)
    return {k: state_select(v, idx) if isinstance(v, dict) else v.index_select(0, idx.to(v.device))
            for k, v in state.items()}


def state_assign_(dst: StreamState, index: torch.Tensor | list[int], src: StreamState) -> None:
    """Write the sessions of `src` into `dst` at `index` (scatter along the batch dimension)."""
    idx = torch.as_tensor(index, dtype=torch.long)
    for k, v in dst.items():
        if isinstance(v, dict):
            state_assign_(v, idx, src[k])  # type: ignore[arg-type]
        else:
            v.index_copy_(0, idx.to(v.device), src[k])  # type: ignore[arg-type]


def state_detach_(state: StreamState) -> StreamState:
    """Cut the autograd history of every tensor in place (truncated BPTT across streamed calls).

    Call it between two training chunks: later losses then backpropagate only into
    the chunks after the cut, while the values carried over stay the same (same
    tensors, same storage, so references held elsewhere see it too). Tensors
    without history are left alone (inference tensors included). A state tensor
    that is a view, which ``detach_`` cannot handle, is replaced by its detached
    alias (same storage). Returns `state` for chaining.
    """
    for k, v in state.items():
        if isinstance(v, dict):
            state_detach_(v)
        elif v.requires_grad or v.grad_fn is not None:
            if v._is_view():
                state[k] = v.detach()
            else:
                v.detach_()
    return state


def state_nbytes(state: StreamState) -> int:
    """Total bytes held, to check that memory stays constant over a stream."""
    return sum(state_nbytes(v) if isinstance(v, dict) else v.numel() * v.element_size()
               for v in state.values())
