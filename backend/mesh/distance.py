"""Surface sampling and exact point-to-surface distance (gpytoolbox): what the metrics and the alignment share."""
from __future__ import annotations

import numpy as np

from backend.mesh import meshmath
from backend.mesh.meshmath import MeshInputError
from backend.runtime.errors import JobError


def sample_surface(v: np.ndarray, f: np.ndarray, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """`meshmath.sample_surface`, reporting a mesh without surface as a JobError."""
    try:
        return meshmath.sample_surface(v, f, n, seed)
    except MeshInputError as exc:
        raise JobError(str(exc), "a point cloud cannot be compared surface-to-surface; mesh it first") from None


def point_to_surface(points: np.ndarray, v: np.ndarray, f: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exact distance from each point to the triangle mesh: (distance, nearest triangle, closest point)."""
    import gpytoolbox

    sq, idx, lmb = gpytoolbox.squared_distance(np.asarray(points, dtype=np.float64),
                                               np.asarray(v, dtype=np.float64),
                                               np.asarray(f, dtype=np.int32), use_cpp=True)
    idx = np.asarray(idx, dtype=np.int64)
    closest = np.einsum("nk,nkd->nd", lmb, np.asarray(v, dtype=np.float64)[f[idx]])
    return np.sqrt(np.maximum(sq, 0.0)), idx, closest
