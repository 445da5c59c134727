"""Import Photos in Blender (bpy): a prepared `OUT/job` built from a real Cycles render becomes cameras, points and
a box that project like the job's K, R, t, and that Reconstruct's gathering takes with every photo and mask.

The operator's edge cases (backend errors, a slow run cancelled from a thread) run a stand-in that writes the
contract's files and its progress stream on cue; tests/test_photos_addon_backend.py runs the real `photos` command.
"""
from __future__ import annotations

import shutil
import threading
from pathlib import Path

import bpy  # noqa: I001 - bpy first: it makes mathutils importable
import cv2
import numpy as np
import pytest

from blender_addon import camera_math, ops_photos
from blender_addon.gather import camera_params, camera_pose, gather_job
from blender_addon.import_photos import MASK_PREFIX, import_prepared
from blender_addon.job_spec import GatherError
from blender_addon.photo_job import read_point_ply, read_prepared, srgb_to_linear
from blender_helpers import ADDON, addon  # noqa: F401 - addon: the module's autouse fixture
from photos_prepared import build_prepared, read_obj, write_ply, write_standin

STEMS = ["DSC_0101", "DSC_0102", "DSC_0103", "DSC_0104", "DSC_0105", "DSC_0106"]
SIZE = (80, 60)


def _prefs():
    return bpy.context.preferences.addons[ADDON].preferences


@pytest.fixture(scope="module")
def prepared_out(tmp_path_factory) -> Path:
    """OUT as `photos --prepare-only` leaves it, from a Cycles render of Suzanne by 6 true cameras."""
    return build_prepared(tmp_path_factory.mktemp("photos"), STEMS, SIZE)


@pytest.fixture(autouse=True)
def clean_scene(tmp_path: Path):
    """An empty scene, Reconstruct's settings at their defaults, the work folder under tmp_path."""
    for coll in (bpy.data.objects, bpy.data.meshes, bpy.data.cameras, bpy.data.images, bpy.data.collections):
        for idb in list(coll):
            coll.remove(idb)
    bpy.context.view_layer.update()
    scene = bpy.context.scene
    scene.render.resolution_x, scene.render.resolution_y, scene.render.resolution_percentage = 1920, 1080, 50
    s = scene.photomesh
    s.image_source, s.mask_source, s.bbox_source, s.mask_folder = "RENDER", "ALPHA", "AUTO", ""
    s.quality = "DRAFT"
    photos = scene.photomesh_photos
    photos.folder = photos.out_dir = photos.summary = photos.problems = photos.message = ""
    _prefs().python_path, _prefs().work_dir = "", str(tmp_path / "work")
    yield
    _prefs().python_path = _prefs().work_dir = ""


def _objects() -> list[str]:
    return sorted(o.name for o in bpy.data.objects)


def test_point_ply_ascii_and_binary_agree(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    pts = rng.normal(size=(50, 3)).astype(np.float32).astype(np.float64)
    cols = rng.integers(0, 256, size=(50, 3)).astype(np.uint8)
    for binary in (False, True):
        write_ply(tmp_path / "p.ply", pts, cols, binary)
        p, c = read_point_ply(tmp_path / "p.ply")
        np.testing.assert_allclose(p, pts, rtol=1e-6)
        np.testing.assert_array_equal(c, cols)


def test_import_cameras_project_like_the_job(prepared_out: Path) -> None:
    prepared = read_prepared(prepared_out)
    scene = bpy.context.scene
    imp = import_prepared(bpy.context, prepared, "my_photos")
    assert imp.collection.name == "my_photos" and scene.collection.children.get("my_photos") is not None
    assert [c.name for c in imp.cameras] == STEMS
    assert (scene.render.resolution_x, scene.render.resolution_y, scene.render.resolution_percentage) == (*SIZE, 100)
    v, _ = read_obj(prepared_out.parent / "render" / "reference.obj")
    for cam, view in zip(imp.cameras, prepared.views):
        params = camera_params(cam, scene)
        K = camera_math.intrinsics(params)
        R, t = camera_pose(cam)
        assert camera_math.image_size(params) == SIZE
        np.testing.assert_allclose(K, view.K, atol=1e-4)
        np.testing.assert_allclose(R, view.R, atol=1e-6)
        np.testing.assert_allclose(t, view.t, atol=1e-5)
        px_blender = camera_math.project(K, R, t, v)
        px_job = camera_math.project(view.K, view.R, view.t, v)
        assert np.abs(px_blender - px_job).max() < 1e-3
        bgs = list(cam.data.background_images)
        assert cam.data.show_background_images and len(bgs) == 2
        assert Path(bpy.path.abspath(bgs[0].image.filepath)) == view.image and bgs[0].show_background_image
        assert tuple(bgs[0].image.size) == SIZE
        assert bgs[1].image.name == f"{MASK_PREFIX}{view.name}" and not bgs[1].show_background_image
    assert len(imp.points.data.vertices) == 1500 and len(imp.points.data.polygons) == 0
    col = imp.points.data.attributes["Col"]
    assert col.domain == "POINT" and col.data_type == "FLOAT_COLOR"
    rgb = np.zeros(1500 * 4, dtype=np.float32)
    col.data.foreach_get("color", rgb)
    _, ply_colors = read_point_ply(prepared_out / "job" / "points.ply")
    np.testing.assert_allclose(rgb.reshape(-1, 4)[:, :3], srgb_to_linear(ply_colors), atol=1e-6)
    shown = [inst.object.data for inst in bpy.context.evaluated_depsgraph_get().object_instances
             if inst.object.original == imp.points and inst.object.type == "POINTCLOUD"]
    assert len(shown) == 1 and len(shown[0].points) == 1500 and "Col" in shown[0].attributes
    lo, hi = np.array(prepared.bbox[0]), np.array(prepared.bbox[1])
    corners = np.array([list(imp.bbox.matrix_world @ vert.co) for vert in imp.bbox.data.vertices])
    np.testing.assert_allclose(corners.min(0), lo, atol=1e-5)
    np.testing.assert_allclose(corners.max(0), hi, atol=1e-5)
    assert imp.bbox.display_type == "WIRE" and len(imp.bbox.data.edges) == 12
    assert imp.summary.startswith("6/7 photos placed, 0.42 px")
    assert imp.problems == ["DSC_0107: too few matches"]


def test_imported_cameras_gather_with_photos_and_masks(prepared_out: Path, tmp_path: Path) -> None:
    prepared = read_prepared(prepared_out)
    imp = import_prepared(bpy.context, prepared, "my_photos")
    s = bpy.context.scene.photomesh
    assert (s.image_source, s.mask_source, s.bbox_source) == ("BACKGROUND", "FOLDER", "OBJECT")
    assert s.bbox_object == imp.bbox and sorted(o.name for o in bpy.context.selected_objects) == STEMS
    assert s.job_name == "my_photos"
    job = gather_job(bpy.context, s, tmp_path / "job")
    assert [v["name"] for v in job["views"]] == STEMS
    np.testing.assert_allclose(job["bbox"]["min"], prepared.bbox[0], atol=1e-5)
    np.testing.assert_allclose(job["bbox"]["max"], prepared.bbox[1], atol=1e-5)
    assert job["floor"] == prepared.sfm["floor"]  # the box carries the floor found: the mesh is set down on it
    for gathered, view in zip(job["views"], prepared.views):
        np.testing.assert_allclose(gathered["K"], view.K, atol=1e-4)
        np.testing.assert_allclose(gathered["R"], view.R, atol=1e-6)
        photo = cv2.imread(str(tmp_path / "job" / gathered["image"]), cv2.IMREAD_UNCHANGED)
        assert photo.shape == (SIZE[1], SIZE[0], 3)
        assert np.abs(photo.astype(int) - cv2.imread(str(view.image)).astype(int)).max() <= 2
        mask = cv2.imread(str(tmp_path / "job" / gathered["mask"]), cv2.IMREAD_UNCHANGED)
        np.testing.assert_array_equal(mask, cv2.imread(str(view.mask), cv2.IMREAD_UNCHANGED))
        assert 0 < (mask > 0).mean() < 0.9


def test_second_import_renames_cameras_and_still_finds_masks(prepared_out: Path, tmp_path: Path) -> None:
    out = tmp_path / "copy"
    shutil.copytree(prepared_out, out)
    first = import_prepared(bpy.context, read_prepared(prepared_out), "my_photos")
    second = import_prepared(bpy.context, read_prepared(out), "my_photos")
    assert second.collection.name != first.collection.name
    assert all(c.name != c["photomesh_view"] for c in second.cameras)
    assert second.mask_folder == out / "camera_masks"
    job = gather_job(bpy.context, bpy.context.scene.photomesh, tmp_path / "job")
    assert len(job["views"]) == 6 and all(v["mask"] for v in job["views"])


def test_show_masks_toggles_the_mask_backgrounds(prepared_out: Path) -> None:
    imp = import_prepared(bpy.context, read_prepared(prepared_out), "my_photos")
    photos = bpy.context.scene.photomesh_photos
    photos.collection = imp.collection
    photos.show_masks = True
    assert all(c.data.background_images[1].show_background_image for c in imp.cameras)
    assert all(c.data.background_images[0].show_background_image for c in imp.cameras)
    photos.show_masks = False
    assert not any(c.data.background_images[1].show_background_image for c in imp.cameras)


def test_failed_import_leaves_nothing(prepared_out: Path, tmp_path: Path) -> None:
    out = tmp_path / "broken"
    shutil.copytree(prepared_out, out)
    (out / "job" / "images" / "DSC_0104.jpg").write_bytes(b"not a jpeg")
    before = (_objects(), len(bpy.data.images), len(bpy.data.cameras), len(bpy.data.collections))
    with pytest.raises(GatherError, match="Photo 'DSC_0104'.*cannot be read"):
        import_prepared(bpy.context, read_prepared(out), "broken")
    assert (_objects(), len(bpy.data.images), len(bpy.data.cameras), len(bpy.data.collections)) == before
    assert (bpy.context.scene.render.resolution_x, bpy.context.scene.render.resolution_percentage) == (1920, 50)


@pytest.fixture()
def standin_python(tmp_path: Path, prepared_out: Path, monkeypatch) -> Path:
    """An executable standing in for the backend Python: checks the command line, streams, writes OUT/job."""
    exe = write_standin(tmp_path)
    monkeypatch.setenv("STANDIN_SOURCE", str(prepared_out))
    _prefs().python_path = str(exe)
    return exe


def _photo_folder(tmp_path: Path, n: int = 6) -> Path:
    folder = tmp_path / "My Photos"
    folder.mkdir()
    for stem in STEMS[:n]:
        (folder / f"{stem}.JPG").write_bytes(b"jpeg")
    return folder


def test_operator_imports_and_remembers_the_folder(standin_python: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("STANDIN_MODE", "ok")
    folder = _photo_folder(tmp_path)
    assert bpy.ops.photomesh.import_photos(directory=str(folder)) == {"FINISHED"}
    photos = bpy.context.scene.photomesh_photos
    out = Path(photos.out_dir)
    assert out.parent.parent == tmp_path / "work" / "photos" and out.parent.name.startswith("My_Photos_")
    assert (out / "job" / "job.json").is_file() and photos.folder == str(folder)
    assert photos.collection.name == "My Photos" and photos.summary.startswith("6/7 photos placed")
    assert sorted(o.name for o in bpy.context.selected_objects) == STEMS
    assert Path(bpy.context.scene.photomesh.mask_folder) == out / "job" / "masks"
    assert ops_photos.active_import() is None


@pytest.mark.parametrize("case,expected", [("error", "only 1 of 6 photos could be placed Take overlapping"),
                                           ("empty", "No photos in"), ("one", "Only one photo"),
                                           ("missing", "does not exist"), ("nofolder", "No photo folder chosen")])
def test_operator_errors_leave_nothing(standin_python: Path, tmp_path: Path, monkeypatch, case: str,
                                       expected: str) -> None:
    monkeypatch.setenv("STANDIN_MODE", "error" if case == "error" else "ok")
    folder = {"error": lambda: _photo_folder(tmp_path), "one": lambda: _photo_folder(tmp_path, 1),
              "empty": lambda: _photo_folder(tmp_path, 0), "missing": lambda: tmp_path / "nowhere",
              "nofolder": lambda: ""}[case]()
    before = _objects()
    with pytest.raises(RuntimeError, match=expected):
        bpy.ops.photomesh.import_photos(directory=str(folder))
    assert _objects() == before and len(bpy.data.collections) == 0
    assert expected.split(" Take")[0] in bpy.context.scene.photomesh_photos.message
    assert ops_photos.active_import() is None


def test_cancel_leaves_no_folder_and_no_objects(standin_python: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("STANDIN_MODE", "slow")
    folder = _photo_folder(tmp_path)
    timer = threading.Timer(1.0, ops_photos.cancel_active_import)
    timer.start()
    try:
        assert bpy.ops.photomesh.import_photos(directory=str(folder)) == {"CANCELLED"}
    finally:
        timer.cancel()
    assert _objects() == [] and len(bpy.data.collections) == 0
    photos_root = tmp_path / "work" / "photos"
    assert not photos_root.exists() or not any(photos_root.iterdir())
    assert ops_photos.active_import() is None


@pytest.mark.slow
def test_reconstruct_runs_on_imported_cameras_with_no_further_settings(standin_python: Path, prepared_out: Path,
                                                                        tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("STANDIN_MODE", "ok")
    assert bpy.ops.photomesh.import_photos(directory=str(_photo_folder(tmp_path))) == {"FINISHED"}
    _prefs().python_path = ""
    s = bpy.context.scene.photomesh
    s.symmetry = "OFF"
    assert bpy.ops.photomesh.reconstruct(iterations=12, preview_every=0) == {"FINISHED"}
    me = bpy.data.objects["My Photos"].data
    v = np.array([list(x.co) for x in me.vertices])
    ref, _ = read_obj(prepared_out.parent / "render" / "reference.obj")
    diag = float(np.linalg.norm(np.ptp(ref, axis=0)))
    nearest = np.sqrt(((v[::7, None, :] - ref[None, ::3, :]) ** 2).sum(-1)).min(1)
    assert len(me.polygons) > 200 and np.median(nearest) < 0.05 * diag, (len(me.polygons), np.median(nearest) / diag)
