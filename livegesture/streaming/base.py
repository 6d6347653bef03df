"""The streaming module base class: one code path for offline and streaming.

``y = m(x)`` runs a whole sequence from a fresh state. ``s = m.init_state(B)``
then ``y = m(x_chunk, s)`` repeatedly runs the same computation chunk by chunk,
updating ``s`` in place; concatenating the chunk outputs equals the offline
output for any chunk schedule. Time is the last-but-one dimension of ``x``
(``(B, T, C)``) unless a subclass says otherwise.
"""

from __future__ import annotations

import torch
from torch import nn

from .state import StreamState


class StreamingModule(nn.Module):
    """Base class: subclasses implement :meth:`init_state` and :meth:`step`."""

    def init_state(self, batch_size: int, device: torch.device | str | None = None,
                   dtype: torch.dtype | None = None) -> StreamState:
        """Preallocated state of `batch_size` fresh sessions (all zeros = fresh)."""
        states: StreamState = {}
        for name, child in self.named_children():
            if isinstance(child, StreamingModule):
                states[name] = child.init_state(batch_size, device, dtype)
            elif isinstance(child, (nn.ModuleList, nn.Sequential)):
                for i, sub in enumerate(child):
                    if isinstance(sub, StreamingModule):
                        states[f"{name}.{i}"] = sub.init_state(batch_size, device, dtype)
        return states

    def step(self, x: torch.Tensor, state: StreamState) -> torch.Tensor:
        """Consume the next chunk of `x` for every session and update `state` in place."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor, state: StreamState | None = None) -> torch.Tensor:
        if state is None:
            state = self.init_state(x.shape[0], x.device, x.dtype)
        return self.step(x, state)

    def _param(self) -> torch.Tensor | None:
        return next(iter(self.parameters()), None)

    def _dd(self, device, dtype) -> tuple[torch.device, torch.dtype]:
        """Resolve device/dtype defaults from the module's parameters."""
        p = self._param()
        return (torch.device(device) if device is not None else (p.device if p is not None else torch.device("cpu")),
                dtype or (p.dtype if p is not None else torch.get_default_dtype()))
