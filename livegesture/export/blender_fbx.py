"""Blender-side script of :func:`livegesture.export.write_fbx` (run by bpy's Python, not imported).

``python blender_fbx.py IN.glb OUT.fbx FPS FRAMES``: imports the glTF written by
:func:`~livegesture.export.write_gltf` with Blender's glTF importer into an empty scene at FPS,
then writes it with Blender's FBX exporter, every frame baked (no key reduction), no leaf bones,
object scale applied (scale 1 armatures in Unity and Unreal), -Z forward / +Y up. Only bpy and the
standard library are used here: the LiveGesture package (and torch) is not loaded in this process.
"""

import sys


def main(src: str, dst: str, fps: float, frames: int) -> None:
    import bpy

    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base = round(fps), round(fps) / fps
    bpy.ops.import_scene.gltf(filepath=src)
    arm = next(o for o in scene.objects if o.type == "ARMATURE")
    scene.frame_start, scene.frame_end = 0, frames - 1
    keep = {arm, *arm.children}
    for obj in list(scene.objects):  # e.g. the importer's bone display shape
        if obj not in keep:
            bpy.data.objects.remove(obj, do_unlink=True)
    bpy.ops.export_scene.fbx(filepath=dst, object_types={"ARMATURE", "MESH"}, add_leaf_bones=False,
                             apply_scale_options="FBX_SCALE_ALL", axis_forward="-Z", axis_up="Y",
                             bake_anim=True, bake_anim_use_all_actions=False,
                             bake_anim_use_nla_strips=False, bake_anim_force_startend_keying=True,
                             bake_anim_step=1.0, bake_anim_simplify_factor=0.0)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4]))
