"""Metrics of the BEAT2 tables (docs/design.md §8): FGD (+ its feature extractor), BC, L1div,
face MSE and LVD, and an evaluation runner. Numpy in, numbers out."""

from .beat import (SequenceBC, audio_onsets, beat_consistency, beat_score_from_times,
                   joint_speed, motion_beats, sequence_beat_consistency)
from .diversity import l1_diversity
from .face import FaceError, face_mse, lvd
from .frechet import frechet_distance, gaussian_frechet_distance

__all__ = [
    "FaceError", "SequenceBC", "audio_onsets", "beat_consistency", "beat_score_from_times",
    "face_mse", "frechet_distance", "gaussian_frechet_distance", "joint_speed", "l1_diversity",
    "lvd", "motion_beats", "sequence_beat_consistency",
    # torch-based, imported lazily: FgdExtractor, FgdConfig, load_external, fgd,
    # train_fgd_extractor, evaluate_ground_truth
]

_LAZY = {
    "FgdExtractor": "extractor", "FgdConfig": "extractor", "load_external": "extractor",
    "fgd": "extractor", "motion_features": "extractor", "motion_to_6d": "extractor",
    "train_fgd_extractor": "training", "evaluate_ground_truth": "evaluate",
}


def __getattr__(name: str):  # PEP 562: keep `import livegesture.metrics` light
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
