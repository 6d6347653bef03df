"""A prepared, memory-mapped copy of a BEAT2 folder (docs/design.md §7), written by
:func:`livegesture.data.prepare.prepare_cache` and read here.

Layout of a cache folder (format version :data:`VERSION`)::

    index.json            what is in it (written last and atomically: a cache without it is
                          incomplete and is never read); clips, splits, speakers, sources
                          with size and mtime, the word texts, normalisation statistics
    journal.jsonl         one line per prepared clip, for resuming an interrupted prepare
    arrays/<name>.bin     raw little-endian arrays, rows appended clip after clip:
                          per frame: poses (165), trans (3), expressions (100) float32, the
                          training features (425: the regions side by side) float32,
                          frame_words int32;
                          per 16 kHz sample: audio float32; per word: word_spans float64 (2),
                          word_text int32; per clip: betas float32 (300), moments float64

Every process reads the same files, so DataLoader workers and DDP ranks share one copy of
the data: the kernel's page cache. Training windows are read with ``pread`` (:class:`FileRows`)
into fresh buffers; whole clips (:func:`load_cached_clip`, for evaluation) are read-only
memory-mapped views. Windows are not sliced out of the maps because every page fault maps
far more than a window (248 KB per touch on the kernel this was measured on, large folios),
so a process's resident memory would grow towards the size of the data set; dropping the
mappings after each window (``madvise``) made a window 7x slower than ``pread``.
"""

from __future__ import annotations

import json
import mmap
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..body.constants import FPS, NUM_BETAS, NUM_EXPRESSIONS, NUM_JOINTS, REGION_DIMS, REGIONS
from ..errors import DataError
from .audio import SAMPLE_RATE
from .features import MOMENTS_WIDTH, FeatureMoments, RegionStats

FORMAT = "livegesture-cache"
VERSION = 1
INDEX = "index.json"
JOURNAL = "journal.jsonl"
ARRAYS_DIR = "arrays"

#: name -> (dtype, width, what a row is)
ARRAYS: dict[str, tuple[str, int, str]] = {
    "poses": ("<f4", NUM_JOINTS * 3, "frame"),
    "trans": ("<f4", 3, "frame"),
    "expressions": ("<f4", NUM_EXPRESSIONS, "frame"),
    "features": ("<f4", sum(REGION_DIMS.values()), "frame"),
    "frame_words": ("<i4", 1, "frame"),
    "audio": ("<f4", 1, "sample"),
    "word_spans": ("<f8", 2, "word"),
    "word_text": ("<i4", 1, "word"),
    "betas": ("<f4", NUM_BETAS, "clip"),
    "moments": ("<f8", MOMENTS_WIDTH, "clip"),
}
#: which offset/count field of an entry each kind of row uses
ROW_FIELDS = {"frame": "frames", "sample": "samples", "word": "words", "clip": "row"}


def is_cache(path: str | os.PathLike) -> bool:
    """True when `path` is a cache folder (of any format version, possibly unfinished)."""
    return (Path(path) / INDEX).is_file() or (Path(path) / JOURNAL).is_file()


def fingerprint(path: Path) -> list[int]:
    """[size, mtime in ns] of a source file: what tells a changed file."""
    st = path.stat()
    return [int(st.st_size), int(st.st_mtime_ns)]


def read_index(root: Path) -> dict[str, Any]:
    """The parsed index of a cache folder; one-line errors for a missing, foreign or other-version
    index."""
    path = root / INDEX
    if not path.is_file():
        if (root / JOURNAL).is_file():
            raise DataError(f"{root}: an unfinished cache (prepare was interrupted); run "
                            "`livegesture prepare` again to complete it")
        raise DataError(f"{root}: not a LiveGesture cache (no {INDEX})")
    try:
        index = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{path}: unreadable cache index ({exc})") from None
    if not isinstance(index, dict) or index.get("format") != FORMAT:
        raise DataError(f"{path}: not a LiveGesture cache index")
    if index.get("version") != VERSION:
        raise DataError(f"{root}: cache format version {index.get('version')}, this LiveGesture reads "
                        f"version {VERSION}; prepare the data again into a new folder")
    return index


class _Mapped:
    """One array file mapped read-only; rows are numpy views (no copy)."""

    def __init__(self, path: Path, dtype: str, width: int, rows: int) -> None:
        self.path, self.dtype, self.width, self.rows = path, np.dtype(dtype), width, rows
        need = rows * width * self.dtype.itemsize
        size = path.stat().st_size if path.is_file() else -1
        if size < need:
            raise DataError(f"{path}: cache array is shorter than its index says ({max(size, 0)} of "
                            f"{need} bytes); prepare the data again")
        self._mm: mmap.mmap | None = None
        self.array = np.zeros((0, width), self.dtype)
        if need:
            with open(path, "rb") as f:
                self._mm = mmap.mmap(f.fileno(), need, access=mmap.ACCESS_READ)
            if hasattr(self._mm, "madvise"):  # windows are read at random: no read-ahead
                self._mm.madvise(mmap.MADV_RANDOM)
            self.array = np.frombuffer(self._mm, self.dtype, rows * width).reshape(rows, width)

        self._fd: int | None = None

    def trim(self) -> None:
        if self._mm is not None and hasattr(self._mm, "madvise"):
            self._mm.madvise(mmap.MADV_DONTNEED)

    def read(self, start: int, stop: int) -> np.ndarray:
        """Rows [start, stop) into a new array, with pread: nothing of the file gets mapped."""
        out = np.empty((max(stop - start, 0), self.width), self.dtype)
        if len(out):
            if self._fd is None:
                self._fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
            row = self.width * self.dtype.itemsize
            view = memoryview(out).cast("B")
            got = os.preadv(self._fd, [view], start * row) if hasattr(os, "preadv") else None
            if got is None:  # no preadv on this platform
                with open(self.path, "rb") as f:
                    f.seek(start * row)
                    view[:] = f.read(len(view))
                got = len(view)
            if got != len(view):
                raise DataError(f"{self.path}: short read at row {start} (the cache changed under us?)")
        return out


class FileRows:
    """Rows [first, first + n) of one cache array, array-like: a slice is read with pread into a new
    array; ``np.asarray`` gives the memory-mapped view of all of them."""

    def __init__(self, mapped: _Mapped, first: int, n: int) -> None:
        self._m, self.first, self.n = mapped, first, n

    def __len__(self) -> int:
        return self.n

    @property
    def shape(self) -> tuple[int, ...]:
        return (self.n,) if self._m.width == 1 else (self.n, self._m.width)

    def __getitem__(self, index: slice) -> np.ndarray:
        if not isinstance(index, slice) or index.step not in (None, 1):
            raise TypeError("FileRows supports contiguous slices only")
        a, b, _ = index.indices(self.n)
        out = self._m.read(self.first + a, self.first + max(a, b))
        return out[:, 0] if self._m.width == 1 else out

    def sub(self, start: int, stop: int) -> "FileRows":
        """Rows [start, stop) of these rows, still unread."""
        a, b, _ = slice(start, stop).indices(self.n)
        return FileRows(self._m, self.first + a, max(b - a, 0))

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        v = self._m.array[self.first:self.first + self.n]
        v = v[:, 0] if self._m.width == 1 else v
        return v if dtype is None else v.astype(dtype)


@dataclass(frozen=True)
class CacheClip:
    """One clip of a cache: where its rows are and where it came from."""

    id: str
    split: str | None
    frames: tuple[int, int]     # (first row, count) in the per-frame arrays; count 0: no motion
    samples: tuple[int, int]    # in audio; count 0: no audio
    words: tuple[int, int]      # in word_spans / word_text
    row: int                    # in betas / moments
    has: dict[str, bool]        # motion, audio, textgrid
    sources: dict[str, Any]     # kind -> [path relative to the source folder, size, mtime_ns]
    n_betas: int = NUM_BETAS
    gender: str = "neutral"
    model: str = "smplx2020"

    @classmethod
    def from_entry(cls, e: dict[str, Any], split: str | None) -> "CacheClip":
        return cls(e["id"], split, tuple(e["frames"]), tuple(e["samples"]), tuple(e["words"]),
                   int(e["row"]), dict(e["has"]), dict(e["sources"]), int(e.get("n_betas", NUM_BETAS)),
                   e.get("gender", "neutral"), e.get("model", "smplx2020"))


class PreparedCache:
    """A cache folder opened for reading. Use :meth:`open`."""

    def __init__(self, root: Path, index: dict[str, Any]) -> None:
        self.root = root
        self.index = index
        self.source = Path(index["source"])
        self.has_splits = bool(index.get("has_splits"))
        self.texts: list[str] = list(index.get("texts", []))
        self.clips: dict[str, CacheClip] = {
            c["id"]: CacheClip.from_entry(c, c.get("split")) for c in index["clips"]}
        self._arrays = {name: _Mapped(root / ARRAYS_DIR / f"{name}.bin", dt, w, int(index["rows"][kind]))
                        for name, (dt, w, kind) in ARRAYS.items()}

    @classmethod
    def open(cls, root: str | os.PathLike, check_sources: bool = True) -> "PreparedCache":
        """Open a complete cache; with `check_sources`, refuse it when a source file it was made from
        changed or disappeared (when the source folder is present at all)."""
        root = Path(root)
        cache = cls(root, read_index(root))
        if check_sources:
            cache.check_sources()
        return cache

    def __reduce__(self):
        return (_reopen, (str(self.root),))

    def check_sources(self) -> None:
        if not self.source.is_dir():
            return  # a cache used without its source folder (e.g. copied to another machine)
        changed = []
        for c in self.clips.values():
            for rel, size, mtime in c.sources.values():
                p = self.source / rel
                if not p.is_file() or fingerprint(p) != [size, mtime]:
                    changed.append(str(p))
        if changed:
            more = f" and {len(changed) - 1} more" if len(changed) > 1 else ""
            raise DataError(f"{self.root}: stale cache: {changed[0]}{more} changed since it was prepared; "
                            f"run `livegesture prepare --data {self.source} --out {self.root}` again")

    # -------------------------------------------------------------- rows
    def file_rows(self, name: str, clip: CacheClip) -> FileRows:
        """The rows of per-frame or per-sample array `name` that belong to `clip`, read on demand."""
        start, n = getattr(clip, ROW_FIELDS[ARRAYS[name][2]])
        return FileRows(self._arrays[name], start, n)

    def rows(self, name: str, clip: CacheClip) -> np.ndarray:
        """The rows of array `name` that belong to `clip` (a read-only view; 1-D for width 1)."""
        m = self._arrays[name]
        kind = ARRAYS[name][2]
        if kind == "clip":
            out = m.array[clip.row]
        else:
            start, n = getattr(clip, ROW_FIELDS[kind])
            out = m.array[start:start + n]
        return out[:, 0] if m.width == 1 and out.ndim == 2 else out

    def trim(self) -> None:
        """Drop this process's mappings of the pages read so far through the maps (they stay in the
        page cache, and the next read maps them again)."""
        for m in self._arrays.values():
            m.trim()

    def moments(self, clip: CacheClip) -> FeatureMoments:
        return FeatureMoments.from_array(self.rows("moments", clip))

    def stats(self, which: str = "all") -> RegionStats:
        """Normalisation statistics stored at prepare time: of every clip with motion ('all') or
        of the clips of the 'train' split."""
        d = self.index.get("stats", {}).get(which)
        if d is None:
            raise DataError(f"{self.root}: the cache has no '{which}' statistics")
        return RegionStats({r: np.array(d["mean"][r], np.float32) for r in REGIONS},
                           {r: np.array(d["std"][r], np.float32) for r in REGIONS})

    @property
    def mean_vel_path(self) -> Path | None:
        name = self.index.get("mean_vel")
        return self.root / name if name else None

    def __repr__(self) -> str:
        return f"PreparedCache({self.root}, {len(self.clips)} clips)"


def _reopen(root: str) -> PreparedCache:
    return PreparedCache.open(root, check_sources=False)


_OPEN: dict[tuple[str, float], PreparedCache] = {}


def open_cache(root: str | os.PathLike) -> PreparedCache:
    """:meth:`PreparedCache.open`, shared by every caller in this process while the index is the same."""
    root = Path(root).resolve()
    key = (str(root), (root / INDEX).stat().st_mtime_ns if (root / INDEX).is_file() else 0)
    if key not in _OPEN:
        _OPEN[key] = PreparedCache.open(root)
    return _OPEN[key]


def cache_clip_files(cache: PreparedCache) -> list:
    """Every clip of the cache as :class:`ClipFiles` (paths of the source files; ``cache`` set)."""
    from .beat2 import ClipFiles

    out = []
    for c in sorted(cache.clips.values(), key=lambda c: c.id):
        paths = {k: (cache.source / c.sources[k][0] if c.has.get(k) else None)
                 for k in ("motion", "audio", "textgrid")}
        out.append(ClipFiles(c.id, paths["motion"], paths["audio"], paths["textgrid"], c.split, cache=cache))
    return out


def load_cached_clip(cache: PreparedCache, clip_id: str, sample_rate: int = SAMPLE_RATE):
    """A :class:`ClipData` whose motion and audio are read-only views of the cache's maps."""
    from ..motion import Motion
    from .beat2 import ClipData
    from .textgrid import Word

    if sample_rate != SAMPLE_RATE:
        raise DataError(f"{cache.root}: the cache holds {SAMPLE_RATE} Hz audio, {sample_rate} Hz was asked for")
    c = cache.clips[clip_id]
    motion = None
    if c.has["motion"]:
        motion = Motion(cache.rows("poses", c).reshape(-1, NUM_JOINTS, 3), cache.rows("trans", c),
                        cache.rows("expressions", c), cache.rows("betas", c)[:c.n_betas],
                        fps=FPS, gender=c.gender, model=c.model)
    audio = cache.rows("audio", c) if c.has["audio"] else None
    words = None
    if c.has["textgrid"]:
        spans, text = cache.rows("word_spans", c), cache.rows("word_text", c)
        words = [Word(float(a), float(b), cache.texts[int(t)]) for (a, b), t in zip(spans, text)]
    return ClipData(c.id, motion, audio, words, SAMPLE_RATE)


def cached_windows(cache: PreparedCache, clip_id: str):
    """The :class:`ClipWindows` of a cached clip: views of the maps and the stored moments."""
    from .windows import ClipWindows

    c = cache.clips[clip_id]
    if not c.has["motion"]:
        raise DataError(f"clip {clip_id}: has no motion; windows need motion")
    w = ClipWindows(c.id, cache.file_rows("features", c),
                    cache.file_rows("audio", c) if c.has["audio"] else None,
                    cache.file_rows("frame_words", c), cache.texts, cache.rows("word_spans", c),
                    cache.rows("word_text", c), SAMPLE_RATE, cache=cache)
    w._moments.append(cache.moments(c))
    return w
