"""From an oriented point cloud to a trimmed surface: outlier removal, screened Poisson, trimming."""
from __future__ import annotations

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree


def knn(points: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Distances and indices (N, k) of each point's k nearest points (itself first).

    Queries run in the tree's leaf order, so consecutive searches walk the same nodes (2-4x faster).
    """
    tree = cKDTree(points)
    order = tree.indices
    d, i = tree.query(points[order], k=k, workers=-1)
    dist = np.empty_like(d)
    idx = np.empty_like(i)
    dist[order] = d
    idx[order] = i
    return dist, idx


def outlier_mask(mean_dist: np.ndarray, factor: float = 3.0) -> np.ndarray:
    """True for points whose mean neighbour distance is within median + factor * robust spread (MAD)."""
    med = float(np.median(mean_dist))
    mad = 1.4826 * float(np.median(np.abs(mean_dist - med)))
    return mean_dist <= med + factor * max(mad, 0.05 * med)


def poisson_depth(n_points: int) -> int:
    """Octree depth for screened Poisson: finer for denser clouds (about 4 points per finest cell face)."""
    return int(np.clip(np.round(np.log2(np.sqrt(n_points / 6.0) * 1.3)), 7, 10))


def screened_poisson(points: np.ndarray, normals: np.ndarray, depth: int,
                     screening: float = 4.0) -> tuple[np.ndarray, np.ndarray]:
    """Kazhdan and Hoppe's screened Poisson reconstruction (gpytoolbox's binding of the reference code)."""
    from gpytoolbox import point_cloud_to_mesh

    v, f = point_cloud_to_mesh(np.ascontiguousarray(points, dtype=np.float64),
                               np.ascontiguousarray(normals, dtype=np.float64),
                               psr_screening_weight=screening, psr_depth=depth,
                               psr_outer_boundary_type="Neumann")
    return np.asarray(v, dtype=np.float64), np.asarray(f, dtype=np.int64)


def trim_unsupported(vertices: np.ndarray, faces: np.ndarray, points: np.ndarray, spacing: np.ndarray,
                     factor: float = 2.5) -> np.ndarray:
    """Faces kept: those whose vertices all lie within factor x the local point spacing of some point."""
    dist, idx = cKDTree(points).query(vertices, k=1, workers=-1)
    supported = dist <= factor * spacing[idx]
    return faces[supported[faces].all(axis=1)]


def drop_small_parts(vertices: np.ndarray, faces: np.ndarray, min_fraction: float = 0.01) -> tuple[np.ndarray, np.ndarray]:
    """Remove connected parts with fewer than min_fraction of the faces, and unused vertices."""
    if len(faces) == 0:
        return vertices[:0], faces
    n = len(vertices)
    e = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]]])
    adj = coo_matrix((np.ones(len(e)), (e[:, 0], e[:, 1])), shape=(n, n))
    _, labels = connected_components(adj, directed=False)
    face_label = labels[faces[:, 0]]
    sizes = np.bincount(face_label)
    keep = sizes[face_label] >= min_fraction * len(faces)
    return compact(vertices, faces[keep])


def compact(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vertices that faces use, and faces re-indexed onto them."""
    used = np.unique(faces)
    remap = np.full(len(vertices), -1, dtype=np.int64)
    remap[used] = np.arange(len(used))
    return vertices[used], remap[faces]
