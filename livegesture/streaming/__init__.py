"""Stateful streaming building blocks shared by the audio encoder, tokenizer and model."""

from .attention import StreamingCrossAttention, StreamingSelfAttention
from .base import StreamingModule
from .chunk import ChunkBuffer
from .conv import CausalConv1d
from .rope import RotaryEmbedding
from .state import (StreamState, state_assign_, state_clone, state_copy_, state_detach_, state_nbytes,
                    state_reset_, state_select)
from .unfold import TimeUnfold

__all__ = ["CausalConv1d", "ChunkBuffer", "RotaryEmbedding", "StreamState", "StreamingCrossAttention",
           "StreamingModule", "StreamingSelfAttention", "TimeUnfold", "state_assign_", "state_clone",
           "state_copy_", "state_detach_", "state_nbytes", "state_reset_", "state_select"]
