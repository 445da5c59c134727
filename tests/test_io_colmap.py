"""COLMAP models written by pycolmap (.bin and .txt) and NeRF transforms.json with lens distortion: photos of
dots at known 3D points load as pinhole views where K_new, R, t put each dot (sub-pixel), sparse points kept."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import imageio.v3 as iio
import numpy as np
import pycolmap
import pytest

from backend.runtime.errors import JobError
from backend.io.colmap import load_colmap
from backend.io.convert import convert
from backend.io.detect import detect_layout, load_any
from backend.io.job import load_job, scale_view
from backend.io.validate import validate_scene
from tests.lens_helpers import dot_centres, dots_image, look_at, project, separated

SIZE = (160, 120)
EYES = [np.array([5.0 * np.cos(a), 5.0 * np.sin(a), 1.5]) for a in np.linspace(0, 2 * np.pi, 4, endpoint=False)]


def world_points(n: int = 400) -> np.ndarray:
    """Points in the cube [-1.4, 1.4]^3 around the origin."""
    return np.random.default_rng(7).uniform(-1.4, 1.4, size=(n, 3))


def write_colmap(root: Path, model: str, params: list[float], binary: bool, model_dir: str) -> dict:
    """A COLMAP project as pycolmap writes it: 4 views of dots, one masks/<image>.png; returns the truth."""
    X = world_points()
    colors = np.random.default_rng(8).integers(0, 256, size=(len(X), 3)).astype(np.uint8)
    rec = pycolmap.Reconstruction()
    cam = pycolmap.Camera.create_from_model_name(1, model, 150.0, *SIZE)
    cam.params = params
    rec.add_camera_with_trivial_rig(cam)
    (root / "images").mkdir(parents=True)
    truth = {"X": X, "colors": colors, "poses": {}, "dots": {}}
    for i, eye in enumerate(EYES):
        name = f"view_{i}.png"
        R, t = look_at(eye)
        image = pycolmap.Image(name=name, camera_id=1, image_id=i + 1)
        rec.add_image_with_trivial_frame(image, pycolmap.Rigid3d(np.hstack([R, t[:, None]])))
        px = cam.img_from_cam(X @ R.T + t)  # COLMAP's own lens model puts the dots
        keep = separated(px, SIZE)
        iio.imwrite(root / "images" / name, np.round(dots_image(px[keep], SIZE) * 255).astype(np.uint8))
        truth["poses"][f"view_{i}"] = (R, t)
        truth["dots"][f"view_{i}"] = keep
    (root / "masks").mkdir()
    iio.imwrite(root / "masks" / "view_1.png.png", np.full(SIZE[::-1], 255, np.uint8))
    for x, c in zip(X, colors):
        rec.add_point3D(x, pycolmap.Track(), c)
    out = root / model_dir
    out.mkdir(parents=True)
    (rec.write_binary if binary else rec.write_text)(str(out))
    return truth


def check_dots(scene, truth: dict, tolerance: float = 0.15) -> None:
    """Each view's dots sit where its pinhole K, R, t project their 3D points."""
    for view in scene.views:
        X = truth["X"][truth["dots"][view.name]]
        expected = project(view.K, view.R, view.t, X)
        inside = (expected > 8).all(1) & (expected[:, 0] < view.width - 8) & (expected[:, 1] < view.height - 8)
        assert inside.sum() >= 8, view.name
        err = np.linalg.norm(dot_centres(view.image, expected[inside]) - expected[inside], axis=1)
        assert err.max() < tolerance, (view.name, err.max())


@pytest.mark.parametrize("model,params,binary,model_dir", [
    ("SIMPLE_RADIAL", [150.0, 81.0, 59.0, -0.15], True, "sparse/0"),
    ("OPENCV", [150.0, 146.0, 81.0, 59.0, -0.15, 0.03, 0.001, -0.002], False, "sparse"),
    ("OPENCV_FISHEYE", [150.0, 146.0, 81.0, 59.0, 0.04, -0.01, 0.002, 0.0], True, "sparse"),
])
def test_colmap_model_round_trip(tmp_path: Path, model: str, params: list[float], binary: bool,
                                 model_dir: str) -> None:
    root = tmp_path / "project"
    truth = write_colmap(root, model, params, binary, model_dir)
    assert detect_layout(root) == "colmap"
    scene = load_any(root)
    assert [v.name for v in scene.views] == [f"view_{i}" for i in range(4)]
    for view in scene.views:
        R, t = truth["poses"][view.name]
        np.testing.assert_allclose(view.R, R, atol=1e-9)
        np.testing.assert_allclose(view.t, t, atol=1e-9)
        assert view.K[0, 1] == 0 and view.image.shape == (SIZE[1], SIZE[0], 3)
    np.testing.assert_allclose(scene.points, truth["X"], atol=1e-9)
    assert scene.point_colors.dtype == np.uint8 and np.array_equal(scene.point_colors, truth["colors"])
    check_dots(scene, truth)
    masks = {v.name: v.mask for v in scene.views}
    assert masks["view_0"] is None and masks["view_1"].dtype == bool and masks["view_1"].all()
    validate_scene(scene, require_masks=False)
    with pytest.raises(JobError) as info:
        validate_scene(scene)
    assert info.value.view == "view_0" and "no alpha channel and no mask file" in info.value.message
    again = load_job(convert(root, tmp_path / "job"))
    assert [v.mask is None for v in again.views] == [True, False, True, True]
    for a, b in zip(scene.views, again.views):
        np.testing.assert_allclose(b.K, a.K)
        assert np.abs(b.image - a.image).max() <= 0.5 / 255 + 1e-6


def test_model_folder_itself_and_undistorter_layout(tmp_path: Path) -> None:
    """A path to sparse/0 finds images/ two levels up; the PINHOLE model keeps K as written."""
    root = tmp_path / "undistorted"
    truth = write_colmap(root, "PINHOLE", [150.0, 146.0, 81.0, 59.0], True, "sparse/0")
    scene = load_colmap(root / "sparse" / "0")
    np.testing.assert_allclose(scene.views[0].K, [[150.0, 0, 81.0], [0, 146.0, 59.0], [0, 0, 1]])
    check_dots(scene, truth)


def test_unsupported_camera_model_names_it(tmp_path: Path) -> None:
    root = tmp_path / "fov"
    write_colmap(root, "FOV", [150.0, 146.0, 81.0, 59.0, 0.9], True, "sparse/0")
    with pytest.raises(JobError) as info:
        load_any(root)
    assert "'FOV'" in info.value.message and info.value.view == "view_0"


def test_resized_photos_are_refused(tmp_path: Path) -> None:
    root = tmp_path / "resized"
    write_colmap(root, "SIMPLE_RADIAL", [150.0, 81.0, 59.0, -0.15], True, "sparse/0")
    iio.imwrite(root / "images" / "view_2.png", np.zeros((60, 80, 3), np.uint8))
    with pytest.raises(JobError) as info:
        load_any(root)
    assert info.value.view == "view_2" and "80x60" in info.value.message


def gl_c2w(R: np.ndarray, t: np.ndarray) -> list[list[float]]:
    """OpenGL camera-to-world 4x4 of an OpenCV world-to-camera pose."""
    c2w = np.eye(4)
    c2w[:3, :3] = R.T @ np.diag([1.0, -1.0, -1.0])
    c2w[:3, 3] = -R.T @ t
    return c2w.tolist()


def write_transforms(root: Path, style: str) -> dict:
    """transforms.json with a distorted lens: instant-ngp (k1, k2, p1, p2 at the top level) or nerfstudio
    (camera_model OPENCV_FISHEYE, k1..k4 in each frame); RGB photos of dots, no masks."""
    K = np.array([[150.0, 0.0, 81.0], [0.0, 146.0, 59.0], [0.0, 0.0, 1.0]])
    X = world_points()
    zero = np.zeros(3)
    (root / "images").mkdir(parents=True)
    meta: dict = {"fl_x": 150.0, "fl_y": 146.0, "cx": 81.0, "cy": 59.0, "w": SIZE[0], "h": SIZE[1], "frames": []}
    truth = {"X": X, "dots": {}}
    for i, eye in enumerate(EYES):
        R, t = look_at(eye)
        frame = {"file_path": f"images/frame_{i}.png", "transform_matrix": gl_c2w(R, t)}
        if style == "instant-ngp":
            dist = np.array([-0.15, 0.03, 0.001, -0.002])
            meta.update(k1=dist[0], k2=dist[1], p1=dist[2], p2=dist[3])
            px, _ = cv2.projectPoints(X @ R.T + t, zero, zero, K, dist)
        else:
            dist = np.array([0.04, -0.01, 0.002, 0.001 * i])
            frame.update(camera_model="OPENCV_FISHEYE", k1=dist[0], k2=dist[1], k3=dist[2], k4=dist[3])
            px, _ = cv2.fisheye.projectPoints((X @ R.T + t).reshape(-1, 1, 3), zero, zero, K, dist)
        px = px.reshape(-1, 2)
        keep = separated(px, SIZE)
        iio.imwrite(root / frame["file_path"], np.round(dots_image(px[keep], SIZE) * 255).astype(np.uint8))
        truth["dots"][f"frame_{i}"] = keep
        meta["frames"].append(frame)
    (root / "transforms.json").write_text(json.dumps(meta))
    return truth


@pytest.mark.parametrize("style", ["instant-ngp", "nerfstudio-fisheye"])
def test_nerf_distortion_is_undistorted(tmp_path: Path, style: str) -> None:
    truth = write_transforms(tmp_path / "nerf", style)
    scene = load_any(tmp_path / "nerf")
    assert all(v.mask is None for v in scene.views) and scene.points is None
    check_dots(scene, truth)
    assert not np.allclose(scene.views[0].K, [[150.0, 0.0, 81.0], [0.0, 146.0, 59.0], [0.0, 0.0, 1.0]])


def test_nerf_unsupported_camera_model_names_view(tmp_path: Path) -> None:
    write_transforms(tmp_path / "nerf", "instant-ngp")
    meta = json.loads((tmp_path / "nerf" / "transforms.json").read_text())
    meta["frames"][2]["camera_model"] = "EQUIRECTANGULAR"
    (tmp_path / "nerf" / "transforms.json").write_text(json.dumps(meta))
    with pytest.raises(JobError) as info:
        load_any(tmp_path / "nerf")
    assert info.value.view == "frame_2" and "EQUIRECTANGULAR" in info.value.message


def test_scaling_a_view_without_mask(tmp_path: Path) -> None:
    write_transforms(tmp_path / "nerf", "instant-ngp")
    view = load_any(tmp_path / "nerf").views[0]
    half = scale_view(view, 0.5)
    assert half.mask is None and half.image.shape == (60, 80, 3)
    np.testing.assert_allclose(half.K[:2], view.K[:2] * 0.5)
