"""A signed distance grid over the normalised scene: built from a mesh, sampled and splatted trilinearly."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

GRID_RES = 64
GRID_EXTENT = 1.1  # the grid spans [-GRID_EXTENT, GRID_EXTENT]^3 (the visual hull lies in [-1.05, 1.05]^3)


@dataclass(frozen=True)
class GridSpec:
    """Where the grid's nodes lie: res^3 nodes from lo to lo + (res - 1) * spacing on every axis."""

    res: int = GRID_RES
    lo: float = -GRID_EXTENT
    hi: float = GRID_EXTENT

    @property
    def spacing(self) -> float:
        """Distance between neighbouring nodes."""
        return (self.hi - self.lo) / (self.res - 1)

    def points(self) -> np.ndarray:
        """Node positions (res^3, 3), x slowest (index order i, j, k of the values array)."""
        ax = np.linspace(self.lo, self.hi, self.res)
        return np.stack(np.meshgrid(ax, ax, ax, indexing="ij"), axis=-1).reshape(-1, 3)


def signed_distance(points: np.ndarray, vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Signed distance of points to a closed mesh, negative inside (gpytoolbox: AABB tree, winding-number sign)."""
    import gpytoolbox

    s, _, _ = gpytoolbox.signed_distance(np.ascontiguousarray(points, dtype=np.float64),
                                         np.ascontiguousarray(vertices, dtype=np.float64),
                                         np.ascontiguousarray(faces, dtype=np.int32))
    return np.asarray(s, dtype=np.float64)


def grid_from_mesh(vertices: np.ndarray, faces: np.ndarray, spec: GridSpec = GridSpec()) -> np.ndarray:
    """Signed distance values (res, res, res) of a closed mesh at the grid's nodes, the border kept outside."""
    values = signed_distance(spec.points(), vertices, faces).reshape(spec.res, spec.res, spec.res)
    return close_border(values, spec.spacing)


def close_border(values: np.ndarray, spacing: float) -> np.ndarray:
    """The outer layer of nodes at least one spacing outside, so every extracted surface is closed."""
    out = np.array(values, dtype=np.float64, copy=True)
    for axis in range(3):
        for end in (0, -1):
            face = [slice(None)] * 3
            face[axis] = end
            out[tuple(face)] = np.maximum(out[tuple(face)], spacing)
    return out


def trilinear_weights(points: torch.Tensor, spec: GridSpec) -> tuple[torch.Tensor, torch.Tensor]:
    """The 8 nodes around each point (flat indices (N, 8)) and their trilinear weights (N, 8)."""
    g = ((points - spec.lo) / spec.spacing).clamp(0, spec.res - 1 - 1e-6)
    base = g.floor().long()
    frac = g - base
    idx, wts = [], []
    for dx in (0, 1):
        for dy in (0, 1):
            for dz in (0, 1):
                i, j, k = base[:, 0] + dx, base[:, 1] + dy, base[:, 2] + dz
                idx.append((i * spec.res + j) * spec.res + k)
                wx = frac[:, 0] if dx else 1 - frac[:, 0]
                wy = frac[:, 1] if dy else 1 - frac[:, 1]
                wz = frac[:, 2] if dz else 1 - frac[:, 2]
                wts.append(wx * wy * wz)
    return torch.stack(idx, dim=1), torch.stack(wts, dim=1)


def sample(values: torch.Tensor, points: torch.Tensor, spec: GridSpec) -> torch.Tensor:
    """Trilinear interpolation of the grid values (res, res, res [, C]) at points (N, 3): (N [, C])."""
    idx, w = trilinear_weights(points, spec)
    flat = values.reshape(spec.res ** 3, -1)[idx]  # (N, 8, C)
    out = (flat * w[..., None]).sum(dim=1)
    return out[:, 0] if values.dim() == 3 else out


def splat(scalars: torch.Tensor, points: torch.Tensor, spec: GridSpec) -> torch.Tensor:
    """The transpose of `sample`: each point's scalar spread onto its 8 nodes by its trilinear weights."""
    idx, w = trilinear_weights(points, spec)
    out = torch.zeros(spec.res ** 3, dtype=scalars.dtype, device=scalars.device)
    out.index_add_(0, idx.reshape(-1), (w * scalars[:, None]).reshape(-1))
    return out.reshape(spec.res, spec.res, spec.res)
