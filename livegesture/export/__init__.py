"""Export of motions: BVH (any DCC tool / game engine), BEAT2 npz, headless stick-figure video."""

from .bvh import CHANNEL_ORDERS, bvh_euler_angles, write_bvh
from .npz import write_npz
from .video import Camera, clip_cameras, facing_yaw_deg, render_frame, render_frames, render_video

__all__ = ["CHANNEL_ORDERS", "Camera", "bvh_euler_angles", "clip_cameras", "facing_yaw_deg",
           "render_frame", "render_frames", "render_video", "write_bvh", "write_npz"]
