"""L1div: still poses give 0, hand-computed patterns."""

from __future__ import annotations

import numpy as np
import pytest

from livegesture.metrics import l1_diversity


def test_still_pose_gives_zero(rng: np.random.Generator) -> None:
    pose = rng.normal(0, 1, (55, 3))
    assert l1_diversity(np.broadcast_to(pose, (30, 55, 3))) == pytest.approx(0.0, abs=1e-12)
    assert l1_diversity([np.broadcast_to(pose, (30, 55, 3)),
                         np.zeros((10, 55, 3))]) == pytest.approx(0.0, abs=1e-12)


def test_alternating_offset_on_every_coordinate(rng: np.random.Generator) -> None:
    """Frames pose ± c on all 165 coordinates: each frame is 165·c from the mean."""
    c = 0.02
    pose = rng.normal(0, 1, (55, 3))
    signs = np.array([1, -1, 1, -1])[:, None, None]
    seq = pose + c * signs
    assert l1_diversity(seq) == pytest.approx(165 * c)
    # a still second sequence adds frames, not distance: 165c·4/(4+6)
    assert l1_diversity([seq, np.broadcast_to(pose, (6, 55, 3))]) == pytest.approx(165 * c * 0.4)


def test_single_joint_step() -> None:
    """One coordinate 0,0,0,1: mean 0.25, |dev| = .25+.25+.25+.75 = 1.5 over 4 frames."""
    seq = np.zeros((4, 55, 3))
    seq[3, 5, 0] = 1.0
    assert l1_diversity(seq) == pytest.approx(0.375)
    # each sequence uses its own mean: shifting a whole sequence changes nothing
    assert l1_diversity([seq, seq + 10.0]) == pytest.approx(0.375)


def test_empty_input_is_refused() -> None:
    with pytest.raises(ValueError, match="no frames"):
        l1_diversity([np.zeros((0, 55, 3))])
