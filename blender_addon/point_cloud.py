"""Which scene objects are point clouds, and their world-space points and normals (no bpy import)."""
from __future__ import annotations

from typing import Optional

import numpy as np

from .points_export import normal_attribute, to_world

MIN_POINTS = 300


def is_point_cloud(obj) -> bool:
    """A Point Cloud object, or a mesh object with vertices and no faces."""
    if obj is None:
        return False
    if obj.type == "POINTCLOUD":
        return True
    return obj.type == "MESH" and len(obj.data.vertices) > 0 and len(obj.data.polygons) == 0


def _attribute_vectors(data, name: str, count: int) -> np.ndarray:
    """A FLOAT_VECTOR attribute of `data` as an (count, 3) array."""
    values = np.empty(count * 3, dtype=np.float32)
    data.attributes[name].data.foreach_get("vector", values)
    return values.reshape(count, 3)


def object_cloud(obj) -> tuple[np.ndarray, Optional[np.ndarray]]:
    """World-space points of the object and its normals when an attribute holds them."""
    data = obj.data
    if obj.type == "POINTCLOUD":
        count = len(data.points)
        points = _attribute_vectors(data, "position", count)
    else:
        count = len(data.vertices)
        points = np.empty(count * 3, dtype=np.float32)
        data.vertices.foreach_get("co", points)
        points = points.reshape(count, 3)
    name = normal_attribute((a.name, a.data_type, a.domain) for a in data.attributes)
    normals = _attribute_vectors(data, name, count) if name else None
    return to_world(points, normals, np.array(obj.matrix_world))
