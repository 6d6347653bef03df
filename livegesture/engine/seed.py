"""Seed motion: the pose or frames a session starts from, as token history (docs/design.md §3).

A live avatar has a pose before it speaks, and a clip can continue another; a session that
starts from its first token's decode jumps from there. The tokenizer's encoder turns the seed
into token history, the session is primed with it (:meth:`EngineCore.prime`, silence as its
audio), and its output stages continue from the seed's frames as they were shown. The seed is
encoded as whole tokens, a multiple of 3 tokens (12 frames), so that the session's audio
timeline, seed silence included, keeps the token boundaries of the stream's own audio to the
sample; at most ``MAX_SEED_TOKENS`` of its last frames are used (the model attends to 32
tokens), a shorter seed (one pose, say) is led in by its first frame held still.
"""

from __future__ import annotations

import numpy as np
import torch

from ..body.constants import FPS
from ..errors import DataError
from ..model.config import FRAMES_PER_TOKEN
from ..motion import Motion

__all__ = ["MAX_SEED_TOKENS", "SEED_TOKEN_STEP", "seed_frames", "seed_tokens"]

#: seeds are whole multiples of this many tokens: 3 tokens = 12 frames = 6400 samples at 16 kHz exactly
SEED_TOKEN_STEP = 3
MAX_SEED_TOKENS = 30


def seed_frames(motion: Motion) -> Motion:
    """The frames `motion` is encoded from: its last frames (at most ``MAX_SEED_TOKENS`` tokens),
    led in by its first frame to a multiple of ``SEED_TOKEN_STEP`` tokens, x / z from the origin."""
    if not isinstance(motion, Motion):
        raise DataError(f"seed motion must be a Motion, got {type(motion).__name__}")
    if len(motion) == 0:
        raise DataError("seed motion has no frames")
    if abs(motion.fps - FPS) > 1e-6:
        raise DataError(f"seed motion must be {FPS:g} fps, got {motion.fps:g}")
    for k in ("poses", "trans", "expressions"):
        if not np.isfinite(getattr(motion, k)).all():
            raise DataError(f"seed motion: {k} contains NaN or Inf")
    step = SEED_TOKEN_STEP * FRAMES_PER_TOKEN
    m = motion[max(0, len(motion) - MAX_SEED_TOKENS * FRAMES_PER_TOKEN):]
    n = -(-len(m) // step) * step
    if n > len(m):
        m = Motion.concatenate([m[:1]] * (n - len(m)) + [m])
    trans = m.trans.astype(np.float64)
    trans[:, [0, 2]] -= trans[0, [0, 2]]
    return Motion(m.poses.astype(np.float32), trans.astype(np.float32), m.expressions.astype(np.float32),
                  m.betas, fps=m.fps, gender=m.gender, model=m.model)


def seed_tokens(bundle, motion: Motion) -> torch.Tensor:
    """Token ids (R, T) of `motion` (a :class:`~livegesture.bundle.ModelBundle`'s tokenizers),
    T a multiple of ``SEED_TOKEN_STEP``."""
    return bundle.motion_to_tokens(seed_frames(motion))
