"""Scoring of structure-from-motion cameras against known ones (benchmarks, end-to-end tests): the similarity
that maps the estimated camera centres onto the true ones, then per-camera rotation and centre errors."""
from __future__ import annotations

import numpy as np

from backend.mesh.meshmath import umeyama
from backend.cameras.pose import camera_center, rotation_angle_deg


def align_cameras(R_est: np.ndarray, t_est: np.ndarray, R_true: np.ndarray,
                  t_true: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-camera rotation errors (degrees), centre errors (true units) and the 4x4 similarity S with
    X_true = S X_est, fitted (Umeyama) to the camera centres; needs 3 or more cameras not on one line."""
    R_est, t_est = np.asarray(R_est, np.float64), np.asarray(t_est, np.float64)
    R_true, t_true = np.asarray(R_true, np.float64), np.asarray(t_true, np.float64)
    c_est = np.stack([camera_center(R, t) for R, t in zip(R_est, t_est)])
    c_true = np.stack([camera_center(R, t) for R, t in zip(R_true, t_true)])
    S = umeyama(c_est, c_true, scale=True)
    rot = S[:3, :3] / np.cbrt(np.linalg.det(S[:3, :3]))
    moved = c_est @ S[:3, :3].T + S[:3, 3]
    # a camera of the estimate, seen in the true frame, turns the world by R_est @ rot^T
    rot_err = np.array([rotation_angle_deg(Re @ rot.T @ Rt.T) for Re, Rt in zip(R_est, R_true)])
    return rot_err, np.linalg.norm(moved - c_true, axis=1), S
