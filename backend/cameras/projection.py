"""Camera maths in the OpenCV convention: projection, clip-space matrices, scene normalisation."""
from __future__ import annotations

import numpy as np


def project(K: np.ndarray, R: np.ndarray, t: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pixel coordinates (N, 2) and camera depth (N,) of world points (N, 3)."""
    x = points @ R.T + t
    uvw = x @ K.T
    z = x[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        uv = uvw[:, :2] / uvw[:, 2:3]
    return uv, z


def projection_matrix(K: np.ndarray, width: int, height: int, near: float, far: float) -> np.ndarray:
    """4x4 matrix from camera coordinates to clip space for the rasterizer.

    NDC x = 2u/W - 1 and NDC y = 2v/H - 1 with (u, v) OpenCV pixel coordinates, so row i of a
    rasterized image (nvdiffrast puts NDC y = -1 at row 0) is row i of the photograph; z maps
    [near, far] to [-1, 1] and w = camera depth.
    """
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    s = K[0, 1]
    return np.array([
        [2 * fx / width, 2 * s / width, 2 * cx / width - 1, 0],
        [0, 2 * fy / height, 2 * cy / height - 1, 0],
        [0, 0, (far + near) / (far - near), -2 * far * near / (far - near)],
        [0, 0, 1, 0],
    ], dtype=np.float64)


def world_to_clip(K: np.ndarray, R: np.ndarray, t: np.ndarray, width: int, height: int,
                  near: float = 0.01, far: float = 100.0) -> np.ndarray:
    """4x4 world-to-clip matrix: projection_matrix @ [R | t]."""
    rt = np.eye(4)
    rt[:3, :3] = R
    rt[:3, 3] = t
    return projection_matrix(K, width, height, near, far) @ rt


def normalization(bbox_min: np.ndarray, bbox_max: np.ndarray) -> tuple[np.ndarray, float]:
    """Centre c and scale s such that (X - c) / s maps the bbox into [-1, 1]^3."""
    bbox_min = np.asarray(bbox_min, dtype=np.float64)
    bbox_max = np.asarray(bbox_max, dtype=np.float64)
    c = (bbox_min + bbox_max) / 2.0
    s = float(np.max(bbox_max - bbox_min) / 2.0)
    return c, s


def normalize_extrinsics(R: np.ndarray, t: np.ndarray, c: np.ndarray, s: float) -> np.ndarray:
    """Translation t' for normalised coordinates X' = (X - c)/s, keeping R (camera depth scales by 1/s)."""
    return (t + R @ c) / s


def is_rotation(R: np.ndarray, tol: float = 1e-3) -> bool:
    """True when R is orthonormal with determinant +1."""
    R = np.asarray(R, dtype=np.float64)
    return R.shape == (3, 3) and np.allclose(R @ R.T, np.eye(3), atol=tol) and abs(np.linalg.det(R) - 1) < tol
