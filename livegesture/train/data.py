"""Which clips a stage trains and validates on, loaded once."""

from __future__ import annotations

from pathlib import Path

from tqdm.auto import tqdm

from ..data import ClipData, find_clips, load_clip
from ..data.beat2 import SPLIT_CSV
from ..errors import DataError
from .config import DataConfig


def select_clip_files(data_dir: str | Path, cfg: DataConfig, role: str, require=("motion", "audio")):
    """Clip files for `role` ('train' or 'val').

    Explicit ids win; else the split CSV; a flat folder without CSV trains on every
    clip not listed in `val_ids`.
    """
    data_dir = Path(data_dir)
    speakers = cfg.speakers or None
    ids = cfg.train_ids if role == "train" else cfg.val_ids
    if ids:
        return find_clips(data_dir, speakers=speakers, ids=list(ids), require=require)
    if (data_dir / SPLIT_CSV).is_file():
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


def load_clips(files, progress: bool = True, desc: str = "loading clips") -> list[ClipData]:
    return [load_clip(f) for f in tqdm(files, desc=desc, disable=not progress or len(files) < 2)]


def split_tail(clip: ClipData, share: float) -> tuple[ClipData, ClipData]:
    """(head, tail) of a clip cut at frame round((1 - share) * n): motion, audio and words split at the
    same instant; the tail is named ``<id>#tail`` and its words start at 0 s."""
    from dataclasses import replace

    if clip.motion is None:
        raise DataError(f"clip {clip.id}: a validation tail needs motion")
    n = len(clip.motion)
    cut = int(round((1.0 - share) * n))
    if not 0 < cut < n:
        raise DataError(f"clip {clip.id}: {n} frames cannot be split at share {share}")
    t = cut / clip.motion.fps
    samples = int(round(t * clip.sample_rate))
    audio = clip.audio
    words = clip.words
    head = replace(clip, motion=clip.motion[:cut], audio=None if audio is None else audio[:samples],
                   words=None if words is None else [w for w in words if w.start < t])
    tail = replace(clip, id=clip.id + "#tail", motion=clip.motion[cut:],
                   audio=None if audio is None else audio[samples:],
                   words=None if words is None else [replace(w, start=max(w.start - t, 0.0), end=w.end - t)
                                                     for w in words if w.end > t])
    return head, tail


def train_val_clips(data_dir: str | Path, cfg: DataConfig, require=("motion", "audio"), progress: bool = True
                    ) -> tuple[list, list[ClipData], list[ClipData]]:
    """(training clip files, training clips with augmentation, validation clips) of a stage.

    With ``cfg.val_tail`` the validation set is the tail of every training clip (which the training
    clips then lose) and nothing else: other clips stay untouched for testing."""
    train_files = select_clip_files(data_dir, cfg, "train", require=require)
    train = load_clips(train_files, progress)
    if cfg.val_tail > 0:
        pairs = [split_tail(c, cfg.val_tail) for c in train]
        train, val = [h for h, _ in pairs], [t for _, t in pairs]
    else:
        val = load_clips(select_clip_files(data_dir, cfg, "val", require=require), progress)
    return train_files, augment(train, cfg), val


def augment(clips: list[ClipData], cfg: DataConfig) -> list[ClipData]:
    """Training clips plus, with ``cfg.mirror``, their left/right mirror images (same audio)."""
    if not cfg.mirror:
        return clips
    from dataclasses import replace

    return clips + [replace(c, id=c.id + "~mirror", motion=c.motion.mirrored()) for c in clips
                    if c.motion is not None]
