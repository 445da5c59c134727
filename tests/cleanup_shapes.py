"""Procedural test meshes for the clean-up (numpy only): closed shapes with crevices, nested shells, assemblies.

Shared by tests/test_cleanup_winding.py, tests/test_cleanup_interior.py and benchmarks/bench_cleanup.py.
Every shape comes back as (vertices (n, 3) float, faces (m, k) int) with outward, consistent winding.
"""
from __future__ import annotations

import numpy as np


def voxel_surface(labels: np.ndarray, size: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Quads between voxels of different labels (0 = empty); walls between two parts are emitted once.

    Outer faces point from solid to empty; a wall between parts points from the lower label to the higher.
    """
    lab = np.pad(np.asarray(labels), 1)
    quads = []
    for d in range(3):
        u, w = (d + 1) % 3, (d + 2) % 3
        a = lab
        b = np.roll(lab, -1, axis=d)
        for mask, flip in (((a != 0) & (a != b), False), ((a == 0) & (b != 0), True)):
            if d == 0:
                mask[-1] = False
            elif d == 1:
                mask[:, -1] = False
            else:
                mask[:, :, -1] = False
            cells = np.argwhere(mask)
            base = cells.astype(np.int64).copy()
            base[:, d] += 1
            eu, ew = np.eye(3, dtype=np.int64)[u], np.eye(3, dtype=np.int64)[w]
            corners = np.stack([base, base + eu, base + eu + ew, base + ew], axis=1)
            quads.append(corners[:, ::-1] if flip else corners)
    corners = np.concatenate(quads)
    keys, inv = np.unique(corners.reshape(-1, 3), axis=0, return_inverse=True)
    return (keys - 1).astype(np.float64) * size, inv.reshape(-1, 4)


def comb(teeth: int = 6, depth: int = 12, size: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """A closed comb: a base bar with `teeth` teeth `depth` voxels tall and one-voxel-wide slots between."""
    occ = np.zeros((2 * teeth - 1, 3, depth + 2), dtype=np.int64)
    occ[:, :, :2] = 1
    occ[::2, :, 2:] = 1
    return voxel_surface(occ, size)


def cup(radius: int = 6, height: int = 14, wall: int = 1, size: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """A closed box-shaped cup: walls `wall` voxels thick around a deep cavity open at the top."""
    n = 2 * radius
    occ = np.ones((n, n, height), dtype=np.int64)
    occ[wall:n - wall, wall:n - wall, wall:] = 0
    return voxel_surface(occ, size)


def assembly(parts: tuple[int, int, int] = (3, 2, 2), cells: int = 4,
             size: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """Blocks of `cells`^3 voxels stacked in a grid and merged: shared vertices, internal walls between blocks."""
    nx, ny, nz = parts
    idx = np.arange(nx * ny * nz).reshape(nx, ny, nz) + 1
    occ = np.kron(idx, np.ones((cells, cells, cells), dtype=np.int64))
    return voxel_surface(occ, size)


def torus_knot(p: int = 2, q: int = 3, segments: int = 240, sides: int = 12,
               tube: float = 0.12) -> tuple[np.ndarray, np.ndarray]:
    """A closed (p, q) torus-knot tube: its strands pass close to each other through a tunnel."""
    t = np.linspace(0.0, 2.0 * np.pi, segments, endpoint=False)

    def curve(s: np.ndarray) -> np.ndarray:
        r = 2.0 + np.cos(q * s)
        return np.stack([r * np.cos(p * s), r * np.sin(p * s), -np.sin(q * s)], axis=1) * 0.5

    c = curve(t)
    tangent = curve(t + 1e-4) - curve(t - 1e-4)
    tangent /= np.linalg.norm(tangent, axis=1, keepdims=True)
    ref = np.cross(tangent, c - c.mean(axis=0) + np.array([0.0, 0.0, 0.3]))
    ref /= np.linalg.norm(ref, axis=1, keepdims=True)
    other = np.cross(tangent, ref)
    a = np.linspace(0.0, 2.0 * np.pi, sides, endpoint=False)
    v = (c[:, None, :] + tube * (np.cos(a)[None, :, None] * ref[:, None, :]
                                 + np.sin(a)[None, :, None] * other[:, None, :])).reshape(-1, 3)
    i, j = np.meshgrid(np.arange(segments), np.arange(sides), indexing="ij")
    i2, j2 = (i + 1) % segments, (j + 1) % sides
    quads = np.stack([i * sides + j, i * sides + j2, i2 * sides + j2, i2 * sides + j], axis=-1).reshape(-1, 4)
    return v, quads


def uv_sphere(radius: float = 1.0, rings: int = 16, segments: int = 32,
              centre: tuple[float, float, float] = (0.0, 0.0, 0.0)) -> tuple[np.ndarray, np.ndarray]:
    """A closed UV sphere of triangles."""
    th = np.linspace(0.0, np.pi, rings + 1)[1:-1]
    ph = np.linspace(0.0, 2.0 * np.pi, segments, endpoint=False)
    ring = np.stack([np.sin(th)[:, None] * np.cos(ph), np.sin(th)[:, None] * np.sin(ph),
                     np.cos(th)[:, None] * np.ones_like(ph)], axis=-1).reshape(-1, 3)
    v = np.vstack([[0.0, 0.0, 1.0], ring, [0.0, 0.0, -1.0]]) * radius + np.asarray(centre)
    faces = []
    last = len(v) - 1
    for s in range(segments):
        s2 = (s + 1) % segments
        faces.append([0, 1 + s, 1 + s2])
        for r in range(rings - 2):
            a, b = 1 + r * segments + s, 1 + r * segments + s2
            c, d = a + segments, b + segments
            faces += [[a, c, d], [a, d, b]]
        base = 1 + (rings - 2) * segments
        faces.append([base + s, last, base + s2])
    return v, np.array(faces)


def nested_shells() -> tuple[np.ndarray, np.ndarray]:
    """A sphere with a smaller sphere inside it (the inner shell is interior)."""
    vo, fo = uv_sphere(1.0)
    vi, fi = uv_sphere(0.5, rings=10, segments=20)
    return np.vstack([vo, vi]), np.vstack([fo, fi + len(vo)])


def triangles(faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fan-split polygons (m, k) into triangles: (tris, tri_face)."""
    faces = np.asarray(faces)
    k = faces.shape[1]
    tris = np.concatenate([faces[:, [0, i, i + 1]] for i in range(1, k - 1)])
    return tris, np.tile(np.arange(len(faces)), k - 2)
