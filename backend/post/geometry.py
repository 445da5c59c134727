"""Small mesh helpers shared by the post-processing modules (numpy only)."""
from __future__ import annotations

import numpy as np

from backend.mesh.meshmath import bbox_diagonal  # noqa: F401  (re-exported for the post-processing modules)


def face_normals_and_areas(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unit face normals (F, 3) and face areas (F,)."""
    tri = vertices[faces]
    cross = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    norm = np.linalg.norm(cross, axis=1)
    normals = cross / np.maximum(norm, 1e-30)[:, None]
    return normals, 0.5 * norm


def vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Area-weighted unit vertex normals (N, 3)."""
    tri = vertices[faces]
    cross = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    acc = np.zeros_like(vertices, dtype=np.float64)
    for k in range(3):
        np.add.at(acc, faces[:, k], cross)
    return acc / np.maximum(np.linalg.norm(acc, axis=1), 1e-30)[:, None]


def offset_along_normals(vertices: np.ndarray, faces: np.ndarray, distance: float) -> np.ndarray:
    """Vertices moved by `distance` along their area-weighted normals (negative: inwards on a closed mesh)."""
    return vertices + distance * vertex_normals(vertices, faces)


def sample_surface(vertices: np.ndarray, faces: np.ndarray, count: int,
                   rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Area-weighted random surface points (count, 3) and the face each lies on (count,)."""
    _, areas = face_normals_and_areas(vertices, faces)
    face = rng.choice(len(faces), size=count, p=areas / areas.sum())
    r1 = np.sqrt(rng.random(count))
    r2 = rng.random(count)
    w = np.stack([1 - r1, r1 * (1 - r2), r1 * r2], axis=1)
    points = np.einsum("nk,nkd->nd", w, vertices[faces[face]])
    return points, face


def closest_point_on_triangles(p: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Closest point on triangle (a_i, b_i, c_i) to p_i, all (N, 3) (Ericson's region test)."""
    ab, ac, ap = b - a, c - a, p - a
    d1, d2 = (ab * ap).sum(1), (ac * ap).sum(1)
    bp = p - b
    d3, d4 = (ab * bp).sum(1), (ac * bp).sum(1)
    cp = p - c
    d5, d6 = (ab * cp).sum(1), (ac * cp).sum(1)
    va = d3 * d6 - d5 * d4
    vb = d5 * d2 - d1 * d6
    vc = d1 * d4 - d3 * d2
    denom = va + vb + vc
    denom = np.where(np.abs(denom) < 1e-30, 1e-30, denom)
    v = vb / denom
    w = vc / denom
    out = a + ab * v[:, None] + ac * w[:, None]

    def safe_div(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return x / np.where(np.abs(y) < 1e-30, 1e-30, y)

    bc_edge = (va <= 0) & (d4 - d3 >= 0) & (d5 - d6 >= 0)
    t = safe_div(d4 - d3, (d4 - d3) + (d5 - d6))
    out = np.where(bc_edge[:, None], b + (c - b) * t[:, None], out)
    ac_edge = (vb <= 0) & (d2 >= 0) & (d6 <= 0)
    t = safe_div(d2, d2 - d6)
    out = np.where(ac_edge[:, None], a + ac * t[:, None], out)
    ab_edge = (vc <= 0) & (d1 >= 0) & (d3 <= 0)
    t = safe_div(d1, d1 - d3)
    out = np.where(ab_edge[:, None], a + ab * t[:, None], out)
    out = np.where(((d6 >= 0) & (d5 <= d6))[:, None], c, out)
    out = np.where(((d3 >= 0) & (d4 <= d3))[:, None], b, out)
    out = np.where(((d1 <= 0) & (d2 <= 0))[:, None], a, out)
    return out
