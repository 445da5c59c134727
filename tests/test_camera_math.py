"""camera_math against Blender's own projection (bpy_extras.object_utils.world_to_camera_view)."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")
from bpy_extras.object_utils import world_to_camera_view  # noqa: E402
from mathutils import Euler, Matrix, Vector  # noqa: E402

from blender_addon import camera_math as cm  # noqa: E402


@pytest.fixture()
def scene():
    """A fresh scene holding one camera, removed afterwards so other bpy tests see no trace."""
    sc = bpy.data.scenes.new("camera_math_test")
    data = bpy.data.cameras.new("cm_cam")
    cam = bpy.data.objects.new("cm_cam", data)
    sc.collection.objects.link(cam)
    sc.camera = cam
    yield sc
    bpy.data.objects.remove(cam)
    bpy.data.cameras.remove(data)
    bpy.data.scenes.remove(sc)


def params_of(sc) -> cm.BlenderCameraParams:
    """Read the parameters camera_math needs from the live Blender scene and camera."""
    d, r = sc.camera.data, sc.render
    return cm.BlenderCameraParams(
        lens=d.lens, sensor_width=d.sensor_width, sensor_height=d.sensor_height, sensor_fit=d.sensor_fit,
        shift_x=d.shift_x, shift_y=d.shift_y, resolution_x=r.resolution_x, resolution_y=r.resolution_y,
        resolution_percentage=r.resolution_percentage, pixel_aspect_x=r.pixel_aspect_x,
        pixel_aspect_y=r.pixel_aspect_y)


def points_in_view(sc, rng: np.random.Generator, n: int = 200) -> np.ndarray:
    """Random world points in front of the camera, spread over (and a little beyond) its frustum."""
    m = np.array(sc.camera.matrix_world)
    rot = m[:3, :3] / np.linalg.norm(m[:3, :3], axis=0)
    local = np.column_stack([rng.uniform(-1.5, 1.5, n), rng.uniform(-1.5, 1.5, n), -rng.uniform(1, 10, n)])
    local[:, :2] *= -local[:, 2:3] * 0.4
    return local @ rot.T + m[:3, 3]


def blender_pixels(sc, points: np.ndarray, width: int, height: int) -> np.ndarray:
    """Blender's projection converted to OpenCV pixels: u = x W, v = (1 - y) H."""
    out = []
    for p in points:
        co = world_to_camera_view(sc, sc.camera, Vector(p.tolist()))
        out.append((co.x * width, (1.0 - co.y) * height))
    return np.asarray(out)


def set_pose(sc, rng: np.random.Generator, scale: float = 1.0) -> None:
    """Random camera pose, optionally with an object scale that must be ignored."""
    loc = Vector(rng.uniform(-5, 5, 3).tolist())
    rot = Euler(rng.uniform(-np.pi, np.pi, 3).tolist()).to_matrix().to_4x4()
    sc.camera.matrix_world = Matrix.Translation(loc) @ rot @ Matrix.Diagonal((scale, scale, scale, 1.0))
    bpy.context.view_layer.update() if bpy.context.view_layer else None


# world_to_camera_view frames the unscaled resolution, while Cycles renders
# resolution * percentage // 100 pixels: percentages here divide exactly, and the truncating case is
# checked against an actual Cycles render below.
CASES = list(itertools.product(
    ["AUTO", "HORIZONTAL", "VERTICAL"],
    [(640, 480, 100), (480, 640, 100), (1920, 1080, 25), (300, 300, 50)],
    [(1.0, 1.0), (2.0, 1.0), (1.0, 1.7)],
    [(0.0, 0.0), (0.13, -0.21)],
))


@pytest.mark.parametrize("fit,res,aspect,shift", CASES)
def test_intrinsics_and_extrinsics_match_blender(scene, fit, res, aspect, shift) -> None:
    rng = np.random.default_rng(hash((fit, res, aspect, shift)) % 2**32)
    d, r = scene.camera.data, scene.render
    d.sensor_fit = fit
    d.lens = float(rng.uniform(18, 85))
    d.sensor_width, d.sensor_height = 36.0, 20.25
    d.shift_x, d.shift_y = shift
    r.resolution_x, r.resolution_y, r.resolution_percentage = res
    r.pixel_aspect_x, r.pixel_aspect_y = aspect
    set_pose(scene, rng, scale=float(rng.uniform(0.5, 2.0)))
    p = params_of(scene)
    K = cm.intrinsics(p)
    R, t = cm.extrinsics_from_matrix_world(np.array(scene.camera.matrix_world))
    w, h = cm.image_size(p)
    pts = points_in_view(scene, rng)
    ours = cm.project(K, R, t, pts)
    theirs = blender_pixels(scene, pts, w, h)
    assert np.abs(ours - theirs).max() < 0.01


def test_blender_from_opencv_round_trip(scene) -> None:
    rng = np.random.default_rng(7)
    for _ in range(10):
        w, h = int(rng.integers(100, 2000)), int(rng.integers(100, 2000))
        fx = rng.uniform(0.5, 3) * w
        fy = fx * rng.uniform(0.6, 1.6)
        K = np.array([[fx, 0, w * rng.uniform(0.3, 0.7)], [0, fy, h * rng.uniform(0.3, 0.7)], [0, 0, 1]])
        q = rng.normal(size=4)
        R = cm.quat_to_matrix(q)
        t = rng.uniform(-3, 3, 3)
        b = cm.blender_from_opencv(K, R, t, w, h)
        d, r = scene.camera.data, scene.render
        d.lens, d.sensor_width, d.sensor_fit = b["lens"], b["sensor_width"], b["sensor_fit"]
        d.shift_x, d.shift_y = b["shift_x"], b["shift_y"]
        r.resolution_x, r.resolution_y, r.resolution_percentage = b["resolution_x"], b["resolution_y"], 100
        r.pixel_aspect_x, r.pixel_aspect_y = b["pixel_aspect_x"], b["pixel_aspect_y"]
        m = np.eye(4)
        m[:3, :3], m[:3, 3] = b["rotation"], b["location"]
        scene.camera.matrix_world = Matrix(m.tolist())
        p = params_of(scene)
        K2 = cm.intrinsics(p)
        R2, t2 = cm.extrinsics_from_matrix_world(np.array(scene.camera.matrix_world))
        assert cm.image_size(p) == (w, h)
        assert np.allclose(K2, K, rtol=1e-5, atol=1e-4)
        assert np.allclose(R2, R, atol=1e-5) and np.allclose(t2, t, atol=1e-4)
        pts = points_in_view(scene, rng, 50)
        assert np.abs(cm.project(K, R, t, pts) - blender_pixels(scene, pts, w, h)).max() < 0.01


def test_quat_to_matrix_matches_mathutils() -> None:
    from mathutils import Quaternion

    rng = np.random.default_rng(3)
    for _ in range(20):
        q = rng.normal(size=4)
        ref = np.array(Quaternion(q.tolist()).normalized().to_matrix())
        assert np.allclose(cm.quat_to_matrix(q), ref, atol=1e-6)


def test_percentage_size_and_centre_match_a_cycles_render(scene, tmp_path) -> None:
    """Cycles renders resolution * percentage // 100 pixels; a small sphere lands where K, R, t say."""
    import imageio.v3 as iio

    d, r = scene.camera.data, scene.render
    d.lens, d.sensor_fit, d.shift_x, d.shift_y = 35.0, "AUTO", 0.05, -0.08
    r.resolution_x, r.resolution_y, r.resolution_percentage = 1999, 1000, 5
    r.pixel_aspect_x, r.pixel_aspect_y = 1.0, 1.0
    r.engine, r.film_transparent = "CYCLES", True
    scene.cycles.samples, scene.cycles.device = 64, "CPU"
    r.image_settings.file_format, r.image_settings.color_mode = "PNG", "RGBA"
    scene.camera.matrix_world = Matrix.Identity(4)
    centre = np.array([0.42, 0.17, -4.0])
    mesh = bpy.data.meshes.new("cm_ball")
    ball = bpy.data.objects.new("cm_ball", mesh)
    scene.collection.objects.link(ball)
    import bmesh

    bm = bmesh.new()
    bmesh.ops.create_uvsphere(bm, u_segments=48, v_segments=24, radius=0.08)
    bm.to_mesh(mesh)
    bm.free()
    ball.location = Vector(centre.tolist())
    r.filepath = str(tmp_path / "ball.png")
    try:
        bpy.ops.render.render(write_still=True, scene=scene.name)
    finally:
        bpy.data.objects.remove(ball)
        bpy.data.meshes.remove(mesh)
    alpha = iio.imread(tmp_path / "ball.png")[..., 3].astype(np.float64) / 255.0
    p = params_of(scene)
    assert alpha.shape == (1000 * 5 // 100, 1999 * 5 // 100) == cm.image_size(p)[::-1]
    rows, cols = np.indices(alpha.shape)
    observed = np.array([(alpha * (cols + 0.5)).sum(), (alpha * (rows + 0.5)).sum()]) / alpha.sum()
    R, t = cm.extrinsics_from_matrix_world(np.eye(4))
    predicted = cm.project(cm.intrinsics(p), R, t, centre[None])[0]
    assert np.abs(observed - predicted).max() < 0.05
