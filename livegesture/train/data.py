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


def augment(clips: list[ClipData], cfg: DataConfig) -> list[ClipData]:
    """Training clips plus, with ``cfg.mirror``, their left/right mirror images (same audio)."""
    if not cfg.mirror:
        return clips
    from dataclasses import replace

    return clips + [replace(c, id=c.id + "~mirror", motion=c.motion.mirrored()) for c in clips
                    if c.motion is not None]
