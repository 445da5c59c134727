"""The floor an object stands on: nothing of the object lies below it.

A photographed object's underside is hidden by the floor in every photo, so the optimisation cannot see it and
leaves whatever the visual hull's box gave (a bulge reaching under the floor). When the photos command found
the floor plane, the finished mesh is set down on it: every vertex under the plane moves onto it along its
normal, giving the flat bottom an object resting on a table has.
"""
from __future__ import annotations

import numpy as np

Floor = tuple[np.ndarray, float]  # (unit normal pointing up, offset): the plane {X : normal . X = offset}


def floor_from_dict(value: object) -> Floor | None:
    """A floor from sfm.json's {"normal": [x, y, z], "offset": d}; None when absent or malformed."""
    if not isinstance(value, dict):
        return None
    try:
        n = np.asarray(value["normal"], dtype=np.float64).reshape(3)
        d = float(value["offset"])
    except (KeyError, TypeError, ValueError):
        return None
    length = float(np.linalg.norm(n))
    if not np.isfinite(length) or length < 1e-9 or not np.isfinite(d):
        return None
    return n / length, d / length


def floor_to_dict(floor: Floor) -> dict:
    """sfm.json's form of a floor."""
    return {"normal": [float(x) for x in floor[0]], "offset": float(floor[1])}


def rest_on_floor(vertices: np.ndarray, floor: Floor) -> tuple[np.ndarray, int]:
    """Vertices under the floor plane moved onto it (along its normal), and how many moved."""
    v = np.array(vertices, dtype=np.float64)
    n = np.asarray(floor[0], dtype=np.float64)
    depth = float(floor[1]) - v @ n
    below = depth > 0
    v[below] += np.outer(depth[below], n)
    return v, int(below.sum())
