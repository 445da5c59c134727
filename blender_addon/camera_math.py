"""Blender camera <-> OpenCV (K, R, t) conversion, as fixed in DESIGN.md "Cameras".

Pure numpy, no bpy: the gather operator, the scene generator and the tests all use it.
Matrices follow OpenCV: x_cam = R @ X + t, pixels = K @ x_cam / x_cam.z, origin at the
top-left corner of the top-left pixel, y down.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

FLIP_YZ = np.diag([1.0, -1.0, -1.0])


@dataclass(frozen=True)
class BlenderCameraParams:
    """The Blender camera and render settings that decide the intrinsics."""

    lens: float
    sensor_width: float
    sensor_height: float
    sensor_fit: str  # 'AUTO', 'HORIZONTAL' or 'VERTICAL'
    shift_x: float
    shift_y: float
    resolution_x: int
    resolution_y: int
    resolution_percentage: int = 100
    pixel_aspect_x: float = 1.0
    pixel_aspect_y: float = 1.0


def image_size(p: BlenderCameraParams) -> tuple[int, int]:
    """Rendered image size (W, H) in pixels: Blender truncates resolution * percentage / 100."""
    pct = int(p.resolution_percentage)
    return int(p.resolution_x) * pct // 100, int(p.resolution_y) * pct // 100


def effective_fit(p: BlenderCameraParams) -> str:
    """Resolve AUTO sensor fit to HORIZONTAL or VERTICAL the way Blender does."""
    if p.sensor_fit != "AUTO":
        return p.sensor_fit
    w, h = image_size(p)
    return "HORIZONTAL" if p.pixel_aspect_x * w >= p.pixel_aspect_y * h else "VERTICAL"


def intrinsics(p: BlenderCameraParams) -> np.ndarray:
    """3x3 OpenCV K of a Blender perspective camera (every sensor fit, pixel aspect and shift)."""
    w, h = image_size(p)
    pa = p.pixel_aspect_y / p.pixel_aspect_x
    fit = effective_fit(p)
    if p.sensor_fit == "AUTO":
        sensor = p.sensor_width
    else:
        sensor = p.sensor_height if fit == "VERTICAL" else p.sensor_width
    view = w if fit == "HORIZONTAL" else pa * h
    fx = p.lens / sensor * view
    fy = fx / pa
    cx = w / 2.0 - p.shift_x * view
    cy = h / 2.0 + p.shift_y * view / pa
    return np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])


def quat_to_matrix(q: Sequence[float]) -> np.ndarray:
    """Rotation matrix of a unit quaternion (w, x, y, z), as mathutils.Quaternion.to_matrix()."""
    w, x, y, z = np.asarray(q, dtype=np.float64) / np.linalg.norm(q)
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])


def extrinsics(location: Sequence[float], rotation: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """World-to-camera (R, t) from the camera's world location C and rotation matrix (scale removed)."""
    r = FLIP_YZ @ np.asarray(rotation, dtype=np.float64).T
    t = -r @ np.asarray(location, dtype=np.float64)
    return r, t


def extrinsics_from_matrix_world(matrix_world: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(R, t) from a 4x4 Blender matrix_world, dropping any scale like Matrix.decompose()."""
    m = np.asarray(matrix_world, dtype=np.float64)
    loc = m[:3, 3]
    basis = m[:3, :3]
    scale = np.linalg.norm(basis, axis=0)
    rot = basis / scale
    if np.linalg.det(rot) < 0:
        rot[:, 0] = -rot[:, 0]
    u, _, vt = np.linalg.svd(rot)
    return extrinsics(loc, u @ vt)


def pose_from_opencv(R: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Blender camera location (3,) and rotation (3x3, camera-to-world) of the OpenCV pose (R, t)."""
    R = np.asarray(R, dtype=np.float64)
    return -R.T @ np.asarray(t, dtype=np.float64), R.T @ FLIP_YZ


def blender_from_opencv(K: np.ndarray, R: np.ndarray, t: np.ndarray, width: int, height: int,
                        sensor_width: float = 36.0) -> dict:
    """Inverse mapping: Blender camera settings (HORIZONTAL fit) and pose from OpenCV K, R, t.

    Returns a dict with lens, sensor_width, sensor_fit, shift_x, shift_y, pixel_aspect_x,
    pixel_aspect_y, resolution_x, resolution_y, location (3,) and rotation (3x3, camera-to-world).
    """
    K = np.asarray(K, dtype=np.float64)
    location, rotation = pose_from_opencv(R, t)
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    pa = fx / fy
    if pa >= 1.0:
        pax, pay = 1.0, pa
    else:
        pax, pay = 1.0 / pa, 1.0
    return {
        "lens": fx * sensor_width / width,
        "sensor_width": sensor_width,
        "sensor_fit": "HORIZONTAL",
        "shift_x": (width / 2.0 - cx) / width,
        "shift_y": (cy - height / 2.0) * pa / width,
        "pixel_aspect_x": pax,
        "pixel_aspect_y": pay,
        "resolution_x": int(width),
        "resolution_y": int(height),
        "location": location,
        "rotation": rotation,
    }


def project(K: np.ndarray, R: np.ndarray, t: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Pixel coordinates (N, 2) of world points (N, 3) in the OpenCV convention."""
    x = np.asarray(points, dtype=np.float64) @ np.asarray(R).T + np.asarray(t)
    uvw = x @ np.asarray(K).T
    return uvw[:, :2] / uvw[:, 2:3]
