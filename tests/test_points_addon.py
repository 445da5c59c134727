"""Points to Mesh in Blender (bpy): export maths, the operator with the real backend, failures leave nothing."""
from __future__ import annotations

import json
import math
from pathlib import Path

import bpy  # noqa: I001 - bpy first: it makes mathutils importable
import numpy as np
import pytest
from mathutils import Matrix

from blender_addon import run_session
from blender_addon.point_cloud import is_point_cloud, object_cloud
from blender_addon.points_export import normal_attribute, to_world
from blender_helpers import ADDON, add_mesh, addon  # noqa: F401 - addon: the module's autouse fixture


@pytest.fixture(autouse=True)
def clean_scene(tmp_path: Path):
    """An empty scene; the work folder under tmp_path; the venv's Python as the backend."""
    for coll in (bpy.data.objects, bpy.data.meshes, bpy.data.pointclouds, bpy.data.materials):
        for idb in list(coll):
            coll.remove(idb)
    bpy.context.view_layer.update()
    prefs = bpy.context.preferences.addons[ADDON].preferences
    prefs.python_path, prefs.work_dir = "", str(tmp_path / "work")
    bpy.context.scene.photomesh.symmetry = "OFF"
    yield
    prefs.python_path = prefs.work_dir = ""


def sphere(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """n unit-sphere points around the origin and their outward normals."""
    d = np.random.default_rng(seed).normal(size=(n, 3))
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    return d, d.copy()


def cloud_object(name: str, pts: np.ndarray, normals: np.ndarray | None = None) -> bpy.types.Object:
    """A vertex-only mesh object, active and selected, with a 'normal' point attribute when given."""
    obj = add_mesh(name, pts, [])
    if normals is not None:
        attr = obj.data.attributes.new("normal", "FLOAT_VECTOR", "POINT")
        attr.data.foreach_set("vector", np.asarray(normals, dtype=np.float32).ravel())
    for o in bpy.context.view_layer.objects:
        o.select_set(False)
    obj.select_set(True)
    bpy.context.view_layer.objects.active = obj
    return obj


def test_normal_attribute_and_world_transform() -> None:
    assert normal_attribute([("position", "FLOAT_VECTOR", "POINT"), ("N", "FLOAT_VECTOR", "POINT")]) == "N"
    assert normal_attribute([("normal", "FLOAT_VECTOR", "CORNER"), ("normal", "FLOAT_COLOR", "POINT")]) is None
    m = np.array(Matrix.LocRotScale((1, 2, 3), Matrix.Rotation(0.7, 3, "Z").to_quaternion(), (2, 1, 0.5)))
    pts = np.array([[1.0, 0, 0], [0, 1, 0], [0, 0, 1]])
    plane_normal = np.array([[1.0, 1, 1]]) / math.sqrt(3)  # of the plane x + y + z = 1 through pts
    wp, wn = to_world(pts, plane_normal, m)
    np.testing.assert_allclose(wp[0], m[:3, :3] @ pts[0] + m[:3, 3])
    assert abs(np.linalg.norm(wn[0]) - 1) < 1e-12
    np.testing.assert_allclose((wp[1:] - wp[0]) @ wn[0], 0, atol=1e-12)


def test_object_cloud_and_poll_on_mesh_and_point_cloud() -> None:
    pts, nrm = sphere(400)
    obj = cloud_object("Scan", pts, nrm)
    obj.location = (5, 0, 0)
    bpy.context.view_layer.update()
    wp, wn = object_cloud(obj)
    np.testing.assert_allclose(wp, pts + [5, 0, 0], atol=1e-6)
    np.testing.assert_allclose(wn, nrm, atol=1e-6)
    assert is_point_cloud(obj) and bpy.ops.photomesh.points_to_mesh.poll()
    assert bpy.ops.object.convert(target="POINTCLOUD") == {"FINISHED"}
    pc = bpy.context.active_object
    assert pc.type == "POINTCLOUD" and is_point_cloud(pc)
    wp2, wn2 = object_cloud(pc)
    np.testing.assert_allclose(wp2, wp, atol=1e-6)
    np.testing.assert_allclose(wn2, wn, atol=1e-6)
    solid = add_mesh("Solid", [(0, 0, 0), (1, 0, 0), (0, 1, 0)], [(0, 1, 2)])
    bpy.context.view_layer.objects.active = solid
    assert not is_point_cloud(solid) and not bpy.ops.photomesh.points_to_mesh.poll()


@pytest.mark.parametrize("kind", ["mesh", "pointcloud"])
def test_points_to_mesh_places_the_mesh_on_the_points(kind: str) -> None:
    pts, nrm = sphere(6000, seed=1)
    obj = cloud_object("Scan", pts, nrm if kind == "mesh" else None)
    obj.matrix_world = Matrix.LocRotScale((2, -1, 0.5), Matrix.Rotation(0.4, 3, "X").to_quaternion(), (1.5, 1.5, 1.5))
    bpy.context.view_layer.update()
    if kind == "pointcloud":
        assert bpy.ops.object.convert(target="POINTCLOUD") == {"FINISHED"}
        obj = bpy.context.active_object
    before = set(bpy.data.objects)
    assert bpy.ops.photomesh.points_to_mesh(depth=7) == {"FINISHED"}
    new = [o for o in bpy.data.objects if o not in before]
    assert [o.name for o in new] == ["Scan_mesh"]
    mesh = new[0]
    assert mesh.select_get() and bpy.context.view_layer.objects.active == mesh
    v = np.array([mesh.matrix_world @ x.co for x in mesh.data.vertices])
    r = np.linalg.norm(v - np.array([2, -1, 0.5]), axis=1)
    assert len(mesh.data.polygons) > 2000 and abs(r.mean() - 1.5) < 0.02 and r.std() < 0.02
    result = json.loads(Path(mesh["photomesh_result"]).read_text())
    assert result["normals"] == ("file" if kind == "mesh" else "estimated")
    assert result["symmetry"] is None
    assert run_session.active_job() is None
    assert bpy.context.window_manager.photomesh_job.running is False


def test_too_few_points_and_nan_are_refused_before_the_backend() -> None:
    cloud_object("Tiny", sphere(100)[0])
    before = set(bpy.data.objects)
    with pytest.raises(RuntimeError, match="only 100 points"):
        bpy.ops.photomesh.points_to_mesh()
    assert set(bpy.data.objects) == before


def test_backend_error_and_stopped_run_leave_the_scene_as_before(tmp_path: Path) -> None:
    line = np.outer(np.linspace(-1, 1, 500), [1.0, 0.5, 0.2])
    cloud_object("Line", line)
    before = set(bpy.data.objects)
    meshes = set(bpy.data.meshes)
    with pytest.raises(RuntimeError, match="single point or line.*A surface needs points"):
        bpy.ops.photomesh.points_to_mesh()
    assert set(bpy.data.objects) == before and set(bpy.data.meshes) == meshes
    pts, nrm = sphere(400_000, seed=2)
    cloud_object("Big", pts, nrm)
    before = set(bpy.data.objects)
    with pytest.raises(RuntimeError, match="was stopped"):
        bpy.ops.photomesh.points_to_mesh(depth=10, timeout=4.0)
    assert set(bpy.data.objects) == before
    assert run_session.active_job() is None
    outs = list((tmp_path / "work").glob("Big_mesh_*/out"))
    assert len(outs) <= 1 and not any((out / "result.json").exists() for out in outs)  # nothing half-written


def test_second_job_is_refused_while_one_runs(tmp_path: Path) -> None:
    import sys

    from blender_addon.runner import BackendRunner

    script = tmp_path / "sleep.py"
    script.write_text("import time\ntime.sleep(600)\n")
    runner = BackendRunner(sys.executable, tmp_path, tmp_path / "out", tmp_path, argv=[sys.executable, str(script)])
    runner.start()
    run_session.set_active_job(run_session.ActiveJob("Busy", runner, False))
    try:
        cloud_object("Scan", sphere(400)[0])
        with pytest.raises(RuntimeError, match="already running"):
            bpy.ops.photomesh.points_to_mesh()
        assert bpy.ops.photomesh.cancel() == {"FINISHED"}
        assert runner.process.returncode is not None
    finally:
        run_session.stop_active_job()


def test_reconstruct_job_starts_from_the_chosen_point_cloud(tmp_path: Path) -> None:
    from test_addon_ops import add_camera_ring, add_subject

    from backend.io.job import load_job
    from blender_addon.gather import gather_job

    scene = bpy.context.scene
    scene.render.engine = "CYCLES"
    scene.render.resolution_x, scene.render.resolution_y, scene.render.resolution_percentage = 64, 48, 100
    scene.cycles.samples = 1
    settings = scene.photomesh
    settings.image_source, settings.mask_source, settings.bbox_source = "RENDER", "ALPHA", "AUTO"
    settings.render_samples = 1
    add_subject()
    pts, nrm = sphere(2000, seed=4)
    cloud = cloud_object("Scan", 0.5 * pts, nrm)
    cloud.location = (0.1, 0, 0)
    for cam in add_camera_ring(3):
        cam.select_set(True)
    cloud.select_set(False)
    bpy.context.view_layer.update()
    settings.start_points = cloud
    assert bpy.types.Scene.bl_rna.properties["photomesh"] and settings.start_points == cloud
    job = gather_job(bpy.context, settings, tmp_path / "job")
    assert job["settings"]["initial_mesh"] == "initial_points.npz"
    saved = np.load(tmp_path / "job" / "initial_points.npz")
    np.testing.assert_allclose(saved["points"], 0.5 * pts + [0.1, 0, 0], atol=1e-6)
    np.testing.assert_allclose(saved["normals"], nrm, atol=1e-6)
    assert load_job(tmp_path / "job").settings["initial_mesh"] == str(tmp_path / "job" / "initial_points.npz")
    settings.start_points = None
    assert "initial_mesh" not in gather_job(bpy.context, settings, tmp_path / "job2")["settings"]
