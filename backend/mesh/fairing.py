"""Bi-Laplacian fairing of free vertices with the rest held fixed (numpy only), for filling large holes.

Why: a hole filled by a flat fan cuts straight across a curved surface. Minimising the squared umbrella
Laplacian over the patch and its rim, with the rim and the ring of surface around it fixed, gives the
smoothest patch that meets the surrounding surface with a matching tangent, so a hole in a sphere is filled
by a spherical-looking cap rather than a flat disc (Liepa's fairing step). Solved by Jacobi-preconditioned
conjugate gradients on the normal equations, using edge lists only (Blender's Python has no scipy).
"""
from __future__ import annotations

import numpy as np


def umbrella(x: np.ndarray, edges: np.ndarray, n: int, weight: np.ndarray | None = None) -> np.ndarray:
    """Weighted graph Laplacian L x: per vertex, the sum over its edges of weight * (neighbour - vertex)."""
    i, j = edges[:, 0], edges[:, 1]
    d = x[j] - x[i]
    if weight is not None:
        d = d * weight[:, None]
    out = np.zeros((n,) + x.shape[1:])
    np.add.at(out, i, d)
    np.add.at(out, j, -d)
    return out


def bilaplacian_fair(co: np.ndarray, edges: np.ndarray, free: np.ndarray, rows: np.ndarray | None = None,
                     iterations: int = 4000, tol: float = 1e-10, scale_aware: bool = True) -> np.ndarray:
    """Positions minimising sum over `rows` of |L x|^2 over the `free` vertices (others fixed).

    co: (n, 3) positions (free ones are the starting guess); edges: (m, 2) vertex pairs; free: (n,) bool;
    rows: (n,) bool, the vertices whose Laplacian is penalised (default: free vertices and their neighbours,
    which must have all their edges in `edges`).
    """
    co = np.asarray(co, dtype=np.float64)
    edges = np.asarray(edges, dtype=np.int64).reshape(-1, 2)
    free = np.asarray(free, dtype=bool)
    n = len(co)
    if not free.any():
        return co.copy()
    if rows is None:
        rows = free.copy()
        touch = free[edges[:, 0]] | free[edges[:, 1]]
        rows[edges[touch].ravel()] = True
    rows = np.asarray(rows, dtype=bool)
    idx = np.flatnonzero(free)
    length = np.linalg.norm(co[edges[:, 0]] - co[edges[:, 1]], axis=1)
    weight = 1.0 / np.maximum(length, 1e-12 * max(float(length.max()), 1e-300)) if scale_aware else np.ones(len(edges))

    def apply(xf: np.ndarray) -> np.ndarray:
        full = np.zeros((n, 3))
        full[idx] = xf
        lx = umbrella(full, edges, n, weight)
        lx[~rows] = 0.0
        return umbrella(lx, edges, n, weight)[idx]

    fixed = co.copy()
    fixed[idx] = 0.0
    lf = umbrella(fixed, edges, n, weight)
    lf[~rows] = 0.0
    b = -umbrella(lf, edges, n, weight)[idx]
    deg = np.bincount(edges.ravel(), weights=np.repeat(weight, 2), minlength=n)
    nb_rows = np.zeros(n)
    np.add.at(nb_rows, edges[:, 0], rows[edges[:, 1]] * weight ** 2)
    np.add.at(nb_rows, edges[:, 1], rows[edges[:, 0]] * weight ** 2)
    diag = (np.where(rows, deg * deg, 0.0) + nb_rows)[idx]
    inv_diag = 1.0 / np.maximum(diag, 1e-12)
    x = co[idx].copy()
    r = b - apply(x)
    z = r * inv_diag[:, None]
    p = z.copy()
    rz = (r * z).sum(axis=0)
    b_norm = np.maximum(np.sqrt((b * b).sum(axis=0)), 1e-30)
    for _ in range(iterations):
        if np.all(np.sqrt((r * r).sum(axis=0)) <= tol * b_norm):
            break
        ap = apply(p)
        alpha = rz / np.maximum((p * ap).sum(axis=0), 1e-300)
        x += alpha * p
        r -= alpha * ap
        z = r * inv_diag[:, None]
        rz_new = (r * z).sum(axis=0)
        p = z + (rz_new / np.maximum(rz, 1e-300)) * p
        rz = rz_new
    out = co.copy()
    out[idx] = x
    return out
