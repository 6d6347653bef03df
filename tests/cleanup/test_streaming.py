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
