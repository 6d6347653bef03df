"""Every clean-up stage is a causal streaming stage: chunked == whole clip bit for bit, and changing
frames after t leaves every output frame <= t unchanged (zero look-ahead)."""

from __future__ import annotations

import numpy as np
import pytest

from livegesture.cleanup import Cleanup, CleanupConfig, FootConfig, HandoverConfig, RootConfig

from .motions import jumpy, standing, stream

CONFIGS = {
    "default": CleanupConfig(),
    "handover": CleanupConfig(root=RootConfig(mode="raw"), feet=FootConfig(enabled=False)),
    "root": CleanupConfig(HandoverConfig(enabled=False), feet=FootConfig(enabled=False)),
    "feet": CleanupConfig(HandoverConfig(enabled=False), RootConfig(mode="raw")),
    "in_place": CleanupConfig(root=RootConfig(mode="in_place")),
    "anchor": CleanupConfig(root=RootConfig(anchor=(0.5, -0.2), pull_seconds=1.0, radius=0.3)),
}
MOTIONS = {"jumpy": lambda: jumpy(200, seed=1), "steps": lambda: standing(200, seed=2, drift=0.05, step_every=50)}


def same(a, b) -> None:
    assert len(a) == len(b)
    for k in ("poses", "trans", "expressions"):
        np.testing.assert_array_equal(getattr(a, k), getattr(b, k), err_msg=k)


@pytest.mark.parametrize("config", list(CONFIGS), ids=list(CONFIGS))
@pytest.mark.parametrize("sizes", [[1], [4], [3, 7, 1, 0, 50], [13, 2]], ids=["1", "4", "ragged", "13-2"])
@pytest.mark.parametrize("motion", list(MOTIONS))
def test_chunked_equals_whole_bit_for_bit(config, sizes, motion):
    m = MOTIONS[motion]()
    whole = Cleanup(CONFIGS[config])(m)
    same(stream(Cleanup(CONFIGS[config]), m, sizes), whole)


@pytest.mark.parametrize("config", list(CONFIGS), ids=list(CONFIGS))
@pytest.mark.parametrize("t", [37, 120])
def test_zero_look_ahead(config, t):
    m = MOTIONS["steps"]()
    out = Cleanup(CONFIGS[config])(m)
    changed = MOTIONS["steps"]()
    changed.poses[t:] += np.float32(0.3)
    changed.trans[t:] += np.float32(0.2)
    changed.expressions[t:] -= np.float32(1.0)
    out2 = Cleanup(CONFIGS[config])(changed)
    same(out[:t], out2[:t])
    assert np.abs(out.poses[t:] - out2.poses[t:]).max() > 0.01  # the future did change


def test_reset_starts_over_and_state_does_not_grow():
    m = jumpy(120)
    c = Cleanup()
    first = c(m)
    sizes = [np.asarray(v).nbytes for s in c.stages for v in vars(s).values() if isinstance(v, np.ndarray)]
    c(m)
    c(m)
    assert sizes == [np.asarray(v).nbytes for s in c.stages for v in vars(s).values() if isinstance(v, np.ndarray)]
    c.reset()
    same(c(m), first)


def test_off_is_the_raw_output():
    m = jumpy(80)
    cfg = CleanupConfig.off()
    assert not cfg.active and Cleanup(cfg).stages == []
    same(Cleanup(cfg)(m), m)


@pytest.mark.parametrize("seed_frames", [1, 2, 30])
def test_a_primed_stream_starts_where_the_seed_ended(seed_frames):
    seed = standing(40, seed=3, drift=0.0)[40 - seed_frames:]
    seed.trans[:, 0] += np.float32(0.7)  # the avatar stands 70 cm to the side
    m = jumpy(60, seed=4, jump=0.01)
    m.poses += np.float32(0.1)           # and the stream starts in another pose
    c = Cleanup()
    c.prime(seed)
    out = c(m)
    step = lambda a, b: float(np.abs(a - b).max())  # noqa: E731
    assert step(out.trans[0, [0, 2]], seed.trans[-1, [0, 2]]) < 0.01   # no jump back to the origin
    body = [j for j in range(55) if j not in (1, 2, 4, 5, 7, 8)]  # the legs are re-solved for the feet
    assert step(out.poses[0, body], seed.poses[-1, body]) < 0.6 * step(m.poses[0, body], seed.poses[-1, body])
    cold = Cleanup()(m)
    assert step(cold.trans[0, [0, 2]], seed.trans[-1, [0, 2]]) > 0.6
    # primed streams are still chunking-independent
    c2 = Cleanup()
    c2.prime(seed)
    same(stream(c2, m, [3, 1, 8]), out)
