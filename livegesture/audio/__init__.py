"""Causal mel front end and streaming audio (+ optional text) encoder."""

from .encoder import AudioEncoder, AudioEncoderConfig, frames_available, last_mel_index
from .mel import CausalLogMel

__all__ = ["AudioEncoder", "AudioEncoderConfig", "CausalLogMel", "frames_available", "last_mel_index"]
