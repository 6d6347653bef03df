"""Training windows: aligned motion features, audio and word ids (docs/design.md §1)."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset, default_collate

from ..body.constants import FPS, REGIONS
from ..errors import DataError
from .audio import SAMPLE_RATE
from .beat2 import ClipData
from .features import RegionStats, training_features
from .textgrid import Vocabulary, word_ids_per_frame

#: window starts (and context) are multiples of this many frames: 12 frames = 0.4 s =
#: 6400 samples at 16 kHz, aligned with 4-frame tokens, whole samples and 10 ms mel hops
START_GRID_FRAMES = 12
TOKEN_FRAMES = 4


def audio_samples(frames: int, sample_rate: int = SAMPLE_RATE, fps: int = FPS) -> int:
    """Samples covering `frames` motion frames: ceil(frames * sample_rate / fps)."""
    return -(-frames * sample_rate // fps)


def frame_to_sample(frame: int, sample_rate: int = SAMPLE_RATE, fps: int = FPS) -> int:
    """First sample of motion frame `frame` (floor; exact on the 12-frame grid at 16 kHz)."""
    return frame * sample_rate // fps


class WindowDataset(Dataset):
    """Fixed-length windows over clips that have motion and audio.

    Item: each region -> float32 (W, D_r) (normalised when `stats` is given);
    ``audio`` -> float32 (audio_samples(W + ctx),) starting at frame ``start - ctx``
    (zeros before the clip start and past its end); ``words`` -> int64 (W,) word ids
    (zeros without `vocab` or words); ``clip`` -> id; ``start`` -> first frame.
    The default DataLoader collate batches these.

    Windows start on the 12-frame grid, where audio samples and mel hops align exactly.
    Motion-only users (the tokenizer) may pass ``start_grid=1`` to start windows at any
    frame, so that tokens see every phase of the motion (4x more distinct latents).
    """

    def __init__(self, clips: Sequence[ClipData], window_frames: int = 64,
                 stride_frames: int = 12, stats: RegionStats | None = None,
                 vocab: Vocabulary | None = None, audio_context_frames: int = 0,
                 sample_rate: int = SAMPLE_RATE, start_grid: int = START_GRID_FRAMES) -> None:
        if window_frames <= 0 or window_frames % TOKEN_FRAMES:
            raise ValueError(f"window_frames must be a positive multiple of {TOKEN_FRAMES}, "
                             f"got {window_frames}")
        if start_grid not in (1, START_GRID_FRAMES):
            raise ValueError(f"start_grid must be {START_GRID_FRAMES} (audio-exact) or 1 (motion only), "
                             f"got {start_grid}")
        if stride_frames <= 0 or stride_frames % start_grid:
            raise ValueError(f"stride_frames must be a positive multiple of "
                             f"{start_grid}, got {stride_frames}")
        if audio_context_frames < 0 or audio_context_frames % START_GRID_FRAMES:
            raise ValueError(f"audio_context_frames must be a non-negative multiple of "
                             f"{START_GRID_FRAMES}, got {audio_context_frames}")
        self.window_frames = window_frames
        self.stride_frames = stride_frames
        self.audio_context_frames = audio_context_frames
        self.sample_rate = sample_rate
        self.stats = stats
        self.vocab = vocab
        self.n_audio = audio_samples(window_frames + audio_context_frames, sample_rate)
        self.ids: list[str] = []
        self._features: list[dict[str, np.ndarray]] = []
        self._audio: list[np.ndarray] = []
        self._words: list[np.ndarray] = []
        #: (clip index, start frame) of every window
        self.index: list[tuple[int, int]] = []
        longest = 0
        for clip in clips:
            if clip.motion is None or clip.audio is None:
                missing = "motion" if clip.motion is None else "audio"
                raise DataError(f"clip {clip.id}: has no {missing}; windows need motion and audio")
            if clip.sample_rate != sample_rate:
                raise DataError(f"clip {clip.id}: audio at {clip.sample_rate} Hz, "
                                f"dataset expects {sample_rate} Hz")
            if clip.motion.fps != FPS:
                raise DataError(f"clip {clip.id}: motion at {clip.motion.fps:g} fps, expected {FPS}")
            feats = training_features(clip.motion)
            if stats is not None:
                feats = {r: stats.normalize(r, feats[r]).astype(np.float32) for r in REGIONS}
            n = len(clip.motion)
            longest = max(longest, n)
            words = (word_ids_per_frame(clip.words, n, vocab) if vocab is not None and clip.words
                     else np.zeros(n, np.int64))
            ci = len(self.ids)
            self.ids.append(clip.id)
            self._features.append({r: np.ascontiguousarray(feats[r], np.float32) for r in REGIONS})
            self._audio.append(np.asarray(clip.audio, np.float32))
            self._words.append(words)
            self.index.extend((ci, s) for s in range(0, n - window_frames + 1, stride_frames))
        if not self.index:
            raise DataError(f"no windows: no clip has {window_frames} frames or more "
                            f"({len(self.ids)} clip(s), longest {longest} frames)")

    def __len__(self) -> int:
        return len(self.index)

    def audio_window(self, clip_index: int, start: int) -> np.ndarray:
        """The zero-padded audio of the window starting at frame `start` (with context)."""
        audio = self._audio[clip_index]
        a = frame_to_sample(start - self.audio_context_frames, self.sample_rate)
        out = np.zeros(self.n_audio, np.float32)
        lo, hi = max(a, 0), min(a + self.n_audio, len(audio))
        if hi > lo:
            out[lo - a:hi - a] = audio[lo:hi]
        return out

    def __getitem__(self, i: int) -> dict[str, torch.Tensor | str | int]:
        ci, s = self.index[i]
        e = s + self.window_frames
        item: dict[str, torch.Tensor | str | int] = {
            r: torch.from_numpy(self._features[ci][r][s:e].copy()) for r in REGIONS}
        item["audio"] = torch.from_numpy(self.audio_window(ci, s))
        item["words"] = torch.from_numpy(self._words[ci][s:e].copy())
        item["clip"] = self.ids[ci]
        item["start"] = s
        return item

    collate = staticmethod(default_collate)
