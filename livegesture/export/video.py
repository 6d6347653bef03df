"""Headless stick-figure rendering of a Motion to images and H.264 video (no OpenGL, no Blender).

Joints come from :func:`livegesture.body.forward_kinematics`; frames are drawn
with Pillow on a 2x canvas and box-downsampled (anti-aliasing), in a simple
perspective camera (front / three-quarter view, slightly from above): body,
fingers of both hands, a head with eyes and a mouth that opens with the jaw, a
floor grid and the figure's shadow on it. Nearer parts are drawn later, thicker
and more saturated (painter's algorithm + depth shading). Subject's left side is
blue, right side orange.

Video is encoded by the ffmpeg binary shipped in the ``imageio-ffmpeg`` wheel:
H.264 (libx264), yuv420p, frame rate = ``motion.fps``, with the speech muxed in
as AAC when given.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ..body.constants import JOINT_NAMES, NUM_JOINTS, PARENTS
from ..body.kinematics import Skeleton, forward_kinematics
from ..body.skeleton import approximate_rest_joints

__all__ = ["Camera", "clip_cameras", "facing_yaw_deg", "render_frame", "render_frames", "render_video"]

_J = {n: i for i, n in enumerate(JOINT_NAMES)}
_HEAD, _JAW, _LEYE, _REYE, _NECK = (_J["head"], _J["jaw"], _J["left_eye"], _J["right_eye"],
                                    _J["neck"])
_FEET = (_J["left_ankle"], _J["right_ankle"], _J["left_foot"], _J["right_foot"])
_FACE = (_JAW, _LEYE, _REYE)
_FINGER_TIPS = tuple(j for j in range(25, NUM_JOINTS) if JOINT_NAMES[j].endswith("3"))
_SS = 2  # supersampling factor

# colours (RGB)
_BG_TOP, _BG_BOTTOM = np.array([250, 250, 252.0]), np.array([226, 230, 238.0])
_FLOOR, _GRID, _SHADOW = (214, 218, 226), (190, 195, 206), (175, 179, 190)
_LEFT, _RIGHT, _CENTRE = np.array([45, 110, 215.0]), np.array([235, 120, 30.0]), np.array([60, 64, 78.0])
_SKIN, _OUTLINE, _MOUTH = np.array([246, 226, 205.0]), (50, 52, 62), (150, 40, 50)

# rest-frame constants of the face, relative to the head joint (metres, approximate skeleton)
_REST = approximate_rest_joints()
_HEAD_CENTRE = np.array([0.0, 0.045, 0.02])     # centre of the head sphere
_HEAD_RADIUS = 0.10
_LIP_CORNERS = np.array([[0.024, -0.018, 0.09], [-0.024, -0.018, 0.09]])
#: the drawn mouth opens `JAW_GAIN` times the jaw angle (BEAT2 jaw angles are a few degrees)
JAW_GAIN = 3.0
_JAW_REST = _REST[_JAW] - _REST[_HEAD]


def _side_colour(j: int) -> np.ndarray:
    name = JOINT_NAMES[j]
    return _LEFT if name.startswith("left") else _RIGHT if name.startswith("right") else _CENTRE


def _head_frame(head: np.ndarray, leye: np.ndarray, reye: np.ndarray) -> np.ndarray:
    x = leye - reye
    x = x / max(np.linalg.norm(x), 1e-9)
    v = (leye + reye) / 2 - head
    z = v - (v @ x) * x
    z = z / max(np.linalg.norm(z), 1e-9)
    return np.stack([x, np.cross(z, x), z], axis=1)


_HEAD_FRAME_REST = _head_frame(_REST[_HEAD], _REST[_LEYE], _REST[_REYE])


def _rodrigues(rv: np.ndarray) -> np.ndarray:
    rv = np.asarray(rv, dtype=np.float64)
    a = np.linalg.norm(rv)
    if a < 1e-12:
        return np.eye(3)
    k = rv / a
    kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + np.sin(a) * kx + (1 - np.cos(a)) * kx @ kx


def _global_rotations(poses: np.ndarray, joints: tuple[int, ...]) -> np.ndarray:
    """(T, 3, 3) global rotation of the last of a root-to-joint chain `joints`."""
    from scipy.spatial.transform import Rotation

    t = len(poses)
    out = np.broadcast_to(np.eye(3), (t, 3, 3)).copy()
    for j in joints:
        out = out @ Rotation.from_rotvec(np.asarray(poses[:, j], np.float64)).as_matrix()
    return out


def _chain(j: int) -> tuple[int, ...]:
    c = []
    while j >= 0:
        c.append(j)
        j = PARENTS[j]
    return tuple(reversed(c))


# ----------------------------------------------------------------- camera
@dataclass(frozen=True)
class Camera:
    """Perspective camera looking at `target` from `distance` metres.

    yaw 0 looks at the body's front (camera on +Z); positive yaw moves the camera
    towards the body's left (+X). `view_height` metres at the target fill `fill`
    of the image height. `floor_y` is where the floor grid and shadow are drawn.
    """

    target: tuple[float, float, float] = (0.0, 0.9, 0.0)
    yaw_deg: float = 20.0
    pitch_deg: float = 8.0
    distance: float = 4.5
    view_height: float = 2.2
    floor_y: float = 0.0
    fill: float = 0.95

    def __post_init__(self) -> None:
        yaw, pitch = np.radians(self.yaw_deg), np.radians(self.pitch_deg)
        d = np.array([np.sin(yaw) * np.cos(pitch), np.sin(pitch), np.cos(yaw) * np.cos(pitch)])
        eye = np.asarray(self.target, np.float64) + self.distance * d
        f = -d
        r = np.cross(f, [0.0, 1.0, 0.0])
        r /= np.linalg.norm(r)
        object.__setattr__(self, "_eye", eye)
        object.__setattr__(self, "_rot", np.stack([r, np.cross(r, f), f]))

    def basis(self) -> tuple[np.ndarray, np.ndarray]:
        """(eye position (3,), rotation (3, 3) with rows right, up, forward)."""
        return self._eye, self._rot

    def project(self, pts: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        """Pixel coordinates (N, 2) and depths (N,) of world points (N, 3) in an image of `size` (W, H)."""
        w, h = size
        eye, rot = self.basis()
        c = (np.asarray(pts, np.float64) - eye) @ rot.T
        z = np.maximum(c[:, 2], 1e-3)
        focal = self.fill * h * self.distance / self.view_height
        xy = np.stack([w / 2 + focal * c[:, 0] / z, h / 2 - focal * c[:, 1] / z], axis=1)
        return xy, z

    def pixels_per_metre(self, depth: np.ndarray | float, height: int) -> np.ndarray:
        return self.fill * height * self.distance / (self.view_height * np.asarray(depth))


def facing_yaw_deg(joints: np.ndarray) -> float:
    """Mean horizontal facing direction of the body over a clip, in degrees (0 = +Z).

    Forward is perpendicular to the hip line (right hip -> left hip) and the up axis;
    the circular mean over frames is returned.
    """
    j = np.asarray(joints, np.float64).reshape(-1, NUM_JOINTS, 3)
    across = j[:, _J["left_hip"]] - j[:, _J["right_hip"]]
    fwd = np.cross(across, np.array([0.0, 1.0, 0.0]))
    f = fwd[:, [0, 2]] / np.maximum(np.linalg.norm(fwd[:, [0, 2]], axis=1, keepdims=True), 1e-9)
    m = f.mean(0)
    return float(np.degrees(np.arctan2(m[0], m[1]))) if np.linalg.norm(m) > 1e-6 else 0.0


def clip_cameras(joints: np.ndarray, yaw_deg: float = 20.0, pitch_deg: float = 8.0,
                 follow_seconds: float = 1.0, fps: float = 30.0,
                 face_body: bool = True) -> list[Camera]:
    """One camera per frame, framed on the whole clip.

    With `face_body` the yaw is measured from the body's mean facing direction over
    the clip (:func:`facing_yaw_deg`), so the figure faces the camera whatever its
    global orientation; else from +Z.

    The floor is at the clip's lowest foot joint, the vertical framing (floor to the
    top of the head plus margins) is fixed for the clip, and the camera follows the
    pelvis horizontally with a Gaussian smoothing of `follow_seconds` (so the root
    stays centred without the picture shaking with every sway).
    """
    joints = np.asarray(joints, np.float64)
    if joints.ndim != 3 or joints.shape[1:] != (NUM_JOINTS, 3) or len(joints) == 0:
        raise ValueError(f"joints must be (T>0, 55, 3), got {joints.shape}")
    floor = float(joints[:, _FEET, 1].min()) - 0.03
    top = float(joints[:, _HEAD, 1].max()) + 0.16
    span = max(top - floor, 1.0)
    height = span * 1.22
    mid_y = floor + span * 0.45
    xz = joints[:, 0, [0, 2]]
    sigma = follow_seconds * fps
    if sigma > 0 and len(xz) > 1:
        from scipy.ndimage import gaussian_filter1d

        xz = gaussian_filter1d(xz, sigma, axis=0, mode="nearest")
    if face_body:
        yaw_deg = yaw_deg + facing_yaw_deg(joints)
    return [Camera(target=(float(x), mid_y, float(z)), yaw_deg=yaw_deg, pitch_deg=pitch_deg,
                   view_height=height, floor_y=floor) for x, z in xz]


def _default_camera(joints_t: np.ndarray) -> Camera:
    return clip_cameras(joints_t[None], follow_seconds=0.0)[0]


# ------------------------------------------------------------------ drawing
_SPINE = (_J["left_hip"], _J["right_hip"], _J["spine1"], _J["spine2"], _J["spine3"],
          _J["left_collar"], _J["right_collar"], _NECK)
_BONES = tuple((PARENTS[j], j) for j in range(1, NUM_JOINTS) if j not in _FACE)
# bones inside the torso polygon are drawn in the shadow only
_LIMBS = tuple((a, b) for a, b in _BONES if b not in _SPINE)
_BONE_WIDTH_M = {**{j: 0.045 for j in range(NUM_JOINTS)}, **{j: 0.013 for j in range(25, NUM_JOINTS)},
                 _J["left_foot"]: 0.035, _J["right_foot"]: 0.035, _NECK: 0.05, _HEAD: 0.05}


def _torso_outline(j3: np.ndarray) -> np.ndarray:
    """Torso polygon: hips widened to pelvis width, shoulders pulled in a little."""
    pelvis, neck = j3[0], j3[_NECK]
    lh, rh = (pelvis + 1.6 * (j3[_J[n]] - pelvis) for n in ("left_hip", "right_hip"))
    mid = (j3[_J["left_shoulder"]] + j3[_J["right_shoulder"]]) / 2
    ls, rs = (mid + 0.85 * (j3[_J[n]] - mid) for n in ("left_shoulder", "right_shoulder"))
    return np.stack([lh, ls, neck + 0.25 * (mid - neck), rs, rh])


def _background(size: tuple[int, int]) -> Image.Image:
    w, h = size
    t = np.linspace(0.0, 1.0, h)[:, None]
    col = (_BG_TOP * (1 - t) + _BG_BOTTOM * t).astype(np.uint8)
    return Image.fromarray(np.ascontiguousarray(np.broadcast_to(col[:, None, :], (h, w, 3))))


_BG_CACHE: dict[tuple[int, int], Image.Image] = {}


_FOG = (236.0, 238.0, 244.0)


def _shade(colour, depth: float, near: float, far: float) -> tuple[int, int, int]:
    """Fade towards the background with depth (the depth cue)."""
    k = 0.0 if far <= near else min(max((depth - near) / (far - near), 0.0), 1.0) * 0.45
    return tuple(int(c * (1 - k) + g * k) for c, g in zip(colour, _FOG))


def render_frame(joints_t: np.ndarray, *, jaw_pose: np.ndarray | None = None,
                 head_rotation: np.ndarray | None = None, camera: Camera | None = None,
                 size: tuple[int, int] = (640, 640), caption: str | None = None,
                 jaw_gain: float = JAW_GAIN) -> np.ndarray:
    """Draw one frame of joints (55, 3) (metres, Y up) and return it as (H, W, 3) uint8.

    `jaw_pose` is the jaw's local axis-angle (3,); the mouth opens with it, its angle
    multiplied by `jaw_gain` for visibility (closed if None).
    `head_rotation` is the head's global rotation (3, 3); if None it is estimated
    from the head and eye joints. `camera` defaults to one framed on this frame
    (use :func:`clip_cameras` for stable framing over a clip). `size` is (W, H).
    """
    j3 = np.asarray(joints_t, np.float64)
    if j3.shape != (NUM_JOINTS, 3):
        raise ValueError(f"joints_t must be (55, 3), got {j3.shape}")
    w, h = int(size[0]), int(size[1])
    cam = camera or _default_camera(j3)
    W, H = w * _SS, h * _SS
    key = (W, H)
    if key not in _BG_CACHE:
        _BG_CACHE[key] = _background((W, H))
    img = _BG_CACHE[key].copy()
    draw = ImageDraw.Draw(img)
    focal = cam.fill * H * cam.distance / cam.view_height
    ppm_at = lambda depth: focal / float(depth)  # noqa: E731  pixels per metre at a depth

    # ---- floor: filled patch + world-fixed grid around the target
    tx, _, tz = cam.target
    fy = cam.floor_y
    ext, step = 2.5, 0.5
    x0, x1 = np.floor((tx - ext) / step) * step, np.ceil((tx + ext) / step) * step
    z0, z1 = np.floor((tz - ext) / step) * step, np.ceil((tz + ext) / step) * step
    corners, _ = cam.project(np.array([[x0, fy, z0], [x1, fy, z0], [x1, fy, z1], [x0, fy, z1]]),
                             (W, H))
    draw.polygon([tuple(p) for p in corners], fill=_FLOOR)
    gl = []
    for x in np.arange(x0, x1 + 1e-9, step):
        gl.append([[x, fy, z0], [x, fy, z1]])
    for z in np.arange(z0, z1 + 1e-9, step):
        gl.append([[x0, fy, z], [x1, fy, z]])
    gxy, _ = cam.project(np.array(gl).reshape(-1, 3), (W, H))
    for a, b in gxy.reshape(-1, 2, 2):
        draw.line([tuple(a), tuple(b)], fill=_GRID, width=_SS)

    # ---- finger tips (extrapolated along the last phalanx) and face points
    tips = np.array([j3[t] + 0.8 * (j3[t] - j3[PARENTS[t]]) for t in _FINGER_TIPS])
    rh = head_rotation
    if rh is None:
        rh = _head_frame(j3[_HEAD], j3[_LEYE], j3[_REYE]) @ _HEAD_FRAME_REST.T
    rh = np.asarray(rh, np.float64)
    rjaw = rh @ (_rodrigues(np.asarray(jaw_pose, np.float64) * jaw_gain) if jaw_pose is not None else np.eye(3))
    head_c = j3[_HEAD] + rh @ _HEAD_CENTRE
    lever = _LIP_CORNERS - _JAW_REST
    upper = j3[_JAW] + lever @ rh.T
    lower = j3[_JAW] + lever @ rjaw.T
    pts = np.concatenate([j3, tips, head_c[None], upper, lower, _torso_outline(j3)])
    n_t = len(tips)
    i_tip0, i_hc = NUM_JOINTS, NUM_JOINTS + n_t
    i_up, i_lo = i_hc + 1, i_hc + 3
    i_torso = list(range(i_lo + 2, i_lo + 7))
    xy, z = cam.project(pts, (W, H))
    near, far = float(z.min()), float(z.max())

    # ---- shadow: the body dropped onto the floor
    flat = pts[: NUM_JOINTS + n_t].copy()
    flat[:, 1] = fy
    sxy, sz = cam.project(flat, (W, H))
    for a, b in _BONES:
        wpx = max(1, int(_BONE_WIDTH_M[b] * ppm_at(sz[b]) * 0.9))
        draw.line([tuple(sxy[a]), tuple(sxy[b])], fill=_SHADOW, width=wpx)
    hs = _HEAD_RADIUS * ppm_at(sz[_HEAD]) * 0.9
    cx, cy = sxy[_HEAD]
    draw.ellipse([cx - hs, cy - hs * 0.35, cx + hs, cy + hs * 0.35], fill=_SHADOW)

    # ---- primitives sorted far to near
    prims: list[tuple[float, int, tuple]] = []
    for a, b in _LIMBS:
        prims.append((max(z[a], z[b]) * 0.5 + (z[a] + z[b]) * 0.25, 0, (a, b, _side_colour(b))))
    for k, t in enumerate(_FINGER_TIPS):
        prims.append(((z[t] + z[i_tip0 + k]) / 2, 0, (t, i_tip0 + k, _side_colour(t))))
    prims.append((float(np.mean(z[i_torso])) + 0.03, 1, ()))
    prims.append((float(z[i_hc]), 2, ()))
    prims.sort(key=lambda p: -p[0])

    for depth, kind, data in prims:
        if kind == 0:
            a, b, colour = data
            width_m = _BONE_WIDTH_M.get(b, 0.013) if b < NUM_JOINTS else 0.012
            wpx = max(1.0, width_m * ppm_at(depth))
            col = _shade(colour, depth, near, far)
            pa, pb = tuple(xy[a]), tuple(xy[b])
            draw.line([pa, pb], fill=col, width=int(round(wpx)))
            r = wpx / 2
            for p in (pa, pb):
                draw.ellipse([p[0] - r, p[1] - r, p[0] + r, p[1] + r], fill=col)
        elif kind == 1:
            col = _shade(np.array([196.0, 201, 214]), depth, near, far)
            draw.polygon([tuple(xy[i]) for i in i_torso], fill=col,
                         outline=_shade(_CENTRE, depth, near, far), width=_SS * 2)
        else:
            _draw_head(draw, xy, z, rh, cam, i_hc, i_up, i_lo, ppm_at, near, far)

    if caption:
        try:
            font = ImageFont.load_default(size=14 * _SS)
        except TypeError:  # Pillow < 10.1: bitmap font only
            font = ImageFont.load_default()
        draw.text((10 * _SS, 8 * _SS), caption, fill=_OUTLINE, font=font)
    img = img.reduce(_SS)
    return np.asarray(img)


def _draw_head(draw, xy, z, rh, cam, i_hc, i_up, i_lo, ppm_at, near, far) -> None:
    c = xy[i_hc]
    r = _HEAD_RADIUS * ppm_at(z[i_hc])
    lw = max(1, int(r * 0.06))
    draw.ellipse([c[0] - r, c[1] - r, c[0] + r, c[1] + r],
                 fill=_shade(_SKIN, z[i_hc], near, far), outline=_OUTLINE, width=lw)
    _, rot = cam.basis()
    facing = -(rh @ np.array([0.0, 0.0, 1.0])) @ rot[2]  # > 0: face turned towards the camera
    if facing <= 0.15:
        return
    for e in (_LEYE, _REYE):
        er = max(1.5, 0.012 * ppm_at(z[e]))
        draw.ellipse([xy[e][0] - er, xy[e][1] - er, xy[e][0] + er, xy[e][1] + er], fill=_OUTLINE)
    quad = [tuple(xy[i_up]), tuple(xy[i_up + 1]), tuple(xy[i_lo + 1]), tuple(xy[i_lo])]
    draw.polygon(quad, fill=_MOUTH, outline=_MOUTH, width=max(1, lw))
    draw.line([quad[0], quad[1]], fill=_MOUTH, width=max(2, lw * 2))


# ------------------------------------------------------------------- clips
def _clip_inputs(motion, skeleton: Skeleton | None):
    joints = forward_kinematics(motion, skeleton=skeleton)
    poses = np.asarray(motion.poses, np.float64).reshape(len(motion), NUM_JOINTS, 3)
    head_rot = _global_rotations(poses, _chain(_HEAD)) if len(motion) else np.zeros((0, 3, 3))
    return joints, poses, head_rot


def render_frames(motion, size: tuple[int, int] = (640, 640), skeleton: Skeleton | None = None,
                  cameras: list[Camera] | None = None):
    """Yield the frames (H, W, 3) uint8 of `motion`, framed with :func:`clip_cameras`."""
    joints, poses, head_rot = _clip_inputs(motion, skeleton)
    if len(joints) == 0:
        return
    cameras = cameras or clip_cameras(joints, fps=float(motion.fps))
    if len(cameras) != len(joints):
        raise ValueError(f"{len(cameras)} cameras for {len(joints)} frames")
    for t in range(len(joints)):
        yield render_frame(joints[t], jaw_pose=poses[t, _JAW], head_rotation=head_rot[t],
                           camera=cameras[t], size=size)


def _prepare_audio(audio: np.ndarray, sample_rate: int, duration: float) -> np.ndarray:
    a = np.asarray(audio)
    if a.ndim not in (1, 2) or a.size == 0:
        raise ValueError(f"audio must be (N,) or (N, channels) with N > 0, got {a.shape}")
    if not np.issubdtype(a.dtype, np.integer):
        a = np.clip(np.nan_to_num(a.astype(np.float32)), -1.0, 1.0)
    n = int(round(duration * sample_rate))
    if len(a) >= n:
        return a[:n]
    pad = np.zeros((n - len(a),) + a.shape[1:], a.dtype)
    return np.concatenate([a, pad])


def render_video(motion, path: str | os.PathLike, audio: np.ndarray | None = None,
                 sample_rate: int = 16000, size: tuple[int, int] = (640, 640),
                 skeleton: Skeleton | None = None, progress: bool = False,
                 crf: int = 20, preset: str = "veryfast") -> Path:
    """Render `motion` to an H.264 (yuv420p) mp4 at ``motion.fps``, with `audio` muxed as AAC.

    `audio` (mono (N,) or (N, C), float in [-1, 1] or int16, at `sample_rate` Hz) is
    trimmed or padded with silence to the motion's duration, so the streams end together.
    `size` is (width, height) in pixels, both even (yuv420p). Returns the path.
    """
    import imageio_ffmpeg

    w, h = int(size[0]), int(size[1])
    if w <= 0 or h <= 0 or w % 2 or h % 2:
        raise ValueError(f"size must be two positive even numbers (yuv420p), got {size}")
    if len(motion) == 0:
        raise ValueError("cannot render an empty motion")
    if not motion.fps > 0:
        raise ValueError(f"motion.fps must be positive, got {motion.fps}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    frames = render_frames(motion, size=(w, h), skeleton=skeleton)
    if progress:
        from tqdm import tqdm

        frames = tqdm(frames, total=len(motion), unit="frame", desc=f"render {path.name}")

    with tempfile.TemporaryDirectory(prefix="livegesture-video-") as tmp:
        audio_path = None
        if audio is not None:
            import soundfile as sf

            audio_path = os.path.join(tmp, "speech.wav")
            sf.write(audio_path, _prepare_audio(audio, int(sample_rate), motion.duration),
                     int(sample_rate), subtype="PCM_16")
        tmp_out = os.path.join(tmp, "video" + (path.suffix or ".mp4"))
        writer = imageio_ffmpeg.write_frames(
            tmp_out, (w, h), fps=float(motion.fps), codec="libx264", pix_fmt_out="yuv420p",
            quality=None, macro_block_size=1, ffmpeg_log_level="error",
            output_params=["-crf", str(int(crf)), "-preset", preset, "-movflags", "+faststart"],
            audio_path=audio_path, audio_codec="aac" if audio_path else None)
        writer.send(None)
        try:
            for frame in frames:
                writer.send(np.ascontiguousarray(frame))
        finally:
            writer.close()
        shutil.move(tmp_out, path)
    return path

