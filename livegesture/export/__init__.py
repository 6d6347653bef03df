"""Export of motions: glTF 2.0 binary and FBX (Blender, Unity, Unreal, three.js), BVH (any DCC
tool / game engine), BEAT2 npz, headless stick-figure video."""

from .bvh import BVH_UNITS, CHANNEL_ORDERS, bvh_euler_angles, bvh_scale, write_bvh
from .fbx import BlenderMissingError, blender_available, write_fbx
from .gltf import gltf_bytes, write_gltf
from .npz import write_npz
from .paths import check_output_path
from .video import Camera, clip_cameras, facing_yaw_deg, render_frame, render_frames, render_video

__all__ = ["BVH_UNITS", "BlenderMissingError", "CHANNEL_ORDERS", "Camera", "blender_available",
           "bvh_euler_angles", "bvh_scale", "check_output_path", "clip_cameras", "facing_yaw_deg",
           "gltf_bytes", "render_frame", "render_frames", "render_video", "write_bvh", "write_fbx",
           "write_gltf", "write_npz"]
