"""The job setting `initial_mesh`: a mesh or point-cloud file turned into a closed start surface."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from backend.geometry.mesh_ops import largest_component
from backend.runtime.errors import JobError
from backend.runtime.protocol import Reporter

CLOUD_ONLY = (".xyz", ".txt", ".pts", ".csv", ".npz", ".npy")


def load_start_mesh(path: Path, reporter: Reporter) -> tuple[np.ndarray, np.ndarray, str]:
    """(vertices, faces, 'mesh' or 'points') in world coordinates: a mesh file as it is, a point cloud
    meshed by screened Poisson without trimming (closed) and reduced to its largest part."""
    from backend.mesh.metrics import load_mesh
    from backend.points.steps import POINT_SETTINGS, clean_cloud, oriented_normals, surface
    from backend.points.readers import read_point_cloud

    path = Path(path)
    if path.suffix.lower() not in CLOUD_ONLY:
        v, f = load_mesh(path)
        if len(f) > 0:
            return v, f, "mesh"
    cloud = read_point_cloud(path)
    info: dict = {}
    points, normals, _ = clean_cloud(cloud, POINT_SETTINGS, reporter, info)
    normals = oriented_normals(points, normals, POINT_SETTINGS, reporter, info)
    v, f = surface(points, normals, POINT_SETTINGS, reporter, info)
    v, f = largest_component(v, f)
    if len(f) == 0:
        raise JobError(f"initial_mesh {path.name}: screened Poisson gave no surface",
                       "Check the point cloud (and its normals), or leave initial_mesh null for the visual hull.")
    return v, f, "points"


def check_inside(v_normalised: np.ndarray, name: str, limit: float = 1.2) -> None:
    """JobError when most of the start mesh lies outside the job's (normalised) bounding box."""
    inside = np.all(np.abs(v_normalised) <= limit, axis=1).mean()
    if inside < 0.9:
        raise JobError(f"initial_mesh {name}: {100 * (1 - inside):.0f} % of it lies outside the job's bounding box",
                       "The mesh must be in the cameras' world coordinates (as exported from the same scene).")
