"""The grid's zero level set as a mesh (marching cubes) and MeshSDF's rule that carries vertex gradients back.

A surface vertex v with s(v) = 0 moves by dv = -n(v) ds when the field changes by ds around it (n the unit
normal, the field a signed distance), so dL/ds = -(dL/dv)·n(v) (Remelli et al. 2020). Each vertex's scalar
goes to the grid through the transpose of trilinear sampling.
"""
from __future__ import annotations

import numpy as np
import torch
from skimage.measure import marching_cubes

from backend.topology.sdf_grid import GridSpec, sample, splat


def extract_surface(values: np.ndarray, spec: GridSpec) -> tuple[np.ndarray, np.ndarray]:
    """The zero level set (vertices (N, 3), faces (F, 3), outward) of a field negative inside; empty if none."""
    values = np.asarray(values, dtype=np.float64)
    if not (values.min() < 0.0 < values.max()):
        return np.zeros((0, 3)), np.zeros((0, 3), dtype=np.int64)
    h = spec.spacing
    verts, faces, _, _ = marching_cubes(values, level=0.0, spacing=(h, h, h))
    return verts.astype(np.float64) + spec.lo, faces.astype(np.int64)


def field_gradient(values: torch.Tensor, spec: GridSpec) -> torch.Tensor:
    """Central-difference gradient of the grid values at every node (res, res, res, 3)."""
    return torch.stack(torch.gradient(values, spacing=spec.spacing), dim=-1)


def field_normals(values: torch.Tensor, points: torch.Tensor, spec: GridSpec) -> torch.Tensor:
    """Unit normals n = grad s / |grad s| of the field at points (N, 3), interpolated trilinearly."""
    grad = sample(field_gradient(values, spec), points, spec)
    return torch.nn.functional.normalize(grad, dim=1, eps=1e-12)


def grid_gradient(vertex_grad: torch.Tensor, vertices: torch.Tensor, normals: torch.Tensor,
                  spec: GridSpec) -> torch.Tensor:
    """dL/ds on the grid (res, res, res) from dL/dv at the surface vertices: splat of -(dL/dv)·n(v)."""
    return splat(-(vertex_grad * normals).sum(dim=1), vertices, spec)
