"""Pose maths for camera refinement (numpy): rotation exp/log, perturbations, the gauge, world-frame poses."""
from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from backend.io.views import View


def skew(w: np.ndarray) -> np.ndarray:
    """Cross-product matrix [w]x of a 3-vector."""
    x, y, z = np.asarray(w, dtype=np.float64)
    return np.array([[0.0, -z, y], [z, 0.0, -x], [-y, x, 0.0]])


def so3_exp(w: np.ndarray) -> np.ndarray:
    """Rotation matrix of the axis-angle vector w (Rodrigues), exact for small and zero angles."""
    w = np.asarray(w, dtype=np.float64)
    theta = float(np.linalg.norm(w))
    k = skew(w)
    if theta < 1e-8:
        return np.eye(3) + k + 0.5 * k @ k
    return np.eye(3) + math.sin(theta) / theta * k + (1 - math.cos(theta)) / theta**2 * k @ k


def so3_log(R: np.ndarray) -> np.ndarray:
    """Axis-angle vector of a rotation matrix (angle below pi)."""
    R = np.asarray(R, dtype=np.float64)
    cos = np.clip((np.trace(R) - 1) / 2, -1.0, 1.0)
    theta = math.acos(cos)
    v = np.array([R[2, 1] - R[1, 2], R[0, 2] - R[2, 0], R[1, 0] - R[0, 1]])
    if theta < 1e-8:
        return 0.5 * v
    return theta / (2 * math.sin(theta)) * v


def rotation_angle_deg(R: np.ndarray) -> float:
    """Angle of a rotation matrix in degrees (atan2 of its sine and cosine: acos of the trace alone loses
    small angles to rounding, e.g. 0.01 degree from float32 matrices)."""
    R = np.asarray(R, dtype=np.float64)
    sin = 0.5 * np.linalg.norm([R[2, 1] - R[1, 2], R[0, 2] - R[2, 0], R[1, 0] - R[0, 1]])
    return math.degrees(math.atan2(sin, (np.trace(R) - 1) / 2))


def camera_center(R: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Camera centre -R^T t of a world-to-camera pose."""
    return -np.asarray(R, dtype=np.float64).T @ np.asarray(t, dtype=np.float64)


def perturb_pose(R: np.ndarray, t: np.ndarray, rng: np.random.Generator, rot_deg: tuple[float, float],
                 centre_shift: float) -> tuple[np.ndarray, np.ndarray]:
    """R' = Exp(w) R with a random axis and an angle uniform in rot_deg, centre moved by centre_shift in a
    random direction; returns (R', t')."""
    axis = rng.normal(size=3)
    axis /= np.linalg.norm(axis)
    angle = math.radians(rng.uniform(*rot_deg))
    direction = rng.normal(size=3)
    direction /= np.linalg.norm(direction)
    R2 = so3_exp(axis * angle) @ np.asarray(R, dtype=np.float64)
    c2 = camera_center(R, t) + centre_shift * direction
    return R2, -R2 @ c2


def perturb_views(views: list[View], diagonal: float, seed: int = 0, rot_deg: tuple[float, float] = (0.75, 1.5),
                  centre_fraction: float = 0.015) -> list[View]:
    """Copies of the views with seeded random pose errors: rotations of rot_deg degrees and camera-centre
    moves of centre_fraction x the object's bbox diagonal (what imperfect real cameras look like)."""
    rng = np.random.default_rng(seed)
    out = []
    for v in views:
        R2, t2 = perturb_pose(v.R, v.t, rng, rot_deg, centre_fraction * diagonal)
        out.append(dataclasses.replace(v, K=v.K.copy(), R=R2, t=t2))
    return out


def gauge_basis(rotations: np.ndarray, centres: np.ndarray, depth: float) -> np.ndarray:
    """(6N, 7) basis of the pose corrections that a similarity transform of the whole scene produces.

    Corrections per view are q_i = (depth * w_i, d_i) with R' = Exp(w_i) R_i and C' = C_i + d_i (depth scales
    the rotation into length units). Moving the world by a small rotation, translation or scale moves every
    camera with the mesh and changes no image: to first order, rotation about e_k gives w_i = -R_i e_k,
    d_i = e_k x C_i; translation gives d_i = e_k; scale gives d_i = C_i.
    """
    n = len(rotations)
    g = np.zeros((n, 6, 7))
    for k in range(3):
        e = np.eye(3)[k]
        g[:, 3 + k, k] = 1.0
        g[:, :3, 3 + k] = -depth * rotations[:, :, k]
        g[:, 3:, 3 + k] = np.cross(e, centres)
    g[:, 3:, 6] = centres
    return g.reshape(6 * n, 7)


def remove_gauge(q: np.ndarray, basis: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """q (N, 6) minus its weighted least-squares fit by the gauge basis: the part images can observe."""
    n = len(q)
    a = np.repeat(np.ones(n) if weights is None else np.asarray(weights, float), 6)
    gw = basis * a[:, None]
    coef = np.linalg.lstsq(basis.T @ gw, gw.T @ q.reshape(-1), rcond=None)[0]
    return q - (basis @ coef).reshape(n, 6)


def denormalize_pose(R: np.ndarray, t_norm: np.ndarray, c: np.ndarray, s: float) -> np.ndarray:
    """World translation t of a pose given in the normalised frame X' = (X - c) / s (inverse of
    cameras.normalize_extrinsics)."""
    return s * np.asarray(t_norm, dtype=np.float64) - np.asarray(R, dtype=np.float64) @ np.asarray(c, dtype=np.float64)


def pose_errors(R_est: np.ndarray, t_est: np.ndarray, R_ref: np.ndarray, t_ref: np.ndarray) -> tuple[float, float]:
    """Rotation error (degrees) and camera-centre distance between two world-to-camera poses."""
    rot = rotation_angle_deg(np.asarray(R_est) @ np.asarray(R_ref).T)
    return rot, float(np.linalg.norm(camera_center(R_est, t_est) - camera_center(R_ref, t_ref)))


def gauge_free_errors(R_est: np.ndarray, t_est: np.ndarray, R_ref: np.ndarray, t_ref: np.ndarray,
                      depth: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-view rotation (degrees) and centre errors of estimated vs reference poses (N, 3, 3), (N, 3) after
    removing the similarity gauge (the part of the residual no set of images can observe)."""
    n = len(R_est)
    cr = np.stack([camera_center(R_ref[i], t_ref[i]) for i in range(n)])
    ce = np.stack([camera_center(R_est[i], t_est[i]) for i in range(n)])
    w = np.stack([so3_log(R_ref[i] @ R_est[i].T) for i in range(n)])
    q = np.concatenate([depth * w, cr - ce], axis=1)
    r = remove_gauge(q, gauge_basis(np.asarray(R_est, float), ce, depth))
    return np.degrees(np.linalg.norm(r[:, :3], axis=1) / depth), np.linalg.norm(r[:, 3:], axis=1)
