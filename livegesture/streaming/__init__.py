"""Stateful streaming building blocks shared by the audio encoder, tokenizer and model."""

from .base import StreamingModule
from .state import (StreamState, state_assign_, state_clone, state_copy_, state_nbytes,
                    state_reset_, state_select)

__all__ = ["StreamState", "StreamingModule", "state_assign_", "state_clone", "state_copy_",
           "state_nbytes", "state_reset_", "state_select"]
