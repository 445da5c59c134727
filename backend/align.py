"""Rigid (optionally uniformly scaled) alignment of a mesh to a reference: PCA start, then ICP.

Scheme (mirrored by `blender_addon/compare_math.py`): sample both surfaces (`sample_surface`,
seed 0); candidate starts are the centroid shift and the four proper PCA-axis matchings; each
runs a few point-to-surface ICP steps (closed-form Umeyama per step), the best mean distance
wins and runs to convergence. The result maps the moving mesh onto the reference.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from backend.metrics import point_to_surface, sample_surface

NearestFn = Callable[[np.ndarray], np.ndarray]
_SIGNS = ((1, 1, 1), (1, -1, -1), (-1, 1, -1), (-1, -1, 1))


def umeyama(src: np.ndarray, dst: np.ndarray, scale: bool = False) -> np.ndarray:
    """4x4 similarity (rotation, translation, uniform scale if asked) minimising |T src - dst|^2."""
    mu_s, mu_d = src.mean(axis=0), dst.mean(axis=0)
    xs, xd = src - mu_s, dst - mu_d
    u, sig, vt = np.linalg.svd(xd.T @ xs / len(src))
    d = np.ones(3)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[2] = -1
    r = u @ np.diag(d) @ vt
    s = float((sig * d).sum() / (xs ** 2).sum(axis=1).mean()) if scale else 1.0
    t = np.eye(4)
    t[:3, :3] = s * r
    t[:3, 3] = mu_d - s * r @ mu_s
    return t


def apply(t: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Points transformed by a 4x4 matrix."""
    return p @ t[:3, :3].T + t[:3, 3]


def pca_starts(src: np.ndarray, dst: np.ndarray, scale: bool = False) -> list[np.ndarray]:
    """Start transforms: centroid shift, then the four proper rotations matching the PCA axes."""
    mu_s, mu_d = src.mean(axis=0), dst.mean(axis=0)
    ws, es = np.linalg.eigh(np.cov((src - mu_s).T))
    wd, ed = np.linalg.eigh(np.cov((dst - mu_d).T))
    s = float(np.sqrt(wd.sum() / ws.sum())) if scale and ws.sum() > 0 else 1.0
    starts = []
    shift = np.eye(4)
    shift[:3, 3] = mu_d - mu_s
    starts.append(shift)
    for signs in _SIGNS:
        r = ed @ np.diag(signs) @ es.T
        if np.linalg.det(r) < 0:
            r = ed @ np.diag(signs) @ np.diag([1, 1, -1]) @ es.T
        t = np.eye(4)
        t[:3, :3] = s * r
        t[:3, 3] = mu_d - s * r @ mu_s
        starts.append(t)
    return starts


def icp(src: np.ndarray, nearest: NearestFn, start: np.ndarray, iters: int = 30, scale: bool = False,
        tol: float = 1e-7) -> tuple[np.ndarray, float]:
    """Point-to-surface ICP from `start`: (transform, final mean distance)."""
    t = start.copy()
    prev = np.inf
    err = np.inf
    for _ in range(iters):
        moved = apply(t, src)
        target = nearest(moved)
        err = float(np.linalg.norm(target - moved, axis=1).mean())
        if prev - err < tol * max(prev, 1e-30):
            break
        prev = err
        t = umeyama(src, target, scale)
    return t, err


def align_points(src: np.ndarray, dst: np.ndarray, nearest: NearestFn, scale: bool = False,
                 iters: int = 40, probe_iters: int = 8) -> np.ndarray:
    """Best transform of sample points `src` onto the surface behind `nearest` (dst: its samples)."""
    best, best_err = np.eye(4), np.inf
    for start in pca_starts(src, dst, scale):
        t, err = icp(src, nearest, start, probe_iters, scale)
        if err < best_err:
            best, best_err = t, err
    return icp(src, nearest, best, iters, scale)[0]


def align_meshes(v_mov: np.ndarray, f_mov: np.ndarray, v_ref: np.ndarray, f_ref: np.ndarray,
                 scale: bool = False, n_samples: int = 4000, seed: int = 0) -> np.ndarray:
    """4x4 transform that maps the moving mesh onto the reference mesh."""
    src = sample_surface(v_mov, f_mov, n_samples, seed)[0]
    dst = sample_surface(v_ref, f_ref, n_samples, seed)[0]
    v_ref = np.asarray(v_ref, dtype=np.float64)
    f_ref = np.asarray(f_ref, dtype=np.int64)
    return align_points(src, dst, lambda p: point_to_surface(p, v_ref, f_ref)[2], scale)
