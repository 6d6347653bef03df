"""BEAT2 data: audio loading, TextGrid words, clip discovery/loading (a BEAT2 folder or a
prepared, memory-mapped cache), features, windows, synthetic BEAT2-format data."""

from .audio import SAMPLE_RATE, load_audio, load_audio_as, prepare_audio
from .beat2 import (STANDARD_SPLITS, ClipData, ClipFiles, crop_lengths, find_clips, load_clip,
                    load_clip_audio)
from .features import RegionStats, training_features
from .synthetic import synthetic_audio, synthetic_motion, write_synthetic_beat2
from .textgrid import Vocabulary, Word, as_words, read_words, word_ids_per_frame
from .windows import ClipWindows, WindowDataset, audio_samples, frame_to_sample

__all__ = [
    "SAMPLE_RATE", "STANDARD_SPLITS", "ClipData", "ClipFiles", "ClipWindows", "RegionStats", "Vocabulary",
    "WindowDataset", "Word", "audio_samples", "crop_lengths", "find_clips", "frame_to_sample",
    "as_words", "load_audio", "load_audio_as", "load_clip", "load_clip_audio", "prepare_audio",
    "read_words", "synthetic_audio", "synthetic_motion", "training_features", "word_ids_per_frame",
    "write_synthetic_beat2",
]
