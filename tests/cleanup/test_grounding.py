"""Root control and foot planting: skating feet are held, lifted feet are let go, the root stays."""

from __future__ import annotations

import numpy as np
import pytest

from livegesture import LiveGestureError, Motion
from livegesture.body.kinematics import forward_kinematics
from livegesture.cleanup import Cleanup, CleanupConfig, FootConfig, Grounding, HandoverConfig, RootConfig
from livegesture.metrics.motion_quality import foot_contact, foot_slide, joint_limit_violations, motion_quality

from .motions import standing


def ground(m: Motion, root: RootConfig = RootConfig(), feet: FootConfig = FootConfig()) -> Motion:
    return Grounding(root, feet, 30)(m)


def test_a_skating_body_is_held_on_its_feet():
    m = standing(900, drift=0.1)  # the whole body slides 3 m in 30 s, feet "on the floor"
    out = ground(m)
    q, q_raw = motion_quality(out), motion_quality(m)
    assert q_raw["slide_median"] > 0.09 and q_raw["root_max"] > 2.9
    # all of the skate but the 5 mm/s deadband (left for motion-capture creep) is taken out of the root
    assert q["slide_median"] < 0.005 and q["root_max"] < 30 * RootConfig().slide_deadband + 0.03
    assert q["contact_any"] >= q_raw["contact_any"] - 0.02
    assert q["limit_violations"] == 0.0 and q["floor_share"] == 0.0


def test_without_feet_planting_the_root_is_still_held():
    m = standing(300, drift=0.1)
    out = ground(m, feet=FootConfig(enabled=False))  # contact still steers the root; legs untouched
    np.testing.assert_array_equal(out.poses, m.poses)
    assert motion_quality(out)["root_max"] < 0.1


def test_a_lifted_foot_is_let_go_and_a_free_foot_passes_untouched():
    m = standing(300, drift=0.0, step_every=100)  # the left foot lifts at frames 100 and 200
    g = Grounding(RootConfig(mode="raw"), FootConfig(), 30)
    planted = []
    for i in range(len(m)):
        g(m[i:i + 1])
        planted.append(g.planted)
    planted = np.array(planted)
    assert planted[:100].all()
    assert not planted[105:110, 0].any() and planted[105:110, 1].all()  # left lifted, right stays
    assert planted[150:200].all()                                       # planted again where it landed
    out = ground(m, RootConfig(mode="raw"))
    j, j_raw = forward_kinematics(out), forward_kinematics(m)
    lift = slice(104, 110)
    np.testing.assert_allclose(j[lift, 7, 1], j_raw[lift, 7, 1], atol=1e-6)  # heights are the model's
    # the body stepped 12 cm forwards: the landed foot is planted near where the model put it
    assert abs(j[150, 7, 2] - j_raw[150, 7, 2]) < 0.03


def test_free_feet_are_passed_through_bit_for_bit():
    m = standing(60)
    m.trans[:, 0] = np.arange(60) * 1.5 / 30  # running at 1.5 m/s: too fast for any contact
    out = ground(m, RootConfig(mode="raw"))
    # frame 0 has no speed yet, so the feet plant, let go at frame 1 and are back by frame 7
    np.testing.assert_array_equal(out.poses[7:], m.poses[7:])
    np.testing.assert_array_equal(out.trans, m.trans)


def test_root_modes():
    m = standing(120, drift=0.3)
    np.testing.assert_array_equal(ground(m, RootConfig(mode="in_place")).trans[:, [0, 2]], 0.0)
    np.testing.assert_array_equal(ground(m, RootConfig(mode="in_place")).trans[:, 1], m.trans[:, 1])
    np.testing.assert_array_equal(ground(m, RootConfig(mode="raw"), FootConfig(enabled=False)).trans, m.trans)


def test_while_no_foot_is_planted_the_root_is_pulled_to_the_anchor_and_bounded():
    m = standing(600)
    m.trans[:, 0] = 2.0 + np.arange(600) * 1.0 / 30  # running away at 1 m/s: no contact
    cfg = RootConfig(anchor=(0.0, 0.0), pull_seconds=1.0, radius=0.5)
    out = ground(m, cfg)
    r = np.linalg.norm(out.trans[:, [0, 2]], axis=1)
    assert r.max() < 0.5                        # never shown beyond the radius
    assert r[-1] < r[0]                         # pulled towards the anchor


@pytest.mark.parametrize("preset", ["package", "demo"])
def test_real_clips_stay_within_their_real_values(beat2_dir, preset):
    from livegesture.train.config import load_experiment

    cfg = CleanupConfig() if preset == "package" else load_experiment("demo").cleanup  # the demo: no blend
    for name in ("2_scott_0_1_1", "2_scott_0_2_2"):
        m = Motion.load(beat2_dir / f"{name}.npz")
        q_raw, q = motion_quality(m), motion_quality(Cleanup(cfg)(m))
        assert q["slide_median"] <= q_raw["slide_median"] and q["slide_mean"] <= q_raw["slide_mean"], name
        assert q["contact_any"] >= q_raw["contact_any"] - 0.03, name
        assert q["root_max"] <= q_raw["root_max"], name
        assert abs(q["boundary_ratio"] - q_raw["boundary_ratio"]) < 0.05, name
        assert q["limit_violations"] <= q_raw["limit_violations"] and q["floor_share"] <= q_raw["floor_share"], name


def test_foot_config_checks():
    with pytest.raises(LiveGestureError, match="hysteresis"):
        FootConfig(contact_speed=1.0, release_speed=0.5)
    with pytest.raises(LiveGestureError, match="root mode"):
        RootConfig(mode="glued")
    with pytest.raises(LiveGestureError, match="anchor"):
        RootConfig(anchor=(0.0, float("nan")))


def test_a_primed_stream_keeps_the_feet_where_the_seed_left_them():
    seed = standing(20, seed=7, drift=0.0)
    m = standing(40, seed=8, drift=0.0)
    m.trans[:, 2] += np.float32(0.05)  # the model puts the body 5 cm further forwards
    c = Cleanup()
    c.prime(seed)
    out = c(m)
    feet = lambda x: forward_kinematics(x)[:, [7, 8], :][..., [0, 2]]  # noqa: E731
    # the stream's root is moved to continue the seed's, and the feet stay on the seed's footprints
    np.testing.assert_allclose(feet(out)[:10], np.broadcast_to(feet(seed)[-1], (10, 2, 2)), atol=0.01)
