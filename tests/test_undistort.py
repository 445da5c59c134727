"""Lens undistortion: COLMAP's camera models (checked against pycolmap's own projection) and OpenCV-distorted
dots that must land, after undistortion, where the pinhole K_new projects their 3D points."""
from __future__ import annotations

import cv2
import numpy as np
import pycolmap
import pytest

from backend.runtime.errors import JobError
from backend.io.undistort import CachedUndistorter, MODELS, undistort_maps, undistort_view
from tests.lens_helpers import dot_centres, dots_image, project, separated

SIZE = (160, 120)
# COLMAP model -> (focal length and principal point params, distortion params): strong lenses of a 160x120 camera
CAMERAS = {
    "SIMPLE_PINHOLE": ([150.0, 82.0, 58.0], []),
    "PINHOLE": ([150.0, 145.0, 82.0, 58.0], []),
    "SIMPLE_RADIAL": ([150.0, 82.0, 58.0], [-0.2]),
    "RADIAL": ([150.0, 82.0, 58.0], [-0.2, 0.05]),
    "OPENCV": ([150.0, 145.0, 82.0, 58.0], [-0.2, 0.05, 0.002, -0.003]),
    "FULL_OPENCV": ([150.0, 145.0, 82.0, 58.0], [-0.2, 0.05, 0.002, -0.003, 0.01, 0.02, 0.005, 0.01]),
    "SIMPLE_RADIAL_FISHEYE": ([150.0, 82.0, 58.0], [0.08]),
    "RADIAL_FISHEYE": ([150.0, 82.0, 58.0], [0.08, 0.01]),
    "OPENCV_FISHEYE": ([150.0, 145.0, 82.0, 58.0], [0.05, -0.02, 0.01, -0.002]),
}


def colmap_camera(model: str) -> pycolmap.Camera:
    """A pycolmap camera of SIZE with CAMERAS[model]'s parameters."""
    cam = pycolmap.Camera.create_from_model_name(1, model, 150.0, *SIZE)
    focal, dist = CAMERAS[model]
    cam.params = focal + dist
    return cam


def test_every_supported_model_is_tested() -> None:
    assert set(CAMERAS) == set(MODELS)


@pytest.mark.parametrize("model", [m for m in CAMERAS if CAMERAS[m][1]])
def test_maps_follow_colmaps_own_projection(model: str) -> None:
    """Each output pixel centre, cast through K_new and distorted by COLMAP, is where the map samples the photo."""
    cam = colmap_camera(model)
    map_x, map_y, K_new = undistort_maps(cam.calibration_matrix(), model, CAMERAS[model][1], SIZE)
    w, h = SIZE
    u, v = np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5)
    rays = np.linalg.solve(K_new, np.stack([u.ravel(), v.ravel(), np.ones(u.size)])).T
    colmap_px = cam.img_from_cam(rays)
    ours = np.stack([map_x.ravel(), map_y.ravel()], 1) + 0.5  # OpenCV indices -> pixel-corner origin
    assert np.abs(ours - colmap_px).max() < 2e-3
    # every output pixel sees the photograph, and the crop is tight along one axis
    assert map_x.min() >= -0.5 and map_x.max() <= w - 0.5 and map_y.min() >= -0.5 and map_y.max() <= h - 0.5
    assert (map_x.min() < 0.5 and map_x.max() > w - 1.5) or (map_y.min() < 0.5 and map_y.max() > h - 1.5)
    assert np.isclose(K_new[0, 0] / K_new[1, 1], cam.focal_length_x / cam.focal_length_y)


def dots_scene(rng: np.random.Generator, n: int = 300) -> np.ndarray:
    """World points 2 to 4 units in front of a camera at the origin looking down +z, over a wide field."""
    xy = rng.uniform(-0.75, 0.75, size=(n, 2))
    z = rng.uniform(2.0, 4.0, size=n)
    return np.column_stack([xy * z[:, None], z])


@pytest.mark.parametrize("fisheye", [False, True])
def test_opencv_distorted_dots_land_on_the_pinhole_projection(fisheye: bool) -> None:
    rng = np.random.default_rng(3)
    K = np.array([[150.0, 0.0, 82.0], [0.0, 145.0, 58.0], [0.0, 0.0, 1.0]])
    X = dots_scene(rng)
    zero = np.zeros(3)
    if fisheye:
        model, params = "OPENCV_FISHEYE", np.array([0.05, -0.02, 0.01, -0.002])
        px, _ = cv2.fisheye.projectPoints(X.reshape(-1, 1, 3), zero, zero, K, params)
    else:
        model, params = "OPENCV", np.array([-0.2, 0.05, 0.002, -0.003])
        px, _ = cv2.projectPoints(X, zero, zero, K, params)
    px = px.reshape(-1, 2)  # with K in our convention, these are our pixel coordinates
    keep = separated(px, SIZE)
    X, px = X[keep], px[keep]
    image = dots_image(px, SIZE)
    mask = np.zeros(image.shape[:2], bool)
    u, v = np.meshgrid(np.arange(SIZE[0]) + 0.5, np.arange(SIZE[1]) + 0.5)
    mask[np.hypot(u - px[0, 0], v - px[0, 1]) < 4] = True
    out, warped, K_new = undistort_view(image, mask, K, model, params)
    assert out.shape == image.shape and out.dtype == np.float32 and warped.dtype == bool
    expected = project(K_new, np.eye(3), zero, X)
    inside = (expected > 8).all(1) & (expected[:, 0] < SIZE[0] - 8) & (expected[:, 1] < SIZE[1] - 8)
    assert inside.sum() >= 10
    err = np.linalg.norm(dot_centres(out, expected[inside]) - expected[inside], axis=1)
    assert err.max() < 0.1, err
    # how far the lens moved the dots: the test would notice distortion being ignored
    moved = np.linalg.norm(project(K, np.eye(3), zero, X) - px, axis=1)
    assert moved.max() > 3.0
    if inside[0]:
        vv, uu = np.nonzero(warped)
        centre = np.array([uu.mean() + 0.5, vv.mean() + 0.5])
        assert np.linalg.norm(centre - expected[0]) < 0.6


def test_no_distortion_leaves_the_view_as_it_is() -> None:
    image = np.random.default_rng(0).random((120, 160, 3), dtype=np.float32)
    K = np.array([[150.0, 0.0, 82.0], [0.0, 145.0, 58.0], [0.0, 0.0, 1.0]])
    out, mask, K_new = undistort_view(image, None, K, "OPENCV", [0.0, 0.0, 0.0, 0.0])
    assert out is image and mask is None and np.array_equal(K_new, K)


def test_cached_undistorter_builds_maps_once_per_lens() -> None:
    undistort = CachedUndistorter()
    image = np.zeros((120, 160, 3), np.float32)
    K = np.array([[150.0, 0.0, 82.0], [0.0, 150.0, 58.0], [0.0, 0.0, 1.0]])
    a = undistort(image, None, K, "SIMPLE_RADIAL", [-0.1])
    b = undistort(image + 0.5, None, K, "SIMPLE_RADIAL", [-0.1])
    assert len(undistort.maps) == 1 and np.array_equal(a[2], b[2]) and np.allclose(b[0], 0.5)
    undistort(image, None, K, "SIMPLE_RADIAL", [-0.2])
    assert len(undistort.maps) == 2


def test_unsupported_model_and_wrong_parameters_are_named() -> None:
    image = np.zeros((120, 160, 3), np.float32)
    K = np.eye(3)
    with pytest.raises(JobError) as info:
        undistort_view(image, None, K, "THIN_PRISM_FISHEYE", [0.1] * 8, view="cam_7")
    assert "THIN_PRISM_FISHEYE" in info.value.message and info.value.view == "cam_7"
    assert "OPENCV" in info.value.hint
    with pytest.raises(JobError) as info:
        undistort_view(image, None, K, "OPENCV", [0.1, 0.2], view="cam_8")
    assert "4" in info.value.message and info.value.view == "cam_8"


@pytest.mark.parametrize("focal", [150.0, 45.0])
def test_fisheye_with_zero_coefficients_is_still_a_fisheye(focal: float) -> None:
    """An equidistant fisheye (k = 0) is no pinhole; at f=45 its 160x120 frame spans over 180 degrees diagonally."""
    cam = pycolmap.Camera.create_from_model_name(1, "OPENCV_FISHEYE", focal, *SIZE)
    cam.params = [focal, focal, 80.0, 60.0, 0.0, 0.0, 0.0, 0.0]
    maps = undistort_maps(cam.calibration_matrix(), "OPENCV_FISHEYE", [0.0] * 4, SIZE)
    assert maps is not None
    map_x, map_y, K_new = maps
    w, h = SIZE
    u, v = np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5)
    rays = np.linalg.solve(K_new, np.stack([u.ravel(), v.ravel(), np.ones(u.size)])).T
    assert np.abs(np.stack([map_x.ravel(), map_y.ravel()], 1) + 0.5 - cam.img_from_cam(rays)).max() < 2e-3
    assert map_x.min() >= -0.5 and map_x.max() <= w - 0.5 and map_y.min() >= -0.5 and map_y.max() <= h - 0.5
    assert K_new[0, 0] < focal  # a pinhole view of the same size must zoom out to hold the fisheye's field


def test_colmaps_own_undistorter_shares_our_pixel_convention() -> None:
    """Dots photographed through a SIMPLE_RADIAL lens, undistorted by COLMAP and by us: read with pixel centres
    at +0.5, both put each dot where their own pinhole K projects it (a half-pixel convention slip shows as 0.5)."""
    rng = np.random.default_rng(5)
    X = dots_scene(rng)
    cam = colmap_camera("SIMPLE_RADIAL")
    px = cam.img_from_cam(X)
    keep = separated(px, SIZE)
    X, px = X[keep], px[keep]
    image = np.round(dots_image(px, SIZE) * 255).astype(np.uint8)
    theirs, their_cam = pycolmap.undistort_image(pycolmap.UndistortCameraOptions(),
                                                 pycolmap.Bitmap.from_array(image), cam)
    ours, _, K_new = undistort_view(image / 255.0, None, cam.calibration_matrix(), "SIMPLE_RADIAL", [-0.2])
    for img, K in ((theirs.to_array() / 255.0, their_cam.calibration_matrix()), (ours, K_new)):
        h, w = img.shape[:2]
        expected = project(K, np.eye(3), np.zeros(3), X)
        inside = (expected > 8).all(1) & (expected[:, 0] < w - 8) & (expected[:, 1] < h - 8)
        assert inside.sum() >= 10
        err = np.linalg.norm(dot_centres(img, expected[inside]) - expected[inside], axis=1)
        assert err.max() < 0.15, err.max()
