"""Synthetic clips for the clean-up tests: a standing figure whose body slides over the floor, steps
that lift a foot, and decoder-like jumps at every token boundary."""

from __future__ import annotations

import numpy as np

from livegesture import Motion

STAND_HEIGHT = 1.30  # root height that puts the approximate skeleton's ankles ~8 cm above y = 0


def smooth_noise(rng: np.random.Generator, n: int, shape: tuple[int, ...], scale: float, width: int = 9
                 ) -> np.ndarray:
    k = np.hanning(width)
    k /= k.sum()
    x = rng.normal(0, scale, (n + width, *shape))
    return np.apply_along_axis(lambda v: np.convolve(v, k, "valid")[:n], 0, x)


def standing(n: int = 240, seed: int = 0, drift: float = 0.02, step_every: int = 0) -> Motion:
    """A standing figure with moving arms and a slight knee bend; the whole body slides at `drift`
    m/s along x (the feet with it, as a model that skates); every `step_every` frames the left foot
    is lifted for 12 frames (hip and knee flexion) while the body moves on."""
    rng = np.random.default_rng(seed)
    poses = smooth_noise(rng, n, (55, 3), 0.02)
    poses[:, [1, 2, 4, 5, 7, 8, 10, 11]] *= 0.1          # legs almost still
    poses[:, [4, 5], 0] += 0.25                            # knees bent ~14 degrees
    poses[:, [1, 2], 0] -= 0.12                            # hips flexed back to keep the feet under
    poses[:, 16:22] += smooth_noise(rng, n, (6, 3), 0.3, 15)  # gesturing arms
    trans = np.zeros((n, 3))
    trans[:, 0] = np.arange(n) * drift / 30.0
    trans[:, 1] = STAND_HEIGHT + smooth_noise(rng, n, (), 0.003)
    if step_every:
        for start in range(step_every, n - 12, step_every):
            lift = np.sin(np.linspace(0, np.pi, 12))
            poses[start:start + 12, 1, 0] -= 0.5 * lift    # hip flexion lifts the thigh
            poses[start:start + 12, 4, 0] += 0.9 * lift    # knee flexion lifts the foot
            trans[start:, 2] += np.minimum(np.arange(n - start), 12) * 0.01  # the body steps forward
    expr = smooth_noise(rng, n, (100,), 0.5)
    return Motion(poses.astype(np.float32), trans.astype(np.float32), expr.astype(np.float32))


def jumpy(n: int = 240, seed: int = 0, jump: float = 0.08) -> Motion:
    """`standing` plus a new random offset on every joint, translation and expression every 4 frames:
    what a decoder that does not join its tokens gives."""
    m = standing(n, seed)
    rng = np.random.default_rng(seed + 100)
    tokens = n // 4 + 1
    m.poses += np.repeat(rng.normal(0, jump, (tokens, 55, 3)), 4, axis=0)[:n].astype(np.float32)
    m.trans += np.repeat(rng.normal(0, 0.005, (tokens, 3)), 4, axis=0)[:n].astype(np.float32)
    m.expressions += np.repeat(rng.normal(0, 0.3, (tokens, 100)), 4, axis=0)[:n].astype(np.float32)
    return m


def stream(stage, motion: Motion, sizes: list[int]) -> Motion:
    """`motion` pushed through `stage` in chunks of the given sizes (cycled)."""
    parts, i, k = [], 0, 0
    while i < len(motion):
        n = sizes[k % len(sizes)]
        parts.append(stage(motion[i:i + n]))
        i, k = i + n, k + 1
    return Motion.concatenate(parts)
