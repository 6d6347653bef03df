"""Tokenizer model files: all regions, their training stage and the normalisation stats."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..config import from_dict, to_dict
from ..data.features import RegionStats
from ..errors import CheckpointError
from ..modelio import load_model_file, load_state_strict, save_model_file
from .config import TokenizerConfig
from .svq import MotionTokenizer

KIND = "tokenizer"


def save_tokenizer(path: str | os.PathLike, tokenizer: MotionTokenizer, stats: RegionStats,
                   stages: dict[str, int], extra: dict[str, Any] | None = None) -> Path:
    tensors = {f"tokenizer.{k}": v for k, v in tokenizer.state_dict().items()}
    tensors.update(stats.to_tensors())
    meta = {"tokenizer": to_dict(tokenizer.cfg), "stages": stages, **(extra or {})}
    return save_model_file(path, tensors, KIND, meta)


def load_tokenizer(path: str | os.PathLike, allow_model: bool = False
                   ) -> tuple[MotionTokenizer, RegionStats, dict[str, Any]]:
    """A tokenizer file; with `allow_model` also the tokenizer inside a full model file (its meta
    then gets the tokenizer's ``stages`` and the model's ``train_clips``)."""
    tensors, meta = load_model_file(path, kind=None if allow_model else KIND)
    if meta.get("kind") == "livegesture" and allow_model:
        cfg = meta.get("config", {})
        meta = {"tokenizer": cfg.get("tokenizer", {}), "stages": meta.get("stages", {}).get("tokenizer", {}),
                "train_clips": meta.get("train_clips", [])}
    elif meta.get("kind") != KIND:
        raise CheckpointError(f"{path}: is a '{meta.get('kind')}' file, expected a tokenizer or model file")
    return tokenizer_from_tensors(tensors, meta, path)


def tokenizer_from_tensors(tensors, meta, path) -> tuple[MotionTokenizer, RegionStats, dict[str, Any]]:
    if "tokenizer" not in meta:
        raise CheckpointError(f"{path}: no tokenizer config in the file's metadata")
    cfg = from_dict(TokenizerConfig, meta["tokenizer"], where=f"{path}: tokenizer.")
    tok = MotionTokenizer(cfg)
    load_state_strict(tok, tensors, "tokenizer.", path)
    try:
        stats = RegionStats.from_tensors({k: v for k, v in tensors.items() if k.startswith("stats.")})
    except Exception as exc:
        raise CheckpointError(f"{path}: normalisation statistics missing or broken ({exc})") from None
    return tok.eval(), stats, meta
