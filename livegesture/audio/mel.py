"""Causal log-mel front end: 16 kHz samples in, 80 log-mel bins at 100 Hz out.

Causal framing (docs/design.md §1): mel frame ``m`` covers samples
``[(m+1)*160 - 400, (m+1)*160)`` -- a 25 ms Hann window that *ends* at the
frame's timestamp ``(m+1)*10 ms`` -- with zeros before the start of the stream
(the fresh state). It is emitted by the call in which sample ``(m+1)*160 - 1``
arrives, so after ``n`` samples exactly ``n // 160`` frames exist, and no frame
ever depends on a sample at or after its own end.

Value of a frame: ``log(clamp(mel_fb @ |rfft(hann * frame)|^2, min=1e-5))``
(natural log of mel power; the floor 1e-5 ~ -50 dB relative to a full-scale
sine's bin power keeps silence and the zero-padded stream start finite and
constant at ``log(1e-5) = -11.51``). The filterbank is ``librosa.filters.mel``
(sr 16 kHz, n_fft 400, fmin 0, fmax 8000, Slaney norm), the window the periodic
Hann of ``torch.hann_window(400)``.

State per session (preallocated, all zeros = fresh): ``buf`` the last 399
samples (zeros before the stream start) and ``pending`` the number of samples
pushed since the last frame boundary (``n % 160``), int64 kept on the CPU
whatever the device of the rest, so a step knows how many frames it emits
without reading device memory. Sessions batched in one call must be in phase
(same ``n % 160``); the step checks it and raises ``ValueError`` otherwise.
"""

from __future__ import annotations

import librosa
import numpy as np
import torch

from ..streaming.base import StreamingModule
from ..streaming.state import StreamState

SAMPLE_RATE = 16000
HOP = 160
WIN = 400
N_FFT = 400
LOG_FLOOR = 1e-5


def _host_phase(counter: torch.Tensor, what: str) -> int:
    """The common value of a per-session phase counter (one host read; all sessions must agree)."""
    if counter.numel() == 0:
        return 0
    lo, hi = torch.stack([counter.min(), counter.max()]).tolist()
    if lo != hi:
        raise ValueError(f"sessions batched in one step must be in phase ({what} differs: {lo}..{hi}); "
                         "step out-of-phase sessions separately (state_select / state_assign_)")
    return int(lo)


class CausalLogMel(StreamingModule):
    """Streaming causal log-mel spectrogram: ``step(samples (B, N), state) -> (B, N_frames, n_mels)``."""

    def __init__(self, n_mels: int = 80, sample_rate: int = SAMPLE_RATE, fmin: float = 0.0,
                 fmax: float | None = 8000.0, log_floor: float = LOG_FLOOR):
        super().__init__()
        if sample_rate != SAMPLE_RATE:
            raise ValueError(f"CausalLogMel expects {SAMPLE_RATE} Hz audio (resample on entry), got {sample_rate}")
        self.n_mels = n_mels
        self.sample_rate = sample_rate
        self.hop = HOP
        self.win = WIN
        self.n_fft = N_FFT
        self.log_floor = float(log_floor)
        # both computed in float64 and stored as float32 buffers (cast to the compute dtype in use)
        fb = librosa.filters.mel(sr=sample_rate, n_fft=N_FFT, n_mels=n_mels, fmin=fmin, fmax=fmax,
                                 dtype=np.float64)
        self.register_buffer("mel_fb", torch.from_numpy(fb).float().contiguous())  # (n_mels, 201)
        self.register_buffer("window", torch.hann_window(WIN, periodic=True, dtype=torch.float64).float())

    # --- frame bookkeeping -------------------------------------------------------------------
    @staticmethod
    def frames_available(n_samples: int) -> int:
        """Number of mel frames complete after `n_samples` samples: ``n // 160``."""
        return max(int(n_samples), 0) // HOP

    @staticmethod
    def frame_end_sample(m: int) -> int:
        """Exclusive end sample of mel frame `m` (its samples are ``[end - 400, end)``)."""
        return (m + 1) * HOP

    # --- streaming protocol ------------------------------------------------------------------
    def init_state(self, batch_size: int, device=None, dtype=None) -> StreamState:
        device, dtype = self._dd(device, dtype)
        if not dtype.is_floating_point:
            dtype = torch.get_default_dtype()
        return {"buf": torch.zeros(batch_size, WIN - 1, device=device, dtype=dtype),
                # host side on purpose (as CausalConv1d's): the step reads it without a device sync
                "pending": torch.zeros(batch_size, dtype=torch.long)}

    def _dd(self, device, dtype):
        # the buffers carry the module's device/dtype (it has no parameters)
        return (torch.device(device) if device is not None else self.mel_fb.device,
                dtype or self.mel_fb.dtype)

    def step(self, x: torch.Tensor, state: StreamState) -> torch.Tensor:
        """Push samples `x` (B, N) for every session; returns the frames completed in this call."""
        return self.advance(x, state, _host_phase(state["pending"], "samples pushed mod 160"))

    def advance(self, x: torch.Tensor, state: StreamState, pending: int) -> torch.Tensor:
        """:meth:`step` with the sessions' common ``n % 160`` already known on the host (no sync)."""
        if x.dim() != 2:
            raise ValueError(f"samples must be (B, N), got {tuple(x.shape)}")
        buf: torch.Tensor = state["buf"]  # type: ignore[assignment]
        x = x.to(buf.dtype)
        # seq[i] is absolute sample n_prev - 399 + i; the first new frame starts at 159 - pending
        seq = torch.cat([buf, x], dim=1)  # (B, 399 + N), transient (per call), not a grown cache
        buf.copy_(seq[:, seq.shape[1] - (WIN - 1):])
        state["pending"].add_(x.shape[1]).remainder_(HOP)  # type: ignore[union-attr]
        n_frames = (pending + x.shape[1]) // HOP
        if n_frames == 0:
            return x.new_zeros(x.shape[0], 0, self.n_mels)
        frames = seq[:, HOP - 1 - pending:].unfold(1, WIN, HOP)  # (B, M, 400)
        return self.log_mel_frames(frames)

    def log_mel_frames(self, frames: torch.Tensor) -> torch.Tensor:
        """log-mel of already cut frames (..., 400) -> (..., n_mels)."""
        spec = torch.fft.rfft(frames * self.window.to(frames.dtype), n=self.n_fft, dim=-1)
        power = spec.real.square() + spec.imag.square()  # (..., 201)
        mel = power @ self.mel_fb.to(power.dtype).T
        return mel.clamp(min=self.log_floor).log()
