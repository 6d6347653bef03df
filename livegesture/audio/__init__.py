"""Causal mel front end and streaming audio (+ optional text) encoder."""

from .mel import CausalLogMel

__all__ = ["CausalLogMel"]
