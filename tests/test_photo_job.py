"""Pure logic of Import Photos (no bpy): photo folder checks, where the output goes, the render set-up, summaries."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from blender_addon import camera_math
from blender_addon.job_spec import GatherError
from blender_addon.photo_job import (PhotoView, box_corners, camera_settings, check_photo_folder, output_dir,
                                     photos_argv, photos_root, render_setup, sfm_problems, sfm_summary,
                                     srgb_to_linear)


def view(name: str, w: int, h: int, fx: float = 100.0, fy: float = 100.0) -> PhotoView:
    """A view looking down -z from z = 5 with its principal point off centre."""
    K = np.array([[fx, 0, 0.47 * w], [0, fy, 0.52 * h], [0, 0, 1.0]])
    R = np.diag([1.0, -1.0, -1.0])
    return PhotoView(name, Path(f"{name}.jpg"), None, w, h, K, R, -R @ np.array([0.0, 0.0, 5.0]))


def test_photo_folder_checks(tmp_path: Path) -> None:
    with pytest.raises(GatherError, match="does not exist"):
        check_photo_folder(tmp_path / "nope")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(GatherError, match="No photos in"):
        check_photo_folder(tmp_path)
    (tmp_path / "a.JPG").write_bytes(b"")
    with pytest.raises(GatherError, match="Only one photo.*a.JPG"):
        check_photo_folder(tmp_path)
    (tmp_path / "b.png").write_bytes(b"")
    assert [p.name for p in check_photo_folder(tmp_path)] == ["a.JPG", "b.png"]


def test_output_goes_to_work_folder_then_next_to_blend_then_temp(tmp_path: Path) -> None:
    assert photos_root(str(tmp_path / "w"), "/x/scene.blend", tmp_path) == tmp_path / "w" / "photos"
    assert photos_root("", str(tmp_path / "proj" / "scene.blend"), tmp_path) == tmp_path / "proj" / "scene_photos"
    assert photos_root("", "", tmp_path) == tmp_path / "photomesh" / "photos"
    first = output_dir(tmp_path / "My Photos!", tmp_path, stamp="s")
    assert first == tmp_path / "My_Photos_s"
    first.mkdir()
    assert output_dir(tmp_path / "My Photos!", tmp_path, stamp="s") == tmp_path / "My_Photos_s_1"
    assert photos_argv("py", Path("/p"), Path("/o")) == ["py", "-m", "backend", "photos", "/p", "--out", "/o",
                                                          "--prepare-only", "--json"]


def test_render_setup_most_common_size_and_other_aspects_left_out() -> None:
    views = [view("a", 640, 480), view("b", 640, 480), view("c", 320, 240), view("d", 480, 640)]
    setup = render_setup(views)
    assert (setup.width, setup.height) == (640, 480)
    assert setup.kept == ["a", "b", "c"] and list(setup.left_out) == ["d"] and "480x640" in setup.left_out["d"]
    assert (setup.pixel_aspect_x, setup.pixel_aspect_y) == (1.0, 1.0)
    pts = np.random.default_rng(0).normal(size=(20, 3))
    for v in views[:3]:
        s = camera_settings(v, setup)
        params = camera_math.BlenderCameraParams(s["lens"], s["sensor_width"], 24.0, s["sensor_fit"], s["shift_x"],
                                                 s["shift_y"], setup.width, setup.height)
        K = camera_math.intrinsics(params)
        R, t = camera_math.extrinsics(s["location"], s["rotation"])
        scale = np.array([v.width / setup.width, v.height / setup.height])
        np.testing.assert_allclose(camera_math.project(K, R, t, pts) * scale, camera_math.project(v.K, v.R, v.t, pts),
                                   atol=1e-9)


def test_render_setup_pixel_aspect_and_ties() -> None:
    setup = render_setup([view("a", 300, 200, 110.0, 100.0), view("b", 600, 400, 220.0, 200.0)])
    assert (setup.width, setup.height) == (600, 400)
    assert setup.pixel_aspect_x == 1.0 and setup.pixel_aspect_y == pytest.approx(1.1)


def test_summaries_and_helpers() -> None:
    sfm = {"registered": ["a", "b", "c"], "unregistered": ["d"], "left_out": {"e": "blurred"},
           "reprojection_px": 0.734, "points": 5120, "seconds": 12.4, "warnings": ["few points on the object"]}
    assert sfm_summary(sfm, 3) == "3/4 photos placed, 0.73 px, 5120 points, 12 s"
    assert sfm_problems(sfm, {"f": "another aspect ratio"}) == [
        "d: not placed by structure from motion", "e: blurred", "f: another aspect ratio", "few points on the object"]
    assert sfm_summary({}, 5) == "5/5 photos placed"
    np.testing.assert_allclose(srgb_to_linear(np.array([[0, 255, 188]])), [[0.0, 1.0, 0.5]], atol=4e-3)
    c = box_corners((0, 0, 0), (1, 2, 3))
    assert c.shape == (8, 3) and c.min(0).tolist() == [0, 0, 0] and c.max(0).tolist() == [1, 2, 3]
