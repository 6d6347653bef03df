"""The self-contained LiveGesture model file: config, stats, vocabulary and every weight.

One safetensors file holds the tokenizers, the hierarchical AR model (audio
encoder, experts, fuse), the normalisation statistics and, as JSON metadata,
the experiment config, the vocabulary, which stages were trained on which
clips, and the versions that wrote it. Loading runs no code from the file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .body.constants import REGIONS
from .config import from_dict, to_dict
from .data.features import RegionStats, training_features
from .data.textgrid import Vocabulary
from .errors import CheckpointError
from .modelio import load_model_file, load_state_strict, save_model_file
from .model import LiveGestureModel
from .motion import Motion
from .tokenizer import MotionTokenizer
from .train.config import DataConfig, ExperimentConfig

KIND = "livegesture"


@dataclass
class ModelBundle:
    config: ExperimentConfig
    tokenizer: MotionTokenizer
    stats: RegionStats
    model: LiveGestureModel
    vocab: Vocabulary | None = None
    stages: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def create(cls, config: ExperimentConfig, tokenizer: MotionTokenizer, stats: RegionStats,
               vocab: Vocabulary | None = None, tokenizer_stages: dict[str, int] | None = None) -> "ModelBundle":
        if tokenizer.cfg != config.tokenizer:
            raise CheckpointError("the tokenizer's config differs from the experiment's tokenizer config")
        model = LiveGestureModel(config.model, config.masking)
        return cls(config, tokenizer, stats, model, vocab,
                   {"tokenizer": dict(tokenizer_stages or {}), "experts": False, "fuse": False})

    def save(self, path: str | os.PathLike, half: bool = False) -> Path:
        """Write the model file; `half` stores the float32 weights as float16 (half the size, for
        shipping; :meth:`load` casts them back to float32). Statistics stay float32."""
        tensors = {f"tokenizer.{k}": v for k, v in self.tokenizer.state_dict().items()}
        tensors.update({f"model.{k}": v for k, v in self.model.state_dict().items()})
        if half:
            tensors = {k: v.half() if v.dtype == torch.float32 else v for k, v in tensors.items()}
        tensors.update(self.stats.to_tensors())
        meta = {**self.meta, "config": to_dict(self.config), "stages": self.stages,
                "vocab": self.vocab.to_dict() if self.vocab is not None else None,
                "weights_dtype": "float16" if half else "float32"}
        return save_model_file(path, tensors, KIND, meta)

    @classmethod
    def load(cls, path: str | os.PathLike, device: str | torch.device = "cpu") -> "ModelBundle":
        tensors, meta = load_model_file(path, kind=KIND)
        if "config" not in meta:
            raise CheckpointError(f"{path}: no experiment config in the file's metadata")
        config_d = meta.pop("config")
        data_d = config_d.get("data")
        if isinstance(data_d, dict) and "ar_window_frames" not in data_d:
            # written before data.ar_window_frames existed: its AR stages trained on data.window_frames
            window = data_d.get("window_frames", DataConfig.window_frames)
            config_d = {**config_d, "data": {**data_d, "ar_window_frames": window}}
        config = from_dict(ExperimentConfig, config_d, where=f"{path}: config.")
        tok = MotionTokenizer(config.tokenizer)
        load_state_strict(tok, tensors, "tokenizer.", path)
        model = LiveGestureModel(config.model, config.masking)
        load_state_strict(model, tensors, "model.", path)
        try:
            stats = RegionStats.from_tensors({k: v for k, v in tensors.items() if k.startswith("stats.")})
        except Exception as exc:
            raise CheckpointError(f"{path}: normalisation statistics missing or broken ({exc})") from None
        vocab_d = meta.pop("vocab", None)
        vocab = Vocabulary.from_dict(vocab_d) if vocab_d else None
        stages = meta.pop("stages", {})
        meta.pop("kind", None)
        meta.pop("weights_dtype", None)  # load_state_strict copied the weights into float32 modules
        b = cls(config, tok.eval(), stats, model.eval(), vocab, stages, meta)
        return b.to(device)

    def to(self, device: str | torch.device) -> "ModelBundle":
        self.tokenizer.to(device)
        self.model.to(device)
        return self

    # ------------------------------------------------------------------ encoding / decoding
    @torch.no_grad()
    def motion_to_tokens(self, motion: Motion) -> torch.Tensor:
        """Token ids (R, T/4) of a clip (T a multiple of 4) through each region's tokenizer encoder."""
        if len(motion) == 0 or len(motion) % 4:
            raise ValueError(f"motion_to_tokens needs a whole number of tokens (4 frames each), got {len(motion)}")
        feats = training_features(motion)
        device = next(self.tokenizer.parameters()).device
        return torch.stack([self.tokenizer[r].encode(torch.from_numpy(self.stats.normalize(r, feats[r]))[None]
                                                     .to(device))[0] for r in REGIONS]).cpu()

    @torch.no_grad()
    def tokens_to_features(self, tokens: torch.Tensor) -> dict[str, np.ndarray]:
        """Denormalised region features (T*4, D_r) of tokens (R, T) (offline decode)."""
        return {r: self.stats.denormalize(r, self.tokenizer[r].decode(tokens[i][None].to(
            next(self.tokenizer.parameters()).device))[0].float().cpu().numpy())
            for i, r in enumerate(REGIONS)}

    def tokens_to_motion(self, tokens: torch.Tensor, fps: float = 30.0) -> Motion:
        return Motion.from_regions(self.tokens_to_features(tokens), fps=fps)
