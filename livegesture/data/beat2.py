"""BEAT2 clips on disk: find them (BEAT2 layout or a flat folder) and load them (docs/design.md §7)."""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..body.constants import FPS
from ..errors import DataError
from ..motion import Motion
from .audio import SAMPLE_RATE, load_audio, load_audio_as
from .textgrid import Word, read_words

#: sub-folder and suffix of each kind of file in the BEAT2 layout
LAYOUT: dict[str, tuple[str, str]] = {
    "motion": ("smplxflame_30", ".npz"),
    "audio": ("wave16k", ".wav"),
    "textgrid": ("textgrid", ".TextGrid"),
}
SPLIT_CSV = "train_test_split.csv"
#: BEAT2's mean joint speeds (the BC metric's normaliser, docs/design.md §8)
MEAN_VEL_FILE = "mean_vel_smplxflame_30.npy"
KINDS = tuple(LAYOUT)

#: the standard speaker-2 ("scott") benchmark split (docs/design.md §7)
STANDARD_SPLITS: dict[str, tuple[str, ...]] = {
    "test": tuple(f"2_scott_0_{i}_{i}" for i in (*range(1, 9), 65, 73, 81, 87, 95, 103, 111)),
    "val": tuple(f"2_scott_0_{i}_{i}" for i in range(9, 17)),
}


@dataclass(frozen=True)
class ClipFiles:
    """The files of one clip (None where absent) and its split (None without a split CSV).

    Clips of a prepared cache (:mod:`.cache`) name their source files and carry the cache,
    which :func:`load_clip` then reads instead of the files.
    """

    id: str
    motion: Path | None
    audio: Path | None
    textgrid: Path | None
    split: str | None
    cache: Any = field(default=None, compare=False, repr=False)

    @property
    def speaker(self) -> int:
        """Speaker number: the number before the first '_' of the id (BEAT2 convention)."""
        head = self.id.split("_", 1)[0]
        if not head.isdigit():
            raise DataError(f"clip {self.id!r}: id does not start with a speaker number")
        return int(head)


def _is_layout(root: Path) -> bool:
    return any((root / sub).is_dir() for sub, _ in LAYOUT.values())


def _read_split_csv(path: Path) -> dict[str, str]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            fields = [c.strip() for c in (reader.fieldnames or [])]
            if "id" not in fields or "type" not in fields:
                raise DataError(f"{path}: expected columns 'id,type', found "
                                f"{','.join(fields) or 'none'}")
            out = {}
            for row in reader:
                row = {(k or "").strip(): (v or "").strip() for k, v in row.items()}
                if row.get("id"):
                    out[row["id"]] = row.get("type") or ""
            return out
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{path}: unreadable split file ({exc})") from None


def _scan(root: Path) -> tuple[dict[str, dict[str, Path]], str]:
    """id -> {kind: path}, and a description of what was looked for."""
    found: dict[str, dict[str, Path]] = {}
    if _is_layout(root):
        looked = ", ".join(f"{sub}/*{suf}" for sub, suf in LAYOUT.values())
        for kind, (sub, suffix) in LAYOUT.items():
            folder = root / sub
            if folder.is_dir():
                for p in folder.iterdir():
                    if p.suffix == suffix and p.is_file():
                        found.setdefault(p.stem, {})[kind] = p
    else:
        looked = "<id>.npz / <id>.wav / <id>.TextGrid side by side, or the BEAT2 layout " + \
                 ", ".join(f"{sub}/*{suf}" for sub, suf in LAYOUT.values())
        by_suffix = {suf: kind for kind, (_, suf) in LAYOUT.items()}
        for p in root.iterdir():
            kind = by_suffix.get(p.suffix)
            if kind and p.is_file():
                found.setdefault(p.stem, {})[kind] = p
    return found, looked


def find_clips(root: str | os.PathLike, split: str | Sequence[str] | None = None,
               speakers: Sequence[int] | None = None, ids: Sequence[str] | None = None,
               require: Sequence[str] = ("motion", "audio")) -> list[ClipFiles]:
    """Clips under `root`, sorted by id.

    `root` is a BEAT2 folder (``smplxflame_30/``, ``wave16k/``, ``textgrid/``,
    ``train_test_split.csv``) or a flat folder of ``<id>.npz/.wav/.TextGrid``. Keeps
    clips in `split` (one name or several; needs the CSV), by `speakers`, by `ids`,
    and having every kind of file in `require` (subset of motion, audio, textgrid).
    """
    root = Path(root)
    if isinstance(ids, str):
        ids = [ids]
    if isinstance(speakers, int):
        speakers = [speakers]
    if isinstance(require, str):
        require = (require,)
    bad = [k for k in require if k not in KINDS]
    if bad:
        raise ValueError(f"require: unknown kind(s) {bad}; use some of {KINDS}")
    if not root.exists():
        raise DataError(f"{root}: no such data folder")
    if not root.is_dir():
        raise DataError(f"{root}: not a folder (expected a BEAT2 folder or a folder of clips)")
    from .cache import cache_clip_files, is_cache, open_cache

    if is_cache(root):
        clips = cache_clip_files(open_cache(root))
        looked = "the clips of this prepared cache"
        has_splits = clips[0].cache.has_splits if clips else False
        if not clips:
            raise DataError(f"{root}: the prepared cache holds no clips")
    else:
        found, looked = _scan(root)
        csv_path = root / SPLIT_CSV
        splits = _read_split_csv(csv_path) if csv_path.is_file() else None
        if not found:
            raise DataError(f"{root}: no BEAT2 clips found (looked for {looked})")
        clips = [ClipFiles(id=i, motion=f.get("motion"), audio=f.get("audio"),
                           textgrid=f.get("textgrid"),
                           split=None if splits is None else splits.get(i))
                 for i, f in sorted(found.items())]
        has_splits = splits is not None
    steps = [f"{len(clips)} clip(s) found"]
    if split is not None:
        wanted = {split} if isinstance(split, str) else set(split)
        if not has_splits:
            raise DataError(f"{root}: cannot select split {'/'.join(sorted(wanted))}: no "
                            f"{SPLIT_CSV} there; choose clips with ids=[...] instead")
        present = sorted({c.split for c in clips if c.split})
        clips = [c for c in clips if c.split in wanted]
        steps.append(f"{len(clips)} in split {'/'.join(sorted(wanted))} "
                     f"(splits present: {', '.join(present) or 'none'})")
    if speakers is not None:
        wanted_sp = {int(s) for s in speakers}
        clips = [c for c in clips if c.id.split("_", 1)[0].isdigit() and c.speaker in wanted_sp]
        steps.append(f"{len(clips)} of speaker(s) {', '.join(map(str, sorted(wanted_sp)))}")
    if ids is not None:
        wanted_ids = set(ids)
        clips = [c for c in clips if c.id in wanted_ids]
        shown = ", ".join(sorted(wanted_ids)[:5]) + (" ..." if len(wanted_ids) > 5 else "")
        steps.append(f"{len(clips)} with id in [{shown}]")
    if require:
        clips = [c for c in clips if all(getattr(c, k) is not None for k in require)]
        steps.append(f"{len(clips)} with {' + '.join(require)} files")
    if not clips:
        raise DataError(f"{root}: no BEAT2 clips match ({'; '.join(steps)}; looked for {looked})")
    return clips


def find_mean_vel(data_dir: str | os.PathLike) -> Path | None:
    """The dataset's mean joint speeds file: in `data_dir`, its ``weights/`` folder (BEAT2 layout)
    or a ``weights/`` folder beside it (the EMAGE release layout), if any (a prepared cache keeps
    a copy of its source's)."""
    root = Path(data_dir)
    for p in (root / MEAN_VEL_FILE, root / "weights" / MEAN_VEL_FILE, root.parent / "weights" / MEAN_VEL_FILE):
        if p.is_file():
            return p
    return None


def has_split_table(root: str | os.PathLike) -> bool:
    """True when the clips of `root` (a BEAT2 folder or a prepared cache) have splits."""
    from .cache import is_cache, open_cache

    root = Path(root)
    if is_cache(root):
        return open_cache(root).has_splits
    return (root / SPLIT_CSV).is_file()


@dataclass(eq=False)
class ClipData:
    """A loaded clip: motion and audio cropped to the same duration when both exist."""

    id: str
    motion: Motion | None
    audio: np.ndarray | None
    words: list[Word] | None
    sample_rate: int = SAMPLE_RATE

    @property
    def n_frames(self) -> int | None:
        return None if self.motion is None else len(self.motion)

    def __repr__(self) -> str:
        parts = [self.id]
        if self.motion is not None:
            parts.append(f"frames={len(self.motion)}")
        if self.audio is not None:
            parts.append(f"audio={len(self.audio) / self.sample_rate:.2f}s")
        if self.words is not None:
            parts.append(f"words={len(self.words)}")
        return f"ClipData({', '.join(parts)})"


def crop_lengths(n_motion: int, n_audio: int, sample_rate: int = SAMPLE_RATE,
                 fps: float = FPS) -> tuple[int, int]:
    """(frames, samples) after cropping motion and audio to the shorter duration:
    n = min(n_motion, floor(n_audio * fps / sr)), samples = round(n * sr / fps)."""
    if float(fps).is_integer():
        f = int(fps)
        n = min(n_motion, n_audio * f // sample_rate)
        samples = (2 * n * sample_rate + f) // (2 * f)  # round half up, exact integers
    else:
        n = min(n_motion, int(np.floor(n_audio * fps / sample_rate + 1e-9)))
        samples = int(round(n * sample_rate / fps))
    return n, min(samples, n_audio)


def load_clip(clip: ClipFiles, sample_rate: int = SAMPLE_RATE) -> ClipData:
    """Load the files a clip has; motion and audio are cropped to the shorter of the two.
    A clip of a prepared cache is read from its memory maps (already cropped, read-only)."""
    if clip.cache is not None:
        from .cache import load_cached_clip

        return load_cached_clip(clip.cache, clip.id, sample_rate)
    motion = Motion.load(clip.motion) if clip.motion is not None else None
    audio = load_audio(clip.audio, sample_rate) if clip.audio is not None else None
    words = read_words(clip.textgrid) if clip.textgrid is not None else None
    if motion is not None and audio is not None:
        n, samples = crop_lengths(len(motion), len(audio), sample_rate, motion.fps)
        if n == 0:
            raise DataError(f"clip {clip.id}: motion ({len(motion)} frames) and audio "
                            f"({len(audio)} samples) have no common frame")
        motion = motion[:n]
        audio = audio[:samples]
    return ClipData(clip.id, motion, audio, words, sample_rate)


def load_clip_audio(clip: ClipFiles, reader: str = "project") -> np.ndarray:
    """The clip's whole audio file (not cropped to the motion), mono 16 kHz, read as `reader` says
    (:func:`livegesture.data.audio.load_audio_as`): what the published metric code sees."""
    if clip.audio is None:
        raise DataError(f"clip {clip.id}: no audio file")
    return load_audio_as(clip.audio, reader)
