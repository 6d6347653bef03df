"""Hierarchical autoregressive model: region experts, xAR-Fuse with PILOR, masking, guidance, sampling."""

from .config import FRAMES_PER_TOKEN, MaskingConfig, ModelConfig, SamplingConfig
from .expert import RegionExpert
from .fuse import XARFuse
from .hierarchical import LiveGestureModel, batch_tokens
from .masking import masked_inputs, region_token_mask, shift_right, ugm_token_mask
from .sampling import TokenSampler, filter_logits, guide, sample_from_logits

__all__ = ["FRAMES_PER_TOKEN", "LiveGestureModel", "MaskingConfig", "ModelConfig", "RegionExpert",
           "SamplingConfig", "TokenSampler", "XARFuse", "batch_tokens", "filter_logits", "guide",
           "masked_inputs", "region_token_mask", "sample_from_logits", "shift_right", "ugm_token_mask"]
