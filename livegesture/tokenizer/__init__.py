"""SVQ streaming motion tokenizer, one per body region."""

from .config import TokenizerConfig
from .svq import MotionTokenizer, RegionTokenizer

__all__ = ["MotionTokenizer", "RegionTokenizer", "TokenizerConfig"]
