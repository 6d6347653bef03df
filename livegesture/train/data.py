"""Which clips a stage trains and validates on, read from a prepared cache.

A stage given a BEAT2 folder prepares (or brings up to date) a cache of the clips it needs
under its work folder first, so that every stage reads windows from memory maps and its
memory does not grow with the data (docs/design.md §7)."""

from __future__ import annotations

from pathlib import Path

from ..data import find_clips
from ..data.beat2 import has_split_table
from ..data.cache import PreparedCache, cached_windows, is_cache, open_cache
from ..data.windows import ClipWindows
from ..errors import DataError
from .config import DataConfig

#: the cache a stage prepares under its work folder when given a BEAT2 folder
WORK_CACHE = "cache"


def select_clip_files(data_dir: str | Path, cfg: DataConfig, role: str, require=("motion", "audio")):
    """Clip files for `role` ('train' or 'val') of a BEAT2 folder or a cache.

    Explicit ids win; else the split CSV; a flat folder without CSV trains on every
    clip not listed in `val_ids`.
    """
    data_dir = Path(data_dir)
    speakers = cfg.speakers or None
    ids = cfg.train_ids if role == "train" else cfg.val_ids
    if ids:
        return find_clips(data_dir, speakers=speakers, ids=list(ids), require=require)
    if has_split_table(data_dir):
        split = cfg.train_split if role == "train" else cfg.val_split
        try:
            return find_clips(data_dir, split=split, speakers=speakers, require=require)
        except DataError:
            if role == "val":
                return []
            raise
    if role == "val":
        return []
    held_out = set(cfg.val_ids)
    clips = [c for c in find_clips(data_dir, speakers=speakers, require=require) if c.id not in held_out]
    if not clips:
        raise DataError(f"{data_dir}: every clip is held out for validation; nothing left to train on")
    return clips


def stage_cache(data_dir: str | Path, cfg: DataConfig, work: str | Path, require=("motion", "audio"),
                progress: bool = True) -> PreparedCache:
    """The cache to train from: `data_dir` itself when it is one, else a cache of the clips this
    stage uses, prepared (or updated: changed files are read again) in ``work/cache``. A clip it
    needs that cannot be read stops the stage with the file and the problem."""
    from ..data.prepare import prepare_cache

    data_dir = Path(data_dir)
    if is_cache(data_dir):
        return open_cache(data_dir)
    wanted = [f.id for role in ("train", "val") for f in select_clip_files(data_dir, cfg, role, require)]
    # every DDP rank calls this: the first prepares, the others wait for it and find nothing to do
    report = prepare_cache(data_dir, Path(work) / WORK_CACHE, ids=sorted(set(wanted)), progress=progress,
                           wait=True)
    if report.bad:
        more = f" (and {len(report.bad) - 1} more)" if len(report.bad) > 1 else ""
        raise DataError(f"{report.bad[0][0]}: {report.bad[0][1]}{more}")
    return open_cache(report.root)


def split_tail(clip: ClipWindows, share: float) -> tuple[ClipWindows, ClipWindows]:
    """(head, tail) of a clip cut at frame round((1 - share) * n): features, audio and words split at
    the same instant; the tail is named ``<id>#tail`` and its words start at 0 s."""
    n = len(clip)
    cut = int(round((1.0 - share) * n))
    if not 0 < cut < n:
        raise DataError(f"clip {clip.id}: {n} frames cannot be split at share {share}")
    return clip.segment(0, cut, clip.id), clip.segment(cut, n, clip.id + "#tail")


def train_val_sources(data_dir: str | Path, cfg: DataConfig, work: str | Path, require=("motion", "audio"),
                      progress: bool = True) -> tuple[list[str], list[ClipWindows], list[ClipWindows]]:
    """(training clip ids, training clips with augmentation, validation clips) of a stage, as views
    of a cache (see :func:`stage_cache`).

    With ``cfg.val_tail`` the validation set is the tail of every training clip (which the training
    clips then lose) and nothing else: other clips stay untouched for testing."""
    cache = stage_cache(data_dir, cfg, work, require, progress)
    train_ids = [f.id for f in select_clip_files(cache.root, cfg, "train", require)]
    train = [cached_windows(cache, i) for i in train_ids]
    if cfg.val_tail > 0:
        pairs = [split_tail(c, cfg.val_tail) for c in train]
        train, val = [h for h, _ in pairs], [t for _, t in pairs]
    else:
        val = [cached_windows(cache, f.id) for f in select_clip_files(cache.root, cfg, "val", require)]
    return train_ids, augment(train, cfg), val


def augment(clips: list[ClipWindows], cfg: DataConfig) -> list[ClipWindows]:
    """Training clips plus, with ``cfg.mirror``, their left/right mirror images (same audio)."""
    if not cfg.mirror:
        return clips
    return clips + [c.mirror() for c in clips]
