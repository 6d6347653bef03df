"""Turn audio packets of any size into whole frames, for one session, outside the model."""

from __future__ import annotations

from typing import Any

import numpy as np


class ChunkBuffer:
    """Accumulates samples and releases them in whole frames of `frame_size` samples.

    ``push(samples (N,)) -> (n_frames * frame_size,)``: the samples of the frames that
    became complete, in order (an empty array when none). At most ``frame_size - 1``
    samples wait in a preallocated buffer; a packet is copied once whatever its size
    (linear time), so a 1-sample packet and an hour-long one both work.
    """

    def __init__(self, frame_size: int, dtype: Any = np.float32):
        if frame_size < 1:
            raise ValueError("frame_size must be >= 1")
        self.frame_size = int(frame_size)
        self.dtype = np.dtype(dtype)
        self._buf = np.zeros(self.frame_size, dtype=self.dtype)
        self._pending = 0

    @property
    def pending(self) -> int:
        """Samples waiting for their frame to complete (0 <= pending < frame_size)."""
        return self._pending

    def reset(self) -> None:
        self._pending = 0
        self._buf[:] = 0

    def push(self, samples: np.ndarray) -> np.ndarray:
        x = np.asarray(samples, dtype=self.dtype)
        if x.ndim != 1:
            raise ValueError(f"expected a 1-D packet of samples, got shape {x.shape}")
        F, p, n = self.frame_size, self._pending, x.shape[0]
        n_frames = (p + n) // F
        if n_frames == 0:
            self._buf[p:p + n] = x
            self._pending = p + n
            return np.empty(0, dtype=self.dtype)
        out = np.empty(n_frames * F, dtype=self.dtype)
        used = n_frames * F - p  # samples of this packet that go out now
        out[:p] = self._buf[:p]
        out[p:] = x[:used]
        rest = n - used
        self._buf[:rest] = x[used:]
        self._pending = rest
        return out

    def state_dict(self) -> dict[str, Any]:
        return {"frame_size": self.frame_size, "pending": self._pending,
                "buffer": self._buf[:self._pending].copy()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if int(state["frame_size"]) != self.frame_size:
            raise ValueError(f"frame_size {state['frame_size']} != {self.frame_size}")
        buf = np.asarray(state["buffer"], dtype=self.dtype)
        p = int(state["pending"])
        if buf.shape != (p,) or not 0 <= p < self.frame_size:
            raise ValueError("inconsistent ChunkBuffer state")
        self._buf[:] = 0
        self._buf[:p] = buf
        self._pending = p
