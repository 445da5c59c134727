"""Reflection-symmetry plane of a mesh (any orientation and position) and a mirror loss."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.spatial import cKDTree

from backend.post.geometry import (bbox_diagonal, closest_point_on_triangles, face_normals_and_areas,
                                   sample_surface)

N_SAMPLES = 12000
N_COARSE = 3000
N_SCORE_QUERIES = 800
N_REFINE_QUERIES = 3000
N_DIRECTIONS = 400
N_REFINED = 6


@dataclass
class SymmetryPlane:
    """Plane {x : normal . (x - point) = 0}; score = normalised Chamfer between the mesh and its mirror."""

    point: np.ndarray
    normal: np.ndarray
    score: float

    def to_dict(self) -> dict:
        """JSON form used in result.json: {"point", "normal", "score"}."""
        return {"point": [float(x) for x in self.point], "normal": [float(x) for x in self.normal],
                "score": float(self.score)}

    @classmethod
    def from_dict(cls, data: dict) -> "SymmetryPlane":
        """Inverse of to_dict."""
        normal = np.asarray(data["normal"], dtype=np.float64)
        return cls(np.asarray(data["point"], dtype=np.float64), normal / np.linalg.norm(normal),
                   float(data.get("score", 0.0)))

    def offset(self) -> float:
        """d in the plane equation normal . x = d."""
        return float(self.normal @ self.point)

    def reflect(self, points: np.ndarray) -> np.ndarray:
        """Mirror images of points (N, 3)."""
        return reflect(points, self.normal, self.offset())

    def mapped(self, center: np.ndarray, scale: float) -> "SymmetryPlane":
        """The same plane in coordinates X' = (X - center) / scale."""
        return SymmetryPlane((np.asarray(self.point) - center) / scale, self.normal.copy(), self.score)


def reflect(points: np.ndarray, normal: np.ndarray, d: float) -> np.ndarray:
    """Mirror points about the plane normal . x = d."""
    return points - 2.0 * (points @ normal - d)[:, None] * normal[None, :]


def fibonacci_hemisphere(count: int) -> np.ndarray:
    """Roughly uniform unit directions (count, 3) on the upper hemisphere (a plane and its flip are one)."""
    i = np.arange(count) + 0.5
    z = 1.0 - i / count
    r = np.sqrt(1.0 - z * z)
    phi = np.pi * (1.0 + 5 ** 0.5) * i
    return np.stack([r * np.cos(phi), r * np.sin(phi), z], axis=1)


def _mirror_error(points: np.ndarray, tree: cKDTree, normal: np.ndarray, d: float) -> float:
    """Mean distance from mirrored points to the nearest sample."""
    dist, _ = tree.query(reflect(points, normal, d), k=1)
    return float(dist.mean())


def _tangent_basis(n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two unit vectors orthogonal to n and to each other."""
    helper = np.array([1.0, 0.0, 0.0]) if abs(n[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    e1 = np.cross(n, helper)
    e1 /= np.linalg.norm(e1)
    return e1, np.cross(n, e1)


def _refine(points: np.ndarray, normals: np.ndarray, tree: cKDTree, all_normals: np.ndarray,
            n: np.ndarray, d: float, scale: float, iterations: int = 40) -> tuple[np.ndarray, float]:
    """Gauss-Newton on (normal, offset): mirrored points onto the surface (point-to-plane + point-to-point)."""
    w_pt = 0.1
    for _ in range(iterations):
        q = reflect(points, n, d)
        dist, j = tree.query(q, k=1)
        target, m = tree.data[j], all_normals[j]
        mirrored_normals = normals - 2.0 * (normals @ n)[:, None] * n[None, :]
        keep = ((mirrored_normals * m).sum(1) > 0.3) & (dist <= max(np.quantile(dist, 0.9), 1e-12))
        if keep.sum() < 10:
            break
        x, q, target, m = points[keep], q[keep], target[keep], m[keep]
        diff = q - target
        s = x @ n - d
        e1, e2 = _tangent_basis(n)
        jac_pts = [-2.0 * ((x @ e)[:, None] * n[None, :] + s[:, None] * e[None, :]) for e in (e1, e2)]
        jac_pts.append(np.broadcast_to(2.0 * n, x.shape))
        jac_plane = np.stack([(jp * m).sum(1) for jp in jac_pts], axis=1)
        jac_point = np.stack([jp.reshape(-1) for jp in jac_pts], axis=1) * w_pt
        jac = np.concatenate([jac_plane, jac_point], axis=0)
        res = np.concatenate([(diff * m).sum(1), diff.reshape(-1) * w_pt])
        step, *_ = np.linalg.lstsq(jac, -res, rcond=None)
        n = n + step[0] * e1 + step[1] * e2
        n /= np.linalg.norm(n)
        d += step[2]
        if np.hypot(step[0], step[1]) < 1e-7 and abs(step[2]) < 1e-7 * scale:
            break
    return n, d


def _surface_distance(query: np.ndarray, vertices: np.ndarray, faces: np.ndarray, tree: cKDTree,
                      sample_face: np.ndarray, k: int = 4) -> np.ndarray:
    """Distance from query points to the mesh, over the faces of the k nearest surface samples."""
    _, idx = tree.query(query, k=k)
    best = np.full(len(query), np.inf)
    for col in range(k):
        tri = vertices[faces[sample_face[idx[:, col]]]]
        closest = closest_point_on_triangles(query, tri[:, 0], tri[:, 1], tri[:, 2])
        best = np.minimum(best, np.linalg.norm(query - closest, axis=1))
    return best


def symmetry_score(vertices: np.ndarray, faces: np.ndarray, plane: SymmetryPlane,
                   n_samples: int = N_SAMPLES, seed: int = 1) -> float:
    """Normalised Chamfer between the mesh and its mirror image (divided by the bbox diagonal)."""
    vertices = np.asarray(vertices, dtype=np.float64)
    faces = np.asarray(faces, dtype=np.int64)
    points, face = sample_surface(vertices, faces, n_samples, np.random.default_rng(seed))
    tree = cKDTree(points)
    dist = _surface_distance(plane.reflect(points), vertices, faces, tree, face)
    return float(dist.mean() / max(bbox_diagonal(vertices), 1e-30))


def detect_symmetry(vertices: np.ndarray, faces: np.ndarray, threshold: float = 0.01) -> tuple[SymmetryPlane, bool]:
    """Best reflection plane and whether it counts as symmetric (score < threshold)."""
    vertices = np.asarray(vertices, dtype=np.float64)
    faces = np.asarray(faces, dtype=np.int64)
    rng = np.random.default_rng(0)
    points, face = sample_surface(vertices, faces, N_SAMPLES, rng)
    fnormals, areas = face_normals_and_areas(vertices, faces)
    normals = fnormals[face]
    tri_centroids = vertices[faces].mean(axis=1)
    center = (tri_centroids * areas[:, None]).sum(0) / areas.sum()
    diag = max(bbox_diagonal(vertices), 1e-30)
    tree = cKDTree(points)

    centred = points - center
    _, _, axes = np.linalg.svd(centred[rng.choice(len(points), 4000)], full_matrices=False)
    directions = np.concatenate([axes, fibonacci_hemisphere(N_DIRECTIONS)], axis=0)
    coarse_tree = cKDTree(points[rng.choice(len(points), N_COARSE, replace=False)])
    queries = points[rng.choice(len(points), N_SCORE_QUERIES, replace=False)]
    errors = np.array([_mirror_error(queries, coarse_tree, n, float(n @ center)) for n in directions])

    chosen: list[np.ndarray] = []
    for i in np.argsort(errors):
        if all(abs(directions[i] @ c) < np.cos(np.radians(10)) for c in chosen):
            chosen.append(directions[i])
        if len(chosen) == N_REFINED:
            break

    sub = rng.choice(len(points), N_REFINE_QUERIES, replace=False)
    best: tuple[float, np.ndarray, float] | None = None
    for n0 in chosen:
        n, d = _refine(points[sub], normals[sub], tree, normals, n0.copy(), float(n0 @ center), diag)
        err = _mirror_error(queries, tree, n, d)
        if best is None or err < best[0]:
            best = (err, n, d)
    _, n, d = best
    if n[np.argmax(np.abs(n))] < 0:
        n, d = -n, -d
    point = center - (center @ n - d) * n
    plane = SymmetryPlane(point, n, 0.0)
    dist = _surface_distance(plane.reflect(points), vertices, faces, tree, face)
    plane.score = float(dist.mean() / diag)
    return plane, plane.score < threshold


def mirror_loss(vertices: torch.Tensor, plane: SymmetryPlane | dict) -> torch.Tensor:
    """Mean squared distance from each mirrored vertex to its nearest vertex (nearest found without grad)."""
    if isinstance(plane, dict):
        plane = SymmetryPlane.from_dict(plane)
    n = torch.as_tensor(plane.normal, dtype=vertices.dtype, device=vertices.device)
    d = float(plane.offset())
    mirrored = vertices - 2.0 * ((vertices @ n) - d)[:, None] * n[None, :]
    ref = vertices.detach().cpu().numpy()
    _, idx = cKDTree(ref).query(mirrored.detach().cpu().numpy(), k=1)
    nearest = torch.as_tensor(idx, dtype=torch.int64, device=vertices.device)
    return ((mirrored - vertices[nearest]) ** 2).sum(dim=1).mean()
