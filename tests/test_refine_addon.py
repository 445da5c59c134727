"""Refine Cameras in real Blender (bpy): the checkbox reaches job.json, a result folder with known refined
cameras (the contract's input, written here) is imported by the same `import_result` call Reconstruct makes when
its backend finishes, listed, and Apply Refined Cameras moves the cameras. The whole path with the real backend
is tests/test_addon_e2e.py and the window test.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import bpy  # noqa: I001 - bpy first: it makes mathutils importable
import numpy as np
import pytest

from blender_addon import camera_math
from blender_addon.camera_refine import panel_rows
from blender_addon.camera_refine import RunCameras
from blender_addon.gather import camera_params, camera_pose, gather_job, selected_cameras, view_camera_map
from blender_addon.import_result import import_result
from blender_addon.job_spec import GatherError, fit_intrinsics
from blender_addon.camera_store import non_aligned, present_cameras, stored_cameras
from blender_helpers import ADDON, addon  # noqa: F401 - addon: the module's autouse fixture

MESH_OBJ = "v 0 0 0\nv 1 0 0\nv 0 1 0\nv 0 0 1\nf 1 3 2\nf 1 2 4\nf 1 4 3\nf 2 3 4\n"
FOCAL_SCALE = 1.02


def import_refined(result: dict, job: dict, tmp_path: Path, name: str = "Recon"):
    """Write a result folder (a small mesh and this result.json) and import it as Reconstruct does at the end
    of a run, with the view -> camera map of the selected cameras."""
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    (out / "mesh.obj").write_text(MESH_OBJ)
    (out / "result.json").write_text(json.dumps({**result, "mesh": "mesh.obj"}))
    run = RunCameras(tuple(job["views"]), view_camera_map(selected_cameras(bpy.context)))
    return import_result(bpy.context, out / "result.json", name, run)


@pytest.fixture(autouse=True)
def clean_scene():
    """An empty scene rendering 64x48 with a 1.2 pixel aspect; the refined-camera store emptied."""
    for coll in (bpy.data.objects, bpy.data.meshes, bpy.data.cameras, bpy.data.materials, bpy.data.images):
        for idb in list(coll):
            coll.remove(idb)
    scene = bpy.context.scene
    r = scene.render
    r.resolution_x, r.resolution_y, r.resolution_percentage = 64, 48, 100
    r.pixel_aspect_x, r.pixel_aspect_y = 1.0, 1.2
    s = scene.photomesh
    s.image_source, s.mask_source, s.bbox_source = "BACKGROUND", "ALPHA", "AUTO"
    s.quality, s.job_name = "DRAFT", "Recon"
    s.refine_cameras = False
    scene.photomesh_cameras.items.clear()
    yield
    r.pixel_aspect_y = 1.0


def _rotation(axis, deg: float) -> np.ndarray:
    """Rotation matrix about an axis (Rodrigues)."""
    a = np.asarray(axis, dtype=float) / np.linalg.norm(axis)
    k = np.array([[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]])
    th = math.radians(deg)
    return np.eye(3) + math.sin(th) * k + (1 - math.cos(th)) * k @ k


def _cameras() -> list:
    """Four selected cameras around the origin, each with a half-size (32x24) background photo: different
    sensor fits and shifts, one parented to a rotated, scaled empty, one with a scale of its own."""
    rig = bpy.data.objects.new("Rig", None)
    bpy.context.scene.collection.objects.link(rig)
    rig.location, rig.rotation_euler, rig.scale = (0.3, -0.2, 0.1), (0.2, 0.1, 0.7), (1.5, 1.5, 1.5)
    setups = [("Cam.000", "AUTO", 0.0, 0.0), ("Cam 001", "VERTICAL", 0.05, -0.08),
              ("Cam.002", "HORIZONTAL", -0.1, 0.04), ("Cam.003", "AUTO", 0.02, 0.02)]
    cams = []
    for i, (name, fit, sx, sy) in enumerate(setups):
        a = 2 * math.pi * i / len(setups)
        cam = bpy.data.objects.new(name, bpy.data.cameras.new(name))
        bpy.context.scene.collection.objects.link(cam)
        cam.location = (4 * math.cos(a), 4 * math.sin(a), 1.2)
        cam.rotation_euler = (-cam.location).to_track_quat("-Z", "Y").to_euler()
        cam.data.lens, cam.data.sensor_fit, cam.data.shift_x, cam.data.shift_y = 35 + 5 * i, fit, sx, sy
        cam.data.sensor_height = 20.0
        img = bpy.data.images.new(f"photo_{i}", 32, 24, alpha=True)
        img.pixels.foreach_set(np.full(32 * 24 * 4, 0.5, dtype=np.float32))
        cam.data.background_images.new().image = img
        cam.select_set(True)
        cams.append(cam)
    cams[1].scale = (0.5, 0.5, 0.5)
    bpy.context.view_layer.update()
    mw = cams[3].matrix_world.copy()
    cams[3].parent = rig
    cams[3].matrix_world = mw
    bpy.context.view_layer.update()
    return cams


def _gathered_k(cam, size: tuple[int, int]) -> np.ndarray:
    """K of the camera as a job gathers it for an image of that size."""
    p = camera_params(cam, bpy.context.scene)
    return fit_intrinsics(camera_math.intrinsics(p), camera_math.image_size(p), size, cam.name)


def _refined_result(job: dict, cams: list) -> tuple[dict, dict]:
    """result.json content with known corrections (the contract's input) and the expected K, R, t per camera."""
    rng = np.random.default_rng(7)
    entries, expected = [], {}
    for v, cam in zip(job["views"], sorted(cams, key=lambda c: c.name)):
        K, R, t = np.array(v["K"]), np.array(v["R"]), np.array(v["t"])
        deg = rng.uniform(0.75, 1.5)
        R2 = _rotation(rng.normal(size=3), deg) @ R
        move = rng.normal(size=3)
        move *= 0.05 / np.linalg.norm(move)
        C2 = -R.T @ t + move
        K2 = K.copy()
        K2[:2, :2] *= FOCAL_SCALE
        t2 = -R2 @ C2
        aligned = v["name"] != "Cam.002"
        entries.append({"name": v["name"], "K": K2.tolist(), "R": R2.tolist(), "t": t2.tolist(),
                        "rotation_deg": deg, "translation": 0.05, "weight": 1.0 if aligned else 0.2,
                        "aligned": aligned, "held": v["name"] == "Cam.000"})
        expected[cam.name] = (K2, R2, t2, (v["width"], v["height"]), deg)
    warning = "View 'Cam.002' could not be aligned (silhouette overlap 0.41 after refinement)."
    return {"cameras": entries, "camera_focal_scale": FOCAL_SCALE, "warnings": [warning]}, expected


def _run_with_refined_result(tmp_path: Path) -> tuple[list, dict]:
    """Gather a job with Refine Cameras on and import a result with known refined cameras for it."""
    cams = _cameras()
    s = bpy.context.scene.photomesh
    s.refine_cameras = True
    job = gather_job(bpy.context, s, tmp_path / "job")
    content, expected = _refined_result(job, cams)
    import_refined(content, job, tmp_path)
    return cams, expected


def test_checkbox_reaches_job_json(tmp_path: Path) -> None:
    _cameras()
    for on in (False, True):
        bpy.context.scene.photomesh.refine_cameras = on
        gather_job(bpy.context, bpy.context.scene.photomesh, tmp_path / f"job_{on}")
        assert json.loads((tmp_path / f"job_{on}" / "job.json").read_text())["settings"]["refine_cameras"] is on
    assert len(bpy.context.scene.photomesh_cameras.items) == 0
    with pytest.raises(RuntimeError, match="No refined cameras stored"):
        bpy.ops.photomesh.apply_refined_cameras()


def test_refined_cameras_stored_listed_and_applied(tmp_path: Path) -> None:
    cams, expected = _run_with_refined_result(tmp_path)
    scene = bpy.context.scene
    obj = bpy.data.objects["Recon"]
    assert obj["photomesh_refined_cameras"] == 4
    stored, scale = stored_cameras(scene)
    assert scene.photomesh_cameras.source == "Recon" and scale == pytest.approx(FOCAL_SCALE)
    assert [c.camera for c in stored] == ["Cam 001", "Cam.000", "Cam.002", "Cam.003"]
    assert [c.view for c in stored] == ["Cam_001", "Cam.000", "Cam.002", "Cam.003"]
    assert [c.aligned for c in stored] == [True, True, False, True]
    assert [c.held for c in stored] == [False, True, False, False]
    for c in stored:
        assert c.rotation_deg == pytest.approx(expected[c.camera][4], rel=1e-5)
        assert c.translation == pytest.approx(0.05, rel=1e-5)
    assert "Cam.002" in non_aligned(scene)
    rows = panel_rows(stored, scale, present_cameras(scene, stored))
    assert rows[0][0] == ("Focal length x1.0200 (all)",)
    assert [(cells[0], icon) for cells, icon in rows[2:]] == [
        ("Cam 001", "CAMERA_DATA"), ("Cam.000", "CAMERA_DATA"), ("Cam.002", "ERROR"), ("Cam.003", "CAMERA_DATA"),
        ("1 of 4 camera(s) kept as given (within about a pixel)", "CHECKMARK"), ("Not aligned: Cam.002 (weight 0.20)", "ERROR")]

    bpy.data.objects["Rig"].location.x += 0.5  # the parent moved since the run: Apply still lands on the refined pose
    lens_before = {c.name: c.data.lens for c in cams}
    assert bpy.ops.photomesh.apply_refined_cameras() == {"FINISHED"}
    for cam in cams:
        K2, R2, t2, size, _ = expected[cam.name]
        R, t = camera_pose(cam)
        assert np.allclose(R, R2, atol=1e-5) and np.allclose(t, t2, atol=1e-5), cam.name
        assert np.allclose(_gathered_k(cam, size), K2, rtol=1e-5, atol=1e-5), cam.name
        assert cam.data.lens == pytest.approx(lens_before[cam.name] * FOCAL_SCALE, rel=1e-5)
    assert cams[3].parent is not None and tuple(cams[1].scale) == pytest.approx((0.5, 0.5, 0.5), rel=1e-5)


def test_missing_cameras_named_others_applied(tmp_path: Path, capfd) -> None:
    cams, expected = _run_with_refined_result(tmp_path)
    scene = bpy.context.scene
    bpy.data.objects.remove(cams[0])
    cams[1].name = "Renamed"
    before = camera_pose(cams[1])
    stored, scale = stored_cameras(scene)
    rows = panel_rows(stored, scale, present_cameras(scene, stored))
    assert rows[-1] == (("Missing (deleted or renamed): Cam 001, Cam.000",), "ERROR")
    assert [icon for cells, icon in rows if cells[0] in ("Cam 001", "Cam.000", "Cam.003")] == [
        "ERROR", "ERROR", "CAMERA_DATA"]
    capfd.readouterr()
    assert bpy.ops.photomesh.apply_refined_cameras() == {"FINISHED"}
    out = "".join(capfd.readouterr())
    assert "not found (deleted or renamed since the run): Cam 001, Cam.000" in out
    assert "Applied the other 2" in out
    R, t = camera_pose(cams[1])
    assert np.allclose(R, before[0]) and np.allclose(t, before[1])
    for name in ("Cam.002", "Cam.003"):
        R, t = camera_pose(bpy.data.objects[name])
        assert np.allclose(R, expected[name][1], atol=1e-5) and np.allclose(t, expected[name][2], atol=1e-5)


def test_apply_is_one_undo_step(tmp_path: Path) -> None:
    cams, expected = _run_with_refined_result(tmp_path)
    names = [c.name for c in cams]
    before = {c.name: (np.array(c.matrix_world), c.data.lens) for c in cams}
    bpy.ops.ed.undo_push(message="before apply")
    # undo=True: the call pushes an undo step as a click on the button does (only with the UNDO flag)
    assert bpy.ops.photomesh.apply_refined_cameras("EXEC_DEFAULT", True) == {"FINISHED"}
    assert not np.allclose(np.array(bpy.data.objects[names[0]].matrix_world), before[names[0]][0], atol=1e-4)
    bpy.ops.ed.undo()
    for name in names:
        cam = bpy.data.objects[name]
        assert np.allclose(np.array(cam.matrix_world), before[name][0], atol=1e-6), name
        assert cam.data.lens == pytest.approx(before[name][1])
    assert len(bpy.context.scene.photomesh_cameras.items) == 4
    bpy.ops.ed.redo()
    for name in names:
        R, t = camera_pose(bpy.data.objects[name])
        assert np.allclose(R, expected[name][1], atol=1e-5) and np.allclose(t, expected[name][2], atol=1e-5), name


def test_constrained_camera_warned_and_clear_empties_the_list(tmp_path: Path, capfd) -> None:
    cams, _ = _run_with_refined_result(tmp_path)
    track = cams[2].constraints.new("TRACK_TO")
    track.target = bpy.data.objects["Rig"]
    capfd.readouterr()
    assert bpy.ops.photomesh.apply_refined_cameras() == {"FINISHED"}
    out = "".join(capfd.readouterr())
    assert "Constraints or keyframes drive Cam.002:" in out and "Applied refined poses to 4 camera(s)" in out
    assert bpy.ops.photomesh.clear_refined_cameras() == {"FINISHED"}
    assert len(bpy.context.scene.photomesh_cameras.items) == 0
    with pytest.raises(RuntimeError, match="No refined cameras stored"):
        bpy.ops.photomesh.apply_refined_cameras()


def test_malformed_cameras_fail_the_import_cleanly(tmp_path: Path) -> None:
    _cameras()
    bpy.context.scene.photomesh.refine_cameras = True
    job = gather_job(bpy.context, bpy.context.scene.photomesh, tmp_path / "job")
    bad = {"cameras": [{"name": "Cam.000", "K": np.eye(3).tolist(), "R": [[1, 0, 0], [0, 1, 0], [0, 0, 2]],
                        "t": [0, 0, 1]}]}
    objects = {o.name for o in bpy.data.objects}
    with pytest.raises(GatherError, match="refined cameras are malformed.*'Cam.000': R is not a rotation"):
        import_refined(bad, job, tmp_path)
    assert {o.name for o in bpy.data.objects} == objects
    assert len(bpy.context.scene.photomesh_cameras.items) == 0
