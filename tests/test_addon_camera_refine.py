"""Refined cameras, pure part (no bpy): result.json parsing, the inverse pose and lens, the panel's lines."""
from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from blender_addon import camera_math as cm
from blender_addon.camera_refine import camera_matrix_world, lens_for_focal, panel_rows, parse_refined_cameras


def _rotation(axis: np.ndarray, deg: float) -> np.ndarray:
    """Rotation matrix about a unit axis (Rodrigues)."""
    a = np.asarray(axis, dtype=float) / np.linalg.norm(axis)
    k = np.array([[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]])
    th = math.radians(deg)
    return np.eye(3) + math.sin(th) * k + (1 - math.cos(th)) * k @ k


def _entry(name: str, **over) -> dict:
    """A contract-shaped camera entry."""
    e = {"name": name, "K": [[100.0, 0, 32], [0, 100.0, 24], [0, 0, 1]], "R": np.eye(3).tolist(),
         "t": [0.0, 0.0, 4.0], "rotation_deg": 0.5, "translation": 0.01, "weight": 1.0, "aligned": True}
    e.update(over)
    return e


VIEWS = [{"name": "cam_a", "width": 64, "height": 48}, {"name": "cam_b", "width": 32, "height": 24}]
MAP = {"cam_a": "Cam A", "cam_b": "Cam.B"}


def test_parse_keeps_order_sizes_and_flags() -> None:
    result = {"cameras": [_entry("cam_b", aligned=False, weight=0.1), _entry("cam_a")], "camera_focal_scale": 1.01}
    cams, scale = parse_refined_cameras(result, VIEWS, MAP)
    assert scale == pytest.approx(1.01)
    assert [(c.view, c.camera, c.width, c.height, c.aligned) for c in cams] == [
        ("cam_b", "Cam.B", 32, 24, False), ("cam_a", "Cam A", 64, 48, True)]
    assert cams[0].weight == pytest.approx(0.1) and cams[1].t.tolist() == [0.0, 0.0, 4.0]
    assert parse_refined_cameras({"cameras": []}, VIEWS, MAP) == ([], 1.0)


@pytest.mark.parametrize("result,expected", [
    ({"cameras": [_entry("cam_x")]}, "camera 'cam_x' is not a view"),
    ({"cameras": [_entry("cam_a", R=[[1, 0, 0], [0, 1, 0], [0, 0, -1]])]}, "'cam_a': R is not a rotation"),
    ({"cameras": [_entry("cam_a", R=[[2, 0, 0], [0, 1, 0], [0, 0, 1]])]}, "'cam_a': R is not a rotation"),
    ({"cameras": [_entry("cam_b", t=[0, float("nan"), 1])]}, "'cam_b': t is not a finite 3 array"),
    ({"cameras": [_entry("cam_b", K=[[1, 0], [0, 1]])]}, "'cam_b': K is not a finite 3x3"),
    ({"cameras": [_entry("cam_a", K=[[-5, 0, 1], [0, 5, 1], [0, 0, 1]])]}, "non-positive focal"),
    ({"cameras": [_entry("cam_a"), _entry("cam_a")]}, "'cam_a' twice"),
    ({"cameras": [_entry("cam_a", rotation_deg="big")]}, "'rotation_deg' must be a finite number"),
    ({"cameras": [{"K": 1}]}, "without a name"),
    ({"cameras": {"cam_a": 1}}, "must be a list"),
    ({"cameras": [], "camera_focal_scale": 0}, "positive number"),
])
def test_parse_rejects_bad_entries_naming_the_view(result: dict, expected: str) -> None:
    with pytest.raises(ValueError, match=expected):
        parse_refined_cameras(result, VIEWS, MAP)


def test_matrix_world_is_the_inverse_of_extrinsics_with_scale() -> None:
    rng = np.random.default_rng(3)
    for _ in range(20):
        R = _rotation(rng.normal(size=3), rng.uniform(0, 180))
        t = rng.normal(size=3) * 3
        scale = rng.uniform(0.2, 3.0, size=3)
        m = camera_matrix_world(R, t, scale)
        assert np.allclose(np.linalg.norm(m[:3, :3], axis=0), scale)
        R2, t2 = cm.extrinsics_from_matrix_world(m)
        assert np.allclose(R2, R, atol=1e-12) and np.allclose(t2, t, atol=1e-12)


@pytest.mark.parametrize("fit,aspect,image_scale", list(itertools.product(
    ["AUTO", "HORIZONTAL", "VERTICAL"], [(1.0, 1.0), (1.0, 1.25), (1.3, 1.0)], [1.0, 0.5])))
def test_lens_for_focal_gives_that_focal_and_keeps_the_principal_point(fit: str, aspect: tuple, image_scale: float
                                                                        ) -> None:
    p = cm.BlenderCameraParams(lens=42.0, sensor_width=36.0, sensor_height=20.0, sensor_fit=fit, shift_x=0.07,
                               shift_y=-0.11, resolution_x=640, resolution_y=720, resolution_percentage=50,
                               pixel_aspect_x=aspect[0], pixel_aspect_y=aspect[1])
    w, h = cm.image_size(p)
    size = (round(w * image_scale), round(h * image_scale))

    def fitted(params: cm.BlenderCameraParams) -> np.ndarray:
        K = cm.intrinsics(params)
        return np.diag([size[0] / w, size[1] / h, 1.0]) @ K

    K0 = fitted(p)
    target = K0.copy()
    target[:2, :2] *= 1.037
    lens = lens_for_focal(p, target[0, 0], size)
    K1 = fitted(cm.BlenderCameraParams(**{**p.__dict__, "lens": lens}))
    assert lens == pytest.approx(42.0 * 1.037)
    assert np.allclose(K1, target, rtol=1e-12)


def test_panel_rows_flag_missing_and_not_aligned() -> None:
    result = {"cameras": [_entry("cam_a", rotation_deg=1.234, translation=0.0456),
                          _entry("cam_b", aligned=False, weight=0.25)], "camera_focal_scale": 0.98}
    cams, scale = parse_refined_cameras(result, VIEWS, MAP)
    rows = panel_rows(cams, scale, present={"Cam.B"})
    assert rows == [(("Focal length x0.9800 (all)",), "CAMERA_DATA"),
                    (("Camera", "Angle", "Move"), "NONE"),
                    (("Cam A", "1.23°", "0.0456"), "ERROR"),
                    (("Cam.B", "0.50°", "0.01"), "ERROR"),
                    (("Not aligned: Cam.B (weight 0.25)",), "ERROR"),
                    (("Missing (deleted or renamed): Cam A",), "ERROR")]
    rows = panel_rows(cams[:1], 1.0, present={"Cam A"}, length=lambda v: f"{100 * v:.2f} cm")
    assert rows == [(("Camera", "Angle", "Move"), "NONE"), (("Cam A", "1.23°", "4.56 cm"), "CAMERA_DATA")]


def test_panel_rows_show_kept_cameras() -> None:
    result = {"cameras": [_entry("cam_a", rotation_deg=0.0, translation=0.0, held=True),
                          _entry("cam_b", rotation_deg=2.5, translation=0.1)]}
    cams, scale = parse_refined_cameras(result, VIEWS, MAP)
    assert [c.held for c in cams] == [True, False]
    assert panel_rows(cams, scale) == [(("Camera", "Angle", "Move"), "NONE"),
                                       (("Cam A", "kept", "-"), "CAMERA_DATA"),
                                       (("Cam.B", "2.50°", "0.1"), "CAMERA_DATA"),
                                       (("1 of 2 camera(s) kept as given (within about a pixel)",), "CHECKMARK")]
    assert not parse_refined_cameras({"cameras": [_entry("cam_a", held="yes")]}, VIEWS, MAP)[0][0].held


def test_panel_rows_limit_keeps_the_flags() -> None:
    views = [{"name": f"v{i}", "width": 8, "height": 8} for i in range(5)]
    mapping = {f"v{i}": f"C{i}" for i in range(5)}
    result = {"cameras": [_entry(f"v{i}", aligned=i != 4) for i in range(5)]}
    cams, scale = parse_refined_cameras(result, views, mapping)
    rows = panel_rows(cams, scale, limit=2)
    assert [cells[0] for cells, _ in rows] == ["Camera", "C0", "C1", "... and 3 more camera(s)",
                                               "Not aligned: C4 (weight 1.00)"]
