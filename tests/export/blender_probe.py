"""Run by bpy's Python in a separate process: import files with Blender's own importers and dump
what Blender sees. Only bpy and the standard library (not the LiveGesture package).

``python blender_probe.py OUT.json KIND=FILE ... -- FRAME ...`` with KIND one of gltf, bvh, fbx.
For each file, in a fresh empty scene: the armature's bone names, the scene's frame rate after the
import, the keyed frame range and key count of the action, and the world position (Blender's
Z-up metres) of every bone's head at each requested frame, counted from the first key.
glTF is imported into a 30 fps scene (its importer places keys at time x scene fps); BVH with
``update_scene_fps`` (it reads the rate from ``Frame Time``); FBX as it comes (the importer sets
the scene rate from the file).
"""

import json
import sys


def probe(kind: str, path: str, frames: list[int]) -> dict:
    import bpy

    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    if kind == "gltf":
        scene.render.fps, scene.render.fps_base = 30, 1.0
        bpy.ops.import_scene.gltf(filepath=path)
    elif kind == "bvh":
        bpy.ops.import_anim.bvh(filepath=path, update_scene_fps=True, update_scene_duration=True)
    elif kind == "fbx":
        bpy.ops.import_scene.fbx(filepath=path)
    else:
        raise ValueError(kind)
    arms = [o for o in scene.objects if o.type == "ARMATURE"]
    arm = arms[0]
    action = arm.animation_data.action
    first, last = (round(f) for f in action.frame_range)
    keys = max(len(fc.keyframe_points) for fc in action.fcurves)
    out = {"armatures": len(arms), "bones": [b.name for b in arm.data.bones],
           "fps": scene.render.fps / scene.render.fps_base, "first": first, "last": last,
           "keys": keys, "meshes": sum(o.type == "MESH" and o.parent == arm for o in scene.objects),
           "positions": {}}
    for f in frames:
        scene.frame_set(first + f)
        out["positions"][str(f)] = {pb.name: list(arm.matrix_world @ pb.head) for pb in arm.pose.bones}
    return out


def main(argv: list[str]) -> None:
    out_path, rest = argv[0], argv[1:]
    split = rest.index("--")
    files, frames = rest[:split], [int(f) for f in rest[split + 1:]]
    result = {}
    for item in files:
        kind, path = item.split("=", 1)
        result[kind] = probe(kind, path, frames)
    with open(out_path, "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main(sys.argv[1:])
