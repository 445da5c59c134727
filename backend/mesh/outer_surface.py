"""The outer surface of a reference mesh: the faces a camera can see, without the parts buried in its own solid.

CAD and sculpted models are often assemblies of overlapping parts (the Utah teapot's spout and handle run on into
its body, Suzanne's eyes sit deep in their sockets). The pieces inside the solid belong to the file but to no
shape a photograph shows, and every reconstruction scores worse against them: 3.1 % of the teapot's area and 3.4 %
of Suzanne's lie inside (BENCHMARKS.md, issue 23). A face is buried when the generalized winding number of the
whole mesh is above 1/2 in size just off both of its sides, which holds for open and self-intersecting meshes too.
Numpy only, with relative imports: the add-on's Compare Meshes imports it from the backend bundled in its zip.
"""
from __future__ import annotations

import numpy as np

from .meshmath import bbox_diagonal, face_normals, triangle_areas
from .winding import WindingTree

BURIED_OFFSET = 2e-3  # how far off each side of a face the winding number is read, in bbox diagonals


def buried_faces(v: np.ndarray, f: np.ndarray, offset: float = BURIED_OFFSET) -> np.ndarray:
    """One flag per triangle: inside the mesh's own solid on both sides (read at the centroid)."""
    v = np.asarray(v, dtype=np.float64)
    f = np.asarray(f, dtype=np.int64).reshape(-1, 3)
    if len(f) == 0:
        return np.zeros(0, dtype=bool)
    centroids = v[f].mean(axis=1)
    step = offset * max(bbox_diagonal(v), 1e-12) * face_normals(v, f)
    tree = WindingTree(v, f)
    both = tree.winding(np.concatenate([centroids + step, centroids - step]))
    both = np.abs(both)  # a mesh wound inside out reads -1 inside
    return np.minimum(both[: len(f)], both[len(f):]) > 0.5


def outer_surface(v: np.ndarray, f: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The mesh without its buried triangles (vertices unchanged; the triangles kept)."""
    f = np.asarray(f, dtype=np.int64).reshape(-1, 3)
    return np.asarray(v, dtype=np.float64), f[~buried_faces(v, f)]


def outer_faces(v: np.ndarray, f: np.ndarray) -> tuple[np.ndarray, float]:
    """The triangles of the outer surface, and the share of the whole area buried (left out), for the metrics."""
    f = np.asarray(f, dtype=np.int64).reshape(-1, 3)
    buried = buried_faces(v, f)
    areas = triangle_areas(v, f)
    return f[~buried], float(areas[buried].sum() / max(float(areas.sum()), 1e-30))
