"""Per-point normals: PCA of each point's neighbours, then one consistent outward orientation (MST propagation)."""
from __future__ import annotations

import numba
import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import breadth_first_order, connected_components, minimum_spanning_tree


def pca_normals(points: np.ndarray, neighbours: np.ndarray) -> np.ndarray:
    """Unit normals (N, 3): the least-variance direction of each point's neighbourhood (unoriented)."""
    out = np.empty_like(points)
    for lo in range(0, len(points), 200_000):
        nb = points[neighbours[lo:lo + 200_000]]
        d = nb - nb.mean(axis=1, keepdims=True)
        cov = np.einsum("nki,nkj->nij", d, d)
        _, vecs = np.linalg.eigh(cov)
        out[lo:lo + 200_000] = vecs[:, :, 0]
    return out


@numba.njit(cache=True)
def _propagate(order: np.ndarray, parent: np.ndarray, normals: np.ndarray, flip: np.ndarray) -> None:
    """Walk a BFS order: each node takes its parent's side (flip[i] True when its normal must be negated)."""
    for i in order:
        p = parent[i]
        if p < 0:
            continue
        dot = normals[i, 0] * normals[p, 0] + normals[i, 1] * normals[p, 1] + normals[i, 2] * normals[p, 2]
        flip[i] = flip[p] != (dot < 0.0)


def orient_normals(points: np.ndarray, normals: np.ndarray, neighbours: np.ndarray) -> np.ndarray:
    """Normals flipped to agree along a minimum spanning tree of the k-NN graph (weights 1 - |n_i . n_j|),
    each connected part rooted at its point of largest x, whose normal is made to point to +x (outwards)."""
    n, k = neighbours.shape
    rows = np.repeat(np.arange(n), k - 1)
    cols = neighbours[:, 1:].ravel()
    w = 1.0 - np.abs(np.einsum("ij,ij->i", normals[rows], normals[cols])) + 1e-6
    graph = coo_matrix((w, (rows, cols)), shape=(n, n)).tocsr()
    graph = graph.maximum(graph.T)
    tree = minimum_spanning_tree(graph)
    tree = tree.maximum(tree.T).tocsr()
    count, labels = connected_components(tree, directed=False)
    by_part = np.lexsort((-points[:, 0], labels))
    roots = by_part[np.r_[0, np.flatnonzero(np.diff(labels[by_part])) + 1]]
    t = tree.tocoo()
    rows = np.concatenate([t.row, np.full(count, n)])
    cols = np.concatenate([t.col, roots])
    rooted = coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(n + 1, n + 1)).tocsr()
    order, parent = breadth_first_order(rooted, n, directed=False, return_predecessors=True)
    parent = parent.astype(np.int64)
    parent[parent == n] = -1
    parent[parent < 0] = -1
    flip = np.zeros(n + 1, dtype=np.bool_)
    flip[roots] = normals[roots, 0] < 0
    _propagate(order[1:].astype(np.int64), parent, normals, flip)
    return np.where(flip[:n, None], -normals, normals)


def voxel_downsample(points: np.ndarray, target: int) -> tuple[np.ndarray, np.ndarray]:
    """Centroids of about `target` occupied cubic cells, and each point's cell (the index into them).

    Averaging a cell's points cancels most of their noise, so normals estimated on the centroids
    see a wider, smoother neighbourhood at a fraction of the cost.
    """
    lo = points.min(axis=0)
    ext = np.maximum(points.max(axis=0) - lo, 1e-12)
    h = float(np.sqrt((ext[0] * ext[1] + ext[1] * ext[2] + ext[0] * ext[2]) * 2.0 / target))
    for _ in range(8):
        inverse, count = _cells(points, lo, ext, h)
        ratio = count / target
        if 0.8 < ratio < 1.25:
            break
        h *= float(np.sqrt(ratio))
    sums = np.zeros((count, 3))
    np.add.at(sums, inverse, points)
    return sums / np.bincount(inverse, minlength=count)[:, None], inverse


def _cells(points: np.ndarray, lo: np.ndarray, ext: np.ndarray, h: float) -> tuple[np.ndarray, int]:
    """Cell index of each point (0..count-1) for cubes of side h, and the number of occupied cells."""
    dims = np.floor(ext / h).astype(np.int64) + 1
    ijk = np.minimum(np.floor((points - lo) / h).astype(np.int64), dims - 1)
    key = (ijk[:, 0] * dims[1] + ijk[:, 1]) * dims[2] + ijk[:, 2]
    _, inverse = np.unique(key, return_inverse=True)
    inverse = inverse.ravel()
    return inverse, int(inverse.max()) + 1


def estimate_normals(points: np.ndarray, k: int = 20, coarse_points: int = 30_000) -> np.ndarray:
    """Oriented unit normals: PCA + MST orientation on a voxel-averaged copy of the cloud
    (max(coarse_points, N/8) cells), each point taking its cell's normal."""
    from backend.points.surface import knn

    target = max(coarse_points, len(points) // 8)
    if len(points) <= target:
        centres, inverse = points, np.arange(len(points))
    else:
        centres, inverse = voxel_downsample(points, target)
    _, idx = knn(centres, min(k, len(centres)))
    normals = orient_normals(centres, pca_normals(centres, idx), idx)
    return normals[inverse]
