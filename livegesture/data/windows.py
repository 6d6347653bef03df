"""Training windows: aligned motion features, audio and word ids (docs/design.md §1).

Windows are read from :class:`ClipWindows`, one per clip: arrays in memory (a loaded
:class:`ClipData`) or rows of a prepared cache read per window (:mod:`.cache`), so that a
data set larger than the RAM trains with the memory of a few batches.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset, default_collate

from ..body.constants import FPS, REGION_DIMS, REGIONS
from ..errors import DataError
from .audio import SAMPLE_RATE
from .beat2 import ClipData
from .features import FeatureMoments, RegionStats, mirror_features, training_features
from .textgrid import Vocabulary, Word

#: window starts (and context) are multiples of this many frames: 12 frames = 0.4 s =
#: 6400 samples at 16 kHz, aligned with 4-frame tokens, whole samples and 10 ms mel hops
START_GRID_FRAMES = 12
TOKEN_FRAMES = 4
#: columns of each region in a clip's (T, 425) feature array (regions side by side, in REGIONS order)
REGION_COLUMNS: dict[str, slice] = {
    r: slice(sum(REGION_DIMS[q] for q in REGIONS[:i]), sum(REGION_DIMS[q] for q in REGIONS[:i + 1]))
    for i, r in enumerate(REGIONS)}


def audio_samples(frames: int, sample_rate: int = SAMPLE_RATE, fps: int = FPS) -> int:
    """Samples covering `frames` motion frames: ceil(frames * sample_rate / fps)."""
    return -(-frames * sample_rate // fps)


def frame_to_sample(frame: int, sample_rate: int = SAMPLE_RATE, fps: int = FPS) -> int:
    """First sample of motion frame `frame` (floor; exact on the 12-frame grid at 16 kHz)."""
    return frame * sample_rate // fps


def frame_text_ids(words, n_frames: int, texts: dict[str, int], fps: float = FPS) -> np.ndarray:
    """int32 (n_frames,): 1 + the id in `texts` of the word whose [start, end) holds the frame
    centre, 0 without a word; the same rule as :func:`word_ids_per_frame`. New texts are added
    to `texts` (a text table that grows)."""
    ids = np.zeros(n_frames, np.int32)
    if n_frames <= 0 or not words:
        return ids
    centres = (np.arange(n_frames) + 0.5) / fps
    for w in words:
        lo = np.searchsorted(centres, w.start, side="left")
        hi = np.searchsorted(centres, w.end, side="left")
        if hi > lo:
            ids[lo:hi] = 1 + texts.setdefault(w.text, len(texts))
    return ids


@dataclass(frozen=True, eq=False)
class ClipWindows:
    """What windows read from one clip: training features (T, 425), unnormalised, every region's
    columns side by side (:data:`REGION_COLUMNS`); 16 kHz audio; per-frame word ids into `texts`
    (0: no word, i: texts[i - 1]); and the words themselves (``word_spans`` (W, 2) seconds,
    ``word_ids`` (W,) indices into `texts`).

    The arrays may be a cache's rows, read per window (then `cache` is the cache they belong
    to); `mirrored` reads the left/right mirror image of the features, computed per window.
    """

    id: str
    features: np.ndarray
    audio: np.ndarray | None
    frame_words: np.ndarray
    texts: Sequence[str]
    word_spans: np.ndarray
    word_ids: np.ndarray
    sample_rate: int = SAMPLE_RATE
    mirrored: bool = False
    cache: Any = None
    _moments: list = field(default_factory=list, repr=False)  # filled once, when first needed

    @classmethod
    def from_clip(cls, clip: ClipData) -> "ClipWindows":
        """The windows source of a loaded clip (features computed here, in memory)."""
        if clip.motion is None:
            raise DataError(f"clip {clip.id}: has no motion; windows need motion")
        if clip.motion.fps != FPS:
            raise DataError(f"clip {clip.id}: motion at {clip.motion.fps:g} fps, expected {FPS}")
        f = training_features(clip.motion)
        feats = np.ascontiguousarray(np.concatenate([f[r] for r in REGIONS], axis=1), np.float32)
        table: dict[str, int] = {}
        words = clip.words or []
        frames = frame_text_ids(words, len(clip.motion), table)
        spans = np.array([(w.start, w.end) for w in words], np.float64).reshape(-1, 2)
        ids = np.array([table.setdefault(w.text, len(table)) for w in words], np.int32)
        audio = None if clip.audio is None else np.asarray(clip.audio, np.float32)
        return cls(clip.id, feats, audio, frames, list(table), spans, ids, clip.sample_rate)

    def __len__(self) -> int:
        return len(self.frame_words)

    @property
    def moments(self) -> FeatureMoments:
        """Feature moments of the clip (of its mirror image when `mirrored`), for statistics."""
        if not self._moments:
            self._moments.append(FeatureMoments.of({r: self.region(r) for r in REGIONS}))
            if self.cache is not None:
                self.cache.trim()
        m = self._moments[0]
        return m.mirrored() if self.mirrored else m

    def mirror(self) -> "ClipWindows":
        """The left/right mirror image (the same audio and words), named ``<id>~mirror``."""
        return replace(self, id=self.id + "~mirror", mirrored=not self.mirrored,
                       _moments=list(self._moments))

    def segment(self, start: int, stop: int, name: str) -> "ClipWindows":
        """Frames [start, stop) as a clip of its own: audio from round(start / fps * sr), the words
        that overlap it, shifted to its start."""
        a = None
        t0, t1 = start / FPS, stop / FPS
        if self.audio is not None:
            a = _rows(self.audio, int(round(t0 * self.sample_rate)), int(round(t1 * self.sample_rate)))
        spans = np.asarray(self.word_spans)
        keep = (spans[:, 0] < t1) & (spans[:, 1] > t0) if len(spans) else np.zeros(0, bool)
        return replace(self, id=name, features=_rows(self.features, start, stop),
                       audio=a, frame_words=_rows(self.frame_words, start, stop),
                       word_spans=np.maximum(spans[keep] - t0, 0.0), word_ids=np.asarray(self.word_ids)[keep],
                       _moments=[])

    def region(self, region: str) -> np.ndarray:
        """All frames of one region's features, unmirrored (a view; of the cache's map for cache clips)."""
        return np.asarray(self.features)[:, REGION_COLUMNS[region]]

    def window(self, start: int, stop: int) -> dict[str, np.ndarray]:
        """Frames [start, stop) of every region's features (as mirrored when `mirrored`; in-memory
        clips may give views of their arrays). One read for a cache clip."""
        x = np.asarray(self.features[start:stop], np.float32)
        out = {r: x[:, REGION_COLUMNS[r]] for r in REGIONS}
        return {r: mirror_features(r, v) for r, v in out.items()} if self.mirrored else out

    def feature_window(self, region: str, start: int, stop: int) -> np.ndarray:
        return self.window(start, stop)[region]

    def words(self) -> list[Word]:
        """The clip's words as :class:`Word` objects."""
        return [Word(float(a), float(b), self.texts[int(i)])
                for (a, b), i in zip(np.asarray(self.word_spans), np.asarray(self.word_ids))]


def _rows(x, start: int, stop: int):
    """Rows [start, stop) of an array, or of a cache's unread rows (still unread)."""
    return x.sub(start, stop) if hasattr(x, "sub") else x[start:stop]


def word_lookup(texts: Sequence[str], vocab: Vocabulary | None) -> np.ndarray:
    """int64 (1 + len(texts),): frame word id -> vocabulary id (0 stays 0, unknown words <unk>)."""
    lut = np.zeros(1 + len(texts), np.int64)
    if vocab is not None:
        lut[1:] = [vocab.encode(t) for t in texts]
    return lut


def word_counts(sources: Sequence[ClipWindows]) -> dict[str, int]:
    """How often each word text occurs in the clips (what :meth:`Vocabulary.build` counts)."""
    counts: dict[str, int] = {}
    for s in sources:
        ids = np.asarray(s.word_ids)
        if len(ids):
            for i, c in zip(*np.unique(ids, return_counts=True)):
                t = s.texts[int(i)]
                counts[t] = counts.get(t, 0) + int(c)
    return counts


class WindowDataset(Dataset):
    """Fixed-length windows over clips that have motion (and audio unless `with_audio` is off).

    Item: each region -> float32 (W, D_r) (normalised when `stats` is given);
    ``audio`` -> float32 (audio_samples(W + ctx),) starting at frame ``start - ctx``
    (zeros before the clip start and past its end; absent without `with_audio`);
    ``words`` -> int64 (W,) word ids (zeros without `vocab` or words); ``clip`` -> id;
    ``start`` -> first frame. The default DataLoader collate batches these.

    Windows start on the 12-frame grid, where audio samples and mel hops align exactly.
    Motion-only users (the tokenizer) may pass ``start_grid=1`` to start windows at any
    frame, so that tokens see every phase of the motion (4x more distinct latents).
    The window index is a pair of small arrays per clip, so its memory grows with the
    number of clips, not with the number of windows.
    """

    def __init__(self, clips: Sequence[ClipData | ClipWindows], window_frames: int = 64,
                 stride_frames: int = 12, stats: RegionStats | None = None,
                 vocab: Vocabulary | None = None, audio_context_frames: int = 0,
                 sample_rate: int = SAMPLE_RATE, start_grid: int = START_GRID_FRAMES,
                 with_audio: bool = True) -> None:
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
        # float32 mean and std once, not per window: (x - mean) / std as RegionStats.normalize does it
        self._norm = None if stats is None else {
            r: (stats.mean[r].astype(np.float32), stats.std[r].astype(np.float32)) for r in REGIONS}
        self.vocab = vocab
        self.with_audio = with_audio
        self.n_audio = audio_samples(window_frames + audio_context_frames, sample_rate)
        self.sources: list[ClipWindows] = []
        luts: dict[int, np.ndarray] = {}
        self._luts: list[np.ndarray] = []
        counts = []
        for clip in clips:
            src = clip if isinstance(clip, ClipWindows) else self._from_clip(clip)
            if src.sample_rate != sample_rate:
                raise DataError(f"clip {src.id}: audio at {src.sample_rate} Hz, "
                                f"dataset expects {sample_rate} Hz")
            if with_audio and src.audio is None:
                raise DataError(f"clip {src.id}: has no audio; windows need motion and audio")
            key = id(src.texts)
            if key not in luts:
                luts[key] = word_lookup(src.texts, vocab)
            self.sources.append(src)
            self._luts.append(luts[key])
            counts.append(max(0, (len(src) - window_frames) // stride_frames + 1))
        self.ids = [s.id for s in self.sources]
        #: first window index of each clip (and the total at the end)
        self._first = np.concatenate([[0], np.cumsum(counts, dtype=np.int64)])
        if not len(self):
            longest = max((len(s) for s in self.sources), default=0)
            raise DataError(f"no windows: no clip has {window_frames} frames or more "
                            f"({len(self.sources)} clip(s), longest {longest} frames)")

    def _from_clip(self, clip: ClipData) -> ClipWindows:
        if clip.motion is None or (self.with_audio and clip.audio is None):
            missing = "motion" if clip.motion is None else "audio"
            raise DataError(f"clip {clip.id}: has no {missing}; windows need motion and audio")
        return ClipWindows.from_clip(clip)

    def __len__(self) -> int:
        return int(self._first[-1])

    def window(self, i: int) -> tuple[int, int]:
        """(clip index, start frame) of window `i`."""
        if not 0 <= i < len(self):
            raise IndexError(f"window {i} of {len(self)}")
        ci = int(np.searchsorted(self._first, i, side="right")) - 1
        return ci, int(i - self._first[ci]) * self.stride_frames

    @property
    def index(self) -> list[tuple[int, int]]:
        """Every (clip index, start frame), in order (a list: for inspection of small sets)."""
        return [self.window(i) for i in range(len(self))]

    def audio_window(self, clip_index: int, start: int) -> np.ndarray:
        """The zero-padded audio of the window starting at frame `start` (with context)."""
        audio = self.sources[clip_index].audio
        a = frame_to_sample(start - self.audio_context_frames, self.sample_rate)
        out = np.zeros(self.n_audio, np.float32)
        lo, hi = max(a, 0), min(a + self.n_audio, len(audio))
        if hi > lo:
            out[lo - a:hi - a] = audio[lo:hi]
        return out

    def __getitem__(self, i: int) -> dict[str, torch.Tensor | str | int]:
        ci, s = self.window(int(i))
        src = self.sources[ci]
        e = s + self.window_frames
        item: dict[str, torch.Tensor | str | int] = {}
        for r, x in src.window(s, e).items():
            if self._norm is not None:
                mean, std = self._norm[r]
                x = (x - mean) / std
            else:
                x = np.array(x)  # never a view of the clip's arrays
            item[r] = torch.from_numpy(x)
        if self.with_audio:
            item["audio"] = torch.from_numpy(self.audio_window(ci, s))
        item["words"] = torch.from_numpy(self._luts[ci][np.asarray(src.frame_words[s:e])])
        item["clip"] = src.id
        item["start"] = s
        return item

    collate = staticmethod(default_collate)
