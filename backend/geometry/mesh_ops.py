"""Small numpy mesh operations: edges, components, degenerate-triangle collapse."""
from __future__ import annotations

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components


def unique_edges(faces: np.ndarray) -> np.ndarray:
    """Undirected edges (E, 2), each once, smaller index first."""
    e = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    e = np.sort(e, axis=1)
    return np.unique(e, axis=0)


def mean_edge_length(vertices: np.ndarray, faces: np.ndarray) -> float:
    """Mean length of the mesh's unique edges."""
    e = unique_edges(faces)
    return float(np.linalg.norm(vertices[e[:, 0]] - vertices[e[:, 1]], axis=1).mean())


def remove_unreferenced(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Drop vertices that no face uses and renumber the faces."""
    used = np.unique(faces)
    remap = np.full(len(vertices), -1, dtype=np.int64)
    remap[used] = np.arange(len(used))
    return vertices[used], remap[faces]


def largest_component(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The connected component (through shared vertices) with the most faces."""
    if len(faces) == 0:
        return vertices, faces
    e = unique_edges(faces)
    n = len(vertices)
    graph = coo_matrix((np.ones(len(e)), (e[:, 0], e[:, 1])), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    face_labels = labels[faces[:, 0]]
    best = np.bincount(face_labels).argmax()
    return remove_unreferenced(vertices, faces[face_labels == best])


def face_areas(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Area of each triangle."""
    a, b, c = vertices[faces[:, 0]], vertices[faces[:, 1]], vertices[faces[:, 2]]
    return 0.5 * np.linalg.norm(np.cross(b - a, c - a), axis=1)


def _find(parent: np.ndarray, i: int) -> int:
    """Union-find root with path halving."""
    while parent[i] != i:
        parent[i] = parent[parent[i]]
        i = parent[i]
    return i


def collapse_degenerate(vertices: np.ndarray, faces: np.ndarray, rel_eps: float = 1e-3,
                        max_rounds: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Collapse the shortest edge of every (near) zero-area triangle, and every very short edge.

    Thresholds are relative to the mean edge length. Faces that become degenerate (repeated
    vertex) or duplicated are dropped, unreferenced vertices removed.
    """
    v = np.asarray(vertices, dtype=np.float64).copy()
    f = np.asarray(faces, dtype=np.int64).copy()
    if len(f) == 0:
        return v, f
    scale = mean_edge_length(v, f)
    for _ in range(max_rounds):
        a, b, c = v[f[:, 0]], v[f[:, 1]], v[f[:, 2]]
        lengths = np.stack([np.linalg.norm(b - a, axis=1), np.linalg.norm(c - b, axis=1),
                            np.linalg.norm(a - c, axis=1)], axis=1)
        area = 0.5 * np.linalg.norm(np.cross(b - a, c - a), axis=1)
        bad = (area < (rel_eps * scale) ** 2) | (lengths.min(axis=1) < rel_eps * scale)
        if not bad.any():
            break
        parent = np.arange(len(v))
        shortest = lengths.argmin(axis=1)
        for fi in np.nonzero(bad)[0]:
            k = shortest[fi]
            i, j = _find(parent, int(f[fi, k])), _find(parent, int(f[fi, (k + 1) % 3]))
            if i != j:
                parent[j] = i
        roots = np.array([_find(parent, i) for i in range(len(v))])
        sums = np.zeros_like(v)
        np.add.at(sums, roots, v)
        counts = np.bincount(roots, minlength=len(v))
        merged = counts > 1
        v[merged] = sums[merged] / counts[merged, None]
        f = roots[f]
        f = f[(f[:, 0] != f[:, 1]) & (f[:, 1] != f[:, 2]) & (f[:, 2] != f[:, 0])]
        _, keep = np.unique(np.sort(f, axis=1), axis=0, return_index=True)
        f = f[np.sort(keep)]
    return remove_unreferenced(v, f)
