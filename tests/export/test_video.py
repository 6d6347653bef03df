"""Headless rendering: render_frame images, clip framing, H.264/AAC mp4 output."""

from __future__ import annotations

import numpy as np
import pytest

from livegesture.body import JOINT_NAMES, NUM_JOINTS, forward_kinematics
from livegesture.export import clip_cameras, render_frame, render_frames, render_video
from livegesture.motion import Motion

imageio_ffmpeg = pytest.importorskip("imageio_ffmpeg")


def _motion(frames: int, fps: float = 30.0, moving: bool = True) -> Motion:
    t = np.arange(frames) / fps
    poses = np.zeros((frames, NUM_JOINTS, 3), np.float32)
    poses[:, 16, 2] = -1.2  # left arm down from T-pose
    poses[:, 17, 2] = 1.2
    if moving:
        poses[:, 18, 1] = -1.0 + 0.8 * np.sin(2 * np.pi * t)  # elbow waves
        poses[:, 22, 0] = 0.15 * (1 + np.sin(6 * t))  # jaw
    trans = np.tile(np.array([0.0, 1.3, 0.0], np.float32), (frames, 1))
    return Motion(poses, trans, np.zeros((frames, 100), np.float32), fps=fps)


def _figure_mask(img: np.ndarray) -> np.ndarray:
    """Pixels of the coloured limbs (the grey background/floor/torso are unsaturated)."""
    img = img.astype(int)
    return (img.max(-1) - img.min(-1)) > 60


def _meta(path) -> dict:
    gen = imageio_ffmpeg.read_frames(str(path))
    meta = next(gen)
    n = sum(1 for _ in gen)
    return {**meta, "frames": n}


def test_render_frame_puts_figure_in_the_middle():
    joints = forward_kinematics(_motion(1))[0]
    img = render_frame(joints, size=(320, 240))
    assert img.shape == (240, 320, 3) and img.dtype == np.uint8
    mask = _figure_mask(img)
    assert mask[60:180, 80:240].sum() > 500  # limbs in the central region
    ys, xs = np.nonzero(mask)
    assert 0.3 < xs.mean() / 320 < 0.7 and 0.25 < ys.mean() / 240 < 0.75
    # the head (skin-coloured disc) is drawn above the feet
    assert ys.min() > 2 and ys.max() < 238


def test_still_pose_gives_identical_frames_and_motion_changes_them():
    still = list(render_frames(_motion(3, moving=False), size=(160, 160)))
    assert all(np.array_equal(still[0], f) for f in still[1:])
    moving = list(render_frames(_motion(10), size=(160, 160)))
    assert not np.array_equal(moving[0], moving[5])


def test_jaw_opens_the_mouth():
    m = _motion(1, moving=False)
    joints = forward_kinematics(m)[0]
    closed = render_frame(joints, jaw_pose=np.zeros(3), size=(320, 320))
    opened = render_frame(joints, jaw_pose=np.array([0.3, 0, 0]), size=(320, 320))
    assert not np.array_equal(closed, opened)


@pytest.mark.realdata
def test_clip_cameras_frame_the_real_clip(beat2_dir):
    m = Motion.load(beat2_dir / "2_scott_0_1_1.npz")[::3]  # the whole clip at 10 fps
    joints = forward_kinematics(m)
    cams = clip_cameras(joints, fps=m.fps / 3)
    assert len(cams) == len(m)
    size = (640, 640)
    head, pelvis = JOINT_NAMES.index("head"), 0
    for t in range(0, len(m), 4):
        xy, _ = cams[t].project(joints[t], size)
        assert (xy > 5).all() and (xy < 635).all(), t  # whole body inside the picture
        assert xy[head, 1] < xy[pelvis, 1] < xy[JOINT_NAMES.index("left_ankle"), 1]  # upright
        assert abs(xy[pelvis, 0] - 320) < 80  # root roughly centred
    # framing is stable: the view size is fixed and the target moves smoothly
    assert len({c.view_height for c in cams}) == 1
    targets = np.array([c.target for c in cams])
    pelvis_xz = joints[:, 0, [0, 2]]
    jitter = np.abs(np.diff(targets[:, [0, 2]], n=2, axis=0)).max()
    assert jitter < 1e-2 and jitter < 0.2 * np.abs(np.diff(pelvis_xz, n=2, axis=0)).max()


def test_video_with_audio(tmp_path):
    m = _motion(60, fps=30.0)  # 2 s
    sr = 16000
    audio = (0.1 * np.sin(2 * np.pi * 220 * np.arange(int(1.5 * sr)) / sr)).astype(np.float32)
    path = render_video(m, tmp_path / "out" / "clip.mp4", audio=audio, sample_rate=sr,
                        size=(192, 160))
    meta = _meta(path)
    assert meta["codec"] == "h264" and meta["pix_fmt"].startswith("yuv420p")
    assert meta["size"] == (192, 160) and meta["fps"] == pytest.approx(30.0)
    assert abs(meta["frames"] - 60) <= 1
    assert meta.get("audio_codec") == "aac"
    assert meta["duration"] == pytest.approx(2.0, abs=0.1)  # audio padded to the motion


def test_video_without_audio_and_other_fps(tmp_path):
    m = _motion(50, fps=25.0)
    path = render_video(m, tmp_path / "clip.mp4", size=(128, 128))
    meta = _meta(path)
    assert meta["fps"] == pytest.approx(25.0) and abs(meta["frames"] - 50) <= 1
    assert meta.get("audio_codec") is None
    assert not list(tmp_path.glob("*.tmp*"))


def test_video_rejects_bad_input(tmp_path):
    with pytest.raises(ValueError, match="even"):
        render_video(_motion(2), tmp_path / "a.mp4", size=(161, 160))
    with pytest.raises(ValueError, match="empty"):
        render_video(_motion(2)[:0], tmp_path / "a.mp4", size=(160, 160))


@pytest.mark.parametrize("turn_deg", [0.0, 90.0, 180.0])
def test_camera_faces_the_body_whatever_its_orientation(turn_deg):
    from scipy.spatial.transform import Rotation

    from livegesture.export import facing_yaw_deg

    m = _motion(2, moving=False)
    turn = Rotation.from_euler("y", turn_deg, degrees=True)
    m.poses[:, 0] = (turn * Rotation.from_rotvec(m.poses[:, 0])).as_rotvec()
    joints = forward_kinematics(m)
    assert abs((facing_yaw_deg(joints) - turn_deg + 180.0) % 360.0 - 180.0) < 1.0
    cam = clip_cameras(joints)[0]
    _, depth = cam.project(joints[0], (320, 320))
    head, left_eye = JOINT_NAMES.index("head"), JOINT_NAMES.index("left_eye")
    assert depth[left_eye] < depth[head]  # the face is turned towards the camera
    img = render_frame(joints[0], camera=cam, size=(320, 320))
    assert (np.abs(img.astype(int) - [150, 40, 50]).sum(-1) < 40).sum() > 3  # mouth drawn
    away = clip_cameras(joints, face_body=False)[0]
    if turn_deg == 180.0:  # seen from behind: no face
        img = render_frame(joints[0], camera=away, size=(320, 320))
        assert (np.abs(img.astype(int) - [150, 40, 50]).sum(-1) < 40).sum() == 0


def test_audio_is_trimmed_or_padded_to_the_motion():
    from livegesture.export.video import _prepare_audio

    long = np.ones((40000, 2), np.int16)
    out = _prepare_audio(long, 16000, 2.0)
    assert out.shape == (32000, 2) and out.dtype == np.int16
    short = np.full(1000, 2.0, np.float64)  # out-of-range float is clipped
    out = _prepare_audio(short, 16000, 0.5)
    assert out.shape == (8000,) and out.max() == 1.0 and (out[1000:] == 0).all()
    with pytest.raises(ValueError):
        _prepare_audio(np.zeros((0,)), 16000, 1.0)
