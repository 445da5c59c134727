"""Point-cloud data of a Blender object in world space, ready for the backend. numpy only, no bpy."""
from __future__ import annotations

from pathlib import Path
from typing import Iterable, Optional

import numpy as np

NORMAL_NAMES = ("normal", "normals", "n", "nrm", "point_normal", "vertex_normal")


def normal_attribute(candidates: Iterable[tuple[str, str, str]]) -> Optional[str]:
    """Name of the first (name, data_type, domain) that holds per-point normals, or None."""
    for name, data_type, domain in candidates:
        if name.lower() in NORMAL_NAMES and data_type == "FLOAT_VECTOR" and domain == "POINT":
            return name
    return None


def to_world(points: np.ndarray, normals: Optional[np.ndarray],
             matrix: np.ndarray) -> tuple[np.ndarray, Optional[np.ndarray]]:
    """Points by the 4x4 object matrix; normals by its inverse transpose, re-normalised."""
    m = np.asarray(matrix, dtype=np.float64)
    p = np.asarray(points, dtype=np.float64).reshape(-1, 3) @ m[:3, :3].T + m[:3, 3]
    if normals is None:
        return p, None
    n = np.asarray(normals, dtype=np.float64).reshape(-1, 3) @ np.linalg.inv(m[:3, :3])
    length = np.linalg.norm(n, axis=1, keepdims=True)
    return p, np.where(length > 1e-12, n / np.maximum(length, 1e-12), 0.0)


def write_cloud(path: Path, points: np.ndarray, normals: Optional[np.ndarray]) -> Path:
    """The cloud as an NPZ file (arrays 'points' and, when known, 'normals') for `points-to-mesh`."""
    path = Path(path)
    arrays = {"points": np.ascontiguousarray(points, dtype=np.float64)}
    if normals is not None:
        arrays["normals"] = np.ascontiguousarray(normals, dtype=np.float64)
    np.savez(path, **arrays)
    return path
