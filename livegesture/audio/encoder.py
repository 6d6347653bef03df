"""Streaming audio (+ optional text) encoder: 16 kHz samples -> one feature per 30 Hz motion frame.

Pipeline (docs/design.md §4), every stage causal and stateful-streaming:

1. :class:`CausalLogMel` -- 80 log-mel bins at 100 Hz, frame ``m`` = samples
   ``[(m+1)*160 - 400, (m+1)*160)``; then a fixed affine normalisation
   ``(logmel - mel_offset) / mel_scale`` (constants measured on BEAT2 speech).
2. Projector: ``CausalConv1d(n_mels, dim, proj_kernel)`` + GELU.
3. Pyramid: one pre-norm residual block per dilation ``d``:
   ``h + Dropout(Linear(GELU(CausalConv1d(LayerNorm(h), kernel, dilation=d))))``.
   LayerNorm is over channels of one frame only; nothing looks across time except
   the causal convolutions. A final LayerNorm closes the pyramid.
4. Causal alignment to 30 Hz. Motion frame ``t`` covers ``[t/30, (t+1)/30)`` s,
   i.e. ends at sample ``(t+1)*1600/3``. Its last usable mel frame is the latest
   one that ends at or before that: ``m_t = floor(10(t+1)/3) - 1``. The feature
   of frame ``t`` is ``Linear(concat(h[m_t - A + 1], ..., h[m_t]))`` with
   ``A = align_frames`` (default 4) pyramid outputs.

   Why a learned window of the latest ``A`` mel frames rather than the mean of
   the mel frames ending inside frame ``t`` or the single latest one: 10 mel
   frames fall into every 3 motion frames (3, 3, 4 per frame), so a mean would
   average a phase-dependent count (its centre of mass jitters by 5 ms) and the
   latest frame alone would drop 2 of every 3 pyramid outputs. A window of 4
   frames (40 ms >= 33.3 ms) always covers the whole motion frame, has a fixed
   shape, and its linear layer can learn the mean, the latest frame or any
   causal weighting in between. It still uses only mel frames ending at or
   before the end of frame ``t`` (zero look-ahead), see ``tests/audio``.

After ``n`` samples have been pushed in total exactly ``floor(3n/1600)`` motion
frames have features (:meth:`AudioEncoder.frames_available`). ``step(samples
(B, N), state) -> (B, F, dim)`` returns the features of the frames completed by
this call. Sessions batched in one call must be in phase (same total samples
modulo 1600); the phase counter lives on the CPU, so the step never reads
device memory to decide how many frames it emits.

Optional text (``vocab_size > 0``): :meth:`AudioEncoder.embed_words` adds a
word embedding per motion frame (id 0 = no word = zero vector).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..streaming.base import StreamingModule
from ..streaming.conv import CausalConv1d
from ..streaming.state import StreamState
from .mel import HOP, LOG_FLOOR, SAMPLE_RATE, WIN, CausalLogMel, _host_phase

MOTION_FPS = 30
#: samples in one period of the mel/motion frame pattern: 10 mel frames = 3 motion frames = 100 ms
CYCLE = 1600
MELS_PER_CYCLE = CYCLE // HOP  # 10
FRAMES_PER_CYCLE = CYCLE * MOTION_FPS // SAMPLE_RATE  # 3


def frames_available(n_samples: int) -> int:
    """Motion frames (30 Hz) whose features exist after `n_samples` 16 kHz samples: ``floor(3n/1600)``."""
    return (max(int(n_samples), 0) * FRAMES_PER_CYCLE) // CYCLE


def frames_end_sample(n_frames: int) -> int:
    """Samples needed for the first `n_frames` motion frames: ``ceil(1600 n / 3)`` (the inverse of
    :func:`frames_available`: the fewest samples that give `n_frames` frames)."""
    return -(-max(int(n_frames), 0) * CYCLE // FRAMES_PER_CYCLE)


def last_mel_index(t: int) -> int:
    """Latest mel frame that ends at or before the end of motion frame `t`: ``floor(10(t+1)/3) - 1``."""
    return (MELS_PER_CYCLE * (t + 1)) // FRAMES_PER_CYCLE - 1


@dataclass(frozen=True)
class AudioEncoderConfig:
    n_mels: int = 80
    dim: int = 128
    proj_kernel: int = 3
    kernel_size: int = 3  # pyramid kernel
    dilations: tuple[int, ...] = (1, 2, 4, 8)
    align_frames: int = 4  # pyramid outputs (10 ms each) combined into one 30 Hz feature
    dropout: float = 0.1
    vocab_size: int = 0  # 0 = no text input
    mel_offset: float = -8.5  # fixed input normalisation (BEAT2 speech log-mel mean ~ -8.6, std ~ 3.5)
    mel_scale: float = 3.5
    log_floor: float = LOG_FLOOR

    def __post_init__(self) -> None:
        if self.align_frames < 1 or self.proj_kernel < 1 or self.kernel_size < 1:
            raise ValueError("align_frames, proj_kernel and kernel_size must be >= 1")
        object.__setattr__(self, "dilations", tuple(int(d) for d in self.dilations))


class _ResidualBlock(StreamingModule):
    """Pre-norm residual causal conv block (per-frame LayerNorm, causal dilated conv, GELU, pointwise)."""

    def __init__(self, dim: int, kernel_size: int, dilation: int, dropout: float):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.conv = CausalConv1d(dim, dim, kernel_size, dilation=dilation)
        self.act = nn.GELU()
        self.pw = nn.Linear(dim, dim)
        self.drop = nn.Dropout(dropout)

    def step(self, x: torch.Tensor, state: StreamState) -> torch.Tensor:
        return x + self.drop(self.pw(self.act(self.conv.step(self.norm(x), state["conv"]))))


class AudioEncoder(StreamingModule):
    """Streaming audio encoder: ``step(samples (B, N), state) -> (B, F, dim)`` 30 Hz features."""

    def __init__(self, config: AudioEncoderConfig | None = None, **overrides):
        super().__init__()
        if config is None:
            config = AudioEncoderConfig(**overrides)
        elif overrides:
            raise TypeError("pass either a config or keyword overrides, not both")
        self.config = c = config
        self.mel = CausalLogMel(n_mels=c.n_mels, log_floor=c.log_floor)
        self.proj = CausalConv1d(c.n_mels, c.dim, c.proj_kernel)
        self.proj_act = nn.GELU()
        self.blocks = nn.ModuleList(_ResidualBlock(c.dim, c.kernel_size, d, c.dropout) for d in c.dilations)
        self.out_norm = nn.LayerNorm(c.dim)
        self.align = nn.Linear(c.align_frames * c.dim, c.dim)
        self.word_emb = nn.Embedding(c.vocab_size, c.dim, padding_idx=0) if c.vocab_size > 0 else None

    # --- geometry ------------------------------------------------------------------------------
    @property
    def dim(self) -> int:
        return self.config.dim

    @staticmethod
    def frames_available(n_samples: int) -> int:
        """Motion frames with features after `n_samples` samples: ``floor(3 n / 1600)``."""
        return frames_available(n_samples)

    @property
    def mel_context(self) -> int:
        """Earlier mel frames a pyramid output depends on (its causal receptive field minus one)."""
        c = self.config
        return (c.proj_kernel - 1) + sum((c.kernel_size - 1) * d for d in c.dilations)

    @property
    def receptive_field_samples(self) -> float:
        """How far back from the end of a motion frame its feature looks, in samples (worst phase).

        The earliest sample used by frame ``t`` is the first sample of mel frame
        ``m_t - (A - 1) - mel_context``; the end of frame ``t`` lies up to 1600/3 - 2*160
        = 106.7 samples after the end of mel frame ``m_t``.
        """
        lag = max(f * CYCLE / FRAMES_PER_CYCLE - HOP * (last_mel_index(f - 1) + 1)
                  for f in range(1, FRAMES_PER_CYCLE + 1))
        return lag + HOP * (self.config.align_frames - 1 + self.mel_context) + WIN

    @property
    def receptive_field_seconds(self) -> float:
        """How far back (seconds before the end of a motion frame) the feature of that frame looks."""
        return self.receptive_field_samples / SAMPLE_RATE

    def first_sample(self, t: int) -> int:
        """Earliest sample the feature of motion frame `t` depends on (may be < 0: the zero padding)."""
        m_first = last_mel_index(t) - (self.config.align_frames - 1) - self.mel_context
        return HOP * (m_first + 1) - WIN

    def window_start(self, first_frame: int) -> int:
        """Latest sample ``s0`` (a multiple of 1600, >= 0) such that encoding a stream that starts at
        ``s0`` gives frames >= `first_frame` the same features as encoding from sample 0."""
        return max(0, self.first_sample(first_frame) // CYCLE * CYCLE)

    def encode_window(self, samples: torch.Tensor, first_frame: int, n_frames: int) -> torch.Tensor:
        """Features of motion frames ``first_frame .. first_frame + n_frames - 1`` of the stream
        `samples` (B, N) (which starts at sample 0), computed offline from only the audio they depend
        on: what a training loop needs for a random window of a long clip. Equal (float tolerance)
        to ``self(samples)[:, first_frame:first_frame + n_frames]``."""
        end = -(-(first_frame + n_frames) * CYCLE // FRAMES_PER_CYCLE)  # ceil: end of the last frame
        if first_frame < 0 or n_frames < 0 or end > samples.shape[1]:
            raise ValueError(f"frames {first_frame}..{first_frame + n_frames} need {end} samples, "
                             f"got {samples.shape[1]}")
        s0 = self.window_start(first_frame)
        off = s0 * FRAMES_PER_CYCLE // CYCLE
        return self(samples[:, s0:end])[:, first_frame - off:first_frame - off + n_frames]

    # --- streaming protocol ----------------------------------------------------------------------
    def init_state(self, batch_size: int, device=None, dtype=None) -> StreamState:
        device, dtype = self._dd(device, dtype)
        state = super().init_state(batch_size, device, dtype)
        # the last `align_frames` pyramid outputs (a motion frame may still need the newest of them)
        state["hist"] = torch.zeros(batch_size, self.config.align_frames, self.config.dim,
                                    device=device, dtype=dtype)
        # samples pushed modulo 1600, on the host on purpose (see CausalConv1d)
        state["phase"] = torch.zeros(batch_size, dtype=torch.long)
        return state

    def forward(self, x: torch.Tensor, state: StreamState | None = None) -> torch.Tensor:
        # the state takes the module's dtype, not the audio's (int16 or float32 audio into a float64 model)
        if state is None:
            state = self.init_state(x.shape[0], x.device)
        return self.step(x, state)

    def step(self, x: torch.Tensor, state: StreamState) -> torch.Tensor:
        """Push samples `x` (B, N) (any float/int dtype, converted to the state's) for every session;
        returns the (B, F, dim) features of the motion frames completed by this call."""
        if x.dim() != 2:
            raise ValueError(f"samples must be (B, N), got {tuple(x.shape)}")
        return self.step_at(x, state, self.phase(state))

    @staticmethod
    def phase(state: StreamState) -> int:
        """The sessions' common samples pushed modulo 1600 (a host read: the counter is on the CPU)."""
        return _host_phase(state["phase"], "samples pushed mod 1600")  # type: ignore[arg-type]

    def step_at(self, x: torch.Tensor, state: StreamState, p: int) -> torch.Tensor:
        """:meth:`step` with the phase `p` (:meth:`phase`) already read: the rest is a function of
        tensors and of the shapes, which ``torch.compile`` traces once per phase
        (:class:`livegesture.engine.compiled.CompiledEncode`)."""
        A = self.config.align_frames
        hist: torch.Tensor = state["hist"]  # type: ignore[assignment]
        n = x.shape[1]
        m0, m1 = p // HOP, (p + n) // HOP  # mel frames done before / after, counted from the cycle start
        f0, f1 = frames_available(p), frames_available(p + n)  # motion frames likewise

        mel = self.mel.advance(x.to(hist.dtype), state["mel"], p % HOP)  # (B, m1 - m0, n_mels)
        if m1 > m0:
            h = (mel - self.config.mel_offset) / self.config.mel_scale
            h = self.proj_act(self.proj.step(h, state["proj"]))
            for i, block in enumerate(self.blocks):
                h = block.step(h, state[f"blocks.{i}"])
            h = self.out_norm(h)
        else:  # no new mel frame: the convolutions' states are unchanged (a motion frame may still end)
            h = hist.new_zeros(x.shape[0], 0, self.config.dim)

        seq = torch.cat([hist, h], dim=1)  # (B, A + M, dim); seq[:, j] is mel frame m0 - A + j
        hist.copy_(seq[:, seq.shape[1] - A:])
        state["phase"].add_(n).remainder_(CYCLE)  # type: ignore[union-attr]
        if f1 == f0:
            return h.new_zeros(x.shape[0], 0, self.config.dim)
        # window of frame t = mel frames m_t - A + 1 .. m_t = seq positions m_t - m0 + 1 .. m_t - m0 + A
        t = torch.arange(f0, f1, device=seq.device)
        starts = torch.div(MELS_PER_CYCLE * (t + 1), FRAMES_PER_CYCLE, rounding_mode="floor") - m0  # m_t - m0 + 1
        win = seq.unfold(1, A, 1).index_select(1, starts)  # (B, F, dim, A), oldest -> newest
        win = win.transpose(2, 3).reshape(x.shape[0], f1 - f0, A * self.config.dim)
        return self.align(win)

    # --- text ----------------------------------------------------------------------------------------
    def embed_words(self, features: torch.Tensor, word_ids: torch.Tensor) -> torch.Tensor:
        """``features (B, F, dim) + embedding(word_ids (B, F))``; id 0 (no word) adds zeros."""
        if self.word_emb is None:
            raise ValueError("this AudioEncoder has no text input (config.vocab_size == 0)")
        if word_ids.shape != features.shape[:2]:
            raise ValueError(f"word_ids {tuple(word_ids.shape)} must match features {tuple(features.shape[:2])}")
        return features + self.word_emb(word_ids.long()).to(features.dtype)
