"""Genus of a triangle mesh from the Euler characteristic of each connected component."""
from __future__ import annotations

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from backend.geometry.mesh_ops import unique_edges


def component_genera(vertices: np.ndarray, faces: np.ndarray) -> list[int]:
    """Genus of every connected component: (2 - V + E - F - boundary loops) / 2, rounded down to >= 0."""
    faces = np.asarray(faces, dtype=np.int64)
    if len(faces) == 0:
        return []
    n = int(faces.max()) + 1
    edges = unique_edges(faces)
    graph = coo_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])), shape=(n, n))
    _, label = connected_components(graph, directed=False)
    used = np.zeros(n, dtype=bool)
    used[faces.ravel()] = True
    half = np.sort(np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]), axis=1)
    keys, counts = np.unique(half, axis=0, return_counts=True)
    boundary = keys[counts == 1]
    out = []
    for comp in np.unique(label[used]):
        v = int((used & (label == comp)).sum())
        e = int((label[edges[:, 0]] == comp).sum())
        f = int((label[faces[:, 0]] == comp).sum())
        b_edges = boundary[label[boundary[:, 0]] == comp]
        loops = boundary_loops(b_edges)
        out.append(max(0, (2 - (v - e + f) - loops) // 2))
    return out


def boundary_loops(edges: np.ndarray) -> int:
    """Number of closed loops the boundary edges form (connected components of the edge graph)."""
    if len(edges) == 0:
        return 0
    nodes, inv = np.unique(edges, return_inverse=True)
    inv = inv.reshape(-1, 2)
    graph = coo_matrix((np.ones(len(inv)), (inv[:, 0], inv[:, 1])), shape=(len(nodes), len(nodes)))
    return int(connected_components(graph, directed=False)[0])


def mesh_genus(vertices: np.ndarray, faces: np.ndarray) -> int:
    """Total genus: the sum over the mesh's connected components (a closed sphere 0, a torus 1)."""
    return int(sum(component_genera(vertices, faces)))
