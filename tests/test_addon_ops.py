"""Gathering a job from a Cycles-rendered scene, and the Reconstruct operator against fake backends."""
from __future__ import annotations

import json
import math
import os
import stat
import sys
import textwrap
from pathlib import Path

import bpy  # noqa: I001 - bpy first: it makes mathutils importable
import numpy as np
import pytest
from mathutils import Vector

from blender_addon import camera_math, run_session
from blender_addon.import_result import PreviewObject
from blender_addon.job_spec import QUALITY_PRESETS
from blender_addon.png_io import png_info
from blender_addon.runner import BackendRunner
from blender_helpers import ADDON, addon  # noqa: F401 - addon: the module's autouse fixture


def _prefs():
    return bpy.context.preferences.addons[ADDON].preferences


@pytest.fixture(autouse=True)
def clean_scene(tmp_path: Path):
    """An empty scene with a tiny Cycles set-up; the work folder under tmp_path."""
    for coll in (bpy.data.objects, bpy.data.meshes, bpy.data.cameras, bpy.data.materials, bpy.data.images):
        for idb in list(coll):
            coll.remove(idb)
    scene = bpy.context.scene
    scene.render.engine = "CYCLES"
    scene.render.resolution_x = 64
    scene.render.resolution_y = 48
    scene.render.resolution_percentage = 100
    scene.cycles.samples = 2
    scene.cycles.use_denoising = False
    s = scene.photomesh
    s.image_source, s.mask_source, s.bbox_source = "RENDER", "ALPHA", "AUTO"
    s.render_samples, s.quality, s.job_name = 2, "DRAFT", "Recon"
    _prefs().python_path = ""
    _prefs().work_dir = str(tmp_path / "work")
    yield
    _prefs().python_path = ""
    _prefs().work_dir = ""


def add_camera_ring(n: int, radius: float = 4.0, height: float = 1.5) -> list:
    """n cameras on a circle looking at the origin, all selected."""
    cams = []
    for i in range(n):
        a = 2 * math.pi * i / n
        cam = bpy.data.objects.new(f"Cam.{i:03d}", bpy.data.cameras.new(f"Cam.{i:03d}"))
        bpy.context.scene.collection.objects.link(cam)
        cam.location = (radius * math.cos(a), radius * math.sin(a), height)
        cam.rotation_euler = (-cam.location).to_track_quat("-Z", "Y").to_euler()
        cam.data.lens = 35
        cam.select_set(True)
        cams.append(cam)
    bpy.context.view_layer.update()
    return cams


def add_subject() -> bpy.types.Object:
    """A coloured cube at the origin."""
    me = bpy.data.meshes.new("Subject")
    import bmesh
    bm = bmesh.new()
    bmesh.ops.create_cube(bm, size=1.0)
    bm.to_mesh(me)
    bm.free()
    obj = bpy.data.objects.new("Subject", me)
    bpy.context.scene.collection.objects.link(obj)
    return obj


def _objects() -> set:
    return {o.name for o in bpy.data.objects}


def test_gather_writes_valid_job(tmp_path: Path) -> None:
    add_subject()
    cams = add_camera_ring(3)
    cams[1].data.shift_x = 0.1
    from blender_addon.gather import gather_job
    job_dir = tmp_path / "job"
    job = gather_job(bpy.context, bpy.context.scene.photomesh, job_dir)
    data = json.loads((job_dir / "job.json").read_text())
    assert data == job
    assert data["version"] == 1 and data["bbox"] is None
    assert set(data["settings"]) == {"device", "rasterizer", "image_scale", "iterations", "quality", "symmetry",
                                     "texture_size", "seed", "max_faces", "refine_cameras"}
    assert data["settings"]["iterations"] is None and data["settings"]["quality"] == "draft"
    assert data["settings"]["max_faces"] == QUALITY_PRESETS["DRAFT"]["max_faces"]
    assert [v["name"] for v in data["views"]] == ["Cam.000", "Cam.001", "Cam.002"]
    for v, cam in zip(data["views"], cams):
        w, h, depth, channels = png_info(job_dir / v["image"])
        assert (w, h, depth, channels) == (64, 48, 8, 4)
        assert (v["width"], v["height"]) == (64, 48)
        R = np.array(v["R"])
        assert np.allclose(R @ R.T, np.eye(3), atol=1e-6)
        # the origin projects where Blender's own projection puts it
        from bpy_extras.object_utils import world_to_camera_view
        ndc = world_to_camera_view(bpy.context.scene, cam, Vector((0, 0, 0)))
        px = camera_math.project(np.array(v["K"]), R, np.array(v["t"]), np.zeros((1, 3)))[0]
        assert np.allclose(px, [ndc.x * 64, (1 - ndc.y) * 48], atol=1e-3)
    # the subject is in the alpha of the render, the background is transparent
    img = bpy.data.images.load(str(job_dir / "images" / "Cam.000.png"))
    alpha = np.array(img.pixels[:]).reshape(48, 64, 4)[..., 3]
    assert alpha[24, 32] > 0.9 and alpha[0, 0] < 0.1
    # render settings restored
    assert bpy.context.scene.camera is None
    assert bpy.context.scene.cycles.samples == 2


def test_gather_bbox_object_and_background_images(tmp_path: Path) -> None:
    s = bpy.context.scene.photomesh
    cube = add_subject()
    cube.scale = (2, 1, 1)
    cams = add_camera_ring(2)
    s.bbox_source, s.bbox_object = "OBJECT", cube
    s.image_source = "BACKGROUND"
    for i, cam in enumerate(cams):
        img = bpy.data.images.new(f"photo{i}", 32, 24, alpha=True)
        img.pixels.foreach_set(np.full(32 * 24 * 4, 0.5, dtype=np.float32))
        bg = cam.data.background_images.new()
        bg.image = img
    from blender_addon.gather import gather_job
    job = gather_job(bpy.context, s, tmp_path / "job")
    assert np.allclose(job["bbox"]["min"], [-1, -0.5, -0.5]) and np.allclose(job["bbox"]["max"], [1, 0.5, 0.5])
    # images half the render size: K scaled by 0.5
    v = job["views"][0]
    assert (v["width"], v["height"]) == (32, 24)
    K_full = camera_math.intrinsics(camera_math.BlenderCameraParams(35, 36, 24, "AUTO", 0, 0, 64, 48))
    assert np.allclose(np.array(v["K"])[:2], K_full[:2] / 2)
    assert png_info(tmp_path / "job" / v["image"])[:2] == (32, 24)


@pytest.mark.parametrize("case", ["none", "not_camera", "one", "no_image", "bad_size", "bbox_missing",
                                  "no_folder"])
def test_bad_input_reports_clear_error(case: str) -> None:
    s = bpy.context.scene.photomesh
    subject = add_subject()
    expected = {"none": "No camera selected", "not_camera": "not cameras", "one": "at least 2",
                "no_image": "without a background image: Cam.001", "bad_size": "different aspect ratio",
                "bbox_missing": "no object is chosen", "no_folder": "image folder does not exist"}[case]
    if case == "not_camera":
        subject.select_set(True)
    elif case != "none":
        cams = add_camera_ring(1 if case == "one" else 2)
        if case in ("no_image", "bad_size"):
            s.image_source = "BACKGROUND"
            for cam in cams[: (1 if case == "no_image" else 2)]:
                bg = cam.data.background_images.new()
                bg.image = bpy.data.images.new(f"p_{cam.name}", 50, 50)
        if case == "bbox_missing":
            s.bbox_source, s.bbox_object = "OBJECT", None
        if case == "no_folder":
            s.image_source, s.image_folder = "FOLDER", "/nonexistent/photos"
    before = _objects()
    with pytest.raises(RuntimeError, match=expected):
        bpy.ops.photomesh.reconstruct()
    assert _objects() == before
    assert run_session.active_job() is None
    work = Path(_prefs().work_dir)
    assert not work.exists() or not any(work.iterdir())


FAKE_BACKEND = r'''
import json, os, sys, time
args = sys.argv[1:]
mode = os.environ.get("FAKE_MODE", "ok")
out = args[args.index("--out") + 1]
def emit(o): print(json.dumps(o), flush=True)
def ply(path, v, f):
    with open(path, "w") as fh:
        fh.write("ply\nformat ascii 1.0\nelement vertex %d\nproperty float x\nproperty float y\nproperty float z\n"
                 "element face %d\nproperty list uchar int vertex_indices\nend_header\n" % (len(v), len(f)))
        for p in v: fh.write("%g %g %g\n" % p)
        for t in f: fh.write("3 %d %d %d\n" % t)
V = [(0, 0, 0), (1, 0, 0), (0, 1, 0), (0, 0, 1)]
F = [(0, 2, 1), (0, 1, 3), (0, 3, 2), (1, 2, 3)]
emit({"type": "stage", "name": "load"})
if mode == "error":
    emit({"type": "error", "message": "view Cam.001: the mask is empty", "hint": "Check the image's alpha."})
    sys.exit(2)
emit({"type": "stage", "name": "optimize"})
os.makedirs(os.path.join(out, "previews"), exist_ok=True)
ply(os.path.join(out, "previews", "mesh_000010.ply"), V, F)
emit({"type": "progress", "stage": "optimize", "step": 10, "total": 20, "losses": {"mask": 0.1}, "elapsed_s": 1})
emit({"type": "preview", "mesh": "previews/mesh_000010.ply", "step": 10})
if mode == "crash":
    sys.stderr.write("Traceback...\nRuntimeError: segfault-ish death\n")
    os._exit(3)
if mode == "hang":
    time.sleep(600)
ply(os.path.join(out, "previews", "mesh_000020.ply"), V, F)
emit({"type": "preview", "mesh": "previews/mesh_000020.ply", "step": 20})
with open(os.path.join(out, "mesh.obj"), "w") as fh:
    fh.write("mtllib mesh.mtl\n" + "".join("v %g %g %g\n" % p for p in V))
    fh.write("vt 0 0\nvt 1 0\nvt 0 1\nvt 1 1\n")
    fh.write("".join("f %d/%d %d/%d %d/%d\n" % (a+1, a+1, b+1, b+1, c+1, c+1) for a, b, c in F))
    if mode == "badmesh":
        fh.write("f 1 2 99\n")
with open(os.path.join(out, "mesh.mtl"), "w") as fh:
    fh.write("newmtl material0\nmap_Kd texture.png\n")
import zlib, struct
def chunk(t, d): return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
raw = b"".join(b"\x00" + b"\xff\x00\x00" * 4 for _ in range(4))
png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 4, 4, 8, 2, 0, 0, 0)) + \
      chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
open(os.path.join(out, "texture.png"), "wb").write(png)
json.dump({"mesh": "mesh.obj", "texture": "texture.png",
           "symmetry": {"point": [0, 0, 0], "normal": [1, 0, 0], "score": 0.002}},
          open(os.path.join(out, "result.json"), "w"))
emit({"type": "done", "result": "result.json"})
'''


@pytest.fixture()
def fake_python(tmp_path: Path) -> Path:
    """An executable standing in for the backend Python: prints a stream and writes a result."""
    script = tmp_path / "fake_backend.py"
    script.write_text(FAKE_BACKEND)
    exe = tmp_path / "fakepython"
    exe.write_text(f"#!/bin/sh\nexec {sys.executable} {script} \"$@\"\n")
    exe.chmod(exe.stat().st_mode | stat.S_IEXEC)
    return exe


def _scene_with_cameras() -> None:
    add_subject()
    add_camera_ring(2)
    bpy.context.scene.photomesh.render_samples = 1


def test_operator_imports_result_with_uv_material_symmetry(fake_python: Path, monkeypatch) -> None:
    monkeypatch.setenv("FAKE_MODE", "ok")
    _scene_with_cameras()
    _prefs().python_path = str(fake_python)
    assert bpy.ops.photomesh.reconstruct() == {"FINISHED"}
    obj = bpy.data.objects["Recon"]
    assert obj.select_get() and bpy.context.view_layer.objects.active == obj
    assert len(obj.data.polygons) == 4 and len(obj.data.uv_layers) == 1
    uv = np.zeros(len(obj.data.loops) * 2, dtype=np.float32)
    obj.data.uv_layers[0].data.foreach_get("uv", uv)
    assert set(np.round(uv, 3)) == {0.0, 1.0}
    mat = obj.data.materials[0]
    tex = [n for n in mat.node_tree.nodes if n.type == "TEX_IMAGE"]
    assert tex and tex[0].image.packed_file is not None and tuple(tex[0].image.size) == (4, 4)
    assert list(obj["symmetry_plane"]["normal"]) == [1.0, 0.0, 0.0]
    assert "Recon_preview" not in bpy.data.objects
    assert run_session.active_job() is None
    assert bpy.context.window_manager.photomesh_job.running is False


@pytest.mark.parametrize("mode,expected", [("error", "the mask is empty Check the image's alpha"),
                                           ("crash", "exit code 3.*segfault-ish death"),
                                           ("hang", "wrote nothing"),
                                           ("badmesh", "Could not import the result.*does not exist")])
def test_operator_backend_failures(fake_python: Path, monkeypatch, mode: str, expected: str) -> None:
    monkeypatch.setenv("FAKE_MODE", mode)
    _scene_with_cameras()
    _prefs().python_path = str(fake_python)
    before = _objects()
    meshes = len(bpy.data.meshes)
    kwargs = {"idle_timeout": 2.0} if mode == "hang" else {}
    with pytest.raises(RuntimeError, match=expected):
        bpy.ops.photomesh.reconstruct(**kwargs)
    assert _objects() == before
    assert len([m for m in bpy.data.meshes if m.users]) <= meshes
    assert run_session.active_job() is None


def test_missing_python_path() -> None:
    _scene_with_cameras()
    _prefs().python_path = "/nonexistent/bin/python"
    before = _objects()
    with pytest.raises(RuntimeError, match="Backend Python not found"):
        bpy.ops.photomesh.reconstruct()
    assert _objects() == before


def test_python_without_torch(tmp_path: Path) -> None:
    import venv
    venv.create(tmp_path / "bare", with_pip=False)
    _scene_with_cameras()
    _prefs().python_path = str(tmp_path / "bare" / "bin" / "python")
    with pytest.raises(RuntimeError, match="Set up backend"):
        bpy.ops.photomesh.reconstruct()
    with pytest.raises(RuntimeError, match="Set up backend"):
        bpy.ops.photomesh.check_backend()


def test_second_reconstruct_while_running_and_cancel(tmp_path: Path) -> None:
    _scene_with_cameras()
    script = tmp_path / "sleep.py"
    script.write_text("import time\ntime.sleep(600)\n")
    runner = BackendRunner(sys.executable, tmp_path, tmp_path / "out", tmp_path,
                           argv=[sys.executable, str(script)])
    runner.start()
    run_session.set_active_job(run_session.ActiveJob("Busy", runner, True))
    try:
        before = _objects()
        with pytest.raises(RuntimeError, match="already running"):
            bpy.ops.photomesh.reconstruct()
        assert _objects() == before
        assert runner.process.returncode is None
        assert bpy.ops.photomesh.cancel() == {"FINISHED"}
        assert runner.process.returncode is not None
    finally:
        run_session.stop_active_job()


def test_preview_survives_user_deletion(tmp_path: Path) -> None:
    ply = tmp_path / "p.ply"
    ply.write_text("ply\nformat ascii 1.0\nelement vertex 3\nproperty float x\nproperty float y\n"
                   "property float z\nelement face 1\nproperty list uchar int vertex_indices\nend_header\n"
                   "0 0 0\n1 0 0\n0 1 0\n3 0 1 2\n")
    prev = PreviewObject("Job_preview")
    prev.update(bpy.context, ply)
    prev.update(bpy.context, ply)
    assert len([o for o in bpy.data.objects if o.name.startswith("Job_preview")]) == 1
    bpy.data.objects.remove(bpy.data.objects["Job_preview"], do_unlink=True)
    prev.update(bpy.context, ply)
    assert "Job_preview" in bpy.data.objects
    prev.remove()
    prev.remove()
    assert "Job_preview" not in bpy.data.objects
    assert not [m for m in bpy.data.meshes if m.name.startswith("Job_preview") and m.users]


def test_check_backend_reports_torch_and_rasterizer() -> None:
    from blender_addon import prefs
    _prefs().python_path = sys.executable
    assert bpy.ops.photomesh.check_backend() == {"FINISHED"}
    assert prefs.STATE["check_ok"] is True
    assert "torch" in prefs.STATE["check"] and "rasterizers: torch" in prefs.STATE["check"]


def test_gather_image_and_mask_folders(tmp_path: Path) -> None:
    from blender_addon.gather import gather_job
    from blender_addon.png_io import write_png
    s = bpy.context.scene.photomesh
    cams = add_camera_ring(2)
    photos, masks = tmp_path / "photos", tmp_path / "masks"
    photos.mkdir()
    masks.mkdir()
    for cam in cams:
        img = bpy.data.images.new("tmp", 64, 48)
        img.pixels.foreach_set(np.tile([0.2, 0.4, 0.6, 1.0], 64 * 48).astype(np.float32))
        img.filepath_raw = str(photos / f"{cam.name}.jpg")
        img.file_format = "JPEG"
        img.save()
        bpy.data.images.remove(img)
        m = np.zeros((48, 64), dtype=np.uint8)
        m[10:30, 20:40] = 255
        write_png(masks / f"IMG_{cam.name}_mask.png", m)
    s.image_source, s.image_folder = "FOLDER", str(photos)
    s.mask_source, s.mask_folder = "FOLDER", str(masks)
    job = gather_job(bpy.context, s, tmp_path / "job")
    for v in job["views"]:
        assert v["mask"] == f"masks/{v['name']}.png"
        assert png_info(tmp_path / "job" / v["image"]) == (64, 48, 8, 3)
        assert png_info(tmp_path / "job" / v["mask"])[:2] == (64, 48)
    data = (tmp_path / "job" / job["views"][0]["image"])
    img = bpy.data.images.load(str(data))
    px = np.array(img.pixels[:]).reshape(48, 64, 4)
    assert np.allclose(px[24, 32, :3], [0.2, 0.4, 0.6], atol=0.03)
