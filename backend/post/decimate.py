"""Face budget: quadric-error decimation (fast-simplification) of an over-budget mesh, and its Chamfer cost."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from backend.mesh.meshmath import bbox_diagonal, sample_surface

CHAMFER_SAMPLES = 20000
AGGRESSIVENESS = 7.0  # fast-simplification's default trade-off between speed and keeping the shape


@dataclass
class Decimation:
    """What the face budget did: counts before and after, seconds, and the Chamfer cost (None when not applied)."""

    faces_before: int
    faces_after: int
    max_faces: int
    seconds: float
    chamfer_l1_norm: float | None = None
    hausdorff_norm: float | None = None

    def to_dict(self) -> dict:
        """The result.json entry."""
        return {"applied": self.faces_after < self.faces_before, "max_faces": self.max_faces,
                "faces_before": self.faces_before, "faces_after": self.faces_after,
                "seconds": round(self.seconds, 3), "chamfer_l1_norm": self.chamfer_l1_norm,
                "hausdorff_norm": self.hausdorff_norm}


def compact(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Drop faces with a repeated corner and vertices no face uses."""
    faces = faces[(faces[:, 0] != faces[:, 1]) & (faces[:, 1] != faces[:, 2]) & (faces[:, 0] != faces[:, 2])]
    used, inverse = np.unique(faces, return_inverse=True)
    return vertices[used], inverse.reshape(faces.shape).astype(np.int64)


def quadric_decimate(vertices: np.ndarray, faces: np.ndarray, max_faces: int) -> tuple[np.ndarray, np.ndarray]:
    """At most max_faces triangles by quadric-error edge collapse; the input when already within budget."""
    vertices = np.asarray(vertices, dtype=np.float64)
    faces = np.asarray(faces, dtype=np.int64)
    if len(faces) <= max_faces:
        return vertices, faces
    import fast_simplification

    v, f = fast_simplification.simplify(np.ascontiguousarray(vertices), np.ascontiguousarray(faces, dtype=np.int32),
                                        target_count=int(max_faces), agg=AGGRESSIVENESS)
    return compact(np.asarray(v, dtype=np.float64), np.asarray(f, dtype=np.int64))


def surface_distances(points: np.ndarray, vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Exact distance from each point to the triangle mesh (gpytoolbox's AABB tree)."""
    import gpytoolbox

    sq, _, _ = gpytoolbox.squared_distance(points, vertices, faces.astype(np.int32), use_cpp=True)
    return np.sqrt(np.maximum(np.asarray(sq, dtype=np.float64), 0.0))


def chamfer_cost(v_ref: np.ndarray, f_ref: np.ndarray, v_new: np.ndarray, f_new: np.ndarray,
                 samples: int = CHAMFER_SAMPLES) -> tuple[float, float]:
    """Symmetric point-to-surface Chamfer L1 and Hausdorff between two meshes, over the reference bbox diagonal."""
    diag = bbox_diagonal(v_ref)
    a, _ = sample_surface(v_ref, f_ref, samples, seed=0)
    b, _ = sample_surface(v_new, f_new, samples, seed=1)
    d_ab = surface_distances(a, v_new, f_new)
    d_ba = surface_distances(b, v_ref, f_ref)
    chamfer = 0.5 * (d_ab.mean() + d_ba.mean()) / diag
    hausdorff = max(d_ab.max(), d_ba.max()) / diag
    return float(chamfer), float(hausdorff)


def decimate_with_cost(vertices: np.ndarray, faces: np.ndarray,
                       max_faces: int) -> tuple[np.ndarray, np.ndarray, float, float]:
    """Decimated mesh and its Chamfer L1 and Hausdorff to the input (one call for a worker process)."""
    v, f = quadric_decimate(vertices, faces, max_faces)
    chamfer, hausdorff = chamfer_cost(np.asarray(vertices, dtype=np.float64), np.asarray(faces, dtype=np.int64), v, f)
    return v, f, chamfer, hausdorff
