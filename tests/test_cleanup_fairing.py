"""backend/mesh/fairing.py: bi-Laplacian fairing restores a curved cap from a flat one and keeps a plane flat."""
from __future__ import annotations

import numpy as np
import trimesh

from backend.mesh import fairing


def test_flattened_cap_of_a_sphere_is_faired_back_round() -> None:
    m = trimesh.creation.icosphere(4)
    v, edges = m.vertices.copy(), m.edges_unique
    free = v[:, 2] > 0.8
    flat = v.copy()
    flat[free, 2] = 0.8
    out = fairing.bilaplacian_fair(flat, edges, free)
    assert np.abs(np.linalg.norm(out[free], axis=1) - 1.0).max() < 0.05
    assert out[:, 2].max() > 0.95, "a flat patch would stay at z = 0.8"
    assert np.array_equal(out[~free], v[~free]), "fixed vertices do not move"


def test_noisy_patch_in_a_plane_comes_back_flat() -> None:
    x, y = np.meshgrid(np.linspace(0, 1, 12), np.linspace(0, 1, 12), indexing="ij")
    v = np.stack([x.ravel(), y.ravel(), np.zeros(x.size)], axis=1)
    idx = np.arange(x.size).reshape(12, 12)
    edges = np.vstack([np.stack([idx[:-1].ravel(), idx[1:].ravel()], 1),
                       np.stack([idx[:, :-1].ravel(), idx[:, 1:].ravel()], 1),
                       np.stack([idx[:-1, :-1].ravel(), idx[1:, 1:].ravel()], 1)])
    free = np.zeros((12, 12), dtype=bool)
    free[3:-3, 3:-3] = True
    free = free.ravel()
    rng = np.random.default_rng(0)
    noisy = v.copy()
    noisy[free, 2] = rng.normal(0.0, 0.1, free.sum())
    out = fairing.bilaplacian_fair(noisy, edges, free)
    assert np.abs(out[:, 2]).max() < 1e-6
