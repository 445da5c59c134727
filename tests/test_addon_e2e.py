"""End to end: the Reconstruct operator on a Cycles-rendered scene, with the real backend."""
from __future__ import annotations

import math
from pathlib import Path

import bpy  # noqa: I001 - bpy first: it makes addon_utils importable
import addon_utils
import numpy as np
import pytest

from blender_addon import run_session

ADDON = "blender_addon"


def build_scene(n_cameras: int = 6, size: int = 64) -> bpy.types.Object:
    """Suzanne (smooth, coloured) lit by a sun, a ring of selected cameras, tiny Cycles settings."""
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    bpy.ops.mesh.primitive_monkey_add(size=1.0)
    monkey = bpy.context.active_object
    bpy.ops.object.shade_smooth()
    mat = bpy.data.materials.new("Clay")
    mat.diffuse_color = (0.8, 0.4, 0.2, 1.0)
    monkey.data.materials.append(mat)
    sun = bpy.data.objects.new("Sun", bpy.data.lights.new("Sun", "SUN"))
    scene.collection.objects.link(sun)
    sun.rotation_euler = (0.6, 0.2, 0.3)
    for i in range(n_cameras):
        a = 2 * math.pi * i / n_cameras
        cam = bpy.data.objects.new(f"Cam.{i:03d}", bpy.data.cameras.new(f"Cam.{i:03d}"))
        scene.collection.objects.link(cam)
        cam.location = (3.5 * math.cos(a), 3.5 * math.sin(a), 0.5 + 1.0 * (i % 2))
        cam.rotation_euler = (-cam.location).to_track_quat("-Z", "Y").to_euler()
    for o in scene.objects:
        o.select_set(o.type == "CAMERA")
    scene.render.engine = "CYCLES"
    scene.render.resolution_x = scene.render.resolution_y = size
    scene.cycles.samples = 4
    return monkey


@pytest.mark.slow
def test_reconstruct_cycles_scene_with_real_backend(tmp_path: Path) -> None:
    monkey = build_scene()
    addon_utils.enable(ADDON, default_set=True, handle_error=None)
    try:
        s = bpy.context.scene.photomesh
        s.image_source, s.quality, s.render_samples, s.job_name = "RENDER", "DRAFT", 4, "Monkey"
        before = {o.name for o in bpy.data.objects}
        assert bpy.ops.photomesh.reconstruct(work_dir=str(tmp_path), iterations=12, preview_every=5) == {"FINISHED"}
        obj = bpy.data.objects["Monkey"]
        new = {o.name for o in bpy.data.objects} - before
        assert "Monkey" in new and not any("preview" in n for n in new)
        me = obj.data
        assert len(me.polygons) > 200 and len(me.uv_layers) == 1
        uv = np.zeros(len(me.loops) * 2, dtype=np.float32)
        me.uv_layers[0].data.foreach_get("uv", uv)
        assert uv.min() >= -1e-3 and uv.max() <= 1 + 1e-3 and uv.std() > 0.1
        tex = [n for n in me.materials[0].node_tree.nodes if n.type == "TEX_IMAGE"]
        assert tex and tex[0].image.size[0] > 0 and tex[0].image.packed_file is not None
        assert "symmetry_plane" in obj.keys()
        v = np.zeros(len(me.vertices) * 3)
        me.vertices.foreach_get("co", v)
        v = v.reshape(-1, 3)
        ref = np.array([monkey.matrix_world @ x.co for x in monkey.data.vertices])
        assert np.allclose(v.mean(axis=0), ref.mean(axis=0), atol=0.3)
        assert np.allclose(v.max(axis=0) - v.min(axis=0), ref.max(axis=0) - ref.min(axis=0), rtol=0.35)
        assert run_session.active_job() is None
        out_dirs = list(tmp_path.glob("Monkey_*/out/result.json"))
        assert len(out_dirs) == 1 and list(out_dirs[0].parent.glob("previews/mesh_*.ply"))
    finally:
        addon_utils.disable(ADDON, default_set=True, handle_error=None)


@pytest.mark.slow
def test_refine_cameras_through_the_addon_with_real_backend(tmp_path: Path) -> None:
    """Refine Cameras on a Cycles scene: the real backend's refined cameras are stored, listed and applied."""
    import json

    from blender_addon import camera_math
    from blender_addon.gather import camera_params, camera_pose
    from blender_addon.camera_store import stored_cameras

    build_scene()
    addon_utils.enable(ADDON, default_set=True, handle_error=None)
    try:
        s = bpy.context.scene.photomesh
        s.image_source, s.quality, s.render_samples, s.job_name = "RENDER", "DRAFT", 4, "Refined"
        s.refine_cameras = True
        assert bpy.ops.photomesh.reconstruct(work_dir=str(tmp_path), iterations=40, preview_every=0) == {"FINISHED"}
        result = json.loads(next(tmp_path.glob("Refined_*/out/result.json")).read_text())
        entries = {e["name"]: e for e in result["cameras"]}
        assert len(entries) == 6 and result["camera_focal_scale"] > 0
        stored, _ = stored_cameras(bpy.context.scene)
        assert sorted(c.camera for c in stored) == [f"Cam.{i:03d}" for i in range(6)]
        # the cameras rendered the images, so they are exact: the corrections stay small
        assert all(e["rotation_deg"] < 1.0 and e["aligned"] for e in entries.values())
        assert bpy.ops.photomesh.apply_refined_cameras() == {"FINISHED"}
        for cam in (bpy.data.objects[f"Cam.{i:03d}"] for i in range(6)):
            e = entries[cam.name]
            R, t = camera_pose(cam)
            assert np.allclose(R, e["R"], atol=1e-5) and np.allclose(t, e["t"], atol=1e-5), cam.name
            K = camera_math.intrinsics(camera_params(cam, bpy.context.scene))
            assert np.allclose(K, e["K"], rtol=1e-5), cam.name
    finally:
        addon_utils.disable(ADDON, default_set=True, handle_error=None)
