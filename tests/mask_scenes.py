"""Exact silhouettes of implicit shapes (sphere, torus) seen by cameras spread over a sphere, for mask tests."""
from __future__ import annotations

from types import SimpleNamespace
from typing import Callable

import numpy as np

from tests.lens_helpers import look_at

Sdf = Callable[[np.ndarray], np.ndarray]


def sphere_sdf(radius: float = 0.6) -> Sdf:
    """Signed distance to a sphere at the origin."""
    return lambda p: np.linalg.norm(p, axis=-1) - radius


def torus_sdf(major: float = 0.6, minor: float = 0.25) -> Sdf:
    """Signed distance to a torus around the z axis at the origin."""
    def sdf(p: np.ndarray) -> np.ndarray:
        q = np.linalg.norm(p[..., :2], axis=-1) - major
        return np.hypot(q, p[..., 2]) - minor
    return sdf


def camera_centres(n: int, distance: float = 3.0, max_elevation_deg: float = 60.0) -> np.ndarray:
    """n camera centres on a spiral from -max to +max elevation, turning 2.5 times around z."""
    el = np.radians(np.linspace(-max_elevation_deg, max_elevation_deg, n))
    az = np.linspace(0.0, 5.0 * np.pi, n, endpoint=False)
    return distance * np.stack([np.cos(az) * np.cos(el), np.sin(az) * np.cos(el), np.sin(el)], axis=1)


def silhouette(sdf: Sdf, K: np.ndarray, R: np.ndarray, t: np.ndarray, size: int) -> np.ndarray:
    """Bool mask (size, size) of the pixels whose centre ray hits the surface (sphere tracing)."""
    jj, ii = np.meshgrid(np.arange(size) + 0.5, np.arange(size) + 0.5)
    d = np.stack([jj, ii, np.ones_like(ii)], -1) @ np.linalg.inv(K).T @ R
    d /= np.linalg.norm(d, axis=-1, keepdims=True)
    o = -R.T @ t
    s = np.zeros(d.shape[:2])
    for _ in range(96):
        s += np.maximum(sdf(o + s[..., None] * d), 0.0)
    return sdf(o + s[..., None] * d) < 1e-3


def views_of(sdf: Sdf, n: int = 16, size: int = 64, focal: float = 80.0) -> list[SimpleNamespace]:
    """n views (name, K, R, t, mask) of the shape."""
    k = np.array([[focal, 0, size / 2], [0, focal, size / 2], [0, 0, 1.0]])
    out = []
    for i, c in enumerate(camera_centres(n)):
        r, t = look_at(c)
        out.append(SimpleNamespace(name=f"v{i:02d}", K=k, R=r, t=t, mask=silhouette(sdf, k, r, t, size)))
    return out
