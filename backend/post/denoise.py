"""Feature-preserving mesh denoising: bilateral filtering of the face normals, then a vertex update that fits the
surface to the filtered normals (Zheng et al. 2011, "Bilateral Normal Filtering for Mesh Denoising"; the vertex
update of Sun et al. 2007).

The optimised mesh carries shallow bumps a few faces across that no view can resolve (BENCHMARKS.md); a few
passes of this filter remove them without the shrinkage of Laplacian smoothing and keep creases, whose normals
differ by more than the range kernel lets through.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from backend.post.geometry import face_normals_and_areas


def face_neighbours(faces: np.ndarray, n_vertices: int) -> tuple[np.ndarray, np.ndarray]:
    """Ordered pairs (i, j), i != j, of faces that share at least one vertex."""
    nf = len(faces)
    incidence = sp.csr_matrix((np.ones(3 * nf), (np.repeat(np.arange(nf), 3), faces.ravel())), shape=(nf, n_vertices))
    adj = (incidence @ incidence.T).tocoo()
    keep = adj.row != adj.col
    return adj.row[keep], adj.col[keep]


def bilateral_normal_denoise(vertices: np.ndarray, faces: np.ndarray, normal_iterations: int = 3,
                             vertex_iterations: int = 15, sigma_normal: float = 0.2,
                             spatial_scale: float = 2.0) -> np.ndarray:
    """Denoised vertex positions (V, 3); faces are unchanged.

    Each face normal becomes the area- and distance-weighted mean of its vertex-sharing neighbours' normals,
    down-weighted by how much they differ (Gaussian of |n_i - n_j| with sigma_normal), normal_iterations
    times; the spatial Gaussian's sigma is spatial_scale x the mean edge length, so the filter is
    scale-free. Then each vertex moves vertex_iterations times toward the planes of its faces (centroid,
    filtered normal).
    """
    v = np.asarray(vertices, dtype=np.float64).copy()
    f = np.asarray(faces, dtype=np.int64)
    if len(f) == 0 or normal_iterations <= 0:
        return v
    i, j = face_neighbours(f, len(v))
    normals, areas = face_normals_and_areas(v, f)
    centroids = v[f].mean(axis=1)
    edge = float(np.linalg.norm(v[f[:, 0]] - v[f[:, 1]], axis=1).mean())
    sigma_s = max(spatial_scale * edge, 1e-12)
    spatial = np.exp(-np.sum((centroids[i] - centroids[j]) ** 2, axis=1) / (2 * sigma_s ** 2)) * areas[j]
    filtered = normals
    for _ in range(normal_iterations):
        similar = np.exp(-np.sum((filtered[i] - filtered[j]) ** 2, axis=1) / (2 * sigma_normal ** 2))
        w = sp.csr_matrix((spatial * similar, (i, j)), shape=(len(f), len(f)))
        acc = w @ filtered + areas[:, None] * filtered
        filtered = acc / np.maximum(np.linalg.norm(acc, axis=1, keepdims=True), 1e-30)
    # sums per vertex over its face corners (corner 3 * face + k is vertex f[face, k]), built once
    corners = sp.csr_matrix((np.ones(3 * len(f)), (f.ravel(), np.arange(3 * len(f)))), shape=(len(v), 3 * len(f)))
    count = np.maximum(np.asarray(corners.sum(axis=1)).ravel(), 1.0)
    for _ in range(vertex_iterations):
        centroids = v[f].mean(axis=1)
        # per face corner: the filtered normal times its signed distance from the vertex to the face's plane
        offset = np.einsum("fj,fkj->fk", filtered, centroids[:, None, :] - v[f])
        v += (corners @ (offset[:, :, None] * filtered[:, None, :]).reshape(-1, 3)) / count[:, None]
    return v
